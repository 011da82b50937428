"""Learning-aware design by gradients: the expected dynamics of Hedge bidders, differentiable in the rule.

Sampling a market of learners gives a noisy revenue that is not differentiable in the rule. For Hedge on a
grid, the *expected* dynamics are smooth: ``n`` symmetric bidders, i.i.d. integer values with probabilities
``pmf [C]``, bids on a grid ``bids [A]`` (``allowed [C, A]``: bids a value may make). Every step each bidder
plays ``softmax(W[c])`` for its value ``c``, so a rival's bid has the distribution ``q = sum_c pmf_c
softmax(W[c])``; the highest bid wins, ties uniformly, so a bid ``a`` wins with probability

    P(win | a) = sum_k C(n-1, k) q_a^k L_a^(n-1-k) / (k + 1),   L_a = P(rival bid < a).

A rule of the family, ``schedule(theta, tau) -> (price [A], sells [A])`` at the point ``tau = t/T`` of the
horizon, charges the winner ``price_a`` for its bid ``a`` and sells only to bids with ``sells_a = 1`` (a
reserve: the bids that may win are those at or above it, so a bid that may win still wins with ``P(win | a)``;
``sells`` in ``(0, 1)`` is a smooth reserve). Hedge's counterfactual utility for bid ``a`` is ``v_c - price_a``
if ``a`` wins and 0 otherwise, so its expected update of ``W[c, a]`` is exactly ``pmf_c sells_a P(win | a)
(v_c - price_a) / rho g`` (``g =
log(1 + eps)`` for gains, ``-log(1 - eps)`` for losses: ``bidders.hedge``'s exponential rule). The one
approximation is the mean field: the weights follow their expected path, every bidder the same. The
horizon's expected revenue is then a differentiable function of ``theta``, through the ``T`` steps
(``jax.checkpoint`` per block of steps keeps the memory to one block). ``tests/test_expected_dynamics.py``
checks the gradient against finite differences and the expected revenue against sampled Hedge markets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_positive_int
from jaxauction.mechanisms.dynamic import learned_schedule, phase, teaser_share
from jaxauction.types import Array

# schedule(theta, tau) -> (price [A], sells [A]): what a winner pays for each bid of the grid at the point tau
# of the horizon, and whether that bid may win (1: yes, 0: below the reserve; between: a smooth reserve)
PriceSchedule = Callable[[Array, Array], tuple[Array, Array]]


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
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_bids, "n_bids", minimum=2)
    values = np.arange(top_value + 1, dtype=np.float32)
    bids = np.arange(n_bids, dtype=np.float32)
    allowed = np.ones((len(values), n_bids), bool) if overbid else bids[None, :] <= values[:, None]
    return MeanFieldMarket(jnp.asarray(values), jnp.full(len(values), 1.0 / len(values), jnp.float32),
                           jnp.asarray(bids), jnp.asarray(allowed), n_bidders, learning_rate,
                           float(n_bids - 1) if scale is None else scale)  # fmt: skip


class GreedyMeanField(NamedTuple):
    """The numbers of a symmetric market of epsilon-greedy bidders, for their softmax relaxation."""

    values: Array  # [C] value levels
    pmf: Array  # [C] their probabilities
    bids: Array  # [A] the bid grid
    allowed: Array  # [C, A] bool: bids a value may make
    n_bidders: int
    explore_steps: int  # forced uniform exploration
    half_life: float  # then eps = 0.5 ** (t / half_life)
    temperature: float  # the softmax's temperature over the estimates (the argmax as it goes to 0)


def greedy_mean_field(n_bidders: int, top_value: int, n_bids: int, overbid: bool, explore_steps: int = 20_000,
                      half_life: float = 10_000.0, temperature: float = 0.05) -> GreedyMeanField:  # fmt: skip
    """The softmax relaxation of ``epsilon_greedy`` bidders as ``build_market`` makes them: values uniform on
    ``0..top_value``, bids ``0..n_bids-1`` (at most the value unless ``overbid``), their exploration."""
    hedge = hedge_mean_field(n_bidders, top_value, n_bids, overbid)
    check_positive_int(explore_steps, "explore_steps", minimum=0)
    if not (half_life > 0 and temperature > 0):
        raise ValueError(f"half_life and temperature must be > 0, got {half_life}, {temperature}")
    return GreedyMeanField(hedge.values, hedge.pmf, hedge.bids, hedge.allowed, n_bidders, explore_steps,
                           float(half_life), float(temperature))  # fmt: skip


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


def _sale(market: MeanFieldMarket | GreedyMeanField, pi: Array, price: Array,
          sells: Array | None) -> tuple[Array, ExpectedMetrics]:  # fmt: skip
    """``[A]`` each bid's probability of winning when every bidder plays ``pi [C, A]`` and only bids with
    ``sells`` (default: all) may win, and the auction's expected revenue and welfare."""
    win = win_probability(market.pmf @ pi, market.n_bidders)
    if sells is not None:
        win = win * sells
    reach = market.pmf[:, None] * pi * win[None, :]  # P(value c, bid a, and that bid wins), per bidder
    n = market.n_bidders
    return win, ExpectedMetrics(n * jnp.sum(reach * price[None, :]), n * jnp.sum(reach * market.values[:, None]))


def expected_step(market: MeanFieldMarket, log_weights: Array, price: Array,
                  sells: Array | None = None) -> tuple[Array, ExpectedMetrics]:  # fmt: skip
    """One auction of the expected dynamics: the new log-weights ``[C, A]`` and the auction's expected revenue
    and welfare, when a winner pays ``price [A]`` and only bids with ``sells [A]`` (default: all) may win."""
    pi = policy(market, log_weights)
    win, metrics = _sale(market, pi, price, sells)
    gain = market.values[:, None] - price[None, :]  # [C, A]: a winner's utility
    eps = market.learning_rate
    g = jnp.where(gain > 0, jnp.log1p(eps), -jnp.log1p(-eps))
    step = market.pmf[:, None] * win[None, :] * gain / market.scale * g
    return jnp.where(market.allowed, log_weights + step, log_weights), metrics


class GreedyState(NamedTuple):
    """The relaxation's state: expected estimates and pull counts per value and bid."""

    estimates: Array  # [C, A]
    counts: Array  # [C, A]


def greedy_policy(market: GreedyMeanField, state: GreedyState, t: Array) -> Array:
    """``[C, A]`` each value's mixed strategy after ``t`` auctions: the exploration mixed with the softmax."""
    allowed = market.allowed
    uniform = allowed / jnp.sum(allowed, axis=-1, keepdims=True)
    greedy = jax.nn.softmax(jnp.where(allowed, state.estimates / market.temperature, -1e30), axis=-1)
    eps = jnp.where(t < market.explore_steps, 1.0, jnp.exp2(-t / market.half_life))
    return (1 - eps) * greedy + eps * uniform


def greedy_step(market: GreedyMeanField, state: GreedyState, t: Array, price: Array,
                sells: Array | None = None) -> tuple[GreedyState, ExpectedMetrics]:  # fmt: skip
    """Auction ``t`` of the relaxation: the new state and the auction's expected revenue and welfare."""
    counts = jnp.where(t == market.explore_steps, 1.0, state.counts)  # the reset when forced exploration ends
    pi = greedy_policy(market, state, t)
    win, metrics = _sale(market, pi, price, sells)
    utility = win[None, :] * (market.values[:, None] - price[None, :])  # [C, A]: a pull's expected utility
    rate = market.pmf[:, None] * pi
    counts = counts + rate
    estimates = state.estimates + rate * (utility - state.estimates) / (counts + 1)
    return GreedyState(jnp.where(market.allowed, estimates, 0.0), counts), metrics


def expected_horizon(
    market: MeanFieldMarket | GreedyMeanField, schedule: PriceSchedule, theta: Array, auctions: int,
    block: int = 1_000, report_from: int = 0,
) -> ExpectedMetrics:  # fmt: skip
    """Averages of the expected revenue and welfare per auction over auctions ``report_from..auctions-1`` of a
    horizon of ``auctions``, fresh bidders (Hedge's mean field, or epsilon-greedy's relaxation), the rule
    ``schedule(theta, t / auctions)``; differentiable in ``theta``."""
    check_positive_int(auctions, "auctions")
    if not 0 <= report_from < auctions:
        raise ValueError(f"report_from must be in [0, auctions), got {report_from} for {auctions} auctions")
    block = math.gcd(auctions, block)
    if isinstance(market, GreedyMeanField):
        zeros = jnp.zeros(market.allowed.shape, jnp.float32)
        state: Array | GreedyState = GreedyState(zeros, zeros)
        step = lambda s, t, *rule: greedy_step(market, s, t, *rule)  # noqa: E731
    else:
        state = jnp.where(market.allowed, 0.0, -1e30)
        step = lambda s, t, *rule: expected_step(market, s, *rule)  # noqa: E731

    @jax.checkpoint
    def one_block(s, first):
        def one(s, t):
            s, m = step(s, t, *schedule(theta, t / auctions))
            return s, jax.tree.map(lambda x: jnp.where(t >= report_from, x, 0.0), m)

        s, m = jax.lax.scan(one, s, first + jnp.arange(block))
        return s, jax.tree.map(jnp.sum, m)

    _, sums = jax.lax.scan(one_block, state, jnp.arange(0, auctions, block))
    return jax.tree.map(lambda s: jnp.sum(s) / (auctions - report_from), sums)


def teaser_schedule(market: MeanFieldMarket | GreedyMeanField, width: float = 0.01) -> PriceSchedule:
    """``teaser_first_price`` as a price schedule of ``theta = (discount, teaser)``: a winner pays
    ``mechanisms.dynamic.teaser_share`` x its bid, the rule's step at the teaser's end smoothed over about
    ``width`` of the horizon so that the teaser's length has a gradient."""

    def price(theta: Array, tau: Array) -> tuple[Array, Array]:
        return teaser_share(theta[0], theta[1], tau, width) * market.bids, jnp.ones_like(market.bids)

    return price


def soft_reserve(bids: Array, width: float) -> Callable[[Array], Array]:
    """``reserve -> sells [A]``: a hard reserve's step (bids at or above it sell) smoothed to ``sigmoid((bid -
    reserve) / width)``, so that the reserve has a gradient."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    return lambda reserve: jax.nn.sigmoid((bids - reserve) / width)


def declining_reserve_schedule(
    market: MeanFieldMarket | GreedyMeanField, phases: int, width: float = 0.1
) -> PriceSchedule:
    """``declining_reserve_first_price`` as a schedule of ``theta = reserves [phases]``: a winner pays its bid, and
    in phase ``k`` a bid sells when it is at or above ``reserves[k]``, the step smoothed to ``sigmoid((bid -
    reserve) / width)`` so that the reserves have a gradient (``width`` well below the grid's step: a reserve
    half-way between two bids is the hard rule's within ``sigmoid(-0.5 / width)``)."""
    check_positive_int(phases, "phases")
    sells = soft_reserve(market.bids, width)

    def price(theta: Array, tau: Array) -> tuple[Array, Array]:
        return market.bids, sells(theta[phase(tau, phases)])

    return price


def learned_dynamic_schedule(market: MeanFieldMarket | GreedyMeanField, hidden: tuple[int, ...] = (16, 16),
                             bid_scale: float = 9.0, width: float = 0.1,
                             static: bool = False) -> PriceSchedule:  # fmt: skip
    """``learned_dynamic_first_price`` as a schedule of its network's params ``theta``: a winner pays the
    network's share of its bid, and a bid sells at or above the network's reserve at ``tau``, the step smoothed
    to ``sigmoid((bid - reserve) / width)``. The same network (``mechanisms.dynamic.learned_schedule``) as the
    rule's, so the weights learned here are the rule's; ``static`` as the rule's (the network sees ``tau = 0``)."""
    outputs, sells = learned_schedule(hidden, bid_scale, static), soft_reserve(market.bids, width)

    def price(theta: Any, tau: Array) -> tuple[Array, Array]:
        share, reserve = outputs(theta, market.bids, tau)
        return share * market.bids, sells(reserve)

    return price
