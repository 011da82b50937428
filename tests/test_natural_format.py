"""The natural format's reference (``evaluation.natural_format_lp``): pay-your-bid with declining reserves
against one mean-based buyer who never overbids, in the limit of a long horizon. Checked by hand on the seed's
values, against a direct simulation of the limit (``tests/reference.py``), and against every other reserve path
tried."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.evaluation import lp_reserves, natural_format_lp
from tests import reference as ref

SEED_VALUES, SEED_PMF = np.arange(10.0), np.full(10, 0.1)


def test_the_seed_values_by_hand():
    """Values 0..9 uniform. Bid b may win over the last x_b of the horizon, x = (0, 0, 1/6, 1/3, 1/2, 3/4, 1, 1,
    1, 1); value v pays v x_v - max_{b <= v} (v - b) x_b: 0, 0, 1/3, 1 - 1/6, 2 - 1/3, 15/4 - 2/3, 6 - 1,
    7 - 3/2, 8 - 9/4, 9 - 3 (sum 169/6), so 169/60 per auction; the best posted price (5 or 6) earns 2.5 and
    the welfare is 4.5."""
    x = np.array([0, 0, 1 / 6, 1 / 3, 1 / 2, 3 / 4, 1, 1, 1, 1])
    paid = [v * x[v] - max((v - b) * x[b] for b in range(v + 1)) for v in range(10)]
    assert sum(paid) / 10 == pytest.approx(169 / 60)
    found = natural_format_lp(SEED_VALUES, SEED_PMF)
    assert found.revenue == pytest.approx(169 / 60, abs=1e-9)
    assert (found.myerson, found.welfare) == (pytest.approx(2.5), pytest.approx(4.5))
    assert found.revenue > found.myerson  # the natural format beats every static rule for this buyer


def test_the_lp_matches_a_direct_simulation_of_the_limit_and_beats_every_other_path():
    """Random priors on 6 values: the LP's revenue is what a buyer who plays the best cumulative bid pays under
    its reserve path (within the simulation's resolution), and no random declining path earns more."""
    rng = np.random.default_rng(0)
    values = np.array([0.0, 1.0, 2.0, 4.0, 5.0, 7.0])
    for _ in range(3):
        pmf = rng.dirichlet(np.ones(6))
        found = natural_format_lp(values, pmf)
        assert ref.mean_based_limit(values, pmf, found.available, 20_000) == pytest.approx(found.revenue, abs=2e-3)
        for _ in range(20):
            path = np.sort(rng.uniform(0, 1, 6))
            assert ref.mean_based_limit(values, pmf, path, 2_000) <= found.revenue + 2e-3
        assert found.myerson - 1e-9 <= found.revenue <= found.welfare + 1e-9


def test_the_lp_as_phases_of_reserves():
    found = natural_format_lp(SEED_VALUES, SEED_PMF)
    assert lp_reserves(found.available, SEED_VALUES, 12) == (6, 6, 6, 5, 5, 5, 4, 4, 3, 3, 2, 2)
    assert lp_reserves(np.zeros(3), np.arange(3.0), 2) == (3.0, 3.0)  # nothing may win: above every bid


def test_bad_priors_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        natural_format_lp(np.array([0.0, 2.0, 1.0]), np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="sum to 1"):
        natural_format_lp(np.arange(3.0), np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="one length"):
        natural_format_lp(np.arange(3.0), np.full(2, 0.5))


@pytest.mark.slow  # 10 s
def test_the_lp_path_out_earns_the_best_posted_price_from_one_hedge_buyer():
    """One Hedge buyer, values 0..9, bids at most the value, 100,000 auctions, 8 markets on the same keys: the
    LP's path in 12 phases (6, 6, 6, 5, 5, 5, 4, 4, 3, 3, 2, 2) earns more over the horizon than the best posted
    price 5 (measured 2.40 +- 0.003 against 2.06 +- 0.002), and in its last window (2.78) more than the 2.5 that
    no rule earns from a buyer who best-responds, below the LP's limit of 2.817."""
    found = natural_format_lp(SEED_VALUES, SEED_PMF)
    reserves = lp_reserves(found.available, SEED_VALUES, 12)
    runs = {}
    for name, mechanism in (("lp", ja.declining_reserve_first_price(1, reserves)),
                            ("posted", ja.first_price(1, reserve=found.posted_price))):  # fmt: skip
        market = ja.Market(mechanism, ja.population(ja.hedge(1, ja.absolute_grid(10, 10))), ja.UniformIntPrior(0, 9))
        params = ja.init_params(market, jax.random.key(0))
        one = lambda k, m=market, p=params: ja.fresh_round(m, p, *jax.random.split(k), 100_000, 5_000)[1].revenue  # noqa: E731
        runs[name] = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), 8)), np.float64)
    horizon = {n: (r.mean(axis=1).mean(), r.mean(axis=1).std(ddof=1) / np.sqrt(8)) for n, r in runs.items()}
    assert horizon["lp"][0] - horizon["posted"][0] > 4 * (horizon["lp"][1] + horizon["posted"][1])
    last = runs["lp"][:, -1]
    assert found.myerson < last.mean() - 4 * last.std(ddof=1) / np.sqrt(8)
    assert last.mean() < found.revenue + 4 * last.std(ddof=1) / np.sqrt(8)
