"""What a market reports: revenue, welfare and efficiency, and exact running sums.

* revenue of an auction: the sum of all payments;
* welfare: the value the bidders receive, ``sum_ij allocation_ij * value_ij``;
* optimal welfare for additive (and single-item) bidders: every item to a
  bidder who values it most, ``sum_j max_i value_ij`` (``k`` identical
  units: the ``k`` highest values);
* **efficiency** over a window of auctions: realised welfare over optimal
  welfare, both summed over the window (a ratio of sums, so auctions where
  every value is 0 are well defined). Truthful second price has efficiency 1;
  an unsold item or a winner with less than the highest value lowers it.
* **procurement** (values are costs, the ``seller`` utility): efficiency is
  the cost of the procured quantity bought from the cheapest seller over its
  realised cost, ``sum_j q_j min_i c_ij / sum_ij a_ij c_ij`` with ``q_j =
  sum_i a_ij`` (``cheapest_cost``), summed over the window: 1 when the lowest
  cost always supplies (truthful procurement auctions), lower when a dearer
  seller does. An item not bought counts neither way (the buyer's value for it
  is not modelled).

* a learner's **realised regret** from its mixed strategies and every
  action's reward: against the best fixed action (``external_regret``) and
  against the best relabelling of its actions (``swap_regret``).

Running sums over long windows use Kahan (compensated) summation in float32:
a plain float32 sum stops growing once it reaches ``2**24`` times the added
value (after about 16.7M auctions of a constant), compensated sums stay exact
to float32 rounding for windows of any length (tested on a 20M-auction window).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction._ops import row_max, row_sum
from jaxauction.mechanisms.base import Mechanism
from jaxauction.types import Array, Outcome, Params, Types
from jaxauction.utilities import received_value


def revenue(outcome: Outcome) -> Array:
    """The auctioneer's revenue from one auction: the sum of all payments."""
    return row_sum(outcome.payments)


def welfare(types: Types, outcome: Outcome) -> Array:
    """The realised welfare of one auction: the value all bidders receive."""
    return row_sum(received_value(types, outcome))


def optimal_welfare(types: Types, units: int = 1) -> Array:
    """The largest welfare any allocation reaches for additive bidders: ``sum_j max_i value_ij``; with ``units``
    identical units per item (one per bidder), the sum of the ``units`` highest values of each item."""
    columns = jnp.swapaxes(types.values, -1, -2)
    if units == 1:
        return row_sum(row_max(columns))
    return jnp.sum(jnp.sort(columns, axis=-1)[..., -units:], axis=(-2, -1))


def cheapest_cost(types: Types, outcome: Outcome) -> Array:
    """What the procured quantity of each item would cost from its cheapest seller: ``sum_j q_j min_i c_ij``."""
    quantity = jnp.sum(outcome.allocation, axis=-2)  # [..., m]
    return row_sum(quantity * jnp.min(types.values, axis=-2))


def efficiency_terms(types: Types, outcome: Outcome, units: int = 1, costs: bool = False) -> tuple[Array, Array]:
    """``(achieved, best)`` for one auction, whose window sums give the efficiency ``achieved / best``: realised
    and optimal welfare for buyers; for sellers (``costs``), the cheapest and the realised cost."""
    if costs:
        return cheapest_cost(types, outcome), welfare(types, outcome)
    best = optimal_welfare(types, units)  # traced first, as before: XLA then rounds runs bit-identically to 0.1
    return welfare(types, outcome), best


def efficiency_ratio(welfare_total: Array, optimal_total: Array) -> Array:
    """Realised over optimal welfare, both summed over a window; 1 when every value was 0."""
    positive = optimal_total > 0
    return jnp.where(positive, welfare_total / jnp.where(positive, optimal_total, 1.0), 1.0)


class KahanSum(NamedTuple):
    """A float32 running sum (of any shape) with its compensation term."""

    total: Array
    compensation: Array

    @classmethod
    def zeros(cls, shape: tuple[int, ...] = ()) -> KahanSum:
        return cls(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32))

    def add(self, x: Array) -> KahanSum:
        y = x - self.compensation
        total = self.total + y
        return KahanSum(total, (total - self.total) - y)


def mean_revenue(mechanism: Mechanism, params: Params, bids: Array, keys: Array, chunk: int | None = None) -> Array:
    """Mean revenue of ``mechanism`` over bid profiles ``[D, n, m]`` with outcome keys ``[D]``.

    ``chunk`` bounds memory for large ``D``: profiles are evaluated ``chunk`` at
    a time in a ``lax.scan`` whose body is rematerialised (``jax.checkpoint``),
    so neither the value nor its gradient holds more than one chunk's
    activations. The remainder ``D % chunk`` is one more, smaller batch.
    Chunking changes the float summation order, not the result beyond rounding.
    """

    def payments(b: Array, k: Array) -> Array:
        return revenue(jax.vmap(mechanism.apply, in_axes=(None, 0, 0))(params, b, k))

    size = bids.shape[0]
    if chunk is None or chunk >= size:
        return jnp.mean(payments(bids, keys))
    check_positive_int(chunk, "chunk")
    full = size - size % chunk
    chunk_total = jax.checkpoint(lambda b, k: jnp.sum(payments(b, k)))

    def add(total: Array, xs: tuple[Array, Array]) -> tuple[Array, None]:
        return total + chunk_total(*xs), None

    batches = (bids[:full].reshape(-1, chunk, *bids.shape[1:]), keys[:full].reshape(-1, chunk))
    total, _ = jax.lax.scan(add, jnp.zeros((), jnp.float32), batches)
    if full < size:
        total = total + jnp.sum(payments(bids[full:], keys[full:]))
    return total / size


def external_regret(probs: Array, rewards: Array) -> Array:
    """A learner's realised regret against the best fixed action in hindsight: ``max_j sum_t r_t(j) - sum_t
    p_t . r_t``, from its mixed strategies ``probs [..., T, A]`` and every action's reward ``rewards [..., T, A]``
    (its expected reward: the regret of its play without the noise of its own draws)."""
    return jnp.max(jnp.sum(rewards, axis=-2), axis=-1) - jnp.sum(probs * rewards, axis=(-2, -1))


def swap_regret(probs: Array, rewards: Array) -> Array:
    """A learner's realised swap regret: what the best relabelling ``i -> phi(i)`` of its actions would have
    added, ``sum_i max_j sum_t p_t(i) (r_t(j) - r_t(i))`` (``probs``, ``rewards``: ``[..., T, A]``). It is at
    least the external regret (``phi`` constant); a no-swap-regret learner keeps it sublinear in ``T``."""
    gain = jnp.einsum("...ti,...tj->...ij", probs, rewards)  # [..., A, A]: sum_t p_t(i) r_t(j)
    own = jnp.diagonal(gain, axis1=-2, axis2=-1)  # sum_t p_t(i) r_t(i)
    return jnp.sum(jnp.max(gain, axis=-1) - own, axis=-1)
