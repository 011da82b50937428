"""MyersonNet: exact DSIC by grid deviations, IR and feasibility, anonymity of the shared network, the relaxation's
gradients, the optimum of every MyersonNet setting reached by hand-set virtual values (and missed, on the
irregular prior, by one shared network), and training on the shared trainer."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxauction as ja
from jaxauction.mechanisms.myersonnet import inverse_virtual_values, virtual_values
from jaxauction.regret import Protocol
from jaxauction.settings import setting
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet
from tests.test_affine_maximizer import train_two_steps_and_audit

KEY = jax.random.key(0)


def wide_params(n: int, shared: bool, seed: int, groups: int = 4, lines: int = 3):
    """Random networks whose intercepts reach above 0 (so some bidders clear the reserve at a zero bid)."""
    rng = np.random.default_rng(seed)
    shape = (1 if shared else n, groups, lines)
    return {"log_slopes": jnp.asarray(rng.normal(0, 1, shape), jnp.float32),
            "intercepts": jnp.asarray(rng.uniform(-1.0, 0.3, shape), jnp.float32)}  # fmt: skip


def outcomes(mechanism, params, bids):
    out = jax.jit(jax.vmap(lambda b: mechanism.apply(params, b, KEY)))(jnp.asarray(bids))
    return np.asarray(out.allocation, np.float64), np.asarray(out.payments, np.float64)


@pytest.mark.parametrize(("n", "shared"), [(1, False), (3, False), (3, True), (5, False)])
def test_no_grid_deviation_gains_and_the_outcome_is_feasible_and_ir(n, shared):
    """For 200 random profiles, no bidder gains by any of 401 reports on [0, 2 s_i] or by bidding just above or
    below its threshold (beyond float32 rounding); the item goes to at most one bidder, whole, and a winner pays
    between 0 and its bid, a loser nothing."""
    scales = np.arange(1.0, n + 1.0)
    mechanism = ja.myersonnet(n, 4, 3, bid_scale=scales, shared=shared)
    params = wide_params(n, shared, n)
    rng = np.random.default_rng(n)
    values = (rng.uniform(0, 1, (200, n)) * scales)[..., None].astype(np.float32)
    alloc, pay = outcomes(mechanism, params, values)
    assert set(np.unique(alloc)) <= {0.0, 1.0} and np.all(alloc.sum(axis=1) <= 1)
    assert np.all(pay >= 0) and np.all(pay <= values[..., 0] + 1e-6) and np.all(pay[alloc[..., 0] == 0] == 0)
    assert alloc.sum() > 0
    truthful = values[..., 0] * alloc[..., 0] - pay
    for i in range(n):
        thresholds = np.asarray(jax.vmap(lambda v, i=i: mechanism.bidder_menu(params, v, i)[1][1])(jnp.asarray(values)))
        reports = np.concatenate([np.broadcast_to(np.linspace(0, 2 * scales[i], 401), (200, 401)),
                                  thresholds[:, None] * np.array([1 - 1e-4, 1 + 1e-4])], axis=1)  # fmt: skip
        deviated = np.repeat(values[:, None], reports.shape[1], axis=1).copy()
        deviated[:, :, i, 0] = reports
        a, p = outcomes(mechanism, params, deviated.reshape(-1, n, 1))
        gain = (values[:, None, i, 0] * a[:, i, 0].reshape(200, -1) - p[:, i].reshape(200, -1)) - truthful[:, i:i + 1]
        assert gain.max() < 2e-6 * scales[i], (i, gain.max())


def test_the_shared_network_is_anonymous_and_phi_inverse_inverts_phi():
    n = 4
    mechanism = ja.myersonnet(n, 4, 3, shared=True)
    params = wide_params(n, True, 1)
    rng = np.random.default_rng(1)
    for _ in range(20):
        bids = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        perm = rng.permutation(n)
        out = mechanism.apply(params, jnp.asarray(bids), KEY)
        permuted = mechanism.apply(params, jnp.asarray(bids[perm]), KEY)
        np.testing.assert_array_equal(np.asarray(permuted.allocation), np.asarray(out.allocation)[perm])
        np.testing.assert_allclose(np.asarray(permuted.payments), np.asarray(out.payments)[perm], atol=1e-6)
    bids = jnp.asarray(rng.uniform(0, 3, (n, 1)), jnp.float32)
    scales = jnp.asarray([1.0, 2.0, 3.0, 4.0])
    per_bidder = wide_params(n, False, 2)
    back = inverse_virtual_values(per_bidder, virtual_values(per_bidder, bids, scales), scales)
    np.testing.assert_allclose(np.asarray(back), np.asarray(bids[:, 0]), rtol=1e-5, atol=1e-5)


def test_the_relaxation_has_the_right_gradients_and_tends_to_the_rule():
    """The relaxation's revenue gradient matches finite differences in every param; at a high inverse temperature
    its outcome is the rule's; and a loser's relaxed payment never exceeds its bid."""
    n = 3
    mechanism = ja.myersonnet(n, 4, 3, bid_scale=2.0)
    params = wide_params(n, False, 3)
    bids = jnp.asarray([[1.3], [0.4], [1.7]], jnp.float32)
    soft = ja.myersonnet_soft(n, 5.0, 2.0)
    check_grads(lambda p: jnp.sum(soft(p, bids).payments), (params,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    sharp = ja.myersonnet_soft(n, 1e5, 2.0)(params, bids)
    exact = mechanism.apply(params, bids, KEY)
    np.testing.assert_allclose(np.asarray(sharp.allocation), np.asarray(exact.allocation), atol=1e-4)
    np.testing.assert_allclose(np.asarray(sharp.payments), np.asarray(exact.payments), atol=1e-4)
    relaxed = soft(params, bids)
    assert np.all(np.asarray(relaxed.payments) <= np.asarray(relaxed.allocation[:, 0] * bids[:, 0]) + 1e-7)


def lines_params(groups: list[list[tuple[float, float]]], n: int):
    """Params with ``phi(x) = min over groups of max over (slope, intercept) lines``, the same for ``n`` bidders
    (every group padded to one length by repeating its first line)."""
    width = max(len(g) for g in groups)
    padded = [g + [g[0]] * (width - len(g)) for g in groups]
    slopes = np.log([[a for a, _ in g] for g in padded])
    intercepts = np.asarray([[b for _, b in g] for g in padded])
    return {"log_slopes": jnp.asarray(np.broadcast_to(slopes, (n, *slopes.shape)), jnp.float32),
            "intercepts": jnp.asarray(np.broadcast_to(intercepts, (n, *intercepts.shape)), jnp.float32)}  # fmt: skip


def sampled_revenue(mechanism, params, name: str, count: int = 400_000, seed: int = 11) -> tuple[float, float]:
    s = setting(name)
    prior_params = s.prior.init_params(s.n_bidders, 1)
    values = jax.vmap(lambda k: s.prior.sample(k, prior_params).values)(jax.random.split(jax.random.key(seed), count))
    revenue = np.asarray(jax.jit(jax.vmap(lambda b: jnp.sum(mechanism.apply(params, b, KEY).payments)))(values))
    return float(revenue.mean()), float(revenue.std() / math.sqrt(count))


def test_hand_set_virtual_values_reach_each_settings_optimum():
    """MyersonNet with the true (ironed) virtual values is Myerson's auction: its revenue on 400,000 profiles is
    each setting's exact optimum within 4 s.e. -- exponential (phi = v - 3), asymmetric uniform (phi_i = 2 v - i,
    per-bidder scales i, so one network 2x - 1 for all), and the irregular prior with its flat at c = 3 - sqrt 5
    on [a, a + 2] broken by bidder priority (flats 1e-4 apart, slopes 1e-6: the allocation is constant on the
    ironed interval, so the optimum is reached). One network shared by the three bidders breaks the flat by bid
    instead, and falls short of the optimum by about 0.03 (2.3433 in a 2-million-profile numpy simulation)."""
    top = ja.top_value(setting("single3_exp").prior, 3)
    exp = lines_params([[(1.0, -3.0 / top)]], 3)
    revenue, se = sampled_revenue(ja.myersonnet(3, 1, 1, top), exp, "single3_exp")
    assert abs(revenue - setting("single3_exp").optimum) < 4 * se

    asym = lines_params([[(2.0, -1.0)]], 5)
    revenue, se = sampled_revenue(ja.myersonnet(5, 1, 1, np.arange(1.0, 6.0)), asym, "single5_asym")
    assert abs(revenue - setting("single5_asym").optimum) < 4 * se

    a = (7 - math.sqrt(5)) / 2
    c = 2 * a - 4

    def ironed(priority: float):  # in units of the top value 8: min(max(flat, 2v - 8), 2v - 4)
        return [[(1e-6, (c + priority) / 8), (2.0, -1.0)], [(2.0, -0.5)]]

    shapes = [lines_params(ironed(1e-4 * (3 - i)), 1) for i in range(3)]
    priority = {k: jnp.concatenate([p[k] for p in shapes]) for k in shapes[0]}
    revenue, se = sampled_revenue(ja.myersonnet(3, 2, 2, 8.0), priority, "single3_irregular")
    assert abs(revenue - setting("single3_irregular").optimum) < 4 * se
    shared, se = sampled_revenue(ja.myersonnet(3, 2, 2, 8.0, shared=True), lines_params(ironed(0.0), 1),
                                 "single3_irregular")  # fmt: skip
    assert abs(shared - 2.3433) < 4 * se and setting("single3_irregular").optimum - shared > 0.025


@pytest.mark.slow  # a learning run, about 13 s
def test_the_shared_trainer_beats_second_price_and_the_audit_finds_no_regret():
    """single3_exp on the shared trainer, 300 iterations at batch 256: above second price's 2.5 by many
    standard errors, with no regret terms, and the audit (each bidder's two-entry menu and a 101-point grid) finds
    no gain beyond float32 rounding. Same key, same step bit for bit; another key another one."""
    config = RegretNetConfig(setting="single3_exp", model="myersonnet", iterations=300, log_every=150, batch=256)
    report = train_two_steps_and_audit(config, Protocol(profiles=500, grid=101, revenue_profiles=30_000,
                                                        interim=False))  # fmt: skip
    assert report.revenue > 2.5 + 5 * report.revenue_se
    assert report.regret_max < 1e-4 and report.ir_violation_rate == 0.0


# Every continuous single-item setting. Not seed3 (integer values 0..9): its optimum, 5.275, charges a winner
# the least *integer* report that still wins, which a rule open to every real report cannot; MyersonNet trained
# there earns 4.6-4.8 (docs/incentive_compatibility.md).
ITERATIONS = {"single2": 5_000, "single3": 5_000, "single5": 5_000, "single3_exp": 10_000,
              "single3_irregular": 40_000, "single5_asym": 20_000}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ITERATIONS))
def test_myersonnet_reaches_the_optimum_of_every_single_item_preset(name):
    """The reference configuration (10 x 10 lines per bidder, Adam 1e-3, batch 1,024) on each continuous
    single-item setting: revenue on 1,000,000 fresh profiles within 0.01 of the exact optimum, and not above it by
    more than 4 s.e. (no DSIC rule can beat it: a higher figure would be a bug). The irregular prior trains for
    40,000 iterations: at 20,000 three keys were 0.006-0.009 short, at 40,000 0.003-0.004."""
    s = setting(name)
    config = RegretNetConfig(setting=name, model="myersonnet", iterations=ITERATIONS[name], log_every=1_000)
    trainer = make_regretnet(config)
    state = trainer.init(KEY)
    step = jax.jit(trainer.step)
    for _ in range(config.iterations // config.log_every):
        state, _ = step(state)
    revenue, se = sampled_revenue(trainer.mechanism, state.params, name, count=1_000_000)
    assert s.optimum - 0.01 < revenue < s.optimum + 4 * se, (revenue, se)


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="myersonnet is for one item"):
        RegretNetConfig(setting="additive_2x2", model="myersonnet")
    with pytest.raises(ValueError, match="bid_scale must be one number or one per bidder"):
        ja.myersonnet(3, bid_scale=(1.0, 2.0))
    with pytest.raises(ValueError, match="bid_scale"):
        ja.myersonnet(2, bid_scale=(1.0, -2.0))
    with pytest.raises(ValueError, match="groups"):
        ja.myersonnet(2, groups=0)
    with pytest.raises(ValueError, match="masses must be positive and sum to 1"):
        ja.PiecewiseUniformPrior((0.0, 3.0, 8.0), (0.75, 0.5))
    with pytest.raises(ValueError, match="increasing"):
        ja.PiecewiseUniformPrior((0.0, 3.0, 3.0), (0.75, 0.25))
    with pytest.raises(ValueError, match="K \\+ 1 breaks"):
        ja.PiecewiseUniformPrior((0.0, 3.0), (0.75, 0.25))
