"""Bidders: learners over stacked groups, and populations that mix them."""

from jaxauction.bidders.base import FEEDBACKS, Learner, per_bidder
from jaxauction.bidders.epsilon_greedy import (
    EpsilonGreedyParams,
    EpsilonGreedyState,
    effective_counts,
    epsilon,
    epsilon_greedy,
)
from jaxauction.bidders.population import Population, population
from jaxauction.bidders.truthful import truthful

__all__ = [
    "FEEDBACKS",
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
