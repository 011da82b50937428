"""Bidders as pure ``(init, act, update)`` functions over a stacked bidder axis."""

from jaxauction.bidders.base import Learner
from jaxauction.bidders.epsilon_greedy import (
    EpsilonGreedyConfig,
    EpsilonGreedyState,
    effective_counts,
    epsilon,
    epsilon_greedy,
)
from jaxauction.bidders.truthful import truthful

LEARNERS = ("epsilon_greedy", "truthful")

__all__ = [
    "LEARNERS",
    "EpsilonGreedyConfig",
    "EpsilonGreedyState",
    "Learner",
    "effective_counts",
    "epsilon",
    "epsilon_greedy",
    "truthful",
]
