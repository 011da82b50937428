import chex
import jax
import numpy as np
import pytest

from jaxauction import (
    EpsilonGreedyConfig,
    Market,
    UniformIntPrior,
    collect,
    deep_payment,
    epsilon_greedy,
    revenue,
    run_round,
    second_price,
    truthful,
)


def test_truthful_second_price_integer_values():
    """3 truthful bidders, values U{0..9}: revenue E[second highest] = 4.5, efficiency 1 (known_results.md)."""
    market = Market(second_price(3), truthful(3), UniformIntPrior(0, 9))
    params = market.mechanism.init(jax.random.key(0))
    markets, T = 64, 5_000
    keys = jax.random.split(jax.random.key(0), markets)
    states = jax.vmap(market.learner.init)(keys)
    _, metrics = jax.jit(jax.vmap(lambda s, k: run_round(market, T, 1_000, params, s, k)))(states, keys)
    chex.assert_shape(metrics.revenue, (markets, 5))
    chex.assert_shape(metrics.utility, (markets, 5, 3))
    per_market = np.asarray(metrics.revenue).mean(1)
    stderr = per_market.std() / np.sqrt(markets)
    assert abs(per_market.mean() - 4.5) < 4 * stderr + 1e-3
    np.testing.assert_allclose(np.asarray(metrics.efficiency), 1.0)
    # utilities: E[highest - second highest] / 3 per bidder = (6.975 - 4.5) / 3
    np.testing.assert_allclose(np.asarray(metrics.utility).mean(), (6.975 - 4.5) / 3, atol=0.02)


def seed_market():
    return Market(deep_payment(3), epsilon_greedy(EpsilonGreedyConfig()), UniformIntPrior(0, 9))


def test_round_is_reproducible_and_key_sensitive():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    state = market.learner.init(jax.random.key(0))
    go = jax.jit(lambda k: run_round(market, 2_000, 500, params, state, k))
    (s1, m1), (s2, m2), (_, m3) = go(jax.random.key(1)), go(jax.random.key(1)), go(jax.random.key(2))
    chex.assert_trees_all_equal((s1, m1), (s2, m2))
    assert not np.array_equal(m1.revenue, m3.revenue)
    assert int(s1.t[0]) == 2_000


def test_round_compiles_once():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def go(params, state, key):
        return run_round(market, 1_000, 500, params, state, key)

    state = market.learner.init(jax.random.key(0))
    for seed in range(3):
        state, _ = go(params, state, jax.random.key(seed))


def test_round_vmap_matches_single_markets():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(3), 4)
    states = jax.vmap(market.learner.init)(keys)
    go = lambda s, k: run_round(market, 1_000, 250, params, s, k)  # noqa: E731
    _, batched = jax.jit(jax.vmap(go))(states, keys)
    for i in range(4):
        _, single = jax.jit(go)(jax.tree.map(lambda x, i=i: x[i], states), keys[i])
        np.testing.assert_allclose(batched.revenue[i], single.revenue, rtol=1e-5)


def test_collect_and_revenue():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    state = market.learner.init(jax.random.key(0))
    data = collect(market, 64, params, state, jax.random.key(0))
    chex.assert_shape([data.values, data.bids], (64, 3))
    assert np.all(np.asarray(data.bids) <= np.asarray(data.values))
    rev = revenue(market.mechanism, params, data.bids, data.keys)
    assert 0 <= float(rev) <= float(np.asarray(data.bids).max(1).mean())


def test_window_must_divide_round():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    with pytest.raises(ValueError, match="multiple of the revenue window"):
        run_round(market, 1_000, 300, params, market.learner.init(jax.random.key(0)), jax.random.key(0))


@pytest.mark.parametrize("chunk", [7, 100, 1_000])
def test_chunked_revenue_matches_value_and_gradient(chunk):
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    data = collect(market, 1_000, params, market.learner.init(jax.random.key(0)), jax.random.key(1))
    whole = jax.value_and_grad(lambda p: revenue(market.mechanism, p, data.bids, data.keys))(params)
    chunked = jax.value_and_grad(lambda p: revenue(market.mechanism, p, data.bids, data.keys, chunk))(params)
    chex.assert_trees_all_close(chunked, whole, rtol=1e-5, atol=1e-7)


def test_chunked_revenue_rejects_bad_chunk():
    market = seed_market()
    params = market.mechanism.init(jax.random.key(0))
    data = collect(market, 16, params, market.learner.init(jax.random.key(0)), jax.random.key(1))
    with pytest.raises(ValueError, match="chunk"):
        revenue(market.mechanism, params, data.bids, data.keys, 0)
