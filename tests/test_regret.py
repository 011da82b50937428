"""The regret evaluator against exact results: second price 0, first price E[(v1 - v2)+] = 1/6."""

import dataclasses

import jax
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.regret import Protocol, evaluate, interim_regret, profile_regret

KEY = jax.random.key(0)

U01 = ja.UniformPrior(0.0, 1.0)
SMALL = Protocol(profiles=2_000, random_starts=2, steps=50, stronger=2, revenue_profiles=20_000, interim=False)


def draw(n: int, profiles: int, seed: int = 0):
    values = jax.random.uniform(jax.random.key(seed), (profiles, n, 1))
    return values, jax.random.split(jax.random.key(seed + 1), profiles)


def test_grid_search_finds_the_best_first_price_deviation_exactly():
    """Against a truthful rival, the high bidder's best first-price bid is just above the rival's value."""
    mech = ja.first_price(2)
    values, keys = draw(2, 256)
    low, high = U01.support(U01.init_params(2, 1))
    found = profile_regret(mech, mech.init(jax.random.key(0)), values, keys, low, high, Protocol(steps=0, grid=101))
    v = np.asarray(values[..., 0])
    exact = np.maximum(v - v[:, ::-1], 0.0)  # the high bidder gains v_i - v_j, the low bidder nothing
    np.testing.assert_allclose(np.asarray(found.regret), exact, atol=2e-6)


@pytest.mark.slow
def test_second_price_has_zero_regret_and_first_price_one_sixth():
    sp = evaluate(ja.second_price(2), ja.second_price(2).init(None), U01, jax.random.key(0), SMALL)
    assert sp.regret_mean == 0.0 and sp.regret_max == 0.0 and sp.ir_violation_rate == 0.0
    assert sp.searches == ("gradient", "grid")
    assert sp.revenue_profiles == 20_000 and abs(sp.revenue - 1 / 3) < 4 * sp.revenue_se < 0.01
    fp = evaluate(ja.first_price(2), ja.first_price(2).init(None), U01, jax.random.key(0), SMALL)
    # E[(v1 - v2)+] = 1/6 per bidder; 2,000 profiles give a standard error of about 0.003.
    assert abs(fp.regret_mean - 1 / 6) < 4 * fp.regret_se < 0.015
    assert abs(fp.regret_change) < 1e-6  # the stronger attack finds nothing more: converged
    assert fp.regret_over_revenue == pytest.approx(2 * fp.regret_mean / fp.revenue)


@pytest.mark.slow
def test_gradient_search_alone_misses_jumps_that_the_grid_finds():
    """Why the grid runs. Under third price the runner-up gains v2 - v3 by outbidding the winner, but its
    utility is flat (0) around its truthful bid, so a gradient search from the truthful report never moves."""
    mech = ja.third_price(3)
    values, keys = draw(3, 256)
    low, high = U01.support(U01.init_params(3, 1))
    grad_only = profile_regret(mech, mech.init(None), values, keys, low, high, Protocol(grid=0, random_starts=0))
    grid = profile_regret(mech, mech.init(None), values, keys, low, high, Protocol(steps=0, grid=101))
    v = np.sort(np.asarray(values[..., 0]), axis=1)
    np.testing.assert_allclose(np.asarray(grid.regret).max(axis=1), v[:, 1] - v[:, 0], atol=2e-6)
    assert float(grad_only.regret.max()) == 0.0


def test_losers_paying_is_an_ir_violation():
    protocol = dataclasses.replace(SMALL, stronger=1)
    report = evaluate(ja.all_pay(2), ja.all_pay(2).init(None), U01, jax.random.key(0), protocol)
    assert report.ir_violation_rate == pytest.approx(0.5, abs=0.01)  # the loser pays its bid
    assert report.regret_mean_stronger is None and report.regret_change is None


@pytest.mark.parametrize(
    "kwargs, match",
    [({"profiles": 0}, "profiles"), ({"grid": 1}, "grid"), ({"step_size": float("nan")}, "step_size")],
)
def test_bad_protocols_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Protocol(**kwargs)


def test_values_of_the_wrong_shape_are_refused():
    mech = ja.second_price(3)
    values, keys = draw(2, 8)
    with pytest.raises(ValueError, match=r"\[profiles, 3, 1\]"):
        profile_regret(mech, mech.init(None), values, keys, values[0] * 0, values[0] * 0 + 1)


@pytest.mark.slow
def test_interim_regret_is_the_bayesian_figure():
    """First price, 2 truthful U[0,1] rivals: against a uniform rival, bidding b wins with probability b, so the
    best interim report earns max_b (v - b) b = v^2 / 4 and the interim regret is E[v^2 / 4] = 1/12 (ex post
    regret: 1/6). Second price: 0."""
    fp = jax.jit(lambda k: interim_regret(ja.first_price(2), ja.first_price(2).init(None), U01, k))(jax.random.key(3))
    # 256 own values (sd of v^2/4 is about 0.075: se 0.005) and a 201-point grid
    np.testing.assert_allclose(np.asarray(fp), 1 / 12, atol=0.02)
    sp = interim_regret(ja.second_price(2), ja.second_price(2).init(None), U01, jax.random.key(3), own=32, others=64)
    np.testing.assert_array_equal(np.asarray(sp), 0.0)


def test_regret_refuses_common_values_and_risk_shaped_utilities():
    """Regret is defined here for private values and quasi-linear utility: the evaluator, the DMO regret
    penalty and the learning-aware experiment refuse the rest with one line instead of a silent number."""
    import pytest

    import jaxauction as ja
    from jaxauction.priors import WalletPrior
    from jaxauction.specs import PriorSpec
    from jaxauction.train.learning_aware import LearningAwareConfig

    rule = ja.second_price(2)
    with pytest.raises(ValueError, match="private values"):
        evaluate(rule, rule.init(KEY), WalletPrior(), KEY, Protocol(profiles=4))
    with pytest.raises(ValueError, match="quasi-linear utility"):
        evaluate(rule, rule.init(KEY), ja.UniformPrior(0.0, 1.0), KEY, Protocol(profiles=4), utility=ja.crra(0.5))
    for utility in ("crra", "cara", "seller"):
        with pytest.raises(ValueError, match="regret penalty"):
            ja.DMOConfig.of(utility=utility, regret_weight=1.0)
    with pytest.raises(ValueError, match="private values"):
        ja.DMOConfig.of(prior="wallet_int", regret_weight=1.0)
    with pytest.raises(ValueError, match="private values"):
        LearningAwareConfig(prior=PriorSpec("wallet", 0.0, 1.0))


def test_unit_demand_evaluator_does_not_credit_a_bundle():
    """A menu that sells both items together at 4.23 to a unit-demand bidder with U[2,3] values: the bidder
    values the bundle at max(v1, v2) <= 3, so every sale is an IR violation (the additive utility credited it
    with revenue 4.1 and no violation). RochetNet for unit demand offers lotteries over single items only."""
    import jax.numpy as jnp

    bundle = ja.mechanisms.rochetnet(2, menu_size=1)
    params = {"logits": jnp.full((1, 2), 30.0), "prices": jnp.array([4.23])}  # both items, probability 1
    prior = ja.UniformPrior(2.0, 3.0)
    quick = Protocol(profiles=400, random_starts=0, steps=0, grid=9, stronger=1, revenue_profiles=0, interim=False)
    additive = evaluate(bundle, params, prior, KEY, quick)
    unit = evaluate(bundle, params, prior, KEY, quick, utility=ja.unit_demand())
    assert additive.ir_violation_rate == 0 and additive.revenue > 4
    sold = additive.revenue / 4.23
    assert unit.ir_violation_rate == pytest.approx(sold, abs=1e-6) and unit.ir_violation_rate > 0.3
    unit_menu = ja.mechanisms.rochetnet(2, menu_size=1, demand="unit")
    out = unit_menu.apply({"logits": jnp.full((1, 2), 30.0), "prices": jnp.array([1.0])}, jnp.ones((1, 2)), KEY)
    assert float(out.allocation.sum()) <= 1 + 1e-6  # a lottery over single items: half of each


def test_sampled_revenue_is_the_exact_expectation_and_reproducible():
    """Second price with reserve 1/2, 3 bidders U[0,1]: Myerson's 17/32 within 4 s.e. on 100,000 profiles (and
    the plain second price's 1/2 without the reserve); the same key gives the same draws bit for bit, another
    key other draws; a count below 1 is refused."""
    prior = ja.UniformPrior(0.0, 1.0)
    myerson = ja.second_price(3, reserve=0.5)
    revenue = ja.sampled_revenue(myerson, myerson.init(None), prior, jax.random.key(3), 100_000)
    assert revenue.shape == (100_000,) and abs(revenue.mean() - 17 / 32) < 4 * revenue.std() / np.sqrt(100_000)
    plain = ja.second_price(3)
    again = ja.sampled_revenue(plain, plain.init(None), prior, jax.random.key(3), 100_000)
    assert abs(again.mean() - 0.5) < 4 * again.std() / np.sqrt(100_000)
    np.testing.assert_array_equal(again, ja.sampled_revenue(plain, plain.init(None), prior, jax.random.key(3), 100_000))
    assert not np.array_equal(again, ja.sampled_revenue(plain, plain.init(None), prior, jax.random.key(4), 100_000))
    with pytest.raises(ValueError, match="profiles"):
        ja.sampled_revenue(plain, plain.init(None), prior, jax.random.key(3), 0)


def test_sampled_revenue_stacked_scores_every_start_on_the_same_profiles():
    """Three reserve prices stacked on a leading axis: one call gives each start's revenue on the same profiles,
    equal to scoring each start alone (the same key draws the same profiles)."""
    prior = ja.UniformPrior(0.0, 1.0)
    mechanism = ja.second_price(2, reserve=0.0)
    params = mechanism.init(None)
    starts = [params._replace(reserve=np.float32(r)) for r in (0.0, 0.25, 0.5)]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *starts)
    together = ja.sampled_revenue(mechanism, stacked, prior, jax.random.key(5), 20_000, stacked=True)
    assert together.shape == (3, 20_000)
    for i, start in enumerate(starts):
        alone = ja.sampled_revenue(mechanism, start, prior, jax.random.key(5), 20_000)
        np.testing.assert_allclose(together[i], alone, rtol=1e-6, atol=1e-7)
    assert together.mean(axis=1)[2] > together.mean(axis=1)[0]  # Myerson's reserve 1/2 earns more (5/12 > 1/3)
