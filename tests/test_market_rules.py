"""The platform's other rules: VCG, multi-unit, procurement, random allocation, entry fees, decay; utilities."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxauction import (
    Market,
    Types,
    UniformPrior,
    build_market,
    cara,
    crra,
    first_price,
    init_params,
    multi_unit,
    population,
    procurement,
    random_allocation,
    run_round,
    second_price,
    seller,
    simultaneous,
    truthful,
    vcg,
    with_entry_fee,
)
from jaxauction.mechanisms import DeepOptions, RuleOptions
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, UtilitySpec, switch
from jaxauction.types import Outcome

KEY = jax.random.key(0)


def outcome(mechanism, bids, key=KEY):
    bids = jnp.asarray(bids, jnp.float32)
    bids = bids[:, None] if bids.ndim == 1 else bids
    return mechanism.apply(mechanism.init(key), bids, key)


def brute_force_vcg(bids: np.ndarray, decay: float):
    n, m = bids.shape

    def worth(assign, i):
        items = [j for j in range(m) if assign[j] == i]
        return sum(bids[i, j] for j in items) * decay ** (len(items) - 1) if items else 0.0

    options = list(itertools.product(range(n + 1), repeat=m))
    welfare = {a: sum(worth(a, i) for i in range(n)) for a in options}
    best = max(options, key=lambda a: welfare[a])  # the first maximum, as the enumeration order
    pay = []
    for i in range(n):
        without = max(sum(worth(a, k) for k in range(n) if k != i) for a in options if i not in a)
        pay.append(without - (welfare[best] - worth(best, i)))
    return best, np.array(pay)


@pytest.mark.parametrize("decay", [1.0, 0.6])
@pytest.mark.parametrize(("n", "m"), [(2, 2), (3, 2), (2, 3)])
def test_vcg_matches_brute_force(n, m, decay):
    rng = np.random.default_rng(n * 10 + m)
    mechanism = vcg(n, m, decay)
    for _ in range(20):
        bids = rng.uniform(0, 10, size=(n, m)).astype(np.float32)
        best, pay = brute_force_vcg(bids.astype(np.float64), decay)
        out = outcome(mechanism, bids)
        expected = np.zeros((n, m))
        for j, i in enumerate(best):
            if i < n:
                expected[i, j] = 1
        np.testing.assert_array_equal(out.allocation, expected)
        np.testing.assert_allclose(out.payments, pay, atol=1e-4)
        assert np.all(np.asarray(out.payments) >= -1e-4)


def test_additive_vcg_is_second_price_item_by_item():
    bids = jax.random.uniform(jax.random.key(3), (200, 3, 2))
    sp = simultaneous([second_price(3)] * 2)
    keys = jax.random.split(KEY, 200)
    a = jax.jit(jax.vmap(vcg(3, 2).apply, in_axes=(None, 0, 0)))((), bids, keys)
    b = jax.jit(jax.vmap(sp.apply, in_axes=(None, 0, 0)))(sp.init(KEY), bids, keys)
    np.testing.assert_array_equal(a.allocation, b.allocation)
    np.testing.assert_allclose(a.payments, b.payments, atol=1e-6)


def test_multi_unit_pricing_on_hand_computed_cases():
    bids = [7.0, 3.0, 5.0, 1.0]
    uniform, pay_as_bid = multi_unit(4, 2, "uniform"), multi_unit(4, 2, "pay_as_bid")
    np.testing.assert_array_equal(outcome(uniform, bids).allocation[:, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(outcome(uniform, bids).payments, [3, 0, 3, 0])  # the highest losing bid
    np.testing.assert_array_equal(outcome(pay_as_bid, bids).payments, [7, 0, 5, 0])
    reserved = multi_unit(4, 2, "uniform", reserve=4.0)
    np.testing.assert_array_equal(outcome(reserved, bids).payments, [4, 0, 4, 0])  # max(highest losing, reserve)
    out = outcome(multi_unit(4, 3, "uniform", reserve=4.0), bids)  # 3 units, only 2 bids clear the reserve
    np.testing.assert_array_equal(out.allocation[:, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(out.payments, [4, 0, 4, 0])
    # ties for the last unit are broken at random, and both tied bidders win it equally often
    wins = jax.vmap(lambda k: outcome(uniform, [7.0, 3.0, 3.0, 1.0], k).allocation[:, 0])(jax.random.split(KEY, 4000))
    np.testing.assert_array_equal(np.asarray(wins).sum(1), 2)
    assert abs(float(wins[:, 1].mean()) - 0.5) < 0.03
    np.testing.assert_array_equal(outcome(uniform, [7.0, 3.0, 3.0, 1.0]).payments.max(), 3.0)


def test_multi_unit_truthful_market_is_efficient():
    market = Market(multi_unit(4, 2), population(truthful(4)), UniformPrior(0.0, 1.0))
    params = init_params(market, KEY)
    _, metrics = run_round(market, 2000, 1000, params, market.population.init(KEY, params.learners), KEY)
    np.testing.assert_allclose(metrics.efficiency, 1.0, rtol=1e-5)
    assert float(metrics.revenue.mean()) == pytest.approx(2 * 0.4, abs=0.02)  # 2 x E[third highest of 4] = 2 x 2/5


def test_procurement_pays_the_lowest_ask():
    fp, sp = procurement(3, "first_price"), procurement(3, "second_price", ceiling=4.5)
    np.testing.assert_array_equal(outcome(fp, [5.0, 3.0, 4.0]).allocation[:, 0], [0, 1, 0])
    np.testing.assert_array_equal(outcome(fp, [5.0, 3.0, 4.0]).payments, [0, -3, 0])  # paid its ask
    np.testing.assert_array_equal(outcome(sp, [5.0, 3.0, 4.0]).payments, [0, -4, 0])  # paid the second-lowest ask
    np.testing.assert_array_equal(outcome(sp, [5.0, 3.0, 6.0]).payments, [0, -4.5, 0])  # capped by the ceiling
    np.testing.assert_array_equal(outcome(sp, [5.0, 6.0, 7.0]).allocation, 0)  # no ask under the ceiling
    # truthful sellers in a second-price procurement never lose: utility = price - cost >= 0
    market = build_market(MechanismSpec("procurement_second_price"), PopulationSpec("truthful", 3),
                          PriorSpec("uniform", 0.0, 1.0), UtilitySpec("seller"))  # fmt: skip
    params = init_params(market, KEY)
    _, metrics = run_round(market, 4000, 4000, params, market.population.init(KEY, params.learners), KEY)
    assert np.all(np.asarray(metrics.utility) >= 0)
    assert float(metrics.revenue[0]) == pytest.approx(-0.5, abs=0.02)  # the buyer pays E[second-lowest of 3] = 1/2


def test_random_allocation_is_uniform_among_bids_at_the_reserve_and_charges_it():
    rule = random_allocation(3, reserve=2.0)
    outs = jax.vmap(lambda k: outcome(rule, [5.0, 1.0, 4.0], k))(jax.random.split(KEY, 4000))
    alloc = np.asarray(outs.allocation[:, :, 0])
    assert alloc[:, 1].sum() == 0 and np.all(alloc.sum(1) == 1)
    assert abs(alloc[:, 0].mean() - 0.5) < 0.03
    np.testing.assert_array_equal(outs.payments, 2.0 * alloc)
    np.testing.assert_array_equal(outcome(rule, [1.0, 1.5, 0.0]).allocation, 0)  # nobody at the reserve


def test_entry_fee_and_reserve_arithmetic_is_exact():
    rule = with_entry_fee(second_price(3, reserve=1.0), 0.25)
    out = outcome(rule, [5.0, 0.0, 4.0])
    np.testing.assert_array_equal(out.allocation[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(out.payments, [4.25, 0.0, 0.25])  # winner: max(4, 1) + fee; the 0-bid stays out
    out = outcome(rule, [0.5, 0.0, 0.75])  # nobody clears the reserve: participants still pay the fee
    np.testing.assert_array_equal(out.payments, [0.25, 0.0, 0.25])
    assert float(out.allocation.sum()) == 0
    out = outcome(with_entry_fee(first_price(2), 1.0), [0.0, 0.0])  # nobody enters, nothing sold, nothing paid
    assert float(out.allocation.sum()) == 0 and float(out.payments.sum()) == 0
    out = outcome(first_price(3, reserve=2.0), [1.5, 3.0, 2.5])
    np.testing.assert_array_equal(out.payments, [0, 3.0, 0])
    params = with_entry_fee(second_price(2), 0.0).init(KEY)  # the fee is a param: a sweep is a vmap
    fees = jnp.linspace(0, 1, 5)
    paid = jax.vmap(lambda f: with_entry_fee(second_price(2), 0.0).apply((params[0], f), jnp.ones((2, 1)), KEY))(fees)
    np.testing.assert_allclose(paid.payments.sum(1), 1.0 + 2 * fees)


def test_multi_item_payment_decay():
    rule = simultaneous([first_price(2)] * 3, decay=0.5)
    out = outcome(rule, [[4.0, 2.0, 6.0], [1.0, 3.0, 5.0]])  # bidder 0 wins items 0 and 2, bidder 1 item 1
    np.testing.assert_allclose(out.payments, [(4 + 6) * 0.5, 3.0])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: multi_unit(3, 3), "fewer than n_bidders"),
        (lambda: multi_unit(3, 2, "vickrey"), "unknown multi-unit pricing"),
        (lambda: vcg(3, 2, decay=1.5), "decay must be in"),
        (lambda: vcg(9, 6), "assignments"),
        (lambda: procurement(3, ceiling=0.0), "ceiling must be positive"),
        (lambda: procurement(3, "all_pay"), "unknown procurement rule"),
        (lambda: with_entry_fee(first_price(2), -1.0), "entry fee must be >= 0"),
        (lambda: simultaneous([first_price(2)] * 2, decay=0.0), "decay must be positive"),
        (lambda: MechanismSpec("multi_unit_uniform", {"units": 1}), "units must be an integer >= 2"),
        (lambda: MechanismSpec("first_price", {"units": 2}), "mechanism 'first_price' has no option units"),
        (lambda: MechanismSpec("deep", {"entry_fee": 1.0}), "mechanism 'deep' has no option entry_fee"),
        (lambda: MechanismSpec("vcg", {"temperature": 0.1}), "mechanism 'vcg' has no option temperature"),
        (lambda: UtilitySpec("crra", risk=-1.0), "risk must be positive"),
        (lambda: UtilitySpec("quasi_linear", risk=2.0), "risk applies to the crra and cara"),
        (lambda: crra(float("nan")), "positive, finite"),
    ],
)
def test_bad_rules_and_settings_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_rules_options_are_its_own_spec():
    with pytest.raises(TypeError, match="mechanism 'vcg' takes ClassicalOptions, not RuleOptions"):
        MechanismSpec("vcg", RuleOptions())
    spec = MechanismSpec("second_price", RuleOptions(reserve=2.0))
    assert spec == MechanismSpec("second_price", {"reserve": 2.0})  # a dict of fields is the same spec
    assert switch(spec, "first_price").options.reserve == 2.0  # switching keeps the options the two rules share
    assert switch(spec, "deep").options == DeepOptions()


def test_risk_shaping_utilities():
    types = Types(values=jnp.array([[4.0], [3.0], [1.0]]))
    out = Outcome(allocation=jnp.array([[1.0], [0.0], [0.0]]), payments=jnp.array([3.0, 1.0, 0.0]))
    r = np.array([1.0, -1.0, 0.0])  # quasi-linear surplus
    c = crra(0.5)
    np.testing.assert_allclose(c.apply(types, out, c.init_params()), np.sign(r) * np.abs(r) ** 0.5)
    out2 = out._replace(payments=jnp.array([0.0, 4.0, 0.0]))
    np.testing.assert_allclose(c.apply(types, out2, c.init_params()), [2.0, -2.0, 0.0])  # sign-preserving power
    k = cara(2.0)
    np.testing.assert_allclose(k.apply(types, out, k.init_params()), 1 - np.exp(-2.0 * r), rtol=1e-6)
    s = seller()
    sold = Outcome(allocation=jnp.array([[0.0], [1.0], [0.0]]), payments=jnp.array([0.0, -3.5, 0.0]))
    np.testing.assert_allclose(s.apply(types, sold, ()), [0.0, 0.5, 0.0])  # paid 3.5 to supply at cost 3


def test_budgets_with_penalty_are_exact():
    from jaxauction.mechanisms import with_budgets

    rule = with_budgets(first_price(3), (4.0, 10.0, 10.0), (1.0, 0.0, 0.0))
    out = outcome(rule, [5.0, 3.0, 2.0])  # bidder 0 wins at 5 > its budget 4: loses the item, pays its penalty 1
    np.testing.assert_array_equal(out.allocation, 0)
    np.testing.assert_array_equal(out.payments, [1.0, 0.0, 0.0])
    out = outcome(rule, [4.0, 3.0, 2.0])  # at the budget: allowed
    np.testing.assert_array_equal(out.allocation[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(out.payments, [4.0, 0.0, 0.0])
    market = build_market(MechanismSpec("second_price", {"budgets": (3.0,), "budget_penalty": (0.5,)}),
                          PopulationSpec("truthful", 2), PriorSpec())  # fmt: skip
    assert market.mechanism.name == "second_price+budgets"
    for bad, message in [(-1.0, "budgets must be finite and non-negative"), ((1.0, 2.0, 3.0), "one per bidder")]:
        with pytest.raises(ValueError, match=message):
            with_budgets(first_price(2), bad)
    with pytest.raises(ValueError, match="budget_penalty applies when budgets are set"):
        MechanismSpec("first_price", {"budget_penalty": (1.0,)})


def test_market_level_settings_that_would_do_nothing_are_refused():
    with pytest.raises(ValueError, match="decay discounts bidders who win several items"):
        build_market(MechanismSpec("first_price", {"decay": 0.5}), PopulationSpec(), PriorSpec())
    with pytest.raises(ValueError, match="no bidder learns from it"):
        build_market(MechanismSpec("first_price", information="winner_only"), PopulationSpec(), PriorSpec())
    market = build_market(MechanismSpec("multi_unit_uniform", {"units": 2}), PopulationSpec("truthful", 4),
                          PriorSpec("uniform", 0.0, 1.0, n_items=2))  # fmt: skip
    assert market.mechanism.units == 2  # the efficiency metric counts two units per item
