"""Small containers shared across jaxauction.

Every array that describes a market carries a leading (or, under ``vmap``, a
trailing-most batch-free) *bidder axis* of length ``n``: ``values[n]``,
``bids[n]``, ``allocation[n]``, ``payments[n]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # a pytree of mechanism parameters


class Outcome(NamedTuple):
    """The result of one auction.

    allocation: ``[n]`` float, 1.0 for the winner and 0.0 elsewhere; all zeros
      when nobody wins (every bid below the reserve).
    payments: ``[n]`` float, what each bidder pays the auctioneer (>= 0).
    """

    allocation: Array
    payments: Array


class Transition(NamedTuple):
    """What a bidder learns from after one auction (all ``[n]``)."""

    values: Array
    bids: Array
    allocation: Array
    payments: Array
    utilities: Array


class MechanismFn(Protocol):
    def __call__(self, params: Params, bids: Array, key: PRNGKey) -> Outcome: ...
