"""jaxauction against the independent numpy reference (``tests/reference.py``) on random and edge-case profiles.

Profiles are drawn (seeded, and by hypothesis) from a generator that favours the cases where rules go wrong:
ties at the top, zero bids, bids exactly at the reserve, every bid below the reserve. Deterministic outcomes are
compared exactly (to float32 rounding); random tie-breaks in distribution: every sampled outcome must be one the
reference allows, and each outcome's frequency over keys must match its probability.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxauction.mechanisms as mechanisms
from jaxauction import MECHANISMS, Types, cara, crra, quasi_linear, seller
from jaxauction.metrics import optimal_welfare, revenue, welfare
from jaxauction.regret import Protocol, profile_regret
from jaxauction.types import Outcome
from jaxauction.utilities import unit_demand
from tests import reference as ref

KEYS = 512  # outcome keys per profile for the in-distribution check
LEVELS = np.array([0.0, 0.25, 0.5, 0.75, 1.0], np.float32)

# Exported helpers that are not rule builders, and learned mechanisms (checked by properties, not a reference).
NOT_RULES = {"affine_maximizer_menu", "affine_maximizer_soft", "checked", "classical", "deterministic_menu",
             "entry_probability", "highest_bid_allocation", "make_mechanism", "myersonnet_soft",
             "payment_shares", "phase", "prize_shares", "rochetnet_soft", "set_time", "torch_linear_init"}  # fmt: skip
LEARNED = {"deep_payment", "anonymous_payment", "learned_allocation", "regretnet", "rochetnet", "equivariantnet",
           "regretformer"}
REGISTERED = {  # registry name -> the constructor its builder calls
    **{name: name for name in ("first_price", "second_price", "third_price", "all_pay", "prize_all_pay",
                               "random_allocation", "vcg", "teaser_first_price", "discrete_myerson",
                               "declining_reserve_first_price", "learned_dynamic_first_price")},
    "multi_unit_pay_as_bid": "multi_unit", "multi_unit_uniform": "multi_unit",
    "procurement_first_price": "procurement", "procurement_second_price": "procurement",
    "deep": "deep_payment", "deep_anonymous": "anonymous_payment", "deep_allocation": "learned_allocation",
}  # fmt: skip


def test_every_rule_builder_has_a_reference_entry():
    """A rule exported by jaxauction.mechanisms without a reference entry (or a learned one without a property
    test below) fails here: a new rule lands with its reference."""
    builders = {
        name for name in mechanisms.__all__
        if inspect.isfunction(getattr(mechanisms, name)) and name not in NOT_RULES
    }  # fmt: skip
    assert builders - LEARNED == set(ref.RULES), "rules without a reference entry, or stale entries"
    assert LEARNED <= builders
    # every rule the package registers (the names the command line accepts) is built by a referenced or learned
    # constructor; a new registry entry without one here fails
    packaged = {name for name, c in MECHANISMS.items() if c.build.__module__.startswith("jaxauction.")}
    assert packaged == set(REGISTERED), "registered rules without a constructor here, or stale entries"
    assert set(REGISTERED.values()) <= set(ref.RULES) | LEARNED


def profiles(rng: np.random.Generator, count: int, n: int, m: int, reserve: float) -> np.ndarray:
    """``[count, n, m]`` float32 bids: a quarter each from a few levels (ties, zeros, the reserve), continuous
    draws, continuous draws with the top bid copied (a tie at the top), and all bids below the reserve."""
    levels = np.append(LEVELS, np.float32(reserve))
    out = rng.uniform(0, 1, (count, n, m)).astype(np.float32)
    q = count // 4
    out[:q] = rng.choice(levels, (q, n, m))
    top = out[q : 2 * q].argmax(axis=1)  # [q, m]
    for p in range(q):
        other = (top[p] + 1) % n
        out[q + p, other, np.arange(m)] = out[q + p, top[p], np.arange(m)]
    out[3 * q :] = rng.uniform(0, reserve, (count - 3 * q, n, m)) if reserve > 0 else 0.0
    return out


def sampled_outcomes(mechanism, params, bids: np.ndarray, keys: int = KEYS):
    """The mechanism's outcomes for every profile of ``bids [P, n, m]`` under ``keys`` keys each: ``[P, K, ...]``."""
    ks = jax.random.split(jax.random.key(7), keys)
    apply = jax.jit(jax.vmap(jax.vmap(mechanism.apply, (None, None, 0)), (None, 0, None)))
    out = apply(params, jnp.asarray(bids), ks)
    return np.asarray(out.allocation, np.float64), np.asarray(out.payments, np.float64)


def assert_matches_reference(allocations, payments, outcomes: ref.Outcomes, where: str) -> None:
    """Every sampled outcome ``[K, ...]`` is one of the reference's; frequencies match probabilities."""
    K = allocations.shape[0]
    merged: ref.Outcomes = []  # tie-breaks that lead to the same outcome are one outcome
    for p, a, q in outcomes:
        same = [k for k, (_, a2, q2) in enumerate(merged) if np.array_equal(a, a2) and np.array_equal(q, q2)]
        if same:
            merged[same[0]] = (merged[same[0]][0] + p, a, q)
        else:
            merged.append((p, a, q))
    outcomes = merged
    match = np.full(K, -1)
    for index, (_, a, q) in enumerate(outcomes):
        same = np.all(np.abs(allocations - a) <= 1e-6, axis=(1, 2)) & np.all(
            np.abs(payments - q) <= 1e-5 + 1e-6 * np.abs(q), axis=1
        )
        match[(match < 0) & same] = index
    if np.any(match < 0):
        k = int(np.argmax(match < 0))
        raise AssertionError(f"{where}: outcome not allowed by the reference: allocation {allocations[k].tolist()}, "
                             f"payments {payments[k].tolist()}; reference {outcomes}")  # fmt: skip
    for index, (p, _, _) in enumerate(outcomes):
        freq = float(np.mean(match == index))
        assert abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / K) + 1.0 / K, f"{where}: frequency {freq} vs {p}"


def check_rule(mechanism, params, bids: np.ndarray, reference) -> None:
    allocations, payments = sampled_outcomes(mechanism, params, bids)
    for p in range(bids.shape[0]):
        b = bids[p].astype(np.float64)
        assert_matches_reference(allocations[p], payments[p], reference(b), f"{mechanism.name} bids {b.tolist()}")


SINGLE = ["first_price", "second_price", "third_price", "all_pay", "random_allocation", "discrete_myerson"]


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("reserve", [0.0, 0.5])
def test_single_item_rules_match_reference(name, n, reserve):
    rng = np.random.default_rng(n * 100 + int(reserve * 10))
    mechanism = getattr(mechanisms, name)(n, reserve=reserve)
    bids = profiles(rng, 48, n, 1, reserve)
    check_rule(mechanism, mechanism.init(jax.random.key(0)), bids, lambda b: ref.RULES[name](b, reserve=reserve))


@pytest.mark.parametrize(("n", "prizes"), [(2, (1.0,)), (3, (0.7, 0.3)), (4, (0.5, 0.3, 0.2)), (5, (0.6, 0.0, 0.4))])
@pytest.mark.parametrize("reserve", [0.0, 0.5])
def test_prize_all_pay_matches_reference(n, prizes, reserve):
    rng = np.random.default_rng(n)
    mechanism = mechanisms.prize_all_pay(n, prizes, reserve)
    check_rule(mechanism, mechanism.init(jax.random.key(0)), profiles(rng, 48, n, 1, reserve),
               lambda b: ref.RULES["prize_all_pay"](b, prizes=prizes, reserve=reserve))  # fmt: skip


@pytest.mark.parametrize("rule", ["first_price", "second_price"])
@pytest.mark.parametrize("ceiling", [1e9, float(np.float32(0.6))])  # float32 numbers, as the rule holds
def test_procurement_matches_reference(rule, ceiling):
    rng = np.random.default_rng(1)
    mechanism = mechanisms.procurement(3, rule, ceiling)
    bids = profiles(rng, 48, 3, 1, min(ceiling, 1.0))
    check_rule(mechanism, mechanism.init(jax.random.key(0)), bids,
               lambda b: ref.RULES["procurement"](b, rule=rule, ceiling=ceiling))  # fmt: skip


@pytest.mark.parametrize("pricing", ["uniform", "pay_as_bid"])
@pytest.mark.parametrize(("n", "units"), [(3, 1), (4, 2), (5, 3)])
@pytest.mark.parametrize("reserve", [0.0, 0.5])
def test_multi_unit_matches_reference(pricing, n, units, reserve):
    rng = np.random.default_rng(n + units)
    mechanism = mechanisms.multi_unit(n, units, pricing, reserve)
    check_rule(mechanism, mechanism.init(jax.random.key(0)), profiles(rng, 48, n, 1, reserve),
               lambda b: ref.RULES["multi_unit"](b, units=units, pricing=pricing, reserve=reserve))  # fmt: skip


@pytest.mark.parametrize(("n", "m", "decay"), [(2, 1, 1.0), (2, 2, 1.0), (3, 2, 0.6), (2, 3, 0.5)])
def test_vcg_matches_reference(n, m, decay):
    rng = np.random.default_rng(n * m)
    mechanism = mechanisms.vcg(n, m, decay)
    check_rule(mechanism, (), profiles(rng, 24, n, m, 0.5), lambda b: ref.RULES["vcg"](b, decay=decay))


@pytest.mark.parametrize(("rules", "decay"), [(("second_price", "first_price"), 1.0),
                                              (("first_price", "first_price", "all_pay"), 0.5)])  # fmt: skip
def test_simultaneous_matches_reference(rules, decay):
    n = 3
    mechanism = mechanisms.simultaneous([getattr(mechanisms, r)(n, reserve=0.25) for r in rules], decay)
    per_item = [lambda b, r=r: ref.RULES[r](np.asarray(b)[:, None], reserve=0.25) for r in rules]
    bids = profiles(np.random.default_rng(3), 24, n, len(rules), 0.25)
    check_rule(mechanism, mechanism.init(jax.random.key(0)), bids,
               lambda b: ref.RULES["simultaneous"](b, per_item, decay))  # fmt: skip


@pytest.mark.parametrize("tau", [0.0, 0.2499, 0.25, 0.5, 0.74, 0.999])
def test_dynamic_rules_match_reference(tau):
    """A phased first price with four reserves, and a rule whose reserve is a function of tau, at points of the
    horizon on and between the phase boundaries, under simultaneous sale (the clock reaches nested rules)."""
    n, reserves = 3, (0.75, 0.5, 0.25, 0.0)
    bids = profiles(np.random.default_rng(6), 24, n, 2, 0.5)
    inner = mechanisms.phased(mechanisms.first_price(n), 4)
    both = mechanisms.simultaneous([inner, inner])
    params = both.init(jax.random.key(0))
    params = tuple(p._replace(schedule=p.schedule._replace(reserve=jnp.asarray(reserves))) for p in params)
    fp = lambda b, k: ref.RULES["first_price"](np.asarray(b)[:, None], reserve=reserves[k])  # noqa: E731
    per_item = [lambda b: ref.RULES["phased"](b, fp, 4, tau)] * 2
    check_rule(both, mechanisms.set_time(params, tau), bids, lambda b: ref.RULES["simultaneous"](b, per_item))
    linear = mechanisms.dynamic(mechanisms.second_price(n), lambda s, t: s._replace(reserve=s.reserve * (1 - t)),
                                lambda key: mechanisms.RuleParams(jnp.float32(0.8), jnp.float32(0.0)))  # fmt: skip
    sp = lambda b, t: ref.RULES["second_price"](b, reserve=np.float32(0.8) * np.float32(1 - np.float32(t)))  # noqa: E731
    check_rule(linear, mechanisms.set_time(linear.init(jax.random.key(0)), tau), bids[:, :, :1],
               lambda b: ref.RULES["dynamic"](b, sp, tau))  # fmt: skip


@pytest.mark.parametrize("tau", [0.0, 0.6999, 0.7, 0.99])
@pytest.mark.parametrize("reserve", [0.0, 0.5])
def test_teaser_first_price_matches_reference(tau, reserve):
    """Discounted pay-your-bid before the teaser's end, full pay-your-bid from it on (ties, reserves)."""
    n = 3
    mechanism = mechanisms.teaser_first_price(n, discount=0.25, teaser=0.7, reserve=reserve)
    params = mechanisms.set_time(mechanism.init(jax.random.key(0)), tau)
    check_rule(mechanism, params, profiles(np.random.default_rng(8), 24, n, 1, reserve),
               lambda b: ref.RULES["teaser_first_price"](b, np.float32(0.25), np.float32(0.7), np.float32(tau),
                                                          reserve))  # fmt: skip


@pytest.mark.parametrize("tau", [0.0, 0.3333, 0.34, 0.6667, 0.99])
def test_declining_reserve_first_price_matches_reference(tau):
    """Pay-your-bid at each phase's reserve (ties at the reserve win, a bid below it loses; one bidder too)."""
    reserves = (0.75, 0.5, 0.0)
    for n in (1, 3):
        mechanism = mechanisms.declining_reserve_first_price(n, reserves)
        params = mechanisms.set_time(mechanism.init(jax.random.key(0)), tau)
        check_rule(mechanism, params, profiles(np.random.default_rng(9), 24, n, 1, 0.5),
                   lambda b: ref.RULES["declining_reserve_first_price"](b, np.float32(reserves), np.float32(tau)))


@pytest.mark.parametrize("tau", [0.0, 0.4, 0.9])
def test_learned_dynamic_first_price_matches_reference(tau):
    """The network's reserve and shares by hand (tests/reference.py), weights drawn wide so that the reserve
    and the shares vary, bids on [0, 1] with bid_scale 1: ties, zeros, bids below the reserve."""
    n = 3
    mechanism = mechanisms.learned_dynamic_first_price(n, hidden=(8, 8), bid_scale=1.0)
    params = mechanism.init(jax.random.key(0))
    leaves, tree = jax.tree.flatten(params.schedule)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    wide = jax.tree.unflatten(tree, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)])
    params = mechanisms.set_time(params._replace(schedule=wide), tau)
    reserve = ref.schedule_net(jax.tree.map(np.asarray, wide), 0.0, float(np.float32(tau)), 1.0)[1]
    check_rule(mechanism, params, profiles(np.random.default_rng(11), 24, n, 1, round(reserve, 2)),
               lambda b: ref.RULES["learned_dynamic_first_price"](b, jax.tree.map(np.asarray, wide),
                                                                  float(np.float32(tau)), 1.0))  # fmt: skip


def test_learned_static_first_price_is_the_network_at_tau_zero():
    """--static: the rule at every point of the horizon is the dynamic network's rule at tau = 0 (the numpy
    reference at tau = 0), and the expected dynamics' schedule with static=True is constant in tau."""
    from jaxauction.train import expected_dynamics as ed

    n = 3
    static = mechanisms.learned_dynamic_first_price(n, hidden=(8, 8), bid_scale=1.0, static=True)
    params = static.init(jax.random.key(0))
    leaves, tree = jax.tree.flatten(params.schedule)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    wide = jax.tree.unflatten(tree, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)])
    reserve = ref.schedule_net(jax.tree.map(np.asarray, wide), 0.0, 0.0, 1.0)[1]
    for tau in (0.0, 0.5, 0.95):
        check_rule(static, mechanisms.set_time(params._replace(schedule=wide), tau),
                   profiles(np.random.default_rng(12), 24, n, 1, round(reserve, 2)),
                   lambda b: ref.RULES["learned_dynamic_first_price"](b, jax.tree.map(np.asarray, wide), 0.0, 1.0))
    market = ed.hedge_mean_field(n, 4, 10, True)
    price = ed.learned_dynamic_schedule(market, (8, 8), 1.0, static=True)
    early, late = price(wide, jnp.float32(0.0)), price(wide, jnp.float32(0.9))
    np.testing.assert_array_equal(np.asarray(early[0]), np.asarray(late[0]))
    dynamic = ed.learned_dynamic_schedule(market, (8, 8), 1.0)
    assert not np.array_equal(np.asarray(dynamic(wide, jnp.float32(0.9))[0]), np.asarray(late[0]))


@pytest.mark.parametrize(("menu", "n", "m", "demand"), [
    ("lottery", 2, 2, "additive"), ("lottery", 1, 3, "additive"), ("lottery", 3, 5, "additive"),
    ("lottery", 2, 3, "unit"), ("deterministic", 2, 2, "additive"), ("deterministic", 3, 2, "unit"),
])  # fmt: skip
def test_affine_maximizer_matches_reference(menu, n, m, demand):
    """Random weights, boosts and lotteries; ties (the levels: exact in float32), zeros, one bidder, five items.
    The deterministic menu at unit weights and zero boosts is VCG, ties going to the first entry of its menu."""
    mechanism = mechanisms.affine_maximizer(n, m, menu, menu_size=32, demand=demand, logit_scale=2.0)
    params = mechanism.init(jax.random.key(n * 10 + m))
    rng = np.random.default_rng(n * 10 + m)
    bids = profiles(rng, 32, n, m, 0.5)
    allocations = np.asarray(
        mechanisms.deterministic_menu(n, m, demand) if menu == "deterministic"
        else mechanisms.affine_maximizer_menu(params, n, demand)[0])  # fmt: skip
    check_rule(mechanism, params, bids, lambda b: ref.RULES["affine_maximizer"](b, allocations, np.ones(n),
                                                                               np.zeros(len(allocations))))
    wide = {**params, "log_weights": jnp.asarray(rng.normal(0, 0.5, n), jnp.float32),
            "boosts": jnp.asarray(rng.normal(0, 0.3, len(allocations)), jnp.float32)}  # fmt: skip
    check_rule(mechanism, wide, bids, lambda b: ref.RULES["affine_maximizer"](
        b, allocations, np.exp(np.asarray(wide["log_weights"], np.float64)), np.asarray(wide["boosts"], np.float64)))


@pytest.mark.parametrize(("n", "shared"), [(1, False), (2, False), (3, True), (5, False)])
def test_myersonnet_matches_reference(n, shared):
    """Random per-bidder (or shared) networks with intercepts above 0 for some bidders (who then clear the reserve
    at any bid and pay 0 when alone), per-bidder scales; ties, zeros, bids below the reserve. The reference finds
    each threshold by bisection on the network, not by inverting it."""
    rng = np.random.default_rng(n)
    scales = rng.uniform(0.5, 2.0, n)
    mechanism = mechanisms.myersonnet(n, 4, 3, bid_scale=scales, shared=shared)
    shape = (1 if shared else n, 4, 3)
    params = {"log_slopes": jnp.asarray(rng.normal(0, 1, shape), jnp.float32),
              "intercepts": jnp.asarray(rng.uniform(-1.0, 0.3, shape), jnp.float32)}  # fmt: skip
    reference = ref.RULES["myersonnet"]
    check_rule(mechanism, params, profiles(rng, 48, n, 1, 0.5), lambda b: reference(
        b, np.asarray(params["log_slopes"], np.float64), np.asarray(params["intercepts"], np.float64),
        np.asarray(np.float32(scales), np.float64)))


def test_entry_fee_and_budgets_match_reference():
    n, fee, budgets, penalties = 3, 0.1, (0.4, 0.8, 1.0), (0.05, 0.0, 0.2)
    inner = mechanisms.second_price(n, reserve=0.25)
    bids = profiles(np.random.default_rng(4), 48, n, 1, 0.25)
    inner_ref = lambda b: ref.RULES["second_price"](b, reserve=0.25)  # noqa: E731
    entry = mechanisms.with_entry_fee(inner, fee)
    check_rule(entry, entry.init(jax.random.key(0)), bids, lambda b: ref.RULES["with_entry_fee"](b, inner_ref, fee))
    budgeted = mechanisms.with_budgets(mechanisms.first_price(n), budgets, penalties)
    fp_ref = lambda b: ref.RULES["first_price"](b)  # noqa: E731
    check_rule(budgeted, budgeted.init(jax.random.key(0)), bids,
               lambda b: ref.RULES["with_budgets"](b, fp_ref, budgets, penalties))  # fmt: skip


@settings(max_examples=15, deadline=None)
@given(
    bids=st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 0.3, 0.9]), min_size=4, max_size=4),
    reserve=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.5]),
    rule=st.sampled_from(SINGLE),
)
def test_rules_match_reference_on_hypothesis_profiles(bids, reserve, rule):
    mechanism = _four_bidder_rules()[rule]
    params = mechanism.init(jax.random.key(0))._replace(reserve=jnp.float32(reserve))  # a param: no recompile
    b = np.asarray(bids, np.float32)[None, :, None]
    check_rule(mechanism, params, b, lambda x: ref.RULES[rule](x, reserve=reserve))


_CACHE: dict = {}


def _four_bidder_rules():
    if not _CACHE:
        _CACHE.update({name: getattr(mechanisms, name)(4) for name in SINGLE})
    return _CACHE


# --- utilities and metrics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("demand", ["additive", "unit"])
def test_utilities_and_metrics_match_reference(demand):
    rng = np.random.default_rng(5)
    n, m = 3, 2
    for _ in range(30):
        values = rng.choice(LEVELS, (n, m)).astype(np.float64)
        if demand == "unit":  # a lottery over single items per bidder, or a 0/1 bundle
            raw = rng.uniform(0, 1, (n, m + 1))
            allocation = raw[:, :m] / raw.sum(axis=1, keepdims=True) if rng.uniform() < 0.5 else rng.integers(
                0, 2, (n, m)).astype(np.float64)  # fmt: skip
        else:
            allocation = rng.dirichlet(np.ones(n + 1), m).T[:n]  # columns sum to at most 1
        payments = rng.uniform(-0.5, 1.5, n)
        types = Types(values=jnp.asarray(values, jnp.float32))
        out = Outcome(jnp.asarray(allocation, jnp.float32), jnp.asarray(payments, jnp.float32))
        cases = [("quasi_linear", quasi_linear(), None), ("crra", crra(0.5), 0.5), ("cara", cara(2.0), 2.0),
                 ("seller", seller(), None)]  # fmt: skip
        if demand == "unit":
            cases = [("quasi_linear", unit_demand(), None)]
        for name, u, a in cases:
            expected = ref.utility(name, values, allocation, payments, a=a or 0.5, demand=demand)
            got = np.asarray(u.apply(types, out, u.init_params()))
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6, err_msg=f"{name}, {demand}")
        if demand == "additive":
            assert float(revenue(out)) == pytest.approx(ref.revenue(payments), rel=1e-5, abs=1e-6)
            assert float(welfare(types, out)) == pytest.approx(ref.welfare(values, allocation), rel=1e-5, abs=1e-6)
            for units in (1, 2):
                assert float(optimal_welfare(types, units)) == pytest.approx(ref.optimal_welfare(values, units))


# --- learned mechanisms: feasibility and individual rationality ------------------------------------------------


def _learned():
    return [
        (mechanisms.deep_payment(3), 3, 1, "charged"),
        (mechanisms.deep_payment(3, winner_only=True), 3, 1, "winner"),
        (mechanisms.anonymous_payment(3), 3, 1, "charged"),
        (mechanisms.learned_allocation(3), 3, 1, "winner"),
        (mechanisms.regretnet(2, 3), 2, 3, "additive"),
        (mechanisms.regretnet(2, 3, demand="unit"), 2, 3, "unit"),
        (mechanisms.rochetnet(2, menu_size=64), 1, 2, "additive"),
        (mechanisms.rochetnet(3, menu_size=64, demand="unit"), 1, 3, "unit"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_learned_mechanisms_are_feasible_and_individually_rational(index):
    mechanism, n, m, kind = _learned()[index]
    bids = profiles(np.random.default_rng(index), 32, n, m, 0.5)
    for seed in range(2):  # several random initialisations
        params = mechanism.init(jax.random.key(seed))
        allocations, payments = sampled_outcomes(mechanism, params, bids, keys=4)
        assert np.all(allocations >= -1e-7) and np.all(allocations.sum(axis=-2) <= mechanism.units + 1e-5)
        b = bids[:, None].astype(np.float64)
        if kind == "unit":  # at most one item per bidder in expectation
            assert np.all(allocations.sum(axis=-1) <= 1 + 1e-5)
        if kind in ("additive", "unit", "winner"):  # truthful utility never negative
            assert np.all((allocations * b).sum(-1) - payments >= -1e-5)
        if kind == "charged":  # every bidder pays a share of its bid, the shares sum to one
            assert np.all(payments >= -1e-7) and np.all(payments <= b[..., 0] + 1e-5)
        if kind in ("charged", "winner") and n > 1:  # the seed's highest-bid allocation, where the rule has one
            if mechanism.name != "deep_allocation":
                for p in range(bids.shape[0]):
                    support = ref.first_price(list(bids[p, :, 0].astype(np.float64)))
                    assert any(np.allclose(allocations[p, 0], a) for _, a, _ in support)


# --- regret: the library's search against exhaustive search on a fine grid --------------------------------------


@pytest.mark.parametrize(("name", "n"), [
    pytest.param("first_price", 2, marks=pytest.mark.slow), pytest.param("second_price", 3, marks=pytest.mark.slow),
    pytest.param("third_price", 3, marks=pytest.mark.slow), pytest.param("all_pay", 2, marks=pytest.mark.slow),
    pytest.param("all_pay", 3, marks=pytest.mark.slow),
])  # fmt: skip
def test_ex_post_regret_matches_exhaustive_search(name, n):
    """On 6 random profiles, the library's regret (gradient + grid + breakpoint search) is within one fine-grid
    step of exhaustive search over 501 reports."""
    mechanism = getattr(mechanisms, name)(n, reserve=0.2)
    values = np.random.default_rng(n).uniform(0, 1, (6, n, 1)).astype(np.float32)
    protocol = Protocol(profiles=6, random_starts=2, steps=50)
    keys = jax.random.split(jax.random.key(1), 6)
    found = profile_regret(mechanism, mechanism.init(jax.random.key(0)), jnp.asarray(values), keys,
                           jnp.zeros((n, 1)), jnp.ones((n, 1)), protocol)  # fmt: skip
    library = np.asarray(found.regret, np.float64)
    grid = np.linspace(0, 1, 501)
    rule = lambda b: ref.RULES[name](b, reserve=0.2)  # noqa: E731
    for p in range(6):
        exact = ref.ex_post_regret(rule, values[p].astype(np.float64), grid)
        np.testing.assert_allclose(library[p], exact, atol=2.5e-3, err_msg=f"{name} values {values[p].ravel()}")


def test_procurement_efficiency_is_cost_based():
    """Truthful second-price procurement, 3 sellers, U[0,1] costs: the cheapest seller always supplies (efficiency
    1) and the buyer pays E[second-lowest cost] = 1/2. Buyer-style efficiency gave E[min]/E[max] = 1/3 here."""
    from jaxauction import Market, UniformPrior, init_params, population, run_round, truthful
    from jaxauction.metrics import cheapest_cost

    rng = np.random.default_rng(6)
    for _ in range(20):
        costs = rng.uniform(0, 1, (3, 2))
        allocation = rng.dirichlet(np.ones(4), 2).T[:3]
        cheapest, realised = ref.procurement_costs(costs, allocation)
        got = cheapest_cost(Types(values=jnp.asarray(costs, jnp.float32)), Outcome(jnp.asarray(allocation), None))
        assert float(got) == pytest.approx(cheapest, rel=1e-5)
        assert float(welfare(Types(values=jnp.asarray(costs)), Outcome(jnp.asarray(allocation), None))) == (
            pytest.approx(realised, rel=1e-5))  # fmt: skip
    market = Market(mechanisms.procurement(3, "second_price"), population(truthful(3)), UniformPrior(0.0, 1.0),
                    seller())  # fmt: skip
    key = jax.random.key(0)
    params = init_params(market, key)
    _, metrics = run_round(market, 40_000, 40_000, params, market.population.init(key, params.learners), key)
    np.testing.assert_allclose(metrics.efficiency, 1.0, rtol=1e-6)
    assert float(metrics.revenue[0]) == pytest.approx(-0.5, abs=4 * 0.2236 / np.sqrt(40_000))  # sd of v(2) = 0.2236
    # a random seller supplies
    unfair = Market(mechanisms.random_allocation(3), population(truthful(3)), UniformPrior(0.0, 1.0), seller())
    _, metrics = run_round(unfair, 40_000, 40_000, params._replace(mechanism=unfair.mechanism.init(key)),
                           unfair.population.init(key, params.learners), key)  # fmt: skip
    assert float(metrics.efficiency[0]) == pytest.approx(0.25 / 0.5, abs=0.01)  # E[min of 3] / E[cost] = 1/2
