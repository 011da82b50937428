"""The package's learners in the ``LEARNERS`` registry, each with its options spec.

Options shared by several learners live in common bases (``GridOptions``,
``ExplorationOptions``, ``LearningRateOptions``), so that a mixed population
(``--learner hedge,epsilon_greedy``) has one flag per option: every option of
the same name means the same thing for each learner that takes it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.bidders.base import Learner
from jaxauction.bidders.dqn import dqn
from jaxauction.bidders.epsilon_greedy import epsilon_greedy
from jaxauction.bidders.exp3 import exp3
from jaxauction.bidders.fixed import shading
from jaxauction.bidders.grid import BidGrid, absolute_grid, capped_grid, fraction_grid
from jaxauction.bidders.hedge import hedge
from jaxauction.bidders.policy_gradient import policy_gradient
from jaxauction.bidders.swap_regret import no_swap_regret
from jaxauction.bidders.truthful import truthful
from jaxauction.registry import LEARNERS, NoOptions


@dataclasses.dataclass(frozen=True)
class ValueScale:
    """What learner builders know of the prior: its highest value and whether values are integers."""

    top: float
    integer: bool

    @property
    def n_values(self) -> int:
        """Value levels ``0..top`` that tabular learners need (at least 1)."""
        return max(int(np.ceil(self.top)) + 1, 1)


@dataclasses.dataclass(frozen=True)
class IntegerGridOptions:
    """Integer bids on integer values (the original platform's grid)."""

    n_bids: int = 10
    """bid grid 0..n_bids-1 on integer values"""
    overbid: bool = False
    """allow bids above the value on the integer grid"""

    def __post_init__(self) -> None:
        check_positive_int(self.n_bids, "n_bids")


@dataclasses.dataclass(frozen=True)
class GridOptions(IntegerGridOptions):
    """A tabular learner's bids: the integer grid on integer values, else fractions or levels per value bin."""

    bid_fractions: int = 51
    """continuous values: bids are this many fractions of the value, evenly over [0, max_fraction], learned per
    value bin"""
    max_fraction: float = 1.0
    """continuous values: the highest bid as a multiple of the observation (above 1 for common-value settings,
    where the value exceeds the own signal)"""
    value_bins: int = 10
    """continuous values: value bins (contexts) over [0, the prior's top]"""
    continuous_grid: Literal["fraction", "capped"] = "fraction"
    """continuous values: fraction (bid_fractions fractions of the value) or capped (bid_fractions absolute levels
    over [0, max_fraction x the prior's top], each capped at the value: use it with reserves, which a fraction of
    the value cannot clear across a value bin)"""

    def __post_init__(self) -> None:
        IntegerGridOptions.__post_init__(self)
        check_positive_int(self.bid_fractions, "bid_fractions", minimum=2)
        check_positive_int(self.value_bins, "value_bins")
        check_choice(self.continuous_grid, ("fraction", "capped"), "continuous grid")
        check_finite(self.max_fraction, "max_fraction", positive=True)


@dataclasses.dataclass(frozen=True)
class ExplorationOptions:
    """Forced exploration, then a decaying exploration rate."""

    explore_steps: int = 20_000
    """forced uniform exploration, in updates (initial value of a param)"""
    half_life: float = 10_000.0
    """eps = 0.5 ** (t / half_life) (initial value of a param)"""

    def __post_init__(self) -> None:
        check_positive_int(self.explore_steps, "explore_steps", minimum=0)
        check_finite(self.half_life, "half_life", positive=True)


@dataclasses.dataclass(frozen=True)
class LearningRateOptions:
    """A learner's step size."""

    bidder_lr: float | None = None
    """the bidders' step size; None for each learner's default (hedge: eps in (0, 1), 0.05; policy_gradient:
    0.5; dqn: Adam's, 1e-3; exp3: 0.01; no_swap_regret: 0.05)"""

    def __post_init__(self) -> None:
        if self.bidder_lr is not None:
            check_finite(self.bidder_lr, "bidder_lr", positive=True)

    def rate(self, default: float) -> float:
        return default if self.bidder_lr is None else self.bidder_lr


@dataclasses.dataclass(frozen=True)
class EpsilonGreedyOptions(IntegerGridOptions, ExplorationOptions):
    """The original platform's epsilon-greedy bandit."""

    def __post_init__(self) -> None:
        IntegerGridOptions.__post_init__(self)
        ExplorationOptions.__post_init__(self)


@dataclasses.dataclass(frozen=True)
class TabularOptions(GridOptions, LearningRateOptions):
    """Hedge, EXP3, no-swap-regret and policy gradient: a tabular learner with a step size."""

    def __post_init__(self) -> None:
        GridOptions.__post_init__(self)
        LearningRateOptions.__post_init__(self)


@dataclasses.dataclass(frozen=True)
class DQNOptions(GridOptions, ExplorationOptions, LearningRateOptions):
    """DQN: a grid, exploration and Adam's step size."""

    def __post_init__(self) -> None:
        GridOptions.__post_init__(self)
        ExplorationOptions.__post_init__(self)
        LearningRateOptions.__post_init__(self)


@dataclasses.dataclass(frozen=True)
class ShadingOptions:
    """A fixed shading factor."""

    shading: float = 1.0
    """bid = shading * value (initial value of a param)"""

    def __post_init__(self) -> None:
        check_finite(self.shading, "shading", minimum=0.0)


def tabular_grid(options: GridOptions, values: ValueScale, m: int, name: str) -> BidGrid:
    """The tabular learners' grid: integer bids per integer value, or fractions of the value per value bin."""
    if m != 1:
        raise ValueError(f"{name} learns from one item's bids; the market sells {m} items")
    if values.integer:
        return absolute_grid(values.n_values, options.n_bids, options.overbid)
    build = capped_grid if options.continuous_grid == "capped" else fraction_grid
    return build(values.top, options.value_bins, options.bid_fractions, options.max_fraction)


@LEARNERS.register("epsilon_greedy", EpsilonGreedyOptions, "the original platform's bandit, integer bids")
def _epsilon_greedy(options: EpsilonGreedyOptions, k: int, m: int, values: ValueScale) -> Learner:
    return epsilon_greedy(k, values.n_values, options.n_bids, options.overbid, m, options.explore_steps,
                          options.half_life)  # fmt: skip


def _register_hedge(name: str, variant: str) -> None:
    @LEARNERS.register(name, TabularOptions, f"{variant} weights on every bid's utility (full information)")
    def build(options: TabularOptions, k: int, m: int, values: ValueScale) -> Learner:
        return hedge(k, tabular_grid(options, values, m, "hedge"), variant, options.rate(0.05))


_register_hedge("hedge", "exponential")
_register_hedge("hedge_linear", "linear")


@LEARNERS.register("policy_gradient", TabularOptions, "REINFORCE on a softmax policy (bandit feedback)")
def _policy_gradient(options: TabularOptions, k: int, m: int, values: ValueScale) -> Learner:
    return policy_gradient(k, tabular_grid(options, values, m, "policy_gradient"), options.rate(0.5))


@LEARNERS.register("exp3", TabularOptions, "importance-weighted exponential weights (bandit feedback)")
def _exp3(options: TabularOptions, k: int, m: int, values: ValueScale) -> Learner:
    return exp3(k, tabular_grid(options, values, m, "exp3"), options.rate(0.01))


@LEARNERS.register("no_swap_regret", TabularOptions, "Blum-Mansour over Hedge: no swap regret (full information)")
def _no_swap_regret(options: TabularOptions, k: int, m: int, values: ValueScale) -> Learner:
    return no_swap_regret(k, tabular_grid(options, values, m, "no_swap_regret"), options.rate(0.05))


@LEARNERS.register("dqn", DQNOptions, "a Q-network over the bid grid (bandit feedback)")
def _dqn(options: DQNOptions, k: int, m: int, values: ValueScale) -> Learner:
    grid = tabular_grid(options, values, m, "dqn")
    return dqn(k, grid, learning_rate=options.rate(1e-3), explore_steps=options.explore_steps,
               half_life=options.half_life)  # fmt: skip


@LEARNERS.register("shading", ShadingOptions, "bid a fixed fraction of the value")
def _shading(options: ShadingOptions, k: int, m: int, values: ValueScale) -> Learner:
    return shading(k, options.shading)


@LEARNERS.register("truthful", NoOptions, "bid the value")
def _truthful(options: NoOptions, k: int, m: int, values: ValueScale) -> Learner:
    return truthful(k)
