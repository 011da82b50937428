"""The learner interface: pure ``(init, act, update)`` over a stacked bidder axis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jaxauction.types import Array, PRNGKey, Transition

LearnerState = Any


class Learner(NamedTuple):
    """A market of ``n`` bidders, optax style.

    init(key) -> state            state pytree with a leading bidder axis
    act(key, state, values) -> bids          values, bids: ``[n]``
    update(state, transition) -> state        one learning step after an auction
    greedy_bids(state) -> ``[n, V]``          each bidder's exploitation bid per value
                                              level (``None`` when it has no table)
    """

    name: str
    n_bidders: int
    init: Callable[[PRNGKey], LearnerState]
    act: Callable[[PRNGKey, LearnerState, Array], Array]
    update: Callable[[LearnerState, Transition], LearnerState]
    greedy_bids: Callable[[LearnerState], Array] | None = None
