"""The regret audit's cost: presets, the convergence check on a subsample, menu enumeration for exactly-IC menus
(no gradient search), chunked host calls equal to one call, and the estimate printed before the audit runs."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.mechanisms.base import Mechanism
from jaxauction.regret import AUDITS, Protocol, _profiles, _search, best_misreports, evaluate, profile_regret
from jaxauction.types import Outcome
from tests import reference

U01 = ja.UniformPrior(0.0, 1.0)
KEY = jax.random.key(0)
GRID_ONLY = dict(random_starts=0, steps=0, revenue_profiles=0, interim=False)


def test_presets_fill_what_is_unset_and_the_report_states_them():
    standard = Protocol(audit="standard").resolved()
    assert (standard.profiles, standard.random_starts, standard.steps, standard.stronger) == (10_000, 8, 200, 2)
    assert standard.check_profiles == 1_000 and Protocol().resolved().random_starts == 16  # strong by default
    mine = Protocol(audit="quick", profiles=300).resolved()
    assert mine.profiles == 300 and mine.steps == AUDITS["quick"]["steps"]  # an explicit field wins
    with pytest.raises(ValueError, match="unknown audit 'huge'"):
        Protocol(audit="huge")
    with pytest.raises(ValueError, match="check_profiles must be an integer >= 1"):
        Protocol(check_profiles=0)
    # the cost model: gradient steps count 3 (forward and backward), then the grid's reports and the truthful call
    assert Protocol(audit="standard").work(2, 1) == 2 * (3 * 9 * 200 + 1001 + 2) + 1
    assert Protocol(audit="strong").work(1, 2, menu=1001) == 2 * 1001 + 65 * 65  # scored entries, not evaluations
    report = evaluate(ja.second_price(2), ja.second_price(2).init(None), U01, jax.random.key(0),
                      Protocol(audit="quick", profiles=200, stronger=1, **GRID_ONLY))  # fmt: skip
    assert report.audit == "quick" and report.protocol["profiles"] == 200 and report.protocol["grid"] == -1


def test_the_convergence_check_runs_on_a_subsample_and_compares_like_for_like():
    """First price, 2 bidders: grid search is exact, so a x2 stronger grid finds the same on the subsample."""
    protocol = Protocol(profiles=2_000, check_profiles=500, stronger=2, **GRID_ONLY)
    report = evaluate(ja.first_price(2), ja.first_price(2).init(None), U01, jax.random.key(3), protocol)
    assert report.check_profiles == 500
    assert abs(report.regret_mean - 1 / 6) < 4 * report.regret_se
    assert report.regret_mean_stronger == pytest.approx(report.regret_mean_check, abs=1e-5)
    assert report.regret_change == pytest.approx(report.regret_mean_stronger - report.regret_mean_check)
    # the check's figure is the first 500 profiles' mean, not the whole sample's
    alone = evaluate(ja.first_price(2), ja.first_price(2).init(None), U01, jax.random.key(3),
                     dataclasses.replace(protocol, profiles=500, stronger=1))  # fmt: skip
    assert report.regret_mean_check == pytest.approx(alone.regret_mean, rel=1e-6)
    assert report.regret_mean_check != pytest.approx(report.regret_mean, rel=1e-6)


def shaded_menu(prices, allocations, shade: float) -> Mechanism:
    """A one-item menu that assigns the entry best for ``shade x`` the report: not IC unless shade is 1."""
    allocations, prices = jnp.asarray(allocations, jnp.float32), jnp.asarray(prices, jnp.float32)

    def apply(params, bids, key):
        best = jnp.argmax(allocations[:, 0] * shade * bids[0, 0] - prices)
        return Outcome(allocation=allocations[best][None], payments=prices[best][None])

    return Mechanism("shaded_menu", 1, 1, lambda key: (), apply, menu=lambda params: (allocations, prices))


def test_menu_enumeration_finds_the_best_reachable_entry_and_skips_the_gradient_search():
    allocations = [[0.0], [0.3], [0.6], [1.0]]
    prices = [0.0, 0.05, 0.15, 0.4]
    values = jax.random.uniform(jax.random.key(0), (400, 1, 1))
    keys = jax.random.split(jax.random.key(1), 400)
    low, high = jnp.zeros((1, 1)), jnp.ones((1, 1))
    for shade, exact_ic in ((1.0, True), (0.7, False)):
        mech = shaded_menu(prices, allocations, shade)
        found = profile_regret(mech, (), values, keys, low, high, Protocol(steps=0, grid=2001))
        menu_gain, grid_gain = np.asarray(found.menu_gain[:, 0]), np.asarray(found.grid_gain[:, 0])
        assert np.all(menu_gain >= grid_gain - 1e-6)  # the enumeration bounds every report's gain
        if exact_ic:
            assert np.all(np.asarray(found.regret) == 0.0)
        else:
            # every entry is reachable by some report in [0, 1] (the last one from 0.35 / 0.7 = 0.5 up), so the
            # enumeration is the exact best gain; the grid's reports find it to their resolution
            assert menu_gain.max() > 0.01
            np.testing.assert_allclose(menu_gain, grid_gain, atol=2e-3)
    report = evaluate(shaded_menu(prices, allocations, 1.0), (), U01, jax.random.key(0),
                      Protocol(profiles=300, revenue_profiles=0, interim=False))  # fmt: skip
    assert report.searches == ("grid", "menu") and report.regret_mean == 0.0
    assert any("gradient" in why for why in report.skipped) and report.regret_mean_stronger is None


@pytest.mark.parametrize("shade", [1.0, 0.7])
def test_a_menus_grid_equals_the_generic_grid_search(shade):
    """The grid's outcomes computed once and enumerated per profile give the generic grid search's gains."""
    rng = np.random.default_rng(0)
    allocations = np.sort(rng.uniform(size=(40, 1)), axis=0)
    prices = np.sort(rng.uniform(0, 0.8, size=40))
    mech = shaded_menu(prices, allocations, shade)
    values = jax.random.uniform(jax.random.key(0), (100, 1, 1))
    keys = jax.random.split(jax.random.key(1), 100)
    low, high = jnp.zeros((1, 1)), jnp.ones((1, 1))
    protocol = Protocol(steps=0, grid=201)
    fast = profile_regret(mech, (), values, keys, low, high, protocol)
    generic = profile_regret(dataclasses.replace(mech, menu=None), (), values, keys, low, high, protocol)
    np.testing.assert_allclose(np.asarray(fast.grid_gain), np.asarray(generic.grid_gain), atol=1e-6)
    assert shade == 1.0 or float(jnp.max(generic.grid_gain)) > 0.01  # the shaded menu is not IC: gains to find


def test_rochetnet_with_a_thousand_entries_audits_to_exactly_zero_under_the_strong_preset():
    mech = ja.mechanisms.rochetnet(2, menu_size=1000)
    params = mech.init(jax.random.key(0))
    report = evaluate(mech, params, U01, jax.random.key(1), Protocol(audit="strong", profiles=2_000, interim=False))
    assert report.searches == ("grid", "menu") and report.regret_max == 0.0 and report.regret_mean == 0.0


def test_rochetnet_is_audited_by_its_menu():
    mech = ja.mechanisms.rochetnet(2, menu_size=50, price_scale=1.0, demand="unit")
    params = mech.init(jax.random.key(0))
    report = evaluate(mech, params, U01, jax.random.key(1), Protocol(audit="quick", profiles=200, interim=False),
                      utility=ja.unit_demand())  # fmt: skip
    assert report.searches == ("grid", "menu") and report.regret_max == 0.0 and report.check_profiles is None


def test_host_chunks_give_the_one_call_results(capsys):
    mech = ja.first_price(3)
    values = jax.random.uniform(jax.random.key(0), (600, 3, 1))
    keys = jax.random.split(jax.random.key(1), 600)
    search = jax.random.split(jax.random.key(2), 600)
    low, high = jnp.zeros((3, 1)), jnp.ones((3, 1))
    protocol = Protocol(random_starts=1, steps=5, grid=51).resolved()
    params = mech.init(None)
    program = lambda v, k, sk: _profiles(mech, params, v, k, low, high, protocol, sk, None, ())  # noqa: E731
    whole = jax.jit(program)(values, keys, search)
    chunked, _ = _search(program, (values, keys, search), 600, "test", progress=False)  # 3 chunks, the last padded
    for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_the_cost_and_an_estimate_are_printed_before_the_audit(capsys):
    evaluate(ja.first_price(2), ja.first_price(2).init(None), U01, jax.random.key(0),
             Protocol(audit="standard", profiles=600, random_starts=1, steps=10, revenue_profiles=0, interim=False),
             progress=True)  # fmt: skip
    err = capsys.readouterr().err
    assert "regret audit (standard): 600 profiles, 2 bidder(s) x (gradient: 2 starts x 10 steps, grid: 1,003 reports)" \
        in err
    assert "convergence check x2 on 600 profiles" in err and "mechanism evaluations" in err
    assert re.search(r"(256|512) profiles done, the last 256 in [0-9.]+ s: about \d+ s more on this device", err)


@pytest.mark.parametrize("demand", ["additive", "unit"])
def test_menu_enumeration_matches_numpy_on_a_large_two_item_menu(demand):
    """1,001 entries, two items, under jit: the case XLA:CPU miscompiled when the entries were a vmap."""
    mech = ja.mechanisms.rochetnet(2, menu_size=1000, price_scale=1.0, demand=demand)
    params = mech.init(jax.random.key(0))
    allocations, prices = (np.asarray(x, np.float64) for x in mech.menu(params))
    values = jax.random.uniform(jax.random.key(1), (300, 1, 2))
    utility = ja.unit_demand() if demand == "unit" else ja.quasi_linear()
    keys, low, high = jax.random.split(jax.random.key(2), 300), jnp.zeros((1, 2)), jnp.ones((1, 2))
    search = jax.jit(lambda v: profile_regret(mech, params, v, keys, low, high, Protocol(steps=0, grid=0),
                                              utility=utility))  # fmt: skip
    found = search(values)
    v = np.asarray(values, np.float64)[:, 0]  # [P, 2]; unit-demand lotteries sum to at most 1: the same sum
    best = np.max(v @ allocations.T - prices[None], axis=1)
    np.testing.assert_allclose(np.asarray(found.menu_gain[:, 0]) + np.asarray(found.truthful_utility[:, 0]), best,
                               atol=1e-5)  # fmt: skip
    assert np.all(np.asarray(found.regret) == 0.0)  # the argmax menu is exactly IC
    # a bundle sold to a unit-demand bidder is worth its best item: the enumeration scores that, not the sum
    bundle = shaded_menu([0.0, 0.5], [[0.0], [1.0]], 1.0)
    bundle = dataclasses.replace(bundle, n_items=2, apply=lambda p, b, k: Outcome(jnp.zeros((1, 2)), jnp.zeros((1,))),
                             menu=lambda p: (jnp.array([[0.0, 0.0], [1.0, 1.0]]), jnp.array([0.0, 0.5])))
    gains = jax.jit(lambda v: profile_regret(bundle, (), v, keys, low, high, Protocol(steps=0, grid=0),
                                             utility=ja.unit_demand()))(values).menu_gain[:, 0]  # fmt: skip
    np.testing.assert_allclose(np.asarray(gains), np.maximum(v.max(axis=1) - 0.5, 0.0), atol=1e-6)


def _numpy_coordinate_search(mechanism, params, values, low, high, points, sweeps, step=1e-6):
    """The coordinate search written out in numpy loops: per bidder, from the truthful report, ``sweeps`` passes
    over the items, each moving one item to the best point of its line (grid, others' bids, just above them)
    when it beats the current report; returns the best gain ``[n]``. Outcomes come from ``mechanism.apply``."""
    apply = jax.jit(lambda b: mechanism.apply(params, b, KEY))
    n, m = values.shape

    def utility(i, report):
        bids = values.copy()
        bids[i] = report
        out = apply(jnp.asarray(bids))
        return float(np.dot(np.asarray(out.allocation[i], np.float64), values[i]) - float(out.payments[i]))

    gains = []
    for i in range(n):
        base = utility(i, values[i])
        report, best = values[i].copy(), base
        for _ in range(sweeps):
            for j in range(m):
                others = np.delete(values[:, j], i)
                width = high[i, j] - low[i, j]
                line = np.concatenate([np.linspace(0, 1, points, dtype=np.float32) * width + low[i, j], others,
                                       np.minimum(others + step * width, high[i, j])])  # fmt: skip
                scores = []
                for r in line:
                    tried = report.copy()
                    tried[j] = r
                    scores.append(utility(i, tried))
                here = utility(i, report)
                if max(scores) > here:
                    report[j] = line[int(np.argmax(scores))]
                best = max(best, max(scores), here)
        gains.append(best - base)
    return np.array(gains)


def test_the_coordinate_search_matches_numpy_and_is_exact_for_items_sold_separately():
    """Beyond two items (where the grid stops): the coordinate search against the numpy loops above on
    simultaneous first and second price (2 and 3 bidders, 3 and 4 items, ties included), and against the closed
    form for simultaneous first price with 2 bidders: the best deviation bids just above the other's value on
    every item it values more, so rgt_i = sum_j max(0, v_ij - v_-i,j - 1e-6) (truthful utility is 0). The gradient
    search alone finds less (hard allocations)."""
    rng = np.random.default_rng(7)
    for rule, n, m in (("first_price", 2, 3), ("second_price", 3, 4), ("first_price", 3, 4)):
        mechanism = ja.make_mechanism(rule, n, m)
        values = rng.uniform(0, 1, (2, n, m)).astype(np.float32)
        values[0, 1] = values[0, 0]  # ties
        low, high = np.zeros((n, m), np.float32), np.ones((n, m), np.float32)
        params = mechanism.init(KEY)
        found = jax.jit(lambda v, mechanism=mechanism, params=params, low=low, high=high: profile_regret(
            mechanism, params, v, jnp.broadcast_to(KEY, (2,)), low, high, Protocol(coordinate=9, sweeps=2, **GRID_ONLY)
        ).coordinate_gain)(jnp.asarray(values))  # jitted: op by op, the search takes twice as long
        for p in range(2):
            expected = _numpy_coordinate_search(mechanism, params, values[p], low, high, 9, 2)
            np.testing.assert_allclose(np.asarray(found[p]), expected, atol=2e-6)
    mechanism = ja.make_mechanism("first_price", 2, 5)
    values = rng.uniform(0, 1, (200, 2, 5)).astype(np.float32)
    protocol = Protocol(coordinate=65, sweeps=1, **GRID_ONLY)
    params = mechanism.init(KEY)
    found = jax.jit(lambda v: profile_regret(mechanism, params, v, jax.random.split(KEY, 200), jnp.zeros((2, 5)),
                                             jnp.ones((2, 5)), protocol).regret)(jnp.asarray(values))  # fmt: skip
    closed = np.maximum(0.0, values - values[:, ::-1] - 1e-6).sum(axis=2)  # [P, 2]
    np.testing.assert_allclose(np.asarray(found), closed, atol=1e-5)
    report = evaluate(mechanism, params, U01, KEY, Protocol(profiles=200, random_starts=0, steps=2, stronger=1,
                                                         revenue_profiles=0, interim=False))  # fmt: skip
    assert report.searches == ("gradient", "coordinate") and report.regret_mean == pytest.approx(5 / 6, abs=0.06)
    assert Protocol().coordinate_points(2) == 0 and Protocol().coordinate_points(10) == 65
    assert Protocol(audit="quick").strengthened(10).coordinate == 129 and Protocol().strengthened(10).sweeps == 8
    with pytest.raises(ValueError, match="coordinate must be"):
        Protocol(coordinate=1)


def test_the_convergence_curve_strengthens_the_protocol_on_the_same_profiles():
    """First price, 2 bidders x 3 items, the coordinate search alone: each factor k multiplies the line's points
    and the sweeps (its reports contain the weaker search's), so on the same profiles the estimate never falls;
    the work per profile grows with k; factor 1 is the protocol's own audit; the estimate is the closed form's
    mean 1/2 (the best deviation bids just above the other's value on each item it values more)."""
    mechanism = ja.make_mechanism("first_price", 2, 3)
    params = mechanism.init(KEY)
    protocol = Protocol(profiles=100, coordinate=5, sweeps=1, stronger=1, **GRID_ONLY)
    rows = ja.convergence_curve(mechanism, params, U01, KEY, protocol, (1, 2, 4))
    assert [r["factor"] for r in rows] == [1, 2, 4]
    regret, work = [r["regret_mean"] for r in rows], [r["work_per_profile"] for r in rows]
    assert regret[0] <= regret[1] <= regret[2] and work[0] < work[1] < work[2]
    assert work[0] == 1 + 2 * 1 * 3 * (5 + 2) and work[1] == 1 + 2 * 2 * 3 * (9 + 2)  # truthful + sweeps x m x line
    own = evaluate(mechanism, params, U01, KEY, dataclasses.replace(protocol, revenue_profiles=0, interim=False))
    assert own.regret_mean == regret[0] and own.work_per_profile == work[0]
    assert abs(regret[2] - 0.5) < 4 * rows[2]["regret_se"]  # E sum_j max(0, v_ij - v_-i,j) = 3 x 1/6
    with pytest.raises(ValueError, match="factors must be positive integers"):
        ja.convergence_curve(mechanism, params, U01, KEY, protocol, (0,))


def test_the_training_searchs_random_restarts_keep_each_bidders_best_report_as_numpy_scores_them():
    """``best_misreports`` (the trainer's ``misreport_candidates``): per profile and bidder, the best of the cached
    misreport and the fresh uniform reports by that bidder's deviation utility, scored here by the numpy reference
    (simultaneous first price, 3 bidders x 2 items on U[0, 2]); the cached one is kept unless a candidate beats it,
    so the deviation utility never falls; the same key gives the same reports, another key others."""
    n, m, d, count = 3, 2, 6, 5
    mechanism = ja.make_mechanism("first_price", n, m)
    params = mechanism.init(KEY)
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 2, (d, n, m)).astype(np.float32)
    cached = rng.uniform(0, 2, (d, n, m)).astype(np.float32)
    cached[0] = values[0]  # truthful: a first-price bidder gains by shading, so a candidate should win here
    low, high = np.zeros((n, m), np.float32), np.full((n, m), 2.0, np.float32)
    keys = jnp.broadcast_to(KEY, (d,))
    key = jax.random.key(11)
    best = np.asarray(best_misreports(mechanism, params, jnp.asarray(values), jnp.asarray(cached), keys, low, high,
                                      key, count))  # fmt: skip
    fresh = [np.asarray(jax.random.uniform(k, values.shape)) * 2.0 for k in jax.random.split(key, count)]

    def deviation(p: int, i: int, report: np.ndarray) -> float:
        bids = values[p].astype(np.float64).copy()
        bids[i] = report
        allocation, payments = reference.expectation(reference.simultaneous(bids, [reference.first_price] * m))
        return float(reference.utility("quasi_linear", values[p], allocation, payments)[i])

    chosen = 0
    for p in range(d):
        for i in range(n):
            tried = [cached[p, i], *(f[p, i] for f in fresh)]
            scores = [deviation(p, i, r) for r in tried]
            winner = int(np.argmax(scores))  # the first of equal scores: the cached one on a tie
            np.testing.assert_allclose(best[p, i], tried[winner], atol=1e-6)
            assert deviation(p, i, best[p, i]) >= scores[0] - 1e-6
            chosen += winner > 0
    assert chosen > 0  # some candidate beat some cached report (else the test would not exercise the choice)
    again = best_misreports(mechanism, params, jnp.asarray(values), jnp.asarray(cached), keys, low, high, key, count)
    other = best_misreports(mechanism, params, jnp.asarray(values), jnp.asarray(cached), keys, low, high,
                            jax.random.key(12), count)  # fmt: skip
    assert np.array_equal(np.asarray(again), best) and not np.array_equal(np.asarray(other), best)


def test_the_training_refinement_keeping_its_best_is_at_least_its_start_and_its_last_step():
    """``refine_misreports(keep_best=True)`` hands back, per profile and bidder, a report whose deviation utility
    is at least the start's and the last step's (which ``keep_best=False`` returns, as the reference trains).
    Simultaneous first price from truthful reports: a winner's gradient says bid less, and the fixed-size Adam
    steps walk its bids below the other's, where it loses everything; the best kept is a winning shaded bid."""
    from jaxauction.regret import deviation_utilities, refine_misreports

    mechanism = ja.make_mechanism("first_price", 2, 2)
    params = mechanism.init(KEY)
    values = jax.random.uniform(jax.random.key(4), (64, 2, 2))
    keys = jnp.broadcast_to(KEY, (64,))
    low, high = jnp.zeros((2, 2)), jnp.ones((2, 2))
    utility = jax.vmap(deviation_utilities, (None, None, 0, 0, 0))
    last = refine_misreports(mechanism, params, values, values, keys, low, high, 30, 0.1)
    kept = refine_misreports(mechanism, params, values, values, keys, low, high, 30, 0.1, keep_best=True)
    u_start, u_last, u_kept = (np.asarray(utility(mechanism, params, values, r, keys)) for r in (values, last, kept))
    assert np.all(u_kept >= u_start - 1e-6) and np.all(u_kept >= u_last - 1e-6)
    assert np.mean(u_kept > u_last + 1e-3) > 0.2  # the last step is often not the best: the option matters
    none = refine_misreports(mechanism, params, values, values, keys, low, high, 0, 0.1, keep_best=True)
    np.testing.assert_array_equal(none, values)
