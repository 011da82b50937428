import chex
import jax
import numpy as np
import pytest

from jaxauction import DMOConfig, checkpoint, make_dmo, make_train
from jaxauction.driver import run_chunked
from jaxauction.parallel import maybe_shard, shard_leading_axis

TINY = DMOConfig(rounds=4, auctions_per_round=600, window=300, explore_steps=200, half_life=100.0, dataset_size=16)


def batched(config=TINY, seeds=2, seed=0):
    dmo = make_dmo(config)
    step = jax.vmap(dmo.step)
    state = jax.vmap(dmo.init)(jax.random.split(jax.random.key(seed), seeds))
    return step, state


def test_two_chunks_resume_two_chunks_equals_four(tmp_path):
    step, state0 = batched()
    full = run_chunked(step, state0, 4, chunk=1, progress=False)
    first = run_chunked(step, state0, 2, chunk=1, checkpoint_dir=tmp_path, progress=False)
    template_logs = jax.eval_shape(step, state0)[1]
    state, logs, meta = checkpoint.load(tmp_path, state0, template_logs)
    assert meta["steps_done"] == 2
    chex.assert_trees_all_equal(state, first.state)
    rest = run_chunked(step, state, 4, chunk=1, done=2, logs=logs, progress=False)
    assert rest.steps_run == 2
    chex.assert_trees_all_equal(rest.state, full.state)
    chex.assert_trees_all_equal(rest.logs, full.logs)


def test_train_scan_equals_chunked_driver():
    step, state0 = batched()
    driver = run_chunked(step, state0, 4, chunk=2, progress=False)
    _, logs = jax.jit(jax.vmap(make_train(TINY)))(jax.random.split(jax.random.key(0), 2))
    np.testing.assert_array_equal(np.swapaxes(driver.logs.platform_reward, 0, 1), logs.platform_reward)


def test_interrupt_leaves_a_usable_checkpoint(tmp_path):
    step, state0 = batched()
    full = run_chunked(step, state0, 4, chunk=1, progress=False)

    def interrupt_after_two(done, logs):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chunked(
            step,
            state0,
            4,
            chunk=1,
            checkpoint_dir=tmp_path,
            checkpoint_every=100,
            on_chunk=interrupt_after_two,
            progress=False,
        )
    state, logs, meta = checkpoint.load(tmp_path, state0, jax.eval_shape(step, state0)[1])
    assert meta["steps_done"] == 2
    rest = run_chunked(step, state, 4, chunk=1, done=2, logs=logs, progress=False)
    chex.assert_trees_all_equal(rest.logs, full.logs)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary files left


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    step, state0 = batched()
    run_chunked(step, state0, 1, checkpoint_dir=tmp_path, progress=False)
    _, other = batched(DMOConfig(n_bidders=4, rounds=4, auctions_per_round=600, window=300))
    with pytest.raises(ValueError, match="configuration expects"):
        checkpoint.load(tmp_path, other)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nothing", state0)


def test_sharded_over_eight_devices_equals_single_device():
    assert jax.device_count() == 8, "tests/conftest.py sets 8 fake CPU devices"
    step, state0 = batched(seeds=8)
    single = run_chunked(step, state0, 2, chunk=1, progress=False)
    sharded_state = shard_leading_axis(state0)
    assert len(sharded_state.key.sharding.device_set) == 8
    sharded = run_chunked(step, sharded_state, 2, chunk=1, progress=False)
    assert len(sharded.state.params["params"]["Dense_0"]["kernel"].sharding.device_set) == 8
    # Discrete state and outcomes are identical. Floats agree to float32 rounding: XLA compiles the
    # partitioned program with other CPU kernels, so sums may round differently (see benchmarks/README.md).
    a, b = jax.device_get(sharded.state), jax.device_get(single.state)
    chex.assert_trees_all_equal(a.learner_state.counts, b.learner_state.counts)
    chex.assert_trees_all_equal(a.learner_state.t, b.learner_state.t)
    chex.assert_trees_all_equal(jax.random.key_data(a.key), jax.random.key_data(b.key))
    chex.assert_trees_all_equal(sharded.logs.greedy_bids, single.logs.greedy_bids)
    chex.assert_trees_all_equal(sharded.logs.efficiency, single.logs.efficiency)
    chex.assert_trees_all_close(
        (a.params, a.learner_state.estimates), (b.params, b.learner_state.estimates), rtol=1e-5, atol=1e-5
    )
    chex.assert_trees_all_close(sharded.logs, single.logs, rtol=1e-5, atol=1e-5)


def test_maybe_shard_leaves_uneven_batches_alone():
    _, state = batched(seeds=3)
    with pytest.warns(UserWarning, match="do not divide"):
        same = maybe_shard(state)
    assert same is state
    assert maybe_shard(state, enabled=False) is state
