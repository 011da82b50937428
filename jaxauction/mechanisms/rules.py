"""Analytical single-item auction rules behind the shared mechanism signature.

Every rule is ``apply(params, bids[n], key) -> Outcome``. Analytical rules take
``RuleParams(reserve)``: the reserve is an array leaf, so populations of
mechanisms can be vmapped over reserve prices and differentiated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_bids
from jaxauction.types import Array, Outcome, Params, PRNGKey


class Mechanism(NamedTuple):
    """A mechanism: ``init(key) -> params`` and ``apply(params, bids, key) -> Outcome``.

    ``trainable`` says whether ``params`` hold parameters that deep mechanism
    optimization updates by gradient ascent on revenue.
    """

    name: str
    n_bidders: int
    init: Callable[[PRNGKey], Params]
    apply: Callable[[Params, Array, PRNGKey], Outcome]
    trainable: bool = False


class RuleParams(NamedTuple):
    reserve: Array  # scalar float32


def highest_bid_allocation(bids: Array, key: PRNGKey, reserve: Array | float = 0.0) -> Array:
    """One-hot allocation to the highest bid; ties broken uniformly at random.

    Nobody wins (all zeros) when the highest bid is below ``reserve``. Uses one
    uniform draw per auction: the ``k``-th of the tied top bids wins, with
    ``k = floor(u * n_tied)``.
    """
    top = jnp.max(bids)
    tied = bids == top
    n_tied = jnp.sum(tied)
    u = jax.random.uniform(key, (), dtype=jnp.float32)
    pick = jnp.minimum(jnp.floor(u * n_tied), n_tied - 1)
    rank = jnp.cumsum(tied) - 1
    won = tied & (rank == pick) & (top >= reserve)
    return won.astype(bids.dtype)


def _kth_highest(bids: Array, k: int) -> Array:
    """The k-th highest bid (1-based), ties kept; the lowest bid when k > n."""
    n = bids.shape[-1]
    ordered = jnp.sort(bids)  # ascending
    return ordered[max(n - k, 0)]


def _require_two(n: int, name: str) -> None:
    if n < 2:
        raise ValueError(f"{name} needs at least 2 bidders, got {n}")


def _rule(name: str, n_bidders: int, reserve: float, pay: Callable[[Array, Array, Array], Array]) -> Mechanism:
    _require_two(n_bidders, name)
    if not reserve >= 0:
        raise ValueError(f"reserve must be a non-negative number, got {reserve!r}")

    def init(key: PRNGKey) -> RuleParams:
        del key
        return RuleParams(reserve=jnp.asarray(reserve, jnp.float32))

    def apply(params: RuleParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders)
        allocation = highest_bid_allocation(bids, key, params.reserve)
        return Outcome(allocation=allocation, payments=pay(bids, allocation, params.reserve))

    return Mechanism(name=name, n_bidders=n_bidders, init=init, apply=apply, trainable=False)


def first_price(n_bidders: int, reserve: float = 0.0) -> Mechanism:
    """The winner pays its own bid."""
    return _rule("first_price", n_bidders, reserve, lambda b, a, r: a * b)


def second_price(n_bidders: int, reserve: float = 0.0) -> Mechanism:
    """The winner pays max(second-highest bid, reserve); tied top bids pay the tied bid."""
    return _rule("second_price", n_bidders, reserve, lambda b, a, r: a * jnp.maximum(_kth_highest(b, 2), r))


def third_price(n_bidders: int, reserve: float = 0.0) -> Mechanism:
    """The winner pays max(third-highest bid, reserve); with n < 3, the lowest bid (the original's fallback)."""
    return _rule("third_price", n_bidders, reserve, lambda b, a, r: a * jnp.maximum(_kth_highest(b, 3), r))


def all_pay(n_bidders: int, reserve: float = 0.0) -> Mechanism:
    """Every bidder pays its own bid; the highest bid (at or above the reserve) wins."""
    return _rule("all_pay", n_bidders, reserve, lambda b, a, r: b)


RULES: dict[str, Callable[..., Mechanism]] = {
    "first_price": first_price,
    "second_price": second_price,
    "third_price": third_price,
    "all_pay": all_pay,
}
