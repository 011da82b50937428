"""Learning-aware design by gradients: the expected dynamics of Hedge bidders, differentiable in the rule.

Sampling a market of learners gives a noisy revenue that is not differentiable in the rule. For Hedge on a
grid, the *expected* dynamics are smooth: ``n`` symmetric bidders, i.i.d. integer values with probabilities
``pmf [C]``, bids on a grid ``bids [A]`` (``allowed [C, A]``: bids a value may make). Every step each bidder
plays ``softmax(W[c])`` for its value ``c``, so a rival's bid has the distribution ``q = sum_c pmf_c
softmax(W[c])``; the highest bid wins, ties uniformly, so a bid ``a`` wins with probability

    P(win | a) = sum_k C(n-1, k) q_a^k L_a^(n-1-k) / (k + 1),   L_a = P(rival bid < a).

A rule of the family charges the winner ``price(theta, tau) [A]`` for its bid at the point ``tau = t/T`` of
the horizon. Hedge's counterfactual utility for bid ``a`` is ``v_c - price_a`` if ``a`` wins and 0 otherwise,
so its expected update of ``W[c, a]`` is exactly ``pmf_c P(win | a) (v_c - price_a) / rho g`` (``g =
log(1 + eps)`` for gains, ``-log(1 - eps)`` for losses: ``bidders.hedge``'s exponential rule). The one
approximation is the mean field: the weights follow their expected path, every bidder the same. The
horizon's expected revenue is then a differentiable function of ``theta``, through the ``T`` steps
(``jax.checkpoint`` per block of steps keeps the memory to one block). ``tests/test_expected_dynamics.py``
checks the gradient against finite differences and the expected revenue against sampled Hedge markets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_positive_int
from jaxauction.mechanisms.dynamic import teaser_share
from jaxauction.types import Array

# price(theta, tau) -> [A]: what a winner pays for each bid of the grid at the point tau of the horizon
PriceSchedule = Callable[[Array, Array], Array]


class MeanFieldMarket(NamedTuple):
    """The numbers of a symmetric market of Hedge bidders (see the module docstring)."""

    values: Array  # [C] value levels
    pmf: Array  # [C] their probabilities
    bids: Array  # [A] the bid grid
    allowed: Array  # [C, A] bool: bids a value may make
    n_bidders: int
    learning_rate: float  # Hedge's eps
    scale: float  # Hedge's rho


def hedge_mean_field(n_bidders: int, top_value: int, n_bids: int, overbid: bool, learning_rate: float = 0.05,
                   scale: float | None = None) -> MeanFieldMarket:  # fmt: skip
    """The mean field of ``hedge`` bidders as ``build_market`` makes them: values uniform on ``0..top_value``,
    bids ``0..n_bids-1`` (at most the value unless ``overbid``), Hedge's learning rate and scale (default: the
    top bid)."""
    check_positive_int(n_bidders, "n_bidders", minimum=2)
    check_positive_int(n_bids, "n_bids", minimum=2)
    values = np.arange(top_value + 1, dtype=np.float32)
    bids = np.arange(n_bids, dtype=np.float32)
    allowed = np.ones((len(values), n_bids), bool) if overbid else bids[None, :] <= values[:, None]
    return MeanFieldMarket(jnp.asarray(values), jnp.full(len(values), 1.0 / len(values), jnp.float32),
                           jnp.asarray(bids), jnp.asarray(allowed), n_bidders, learning_rate,
                           float(n_bids - 1) if scale is None else scale)  # fmt: skip


def win_probability(q: Array, n_bidders: int) -> Array:
    """``[A]`` the probability that bid ``a`` wins against ``n_bidders - 1`` rivals bidding i.i.d. ``q [A]`` on
    the same grid, the highest bid winning and ties broken uniformly."""
    below = jnp.cumsum(q) - q  # P(rival < a)
    rivals = n_bidders - 1
    return sum(math.comb(rivals, k) * q**k * below ** (rivals - k) / (k + 1) for k in range(rivals + 1))


def policy(market: MeanFieldMarket, log_weights: Array) -> Array:
    """``[C, A]`` each value's mixed strategy."""
    return jax.nn.softmax(jnp.where(market.allowed, log_weights, -1e30), axis=-1)


class ExpectedMetrics(NamedTuple):
    """The expected revenue and welfare per auction (of one auction, or averaged over a horizon)."""

    revenue: Array  # expected revenue per auction
    welfare: Array  # expected welfare per auction


def expected_step(market: MeanFieldMarket, log_weights: Array, price: Array) -> tuple[Array, ExpectedMetrics]:
    """One auction of the expected dynamics: the new log-weights ``[C, A]`` and the auction's expected revenue
    and welfare, when a winner pays ``price [A]``."""
    pi = policy(market, log_weights)
    win = win_probability(market.pmf @ pi, market.n_bidders)  # [A]
    gain = market.values[:, None] - price[None, :]  # [C, A]: a winner's utility
    eps = market.learning_rate
    g = jnp.where(gain > 0, jnp.log1p(eps), -jnp.log1p(-eps))
    step = market.pmf[:, None] * win[None, :] * gain / market.scale * g
    reach = market.pmf[:, None] * pi * win[None, :]  # P(value c, bid a, and that bid wins), per bidder
    n = market.n_bidders
    metrics = ExpectedMetrics(n * jnp.sum(reach * price[None, :]), n * jnp.sum(reach * market.values[:, None]))
    return jnp.where(market.allowed, log_weights + step, log_weights), metrics


def expected_horizon(
    market: MeanFieldMarket, schedule: PriceSchedule, theta: Array, auctions: int, block: int = 1_000
) -> ExpectedMetrics:
    """Horizon averages of the expected revenue and welfare per auction over ``auctions`` auctions, fresh
    (uniform) bidders, the rule ``schedule(theta, t / auctions)``; differentiable in ``theta``."""
    check_positive_int(auctions, "auctions")
    block = math.gcd(auctions, block)
    log_weights = jnp.where(market.allowed, 0.0, -1e30)

    @jax.checkpoint
    def one_block(w, first):
        def one(w, t):
            w, m = expected_step(market, w, schedule(theta, t / auctions))
            return w, m

        w, m = jax.lax.scan(one, w, first + jnp.arange(block))
        return w, jax.tree.map(jnp.sum, m)

    _, sums = jax.lax.scan(one_block, log_weights, jnp.arange(0, auctions, block))
    return jax.tree.map(lambda s: jnp.sum(s) / auctions, sums)


def teaser_schedule(market: MeanFieldMarket, width: float = 0.01) -> PriceSchedule:
    """``teaser_first_price`` as a price schedule of ``theta = (discount, teaser)``: a winner pays
    ``mechanisms.dynamic.teaser_share`` x its bid, the rule's step at the teaser's end smoothed over about
    ``width`` of the horizon so that the teaser's length has a gradient."""

    def price(theta: Array, tau: Array) -> Array:
        return teaser_share(theta[0], theta[1], tau, width) * market.bids

    return price
