"""Vectorized studies of markets of learning bidders: learned bid functions, and revenue over params sweeps.

* ``learn_policies``: fresh bidders learn for ``auctions`` auctions in one
  market per key (a ``vmap`` over seeds, and over any leading axes of
  ``params``: a sweep); returns every bidder's learned exploitation bid on a
  grid of observations and the revenue of every window.
* ``bid_to_value``: the learned bid / value, averaged over bidders and over
  the observations in the upper half of the value range (where a bid grid's
  rounding matters least); the figure the equilibrium study reports.
* ``sweep_revenue``: the platform reward (last window's mean revenue) for
  every point of a params sweep ``[P, ...]`` and every seed, in one program.

Run them under ``jax.jit``; the experiments ``equilibrium``,
``reserve_sweep`` and ``all_pay_design`` are thin command lines over them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from jaxauction.evaluation import fresh_rewards
from jaxauction.market import Market, MarketParams, fresh_round
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
