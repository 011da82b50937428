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


@pytest.mark.parametrize("overbid", [True, False])
def test_one_expected_step_matches_the_enumerated_reference(overbid):
    """3 bidders, values 0..2 with unequal probabilities, bids 0..3, random weights, a price schedule that is
    neither the bid nor constant: the new weights, revenue and welfare, against full enumeration."""
    market = ed.hedge_mean_field(3, 2, 4, overbid, learning_rate=0.1, scale=3.0)
    pmf = np.array([0.5, 0.2, 0.3], np.float32)
    market = market._replace(pmf=jnp.asarray(pmf))
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (3, 4)).astype(np.float32)
    price = np.array([0.0, 0.5, 1.7, 2.2], np.float32)
    new, metrics = ed.expected_step(market, jnp.asarray(w), jnp.asarray(price))
    allowed = np.asarray(market.allowed)
    expected = ref.expected_hedge_step(np.where(allowed, w, -np.inf), np.arange(3.0), pmf, np.arange(4.0), allowed,
                                       price, 3, 0.1, 3.0)  # fmt: skip
    np.testing.assert_allclose(np.where(allowed, np.asarray(new), 0), np.where(allowed, expected, 0), atol=1e-5)
    pi = np.asarray(ed.policy(market, jnp.asarray(w)), np.float64)
    revenue, welfare = ref.expected_auction(pi, np.arange(3.0), pmf, price, 3)
    np.testing.assert_allclose([metrics.revenue, metrics.welfare], [revenue, welfare], rtol=1e-5)


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
    """3 Hedge bidders, values 0..4, bids 0..9 above the value allowed, 4,000 auctions, the teaser (0.3 of the bid
    for the first half) and first price: the expected dynamics against 8 sampled markets, within 4 standard
    errors plus 2% (the mean field's own approximation)."""
    market = ed.hedge_mean_field(3, 4, 10, True)
    schedule = ed.teaser_schedule(market, width=1e-6)
    for theta, spec in (((0.3, 0.5), ja.MechanismSpec("teaser_first_price", {"discount": 0.3, "teaser": 0.5})),
                        ((1.0, 0.0), ja.MechanismSpec("first_price"))):  # fmt: skip
        expected = float(ed.expected_horizon(market, schedule, jnp.asarray(theta), 4_000).revenue)
        mean, se = sampled_horizon(spec, 10, True, 4_000, 8)
        assert abs(expected - mean) <= 4 * se + 0.02 * mean, (theta, expected, mean, se)
