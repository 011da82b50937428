"""Exact expectations: every rule's revenue, utilities and efficiency under truthful bidding, by enumeration.

For small discrete priors (3 bidders with values 0..4 is 125 profiles; 2 bidders and 2 items with values 0..3 is
256), the expectations are finite sums over every profile and every tie-break, computed with the numpy
reference (``tests/reference.py``). The library's market (prior, truthful bidders, rule, utility, the compensated
window sums of ``run_round``) estimates them by Monte Carlo; each must lie within 4 standard errors, computed
from the exact variance. Continuous closed forms (second price and its reserve curve, Myerson, multi-unit, VCG,
ex post and interim regrets) are asserted the same way.
"""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
import pytest

import jaxauction as ja
import jaxauction.mechanisms as mechanisms
from jaxauction.regret import Protocol, evaluate, interim_regret
from tests import reference as ref

AUCTIONS = 100_000
KEY = jax.random.key(2024)


def enumerate_exact(rule, n: int, m: int, levels, utility: str = "quasi_linear", units: int = 1, a: float = 0.5):
    """Exact means and variances per auction of revenue, utilities, and the efficiency's linearised term, over
    every profile of ``levels`` (uniform, independent) and every tie-break of the reference ``rule``."""
    rows = []  # (probability, revenue, utilities [n], achieved, best)
    profiles = list(itertools.product(levels, repeat=n * m))
    for flat in profiles:
        values = np.asarray(flat, np.float64).reshape(n, m)
        for p, allocation, payments in rule(values):
            u = ref.utility(utility, values, allocation, payments, a=a)
            if utility == "seller":
                achieved, best = ref.procurement_costs(values, allocation)
            else:
                achieved, best = ref.welfare(values, allocation), ref.optimal_welfare(values, units)
            rows.append((p / len(profiles), ref.revenue(payments), u, achieved, best))
    w = np.array([r[0] for r in rows])
    revenue = np.array([r[1] for r in rows])
    utilities = np.array([r[2] for r in rows])
    achieved, best = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    mean = lambda x: np.tensordot(w, x, axes=1)  # noqa: E731
    var = lambda x: mean(x**2) - mean(x) ** 2  # noqa: E731
    efficiency = mean(achieved) / mean(best) if mean(best) > 0 else 1.0
    linear = achieved - efficiency * best  # the delta method's term: Var(efficiency) = Var(linear) / (N E[best]^2)
    return {
        "revenue": (mean(revenue), var(revenue)),
        "utility": (mean(utilities), var(utilities)),
        "efficiency": (efficiency, var(linear) / max(mean(best), 1e-12) ** 2),
    }


def market_estimate(mechanism, prior, utility=None, n_auctions: int = AUCTIONS):
    market = ja.Market(mechanism, ja.population(ja.truthful(mechanism.n_bidders)), prior, utility or ja.quasi_linear())
    params = ja.init_params(market, KEY)
    states = market.population.init(KEY, params.learners)
    _, metrics = jax.jit(lambda p, s, k: ja.run_round(market, n_auctions, n_auctions, p, s, k))(params, states, KEY)
    return float(metrics.revenue[0]), np.asarray(metrics.utility[0], np.float64), float(metrics.efficiency[0])


def assert_within(estimate, exact_mean, exact_var, what, n_auctions: int = AUCTIONS):
    se = np.sqrt(np.maximum(exact_var, 0.0) / n_auctions)
    gap = np.abs(np.asarray(estimate) - exact_mean)
    assert np.all(gap <= 4 * se + 1e-6), f"{what}: estimate {estimate} vs exact {exact_mean} (se {se})"


def single(name, **options):
    return lambda v: ref.RULES[name](v, **options)


INT04 = ja.UniformIntPrior(0, 4)
CASES = {
    "first_price_reserve": (mechanisms.first_price(3, reserve=2.0), single("first_price", reserve=2.0), 3, 1),
    "second_price": (mechanisms.second_price(3), single("second_price"), 3, 1),
    "second_price_reserve": (mechanisms.second_price(3, reserve=3.0), single("second_price", reserve=3.0), 3, 1),
    "third_price": (mechanisms.third_price(4), single("third_price"), 4, 1),
    "all_pay_reserve": (mechanisms.all_pay(3, reserve=1.0), single("all_pay", reserve=1.0), 3, 1),
    "prize_all_pay": (mechanisms.prize_all_pay(3, (0.7, 0.3)), single("prize_all_pay", prizes=(0.7, 0.3)), 3, 1),
    "random_allocation": (mechanisms.random_allocation(3, 2.0), single("random_allocation", reserve=2.0), 3, 1),
    "discrete_myerson": (mechanisms.discrete_myerson(3, 2.0), single("discrete_myerson", reserve=2.0), 3, 1),
    "multi_unit_uniform": (mechanisms.multi_unit(4, 2), single("multi_unit", units=2), 4, 1),
    "multi_unit_pay_as_bid": (mechanisms.multi_unit(4, 2, "pay_as_bid", 1.0),
                              single("multi_unit", units=2, pricing="pay_as_bid", reserve=1.0), 4, 1),
    "entry_fee": (mechanisms.with_entry_fee(mechanisms.second_price(3), 0.5),
                  lambda v: ref.RULES["with_entry_fee"](v, single("second_price"), 0.5), 3, 1),
    "budgets": (mechanisms.with_budgets(mechanisms.first_price(3), 2.5, 0.5),
                lambda v: ref.RULES["with_budgets"](v, single("first_price"), (2.5,) * 3, (0.5,) * 3), 3, 1),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_truthful_market_matches_exact_enumeration(case):
    mechanism, rule, n, m = CASES[case]
    exact = enumerate_exact(rule, n, m, range(5), units=mechanism.units)
    revenue, utility, efficiency = market_estimate(mechanism, INT04)
    assert_within(revenue, *exact["revenue"], f"{case} revenue")
    assert_within(utility, *exact["utility"], f"{case} utilities")
    assert_within(efficiency, *exact["efficiency"], f"{case} efficiency")


@pytest.mark.slow  # enumerates 1,000 profiles twice and every grid deviation: the default suite stays under 5 min
def test_discrete_myerson_earns_myersons_optimum_and_is_truthful_on_the_grid():
    """The reference rule, enumerated: truthful bidders on 0..9 pay E[max(0, max_i 2 v_i - 9)] = 5.275 (the
    virtual values' closed form, computed apart), and on 0..4 (reserve 2) no report on the grid gains anyone
    anything, in any profile; second price with the same reserve earns less (5.075 on 0..9)."""
    ours = enumerate_exact(single("discrete_myerson", reserve=5.0), 3, 1, range(10))["revenue"][0]
    virtual = np.mean([max(0, 2 * max(v) - 9) for v in itertools.product(range(10), repeat=3)])
    second = enumerate_exact(single("second_price", reserve=5.0), 3, 1, range(10))["revenue"][0]
    assert ours == pytest.approx(virtual, abs=1e-12) and ours == pytest.approx(5.275, abs=1e-12)
    assert second == pytest.approx(203 / 40, abs=1e-12)
    rule, grid = single("discrete_myerson", reserve=2.0), np.arange(5.0)
    for values in itertools.product(range(5), repeat=3):
        assert ref.ex_post_regret(rule, np.asarray(values, np.float64)[:, None], grid).max() < 1e-12, values


@pytest.mark.parametrize("case", ["vcg_decay", "simultaneous_decay"])
def test_two_item_rules_match_exact_enumeration(case):
    levels, prior = range(4), ja.UniformIntPrior(0, 3)
    if case == "vcg_decay":
        mechanism, rule = mechanisms.vcg(2, 2, 0.6), lambda v: ref.RULES["vcg"](v, decay=0.6)
    else:
        mechanism = mechanisms.simultaneous([mechanisms.second_price(2), mechanisms.first_price(2, 1.0)], 0.5)
        per_item = [single("second_price"), single("first_price", reserve=1.0)]
        rule = lambda v: ref.RULES["simultaneous"](v, [lambda b, r=r: r(np.asarray(b)[:, None]) for r in per_item],
                                                   0.5)  # noqa: E731  # fmt: skip
    exact = enumerate_exact(rule, 2, 2, levels)
    revenue, utility, efficiency = market_estimate(mechanism, prior)
    assert_within(revenue, *exact["revenue"], f"{case} revenue")
    assert_within(utility, *exact["utility"], f"{case} utilities")
    assert_within(efficiency, *exact["efficiency"], f"{case} efficiency")


@pytest.mark.parametrize(("utility", "a"), [("crra", 0.5), ("cara", 2.0), ("seller", None)])
def test_utilities_in_the_market_match_exact_enumeration(utility, a):
    """Risk-shaped utilities under first price with a reserve; the seller's under second-price procurement
    (capped at 3), where efficiency is the cheapest over the realised cost (1 for truthful sellers)."""
    if utility == "seller":
        mechanism, rule = mechanisms.procurement(3, "second_price", 3.0), single("procurement", rule="second_price",
                                                                                 ceiling=3.0)  # fmt: skip
        built = ja.seller()
    else:
        mechanism, rule = mechanisms.first_price(3, reserve=1.0), single("first_price", reserve=1.0)
        built = getattr(ja, utility)(a)
    exact = enumerate_exact(rule, 3, 1, range(5), utility=utility, a=a or 0.5)
    revenue, utilities, efficiency = market_estimate(mechanism, INT04, built)
    assert_within(revenue, *exact["revenue"], f"{utility} revenue")
    assert_within(utilities, *exact["utility"], f"{utility} utilities")
    assert_within(efficiency, *exact["efficiency"], f"{utility} efficiency")
    if utility == "seller":
        assert exact["efficiency"][0] == 1.0 and efficiency == pytest.approx(1.0, abs=1e-6)


def second_price_reserve_curve(n: int, r: float) -> float:
    """Truthful second price with reserve r, n i.i.d. U[0,1] bidders: n r^n (1 - r) + E[v(2); v(2) >= r]."""
    return n * r**n * (1 - r) + (n - 1) * (1 - r**n) - n * (n - 1) * (1 - r ** (n + 1)) / (n + 1)


RESERVES = (0.0, 0.25, 0.5, 0.75)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_second_price_reserve_curve_and_myerson(n):
    """(n-1)/(n+1) at reserve 0; Myerson's optimum (n-1)/(n+1) + 2^-n/(n+1) at reserve 1/2 (5/12, 17/32). The
    reserves are params: one compiled market, vmapped over them."""
    curve = [second_price_reserve_curve(n, r) for r in RESERVES]
    assert curve[0] == pytest.approx((n - 1) / (n + 1), abs=1e-12)
    assert curve[2] == pytest.approx((n - 1) / (n + 1) + 2.0**-n / (n + 1), abs=1e-12)
    assert {2: 5 / 12, 3: 17 / 32}.get(n, curve[2]) == pytest.approx(curve[2], abs=1e-12)
    market = ja.Market(mechanisms.second_price(n), ja.population(ja.truthful(n)), ja.UniformPrior(0.0, 1.0))
    params = ja.init_params(market, KEY)
    states = market.population.init(KEY, params.learners)

    def revenue(reserve):
        swept = params._replace(mechanism=params.mechanism._replace(reserve=reserve))
        return ja.run_round(market, AUCTIONS, AUCTIONS, swept, states, KEY)[1].revenue[0]

    found = np.asarray(jax.jit(jax.vmap(revenue))(jax.numpy.asarray(RESERVES, jax.numpy.float32)))
    assert np.all(np.abs(found - np.asarray(curve)) <= 4 * 0.3 / math.sqrt(AUCTIONS))  # revenue's sd < 0.3 here


@pytest.mark.parametrize(("pricing", "exact"), [("uniform", 0.8), ("pay_as_bid", 1.4)])
def test_multi_unit_closed_forms(pricing, exact):
    """2 units, 4 truthful U[0,1] bidders: uniform price 2 E[v(3)] = 0.8; pay-as-bid E[v(1) + v(2)] = 1.4."""
    revenue, _, efficiency = market_estimate(mechanisms.multi_unit(4, 2, pricing), ja.UniformPrior(0.0, 1.0))
    assert abs(revenue - exact) <= 4 * 0.45 / math.sqrt(AUCTIONS)
    assert efficiency == pytest.approx(1.0, abs=1e-6)


def test_vcg_closed_form():
    """Truthful VCG, 2 bidders, 2 additive items U[0,1]: 2 E[min] = 2/3, efficiency 1."""
    revenue, _, efficiency = market_estimate(mechanisms.vcg(2, 2), ja.UniformPrior(0.0, 1.0))
    assert abs(revenue - 2 / 3) <= 4 * 0.34 / math.sqrt(AUCTIONS)
    assert efficiency == pytest.approx(1.0, abs=1e-6)


GRID = Protocol(profiles=3000, random_starts=0, steps=0, stronger=1, revenue_profiles=0, interim=False)


@pytest.mark.parametrize(("name", "n", "exact"), [("first_price", 2, 1 / 6), ("third_price", 3, 1 / 12),
                                                  ("third_price", 4, 1 / 20), ("all_pay", 2, 1 / 3),
                                                  ("all_pay", 3, 1 / 3), ("all_pay", 4, 7 / 20)])  # fmt: skip
def test_ex_post_regret_closed_forms(name, n, exact):
    """Truthful U[0,1] bidders: first price 1/6 (n = 2); third price E[v(2) - v(3)]/n: 1/12, 1/20; all-pay 1/3,
    1/3, 7/20. The grid search with breakpoints finds each best deviation to 1e-6 of the support."""
    rule = getattr(mechanisms, name)(n)
    report = evaluate(rule, rule.init(KEY), ja.UniformPrior(0.0, 1.0), KEY, GRID)
    assert abs(report.regret_mean - exact) <= 4 * report.regret_se + 1e-5, (report.regret_mean, report.regret_se)


@pytest.mark.slow
def test_interim_regret_closed_form():
    """First price, 2 truthful U[0,1] bidders: interim regret E[v^2 / 4] = 1/12, cross-fitted (the report
    chosen on one half of the others' draws, its gain measured on the other half)."""
    rule = mechanisms.first_price(2)
    found = interim_regret(rule, rule.init(KEY), ja.UniformPrior(0.0, 1.0), KEY, own=1024, others=512, grid=101)
    assert float(np.mean(found)) == pytest.approx(1 / 12, abs=0.004)  # se about 0.0017 (own draws), bias < 0.001
