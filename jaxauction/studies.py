"""Vectorized studies of markets of learning bidders: learned bid functions, and revenue over params sweeps.

* ``learn_policies``: fresh bidders learn for ``auctions`` auctions in one
  market per key (a ``vmap`` over seeds, and over any leading axes of
  ``params``: a sweep); returns every bidder's learned exploitation bid on a
  grid of observations and the revenue of every window.
* ``bid_to_value``: the learned bid / value, averaged over bidders and over
  the observations in the upper half of the value range (where a bid grid's
  rounding matters least); the figure the equilibrium study reports.
* ``regret_round``: ``run_round``'s auctions, keeping each bidder's
  ``RegretLedger`` (what every bid would have earned, value by value), from
  which its realised regret and swap regret per auction follow.
* ``sweep_revenue``: the platform reward (last window's mean revenue) for
  every point of a params sweep ``[P, ...]`` and every seed, in one program.

Run them under ``jax.jit``; the experiments ``equilibrium``,
``reserve_sweep`` and ``all_pay_design`` are thin command lines over them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_positive_int
from jaxauction.evaluation import fresh_rewards
from jaxauction.market import (
    Market,
    MarketParams,
    at_time,
    auction,
    counterfactual_utilities,
    fresh_round,
    sum_block,
)
from jaxauction.metrics import KahanSum
from jaxauction.types import Array, PRNGKey


class Learned(NamedTuple):
    bids: Array  # [..., S, n, G] the learned exploitation bid per observation (item 0)
    revenue: Array  # [..., S, W] mean revenue per window


def learn_policies(
    market: Market, params: MarketParams, keys: PRNGKey, auctions: int, window: int, observations: Array
) -> Learned:
    """Fresh bidders learn for ``auctions`` auctions against ``params``, one market per key ``[S]``."""

    def one(key: PRNGKey) -> Learned:
        states, metrics = fresh_round(market, params, *jax.random.split(key), auctions, window)
        return Learned(market.population.policy(states, observations, params.learners)[..., 0], metrics.revenue)

    return jax.vmap(one)(keys)


def upper_half(values: np.ndarray) -> np.ndarray:
    """The observations the bid/value ratio averages over: positive values in the upper half of the range."""
    values = np.asarray(values, np.float64)
    return (values >= (values.min() + values.max()) / 2) & (values > 0)


def bid_to_value(values: np.ndarray, bids: np.ndarray) -> float:
    """Mean of ``bids / values`` over every leading axis and the upper half of ``values [G]`` (``bids [..., G]``)."""
    mask = upper_half(values)
    return float(np.mean(np.asarray(bids, np.float64)[..., mask] / np.asarray(values, np.float64)[mask]))


def sweep_revenue(market: Market, params: MarketParams, keys: PRNGKey, auctions: int, window: int) -> Array:
    """``[P, S]`` platform rewards: fresh bidders learn against each of the ``P`` swept ``params`` (every leaf
    with a leading ``[P]`` axis) in one market per key ``[S]``; the same keys for every point (common random
    numbers)."""
    return jax.vmap(lambda p: fresh_rewards(market, p, keys, auctions, window))(params)


def mean_se(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error along ``axis``."""
    x = np.asarray(x, np.float64)
    n = x.shape[axis]
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full(np.mean(x, axis=axis).shape, np.nan)
    return x.mean(axis=axis), se


class RegretLedger(NamedTuple):
    """What a round of auctions tells about each bidder's regret (integer bid grids).

    gains: ``[n, C, A, A]``: over the auctions where the bidder had value (context) ``c`` and bid ``i``, the sum
      of the utility it would have had bidding ``j`` instead (the others' bids and the rule's randomness held
      fixed); ``gains[.., c, i, i]`` is what it earned.
    auctions: the auctions played.
    """

    gains: Array
    auctions: int

    def external(self) -> Array:
        """``[n]`` realised regret per auction against the best fixed bid for each value (a bid function)."""
        by_bid = jnp.sum(self.gains, axis=-2)  # [n, C, A]: every bid's total utility in each context
        earned = jnp.sum(jnp.diagonal(self.gains, axis1=-2, axis2=-1), axis=-1)  # [n, C]
        return jnp.sum(jnp.max(by_bid, axis=-1) - earned, axis=-1) / self.auctions

    def swap(self) -> Array:
        """``[n]`` realised swap regret per auction: the best relabelling of its bids, value by value."""
        earned = jnp.diagonal(self.gains, axis1=-2, axis2=-1)  # [n, C, A]
        return jnp.sum(jnp.max(self.gains, axis=-1) - earned, axis=(-2, -1)) / self.auctions


def integer_grid(market: Market) -> tuple[int, int]:
    """``(contexts C, bids A)`` shared by every bidder of ``market``: integer values ``0..C-1`` and integer bids
    ``0..A-1`` (the original platform's grids); ``ValueError`` otherwise."""
    sizes = set()
    for group in market.population.groups:
        if group.relative_grid or group.capped_grid or group.observation_levels is None or group.max_bid is None:
            raise ValueError(f"realised regret is measured on integer bid grids; {group.name} bids on another grid "
                             "(use integer values and tabular learners)")  # fmt: skip
        sizes.add((group.observation_levels, int(group.max_bid) + 1))
    if len(sizes) != 1 or market.n_items != 1:
        raise ValueError(f"realised regret needs one item and one grid for every bidder, got {sorted(sizes)}")
    return sizes.pop()


def regret_round(
    market: Market, params: MarketParams, states: tuple, key: PRNGKey, n_auctions: int
) -> tuple[tuple, RegretLedger]:
    """``run_round``'s ``n_auctions`` learning auctions (the same keys, so the same play), keeping each bidder's
    ``RegretLedger``: what every bid of its grid would have earned in every auction. Integer grids only
    (``integer_grid``); costs one mechanism call per bid and bidder per auction."""
    check_positive_int(n_auctions, "n_auctions")
    C, A = integer_grid(market)
    grid, n, rows = jnp.arange(A, dtype=jnp.float32), market.n_bidders, jnp.arange(market.n_bidders)
    block = sum_block(n_auctions)

    def one_auction(carry, t):
        states, gains = carry
        timed = at_time(params, t / n_auctions)
        states_after, record = auction(market, timed, states, jax.random.fold_in(key, t))
        counterfactual = counterfactual_utilities(market, timed, record, slice(0, n), grid)  # [n, A]
        context = record.types.observation()[:, 0].astype(jnp.int32)
        bid = record.bids[:, 0].astype(jnp.int32)
        return (states_after, gains.at[rows, context, bid].add(counterfactual)), None

    def one_block(carry, first):
        states, total = carry
        (states, gains), _ = jax.lax.scan(one_auction, (states, jnp.zeros((n, C, A, A))), first + jnp.arange(block))
        return (states, total.add(gains)), None

    (states, total), _ = jax.lax.scan(one_block, (states, KahanSum.zeros((n, C, A, A))),
                                      jnp.arange(0, n_auctions, block))  # fmt: skip
    return states, RegretLedger(total.total, n_auctions)
