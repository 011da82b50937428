"""The expected dynamics of Hedge bidders (``train.expected_dynamics``): each step against the enumerated
reference, the gradient against finite differences, and the expected horizon revenue against sampled
markets of Hedge bidders."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.train import expected_dynamics as ed
from tests import reference as ref


@pytest.mark.parametrize("n", [2, 3, 4])
def test_win_probability_matches_enumeration(n):
    q = np.array([0.1, 0.0, 0.3, 0.2, 0.4])
    np.testing.assert_allclose(ed.win_probability(jnp.asarray(q, jnp.float32), n), ref.win_probability(q, n),
                               atol=1e-6)  # fmt: skip


@pytest.mark.parametrize(("overbid", "reserve"), [(True, 0.0), (False, 0.0), (False, 2.0)])
def test_one_expected_step_matches_the_enumerated_reference(overbid, reserve):
    """3 bidders, values 0..2 with unequal probabilities, bids 0..3, random weights, a price schedule that is
    neither the bid nor constant, with and without a reserve: the new weights, revenue and welfare, against full
    enumeration."""
    market = ed.hedge_mean_field(3, 2, 4, overbid, learning_rate=0.1, scale=3.0)
    pmf = np.array([0.5, 0.2, 0.3], np.float32)
    market = market._replace(pmf=jnp.asarray(pmf))
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (3, 4)).astype(np.float32)
    price = np.array([0.0, 0.5, 1.7, 2.2], np.float32)
    sells = jnp.asarray(np.arange(4.0) >= reserve, jnp.float32)
    new, metrics = ed.expected_step(market, jnp.asarray(w), jnp.asarray(price), sells)
    allowed = np.asarray(market.allowed)
    expected = ref.expected_hedge_step(np.where(allowed, w, -np.inf), np.arange(3.0), pmf, np.arange(4.0), allowed,
                                       price, 3, 0.1, 3.0, reserve)  # fmt: skip
    np.testing.assert_allclose(np.where(allowed, np.asarray(new), 0), np.where(allowed, expected, 0), atol=1e-5)
    pi = np.asarray(ed.policy(market, jnp.asarray(w)), np.float64)
    revenue, welfare = ref.expected_auction(pi, np.arange(3.0), pmf, price, 3, np.arange(4.0), reserve)
    np.testing.assert_allclose([metrics.revenue, metrics.welfare], [revenue, welfare], rtol=1e-5)


@pytest.mark.parametrize("t", [3, 5, 9])  # exploring, the counts' reset, after
def test_one_greedy_step_matches_the_enumerated_reference(t):
    """Epsilon-greedy's softmax relaxation: 3 bidders, values 0..2 with unequal probabilities, bids 0..3 at most
    the value, random estimates and counts, a reserve at 1 (bid 0 does not sell): the new estimates and counts
    against the enumerated reference."""
    market = ed.greedy_mean_field(3, 2, 4, False, explore_steps=5, half_life=4.0, temperature=0.3)
    pmf = np.array([0.5, 0.2, 0.3], np.float32)
    market = market._replace(pmf=jnp.asarray(pmf))
    rng = np.random.default_rng(1)
    allowed = np.asarray(market.allowed)
    estimates = np.where(allowed, rng.normal(0, 1, (3, 4)), 0).astype(np.float32)
    counts = np.where(allowed, rng.integers(0, 5, (3, 4)), 0).astype(np.float32)
    price, sells = np.array([0.0, 0.5, 1.7, 2.2], np.float32), np.array([0.0, 1.0, 1.0, 1.0], np.float32)
    state, _ = ed.greedy_step(market, ed.GreedyState(jnp.asarray(estimates), jnp.asarray(counts)), jnp.int32(t),
                              jnp.asarray(price), jnp.asarray(sells))  # fmt: skip
    want = ref.expected_greedy_step(estimates, counts, t, np.arange(3.0), pmf, allowed, price, 3, 5, 4.0, 0.3, sells)
    np.testing.assert_allclose(np.where(allowed, state.estimates, 0), np.where(allowed, want[0], 0), atol=1e-5)
    np.testing.assert_allclose(np.where(allowed, state.counts, 0), np.where(allowed, want[1], 0), atol=1e-5)


@pytest.mark.slow  # 5-8 s: the default suite stays under 5 minutes on 2 cores
def test_horizon_gradient_matches_finite_differences():
    """The teaser's expected horizon revenue (3 bidders, values 0..4, bids 0..9, 2,000 auctions, a smoothed
    teaser end) against central differences of 0.02 in each number: within 3%."""
    market = ed.hedge_mean_field(3, 4, 10, True, learning_rate=0.2)
    schedule = ed.teaser_schedule(market, width=0.05)
    revenue = jax.jit(lambda th: ed.expected_horizon(market, schedule, th, 2_000, block=200).revenue)
    theta = jnp.array([0.4, 0.5])
    grad = np.asarray(jax.jit(jax.grad(revenue))(theta))
    h = 0.02
    fd = [(float(revenue(theta.at[i].add(h))) - float(revenue(theta.at[i].add(-h)))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(grad, fd, rtol=0.03)
    assert abs(grad[0]) > 0.1 and abs(grad[1]) > 0.1  # both numbers matter


def sampled_horizon(mechanism: ja.MechanismSpec, n_bids: int, overbid: bool, auctions: int, seeds: int):
    options = {"n_bids": n_bids, "overbid": overbid}
    market = ja.build_market(mechanism, ja.PopulationSpec("hedge", 3, options), ja.PriorSpec("uniform_int", 0, 4))
    params = ja.init_params(market, jax.random.key(0))
    one = lambda k: ja.fresh_round(market, params, *jax.random.split(k), auctions, auctions)[1].revenue[0]  # noqa: E731
    revenue = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), seeds)), np.float64)
    return revenue.mean(), revenue.std(ddof=1) / np.sqrt(seeds)


@pytest.mark.slow  # 13 s: the default suite stays under 5 minutes on 2 cores
def test_expected_horizon_revenue_matches_sampled_hedge_markets():
    """3 Hedge bidders, values 0..4, 4,000 auctions: the teaser (0.3 of the bid for the first half) and first price
    with bids 0..9 above the value allowed, and pay-your-bid with the reserves (3.5, 1.5) with bids 0..4 at most
    the value: the expected dynamics against 8 sampled markets, within 4 standard errors plus 2% (the mean
    field's own approximation)."""
    overbid = ed.hedge_mean_field(3, 4, 10, True)
    capped = ed.hedge_mean_field(3, 4, 5, False)
    for market, schedule, theta, spec in (
        (overbid, ed.teaser_schedule(overbid, width=1e-6), (0.3, 0.5),
         ja.MechanismSpec("teaser_first_price", {"discount": 0.3, "teaser": 0.5})),
        (overbid, ed.teaser_schedule(overbid, width=1e-6), (1.0, 0.0), ja.MechanismSpec("first_price")),
        (capped, ed.declining_reserve_schedule(capped, 2, width=1e-3), (3.5, 1.5),
         ja.MechanismSpec("declining_reserve_first_price", {"reserves": (3.5, 1.5)})),
    ):  # fmt: skip
        expected = float(ed.expected_horizon(market, schedule, jnp.asarray(theta), 4_000).revenue)
        n_bids = market.bids.shape[0]
        mean, se = sampled_horizon(spec, n_bids, bool(np.all(market.allowed)), 4_000, 8)
        assert abs(expected - mean) <= 4 * se + 0.02 * mean, (theta, expected, mean, se)
    # the learned dynamic network at its initial weights (a share of 1/2, a reserve near 0), the same network
    spec = ja.MechanismSpec("learned_dynamic_first_price")
    hedge = ja.PopulationSpec("hedge", 3, {"n_bids": 10, "overbid": True})
    built = ja.build_market(spec, hedge, ja.PriorSpec("uniform_int", 0, 4))  # bid_scale: the top bid, 9
    weights = ja.init_params(built, jax.random.key(0)).mechanism.schedule  # sampled_horizon's
    expected = float(ed.expected_horizon(overbid, ed.learned_dynamic_schedule(overbid, bid_scale=9.0, width=1e-3),
                                         weights, 4_000).revenue)  # fmt: skip
    mean, se = sampled_horizon(spec, 10, True, 4_000, 8)
    assert abs(expected - mean) <= 4 * se + 0.02 * mean, (expected, mean, se)


@pytest.mark.slow  # 15 s
def test_greedy_relaxation_matches_sampled_epsilon_greedy_markets_and_has_a_gradient():
    """3 epsilon-greedy bidders, values 0..4, bids at most the value, 20,000 auctions (2,000 forced exploration,
    half-life 1,000): the relaxation's revenue once done exploring (from auction 6,000) against 8 sampled
    markets, for the teaser (0.2 of the bid for the first half) and first price, within 4 standard errors plus
    3%; and its gradient in the teaser's numbers against central differences, within 2%."""
    market = ed.greedy_mean_field(3, 4, 5, False, explore_steps=2_000, half_life=1_000.0)
    schedule = ed.teaser_schedule(market, width=1e-6)
    options = {"explore_steps": 2_000, "half_life": 1_000.0}
    population = ja.PopulationSpec("epsilon_greedy", 3, {"n_bids": 5, **options})
    for theta, spec in (((0.2, 0.5), ja.MechanismSpec("teaser_first_price", {"discount": 0.2, "teaser": 0.5})),
                        ((1.0, 0.0), ja.MechanismSpec("first_price"))):  # fmt: skip
        expected = float(ed.expected_horizon(market, schedule, jnp.asarray(theta), 20_000, report_from=6_000).revenue)
        m = ja.build_market(spec, population, ja.PriorSpec("uniform_int", 0, 4))
        params = ja.init_params(m, jax.random.key(0))
        one = lambda k, m=m, p=params: ja.fresh_round(m, p, *jax.random.split(k), 20_000, 2_000)[1].revenue  # noqa: E731
        revenue = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 8)), np.float64)[:, 3:]
        mean, se = revenue.mean(), revenue.mean(axis=1).std(ddof=1) / np.sqrt(8)
        assert abs(expected - mean) <= 4 * se + 0.03 * mean, (theta, expected, mean, se)
    smooth = ed.teaser_schedule(market, width=0.05)
    revenue = jax.jit(lambda th: ed.expected_horizon(market, smooth, th, 4_000, block=200, report_from=1_000).revenue)
    theta, h = jnp.array([0.4, 0.5]), 0.005  # central differences: 0.02 is 5% off the teaser's, from curvature
    grad = np.asarray(jax.jit(jax.grad(revenue))(theta))
    fd = [(float(revenue(theta.at[i].add(h))) - float(revenue(theta.at[i].add(-h)))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(grad, fd, rtol=0.02)
