import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxauction import (
    MECHANISMS,
    RuleParams,
    UniformPrior,
    all_pay,
    deep_payment,
    first_price,
    highest_bid_allocation,
    make_mechanism,
    second_price,
    third_price,
)

N = 4


def batch_outcomes(mech, params, bids, seed=0):
    keys = jax.random.split(jax.random.key(seed), bids.shape[0])
    return jax.jit(jax.vmap(mech.apply, in_axes=(None, 0, 0)))(params, bids, keys)


def random_bids(count, n, seed=0, integer=True):
    b = jax.random.uniform(jax.random.key(seed), (count, n), minval=0, maxval=10)
    return jnp.floor(b) if integer else b


@pytest.mark.parametrize("name", MECHANISMS)
def test_shapes_and_invariants(name):
    mech = make_mechanism(name, N)
    params = mech.init(jax.random.key(0))
    bids = random_bids(5000, N)
    out = batch_outcomes(mech, params, bids)
    chex.assert_shape([out.allocation, out.payments], (5000, N))
    alloc, pay = np.asarray(out.allocation), np.asarray(out.payments)
    assert set(np.unique(alloc)) <= {0.0, 1.0}
    np.testing.assert_array_equal(alloc.sum(1), 1.0)  # reserve 0: always sold, exactly once
    assert np.all(pay >= 0)
    assert np.all(np.isfinite(pay))
    winner = alloc.argmax(1)
    np.testing.assert_array_equal(np.asarray(bids)[np.arange(5000), winner], np.asarray(bids).max(1))
    if name == "deep":
        assert np.all(pay <= np.asarray(bids) + 1e-6)  # s_i <= 1


def test_classical_payments_exact():
    bids = jnp.array([3.0, 7.0, 5.0, 1.0])
    key = jax.random.key(0)
    p = RuleParams(jnp.float32(0.0))
    np.testing.assert_allclose(first_price(4).apply(p, bids, key).payments, [0, 7, 0, 0])
    np.testing.assert_allclose(second_price(4).apply(p, bids, key).payments, [0, 5, 0, 0])
    np.testing.assert_allclose(third_price(4).apply(p, bids, key).payments, [0, 3, 0, 0])
    np.testing.assert_allclose(all_pay(4).apply(p, bids, key).payments, bids)
    # tied top bids: second price pays the tied bid
    tied = jnp.array([7.0, 7.0, 2.0])
    out = second_price(3).apply(p, tied, key)
    assert float(out.payments.sum()) == 7.0
    # third price with two bidders falls back to the lowest bid (the original's behaviour)
    out = third_price(2).apply(p, jnp.array([4.0, 9.0]), key)
    np.testing.assert_allclose(out.payments, [0, 4])


def test_reserve_price():
    mech = second_price(3, reserve=5.0)
    params = mech.init(jax.random.key(0))
    below = mech.apply(params, jnp.array([1.0, 4.0, 4.9]), jax.random.key(0))
    np.testing.assert_array_equal(below.allocation, 0.0)
    np.testing.assert_array_equal(below.payments, 0.0)
    above = mech.apply(params, jnp.array([1.0, 8.0, 2.0]), jax.random.key(0))
    np.testing.assert_array_equal(above.allocation, [0, 1, 0])
    np.testing.assert_allclose(above.payments, [0, 5, 0])  # pays the reserve, not the second bid


def test_tie_breaking_is_uniform():
    """All-equal bids: each bidder wins about 1/n. Two tied top bids: 1/2 each, the third never."""
    count = 60_000
    keys = jax.random.split(jax.random.key(42), count)
    alloc = jax.vmap(lambda k: highest_bid_allocation(jnp.full((3,), 5.0), k))(keys)
    freq = np.asarray(alloc).mean(0)
    sigma = np.sqrt(1 / 3 * 2 / 3 / count)
    np.testing.assert_allclose(freq, 1 / 3, atol=5 * sigma)
    alloc = jax.vmap(lambda k: highest_bid_allocation(jnp.array([7.0, 3.0, 7.0]), k))(keys)
    freq = np.asarray(alloc).mean(0)
    np.testing.assert_allclose(freq, [0.5, 0.0, 0.5], atol=5 * np.sqrt(0.25 / count))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_truthful_second_price_revenue_uniform(n):
    """Second price with truthful U[0,1] bidders earns (n-1)/(n+1) (known_results.md section 1)."""
    count = 200_000
    values = jax.vmap(lambda k: UniformPrior(0.0, 1.0).sample(k, n))(jax.random.split(jax.random.key(n), count))
    mech = second_price(n)
    out = batch_outcomes(mech, mech.init(jax.random.key(0)), values)
    rev = np.asarray(out.payments.sum(1))
    expected = (n - 1) / (n + 1)
    assert abs(rev.mean() - expected) < 4 * rev.std() / np.sqrt(count)


def test_myerson_reserve_half_two_bidders():
    """Second price with reserve 1/2, two U[0,1] bidders: 5/12 (Myerson's optimum)."""
    count = 200_000
    values = jax.random.uniform(jax.random.key(3), (count, 2))
    mech = second_price(2, reserve=0.5)
    rev = np.asarray(batch_outcomes(mech, mech.init(jax.random.key(0)), values).payments.sum(1))
    assert abs(rev.mean() - 5 / 12) < 4 * rev.std() / np.sqrt(count)


def test_deep_rule_semantics():
    mech = deep_payment(3)
    params = mech.init(jax.random.key(0))
    bids = jnp.array([2.0, 9.0, 4.0])
    out = mech.apply(params, bids, jax.random.key(1))
    shares = out.payments / bids
    np.testing.assert_allclose(shares.sum(), 1.0, rtol=1e-5)  # softmax over bidders, everyone pays
    assert np.all(np.asarray(out.payments) > 0)
    winner_only = deep_payment(3, winner_only=True).apply(params, bids, jax.random.key(1))
    np.testing.assert_allclose(winner_only.payments, out.payments * out.allocation)
    norm = deep_payment(3, normalise=True, bid_scale=9.0).apply(params, bids, jax.random.key(1))
    raw_scaled = deep_payment(3).apply(params, bids / 9.0, jax.random.key(1))
    np.testing.assert_allclose(norm.payments, raw_scaled.payments * 9.0, rtol=1e-5)


def test_deep_network_matches_torch_default_init():
    params = deep_payment(3).init(jax.random.key(0))["params"]
    widths = [("Dense_0", 3, 128), ("Dense_1", 128, 64), ("Dense_2", 64, 128), ("Dense_3", 128, 3)]
    for name, fan_in, fan_out in widths:
        kernel, bias = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        assert kernel.shape == (fan_in, fan_out) and bias.shape == (fan_out,)
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(kernel).max() > 0.9 * bound  # uniform over the whole range, not a narrower init


def test_deep_finite_at_ties_zero_and_large_bids_and_gradients():
    mech = deep_payment(3)
    params = mech.init(jax.random.key(0))
    for bids in (jnp.zeros(3), jnp.full((3,), 5.0), jnp.array([1e6, 1e6, 0.0])):
        out = mech.apply(params, bids, jax.random.key(0))
        assert np.all(np.isfinite(out.payments)) and np.all(np.isfinite(out.allocation))

    def revenue(p, b):
        return mech.apply(p, b, jax.random.key(0)).payments.sum()

    grads = jax.grad(revenue)(params, jnp.full((3,), 5.0))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    bid_grad = jax.grad(revenue, argnums=1)(params, jnp.full((3,), 5.0))
    assert np.all(np.isfinite(bid_grad))


@pytest.mark.parametrize("name", MECHANISMS)
def test_jit_vmap_equivalence(name):
    # float32 products: the backend default is TF32 on NVIDIA GPUs, which differs between batch shapes.
    mech = make_mechanism(name, 3, **({"precision": "highest"} if name == "deep" else {}))
    params = mech.init(jax.random.key(0))
    bids = random_bids(16, 3, integer=False)
    keys = jax.random.split(jax.random.key(5), 16)
    batched = jax.vmap(mech.apply, in_axes=(None, 0, 0))(params, bids, keys)
    single = jax.jit(mech.apply)
    for i in range(16):
        one = single(params, bids[i], keys[i])
        np.testing.assert_allclose(batched.payments[i], one.payments, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(batched.allocation[i], one.allocation)


def test_bad_input_raises_clear_errors():
    mech = second_price(3)
    params = mech.init(jax.random.key(0))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="1-D"):
        mech.apply(params, jnp.ones((2, 3)), key)
    with pytest.raises(ValueError, match="built for 3 bidders"):
        mech.apply(params, jnp.ones(4), key)
    with pytest.raises(ValueError, match="NaN"):
        mech.apply(params, jnp.array([1.0, jnp.nan, 2.0]), key)
    with pytest.raises(ValueError, match="non-negative"):
        mech.apply(params, jnp.array([1.0, -1.0, 2.0]), key)
    with pytest.raises(ValueError, match="unknown mechanism 'vickrey'"):
        make_mechanism("vickrey", 3)
    with pytest.raises(ValueError, match="at least 2 bidders"):
        second_price(1)
    with pytest.raises(ValueError, match="at least 2 bidders"):
        deep_payment(1)
    with pytest.raises(ValueError, match="reserve"):
        first_price(3, reserve=-1.0)
    with pytest.raises(ValueError, match="hidden"):
        deep_payment(3, hidden=(128, 0))
    with pytest.raises(ValueError, match="unknown precision 'float64'"):
        deep_payment(3, precision="float64")
    # under jit the shape check still fires at trace time
    with pytest.raises(ValueError, match="built for 3 bidders"):
        jax.jit(mech.apply)(params, jnp.ones(5), key)
