"""Affine maximizers: exact DSIC by grid deviations, IR and feasibility, the relaxation's gradients, training on
the shared trainer, and the regret audit's zero."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxauction as ja
from jaxauction.regret import Protocol, evaluate
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet
from tests import reference as ref

KEY = jax.random.key(0)


def wide_params(mechanism, seed: int):
    """Random params far from the initial ones: weights from 0.5 to 2, boosts of about a third of a value."""
    params = mechanism.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    return {**params, "log_weights": jnp.asarray(rng.normal(0, 0.4, mechanism.n_bidders), jnp.float32),
            "boosts": jnp.asarray(rng.normal(0, 0.3, params["boosts"].shape), jnp.float32)}  # fmt: skip


def train_two_steps_and_audit(config: RegretNetConfig, protocol: Protocol):
    """Two steps of an exactly DSIC architecture on the shared trainer, checked to log no regret and to repeat bit
    for bit under the same key (and not under another); then the trained rule's audit report."""
    trainer = make_regretnet(config)
    step = jax.jit(trainer.step)
    state, first = step(trainer.init(KEY))
    assert float(first.regret) == 0.0
    assert float(step(trainer.init(KEY))[1].revenue) == float(first.revenue)
    assert float(step(trainer.init(jax.random.key(1)))[1].revenue) != float(first.revenue)
    state, _ = step(state)
    s = config.the_setting
    return evaluate(trainer.mechanism, state.params, s.prior, jax.random.key(9), protocol, utility=s.utility())


@pytest.mark.parametrize(("menu", "demand"), [("lottery", "additive"), ("deterministic", "additive"),
                                              ("lottery", "unit"), ("deterministic", "unit")])  # fmt: skip
def test_no_grid_deviation_gains(menu, demand):
    """2 bidders, 2 items, random weights, boosts and lotteries: on a 6 x 6 grid of values per bidder and every
    report of a 9 x 9 grid (and the others' values), no bidder gains by misreporting, beyond float32 rounding;
    the numpy reference under the same params gains nothing at all (float64, exhaustive search)."""
    n, m = 2, 2
    mechanism = ja.affine_maximizer(n, m, menu, menu_size=24, demand=demand, logit_scale=2.0)
    params = wide_params(mechanism, 3)
    utility = ja.unit_demand() if demand == "unit" else ja.quasi_linear()
    values = np.array(list(itertools.product(np.linspace(0, 1, 6), repeat=n * m)), np.float32).reshape(-1, n, m)
    reports = np.array(list(itertools.product(np.linspace(0, 1, 9), repeat=m)), np.float32)  # [81, m]

    @jax.jit
    def gains(v):  # [n, 81]: bidder i's gain from each report
        def u(bids, i):
            return utility.apply(ja.Types(values=v), mechanism.apply(params, bids, KEY), ())[i]

        def bidder(i):
            return jax.vmap(lambda r: u(v.at[i].set(r), i))(jnp.asarray(reports)) - u(v, i)

        return jnp.stack([bidder(i) for i in range(n)])

    worst = float(jnp.max(jax.lax.map(gains, jnp.asarray(values))))
    assert worst < 2e-6, f"a misreport gains {worst}"
    allocations, weights, boosts = (np.asarray(x, np.float64) for x in ja.affine_maximizer_menu(
        params, n, demand, None if menu == "lottery" else ja.deterministic_menu(n, m, demand)))  # fmt: skip
    rule = lambda b: ref.affine_maximizer(b, allocations, weights, boosts)  # noqa: E731
    for v in values[:: len(values) // 12]:
        regret = ref.ex_post_regret(rule, v.astype(np.float64), np.linspace(0, 1, 5), demand=demand)
        assert np.all(regret <= 1e-12)


@pytest.mark.parametrize(("n", "m", "demand"), [(3, 10, "additive"), (2, 5, "additive"), (3, 3, "unit")])
def test_allocations_are_feasible_and_truthful_utilities_non_negative(n, m, demand):
    mechanism = ja.affine_maximizer(n, m, menu_size=64, demand=demand, logit_scale=2.0)
    params = wide_params(mechanism, n + m)
    values = jax.random.uniform(jax.random.key(1), (256, n, m))
    out = jax.vmap(lambda v: mechanism.apply(params, v, KEY))(values)
    assert bool(jnp.all(out.allocation >= 0)) and bool(jnp.all(out.allocation.sum(axis=1) <= 1 + 1e-6))
    if demand == "unit":
        assert bool(jnp.all(out.allocation.sum(axis=2) <= 1 + 1e-6))
    utilities = jnp.sum(out.allocation * values, axis=-1) - out.payments
    assert float(jnp.min(utilities)) >= -1e-5  # IR, to float32 rounding
    assert float(jnp.min(out.payments)) >= -1e-5  # a pivot is never below what the others get at the choice


def test_the_deterministic_menu_at_unit_weights_and_no_boosts_is_vcg():
    mechanism = ja.affine_maximizer(2, 3, "deterministic")
    params = mechanism.init(KEY)
    for v in np.random.default_rng(0).uniform(0, 1, (20, 2, 3)).astype(np.float32):
        out = mechanism.apply(params, jnp.asarray(v), KEY)
        ((_, a, p),) = ref.vcg(v.astype(np.float64))
        np.testing.assert_allclose(np.asarray(out.allocation), a, atol=1e-6)
        np.testing.assert_allclose(np.asarray(out.payments), p, atol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="menu"):
        ja.affine_maximizer(2, 2, menu="grid")
    with pytest.raises(ValueError, match="allocations, above"):
        ja.deterministic_menu(5, 10)
    with pytest.raises(ValueError, match="menu_size"):
        ja.affine_maximizer(2, 2, menu_size=0)
    with pytest.raises(ValueError, match="needs its menu"):
        ja.affine_maximizer_soft("deterministic", 2, "additive", 10.0)
    with pytest.raises(ValueError, match="ama_menu"):
        RegretNetConfig(model="affine_maximizer", ama_menu="grid")
    with pytest.raises(ValueError, match="allocations, above"):
        RegretNetConfig(setting="additive_5x10", model="affine_maximizer", ama_menu="deterministic")


@pytest.mark.parametrize("menu", ["lottery", "deterministic"])
def test_the_relaxation_has_the_right_gradients_and_tends_to_the_rule(menu):
    """The softmax relaxation: its revenue's gradient in every param matches finite differences, and at a high
    inverse temperature its outcome is the argmax rule's."""
    n, m = 2, 2
    mechanism = ja.affine_maximizer(n, m, menu, menu_size=8)
    params = wide_params(mechanism, 5)
    fixed = None if menu == "lottery" else ja.deterministic_menu(n, m)
    soft = ja.affine_maximizer_soft(menu, n, "additive", 5.0, fixed)
    bids = jax.random.uniform(jax.random.key(2), (n, m))
    check_grads(lambda p: jnp.sum(soft(p, bids).payments), (params,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)
    sharp = ja.affine_maximizer_soft(menu, n, "additive", 1e5, fixed)(params, bids)
    exact = mechanism.apply(params, bids, KEY)
    np.testing.assert_allclose(np.asarray(sharp.allocation), np.asarray(exact.allocation), atol=1e-4)
    np.testing.assert_allclose(np.asarray(sharp.payments), np.asarray(exact.payments), atol=1e-4)


def test_the_shared_trainer_trains_it_on_revenue_alone_and_the_audit_finds_no_regret():
    """2x2 uniform additive, the lottery menu on the shared trainer for 400 iterations (batch 512): above VCG's
    2/3 by many standard errors, with no regret terms (logged regret 0), and the regret audit (each bidder's
    menu and a 17-point grid per item) finds no gain beyond float32 rounding. The same key gives the same
    step, bit for bit; another key another one."""
    config = RegretNetConfig(setting="additive_2x2", model="affine_maximizer", iterations=400, log_every=200,
                             menu_size=64, batch=512)  # fmt: skip
    report = train_two_steps_and_audit(config, Protocol(profiles=500, grid=17, revenue_profiles=50_000))
    assert report.revenue > 2 / 3 + 5 * report.revenue_se
    assert report.regret_max < 1e-5 and report.ir_violation_rate == 0.0


def test_the_audit_enumerates_each_bidders_menu_and_catches_a_wrong_price():
    """3 bidders, 10 items: the audit enumerates every bidder's menu (no gradient search, no stronger attack,
    said in the report) and finds no gain; the same mechanism charging 10% above its pivot prices is caught
    (its truthful outcome is no longer the best entry of its bidder menu)."""

    mechanism = ja.affine_maximizer(3, 10, menu_size=64, logit_scale=2.0)
    params = wide_params(mechanism, 7)
    protocol = Protocol(audit="quick", profiles=300, revenue_profiles=300)
    report = evaluate(mechanism, params, ja.UniformPrior(0.0, 1.0), KEY, protocol)
    assert report.searches == ("menu",) and len(report.skipped) == 2
    assert report.regret_max < 1e-5
    overcharge = dataclasses.replace(mechanism, apply=lambda p, b, k: (lambda o: o._replace(
        payments=o.payments * 1.1))(mechanism.apply(p, b, k)))  # fmt: skip
    assert evaluate(overcharge, params, ja.UniformPrior(0.0, 1.0), KEY, protocol).regret_mean > 1e-3


@pytest.mark.parametrize(("n", "m", "demand", "low"), [(2, 2, "additive", 1.0), (2, 3, "combinatorial", 1.0),
                                                       (3, 2, "unit", 2.0)])  # fmt: skip
def test_value_low_starts_as_vcg_above_the_support_bottom(n, m, demand, low):
    """Boosts starting at -sum_ij A_kij low_ij: the deterministic AMA's first outcome is the numpy reference's
    with those boosts on profiles at or above ``low``, and for additive bidders VCG's itself (boosts 0); a bottom
    of 0 keeps the boosts at 0; a negative bottom is refused."""
    mechanism = ja.affine_maximizer(n, m, "deterministic", demand=demand, value_low=low)
    params = mechanism.init(KEY)
    menu = ja.deterministic_menu(n, m, demand).astype(np.float64)
    boosts = -menu.sum(axis=(1, 2)) * low
    np.testing.assert_allclose(np.asarray(params["boosts"]), boosts)
    values = low + np.random.default_rng(0).random((40, n, m)) * 2.0
    if demand == "combinatorial":
        values[..., 2] = values[..., :2].sum(-1) - 1.0 + 2.0 * np.random.default_rng(1).random((40, n))
    out = jax.vmap(lambda v: mechanism.apply(params, v, KEY))(jnp.asarray(values, jnp.float32))
    for p, v in enumerate(values):
        expected = [ref.affine_maximizer(v, menu, np.ones(n), boosts)]
        if demand == "additive":
            expected.append(ref.affine_maximizer(v, menu, np.ones(n), np.zeros(len(menu))))
        for ((_, allocation, payments),) in expected:
            np.testing.assert_array_equal(np.asarray(out.allocation[p]), allocation)
            np.testing.assert_allclose(np.asarray(out.payments[p]), payments, rtol=1e-5, atol=1e-4)
    zero = ja.affine_maximizer(n, m, "deterministic", demand=demand).init(KEY)["boosts"]
    assert not np.any(np.asarray(zero))
    with pytest.raises(ValueError, match="value_low"):
        ja.affine_maximizer(n, m, demand=demand, value_low=-1.0)


@pytest.mark.parametrize(("n", "m", "demand"), [(3, 4, "additive"), (2, 3, "unit"), (2, 3, "combinatorial")])
def test_revive_replaces_exactly_the_unused_entries_by_perturbed_copies_and_keeps_the_rule_dsic(n, m, demand):
    """``revive``: the entries no profile chooses (the numpy reference, by loops) get a chosen entry's boost less
    0.02 * value_scale and its logits plus standard normal noise; the chosen entries are untouched; the same key
    gives the same params bit for bit, another key others; the revived rule's audit (each bidder's menu
    enumerated) finds no gain. The deterministic menu has no ``revive``."""
    mechanism = ja.affine_maximizer(n, m, menu_size=64, demand=demand, logit_scale=2.0, value_scale=2.0)
    params = wide_params(mechanism, 11)
    bids = jax.random.uniform(jax.random.key(4), (40, n, m))
    allocations, weights, boosts = (np.asarray(x, np.float64) for x in ja.affine_maximizer_menu(params, n, demand))
    unused = ref.affine_maximizer_unused(np.asarray(bids), allocations, weights, boosts)
    assert 0 < unused.sum() < len(unused)
    new = jax.jit(mechanism.revive)(params, bids, jax.random.key(5))
    logits, new_logits = np.asarray(params["logits"]), np.asarray(new["logits"])
    np.testing.assert_array_equal(new_logits[~unused], logits[~unused])
    np.testing.assert_array_equal(np.asarray(new["boosts"])[~unused], boosts[~unused].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(new["log_weights"]), np.asarray(params["log_weights"]))
    noise = []
    for k in np.flatnonzero(unused):  # its source: the chosen entry whose boost it took, less 0.04
        source = np.flatnonzero(~unused & np.isclose(boosts - 0.04, float(new["boosts"][k]), atol=1e-6))
        assert len(source) == 1, f"entry {k} is no copy of one chosen entry"
        noise.append(new_logits[k] - logits[source[0]])
    assert abs(np.std(noise) - 1.0) < 0.1 and abs(np.mean(noise)) < 0.1
    again = mechanism.revive(params, bids, jax.random.key(5))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), again, new))
    assert not np.array_equal(np.asarray(mechanism.revive(params, bids, jax.random.key(6))["logits"]), new_logits)
    if demand == "additive":
        protocol = Protocol(audit="quick", profiles=200, revenue_profiles=200)
        assert evaluate(mechanism, new, ja.UniformPrior(0.0, 1.0), KEY, protocol).regret_max < 1e-5
    assert ja.affine_maximizer(n, m, "deterministic", demand=demand).revive is None
    with pytest.raises(ValueError, match="value_scale"):
        ja.affine_maximizer(n, m, demand=demand, value_scale=0.0)


def test_the_trainer_revives_at_multiples_of_revive_every_and_restarts_adam():
    """``revive_every=200`` with steps of 100 iterations: the third step starts with a revival (Adam's step count
    restarts: 100 after it, against 300 without), the first two do not; with 150, the steps from 200 (a multiple
    in 101..200) and from 300 (one in 201..300) do. Bad configurations are refused, by name."""
    config = RegretNetConfig(setting="additive_2x2", model="affine_maximizer", iterations=400, log_every=100,
                             menu_size=64, batch=256, revive_every=200)  # fmt: skip
    trainer, plain = make_regretnet(config), make_regretnet(dataclasses.replace(config, revive_every=0))
    count = lambda state: int(state.opt_state[0].count)  # noqa: E731  optax's ScaleByAdamState
    state, plain_state = trainer.init(KEY), plain.init(KEY)
    for expected in (100, 200, 100):
        state, _ = jax.jit(trainer.step)(state)
        plain_state, _ = jax.jit(plain.step)(plain_state)
        assert count(state) == expected
    assert count(plain_state) == 300
    odd = make_regretnet(dataclasses.replace(config, revive_every=150))  # due at the steps from 200 and 300
    state = odd.init(KEY)
    for expected in (100, 200, 100, 100):
        state, _ = jax.jit(odd.step)(state)
        assert count(state) == expected
    with pytest.raises(ValueError, match="revive_every revives a learned lottery menu"):
        RegretNetConfig(setting="additive_2x2", model="regretnet", revive_every=1000)
    with pytest.raises(ValueError, match="revive_every revives a learned lottery menu"):
        dataclasses.replace(config, ama_menu="deterministic")
    with pytest.raises(ValueError, match="revive_every needs an exactly incentive-compatible mechanism"):
        ja.train.lagrangian.make_lagrangian_trainer(ja.regretnet(2, 2), config.schedule())


@pytest.mark.slow
def test_revival_lifts_the_3x10_lottery_menu_above_item_wise_myerson():
    """3 bidders, 10 uniform items, a menu of 1,000 lotteries at softness 100 for 1,000 iterations: reviving
    unused entries every 500 earns more than item-wise Myerson's 5.3125 (theory: the best rule selling each
    item on its own) by 10 standard errors, and more than the same run without revivals by 10 of them (revenue
    by the numpy reference on 20,000 fresh profiles, the same for both; measured 5.452 against 5.217, s.e. 0.005)."""
    config = RegretNetConfig(setting="additive_3x10", model="affine_maximizer", iterations=1000, log_every=500,
                             softness=100.0, revive_every=500)  # fmt: skip
    values = np.asarray(jax.random.uniform(jax.random.key(99), (20_000, 3, 10)), np.float64)
    revenues = {}
    for every in (500, 0):
        trainer = make_regretnet(dataclasses.replace(config, revive_every=every))
        state, step = trainer.init(KEY), jax.jit(trainer.step)
        for _ in range(2):
            state, _ = step(state)
        menu = [np.asarray(x, np.float64) for x in ja.affine_maximizer_menu(state.params, 3)]
        revenues[every] = ref.affine_maximizer_revenue(values, *menu)
    se = max(r.std() for r in revenues.values()) / np.sqrt(len(values))
    assert revenues[500].mean() > 5.3125 + 10 * se, revenues[500].mean()
    assert revenues[500].mean() > revenues[0].mean() + 10 * se, (revenues[500].mean(), revenues[0].mean())
