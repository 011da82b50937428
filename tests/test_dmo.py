import dataclasses

import chex
import jax
import numpy as np
import pytest

from jaxauction import DMOConfig, make_dmo, make_train
from jaxauction.dmo import deep_shares

TINY = dict(rounds=3, auctions_per_round=1_000, window=500, explore_steps=300, half_life=200.0, dataset_size=32)


def test_train_shapes_and_reproducibility():
    config = DMOConfig(**TINY)
    train = jax.jit(make_train(config))
    state, logs = train(jax.random.key(0))
    chex.assert_shape(logs.platform_reward, (3,))
    chex.assert_shape(logs.revenue, (3, 2))
    chex.assert_shape(logs.utility, (3, 2, 3))
    chex.assert_shape(logs.greedy_bids, (3, 3, 10))
    assert int(state.round) == 3
    again = train(jax.random.key(0))
    chex.assert_trees_all_equal((state, logs), again)
    other = train(jax.random.key(1))
    assert not np.array_equal(logs.platform_reward, other[1].platform_reward)
    kernel = lambda s: s.params["params"]["Dense_0"]["kernel"]  # noqa: E731
    assert not np.array_equal(kernel(state), kernel(other[0]))


def test_vmap_over_seeds_matches_single_runs():
    config = DMOConfig(**TINY)
    train = make_train(config)
    keys = jax.random.split(jax.random.key(0), 3)
    _, batched = jax.jit(jax.vmap(train))(keys)
    for i in range(3):
        _, single = jax.jit(train)(keys[i])
        np.testing.assert_allclose(batched.platform_reward[i], single.platform_reward, rtol=1e-5)
        np.testing.assert_allclose(batched.loss[i], single.loss, rtol=1e-4)


def test_step_compiles_once():
    dmo = make_dmo(DMOConfig(**TINY))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state):
        return dmo.step(state)

    state = dmo.init(jax.random.key(0))
    for _ in range(3):
        state, _ = step(state)
    assert int(state.round) == 3


def test_one_adam_step_per_round_changes_params_and_classical_rules_stay_put():
    config = DMOConfig(**TINY)
    dmo = make_dmo(config)
    state = dmo.init(jax.random.key(0))
    new, log = jax.jit(dmo.step)(state)
    moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), state.params, new.params)
    assert 0 < max(jax.tree.leaves(moved)) <= 1.5e-3  # Adam's first step moves each weight by about lr
    assert float(log.loss) < 0
    sp = make_dmo(DMOConfig(mechanism="second_price", **TINY))
    s0 = sp.init(jax.random.key(0))
    s1, log = jax.jit(sp.step)(s0)
    chex.assert_trees_all_equal(s0.params, s1.params)
    np.testing.assert_allclose(-float(log.loss), 4.5, atol=2.0)  # dataset revenue, a noisy 32-auction mean


def test_gradient_ascent_raises_revenue_towards_the_highest_bid():
    """Truthful bidders, U{0..9}, 3 bidders: the softmax pay-your-share rule can earn at most
    E[highest value] = 6.975; many Adam steps on a large dataset approach it."""
    config = DMOConfig(
        learner="truthful",
        rounds=4,
        auctions_per_round=100,
        window=100,
        markets=32,
        dataset_size=64,
        updates_per_round=75,
        learning_rate=1e-2,
        normalise=True,
    )
    _, logs = jax.jit(make_train(config))(jax.random.key(0))
    revenue = -np.asarray(logs.loss)
    # a fresh network shares the payment out roughly evenly: revenue about the mean bid, 4.5
    assert abs(revenue[0] - 4.5) < 0.5
    # after training almost all of the payment falls on the highest bidder: E[max] = 6.975
    assert abs(revenue[-1] - 6.975) < 0.15
    assert abs(float(logs.platform_reward[-1]) - 6.975) < 0.15


def test_warm_start_keeps_learning():
    fresh = make_dmo(DMOConfig(**TINY))
    warm = make_dmo(DMOConfig(warm_start=True, **TINY))
    s_fresh, s_warm = fresh.init(jax.random.key(0)), warm.init(jax.random.key(0))
    for _ in range(2):
        s_fresh, _ = jax.jit(fresh.step)(s_fresh)
        s_warm, _ = jax.jit(warm.step)(s_warm)
    assert int(s_fresh.learner_state.t[0, 0]) == 1_000
    assert int(s_warm.learner_state.t[0, 0]) == 2_000


def test_markets_pool_the_dataset():
    config = DMOConfig(markets=4, **TINY)
    state, logs = jax.jit(make_train(config))(jax.random.key(0))
    assert state.learner_state.estimates.shape == (4, 3, 10, 10)
    chex.assert_shape(logs.platform_reward, (3,))


def test_memory_bounded_chunks_give_the_same_run():
    config = DMOConfig(markets=4, **TINY)
    _, whole = jax.jit(make_train(config))(jax.random.key(0))
    chunked = DMOConfig(markets=4, market_chunk=3, revenue_chunk=40, **TINY)  # 3 does not divide 4, nor 40 128
    _, logs = jax.jit(make_train(chunked))(jax.random.key(0))
    np.testing.assert_array_equal(logs.greedy_bids, whole.greedy_bids)  # the bidders' play is unchanged
    chex.assert_trees_all_close(logs, whole, rtol=1e-5, atol=1e-6)


def test_bfloat16_network_stays_close_to_float32():
    config = DMOConfig(**TINY)
    state, f32 = jax.jit(make_train(config))(jax.random.key(0))
    bf16 = dataclasses.replace(config, compute_dtype="bfloat16")
    state16, logs = jax.jit(make_train(bf16))(jax.random.key(0))
    assert state16.params["params"]["Dense_0"]["kernel"].dtype == np.float32  # parameters stay float32
    bids = np.asarray([[9.0, 5.0, 2.0], [4.0, 4.0, 4.0], [0.0, 7.0, 3.0]], np.float32)
    np.testing.assert_allclose(
        deep_shares(bf16, state.params, bids), deep_shares(config, state.params, bids), atol=2e-2
    )
    assert np.all(np.isfinite(logs.loss)) and np.all(np.isfinite(logs.platform_reward))
    np.testing.assert_allclose(logs.platform_reward, f32.platform_reward, atol=0.5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mechanism="vickrey"), "unknown mechanism"),
        (dict(learner="dqn"), "unknown learner"),
        (dict(n_bidders=1), "n_bidders"),
        (dict(value_low=-1), "non-negative"),
        (dict(value_low=5, value_high=2), "empty"),
        (dict(value_high=(9, 9)), "3 bidders"),
        (dict(window=3_000), "multiple of window"),
        (dict(rounds=0), "rounds"),
        (dict(n_bids=5), "n_bids"),
        (dict(prior="uniform", value_high=1.0), "integer values"),
        (dict(reserve=1.0), "classical rules only"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(prior="gaussian"), "unknown prior"),
        (dict(compute_dtype="float16"), "unknown compute_dtype"),
        (dict(matmul_precision="low"), "unknown matmul_precision"),
        (dict(mechanism="second_price", compute_dtype="bfloat16"), "'deep' only"),
        (dict(market_chunk=-1), "market_chunk"),
        (dict(revenue_chunk=-2), "revenue_chunk"),
    ],
)
def test_inconsistent_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DMOConfig(**kwargs)
