"""Bidders: learners over stacked groups, and populations that mix them.

Importing the package registers its learners in ``jaxauction.registry.LEARNERS`` (``builders``)."""

from jaxauction.bidders.base import FEEDBACKS, Learner, per_bidder
from jaxauction.bidders.builders import (
    DQNOptions,
    EpsilonGreedyOptions,
    ExplorationOptions,
    GridOptions,
    IntegerGridOptions,
    LearningRateOptions,
    ShadingOptions,
    TabularOptions,
    ValueScale,
    tabular_grid,
)
from jaxauction.bidders.dqn import DQNParams, DQNState, dqn
from jaxauction.bidders.epsilon_greedy import (
    EpsilonGreedyParams,
    EpsilonGreedyState,
    effective_counts,
    epsilon,
    epsilon_greedy,
)
from jaxauction.bidders.exp3 import EXP3State, exp3
from jaxauction.bidders.fixed import EQUILIBRIA, ShadingParams, equilibrium, equilibrium_bids, external, shading
from jaxauction.bidders.grid import BidGrid, StepParams, absolute_grid, capped_grid, fraction_grid
from jaxauction.bidders.hedge import HedgeParams, HedgeState, hedge
from jaxauction.bidders.policy_gradient import PolicyGradientParams, PolicyGradientState, policy_gradient
from jaxauction.bidders.population import Population, population
from jaxauction.bidders.swap_regret import SwapRegretState, no_swap_regret, stationary
from jaxauction.bidders.truthful import truthful

__all__ = [
    "EXP3State",
    "StepParams",
    "SwapRegretState",
    "exp3",
    "no_swap_regret",
    "stationary",
    "DQNOptions",
    "EpsilonGreedyOptions",
    "ExplorationOptions",
    "GridOptions",
    "IntegerGridOptions",
    "LearningRateOptions",
    "ShadingOptions",
    "TabularOptions",
    "ValueScale",
    "tabular_grid",
    "EQUILIBRIA",
    "FEEDBACKS",
    "BidGrid",
    "DQNParams",
    "DQNState",
    "dqn",
    "HedgeParams",
    "HedgeState",
    "PolicyGradientParams",
    "PolicyGradientState",
    "ShadingParams",
    "absolute_grid",
    "capped_grid",
    "equilibrium",
    "equilibrium_bids",
    "external",
    "fraction_grid",
    "hedge",
    "policy_gradient",
    "shading",
    "EpsilonGreedyParams",
    "EpsilonGreedyState",
    "Learner",
    "Population",
    "effective_counts",
    "epsilon",
    "epsilon_greedy",
    "per_bidder",
    "population",
    "truthful",
]
