import contextlib
import dataclasses

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxauction import DMOConfig, checkpoint, make_dmo, make_train
from jaxauction.driver import run_chunked
from jaxauction.parallel import make_mesh, over_seeds, plan_mesh, shard_state, to_host

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


def _run(step, state, mesh=None):
    with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
        return run_chunked(step, state, 2, chunk=1, progress=False)


def test_map_over_seeds_sharded_over_eight_devices_equals_single_device_bit_for_bit():
    assert jax.device_count() == 8, "tests/conftest.py sets 8 fake CPU devices"
    dmo = make_dmo(TINY)
    state0 = jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 16))
    single = _run(over_seeds(dmo.step, "map"), state0)
    mesh = plan_mesh(16, 1, "map")
    assert dict(mesh.shape) == {"seeds": 8, "batch": 1}
    sharded = _run(over_seeds(dmo.step, "map", mesh), shard_state(state0, mesh))
    assert len(sharded.state.params["params"]["Dense_0"]["kernel"].sharding.device_set) == 8
    chex.assert_trees_all_equal(to_host(sharded.state), to_host(single.state))  # params, Adam, bandits, keys
    chex.assert_trees_all_equal(sharded.logs._replace(loss=0), single.logs._replace(loss=0))
    # The logged loss (the value beside the gradient) may round differently in its last bit.
    np.testing.assert_allclose(sharded.logs.loss, single.logs.loss, rtol=1e-6)


def test_vmap_over_seeds_sharded_equals_single_device_up_to_float_rounding():
    step, state0 = batched(seeds=8)
    single = run_chunked(step, state0, 2, chunk=1, progress=False)
    mesh = plan_mesh(8, 1)
    sharded = _run(over_seeds(make_dmo(TINY).step, "vmap", mesh), shard_state(state0, mesh))
    # Pulls, keys, bids and outcomes are identical; XLA:CPU picks other kernels for the batched
    # weight-gradient matmuls at another local batch size, so parameters (and through the payments of the
    # next round, the bandits' estimates) differ in the last bits.
    a, b = to_host(sharded.state), to_host(single.state)
    chex.assert_trees_all_equal(a.learner_state.counts, b.learner_state.counts)
    chex.assert_trees_all_equal(a.key, b.key)
    chex.assert_trees_all_close(a.learner_state.estimates, b.learner_state.estimates, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_equal(sharded.logs.greedy_bids, single.logs.greedy_bids)
    chex.assert_trees_all_equal(sharded.logs.platform_reward[0], single.logs.platform_reward[0])
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(sharded.logs, single.logs, rtol=1e-5, atol=1e-5)


def test_data_parallel_markets_replicate_params_and_match_single_device():
    config = dataclasses.replace(TINY, markets=8)
    dmo = make_dmo(config)
    state0 = jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 2))
    single = run_chunked(jax.vmap(dmo.step), state0, 2, chunk=1, progress=False)
    mesh = plan_mesh(2, 8)
    assert dict(mesh.shape) == {"seeds": 2, "batch": 4}
    sharded = _run(over_seeds(dmo.step, "vmap", mesh), shard_state(state0, mesh, lambda s: s.learner_state))
    assert sharded.state.learner_state.estimates.sharding.spec == P("seeds", "batch")
    kernel = sharded.state.params["params"]["Dense_0"]["kernel"]
    assert kernel.sharding.is_equivalent_to(NamedSharding(mesh, P("seeds")), kernel.ndim)  # replicated over batch
    a, b = to_host(sharded.state), to_host(single.state)
    chex.assert_trees_all_equal(a.learner_state.counts, b.learner_state.counts)
    # The dataset mean is a cross-device sum: equal up to float32 rounding.
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(sharded.logs, single.logs, rtol=1e-5, atol=1e-5)


def test_mesh_planning_and_bad_shapes():
    with pytest.warns(UserWarning, match="use 1 of the 8 devices"):
        assert plan_mesh(3, 1) is None
    assert dict(plan_mesh(4, 6).shape) == {"seeds": 4, "batch": 2}
    with pytest.warns(UserWarning, match="use 4 of the 8 devices"):
        assert dict(plan_mesh(4, 6, "map").shape) == {"seeds": 4, "batch": 1}  # map shards seeds only
    with pytest.raises(ValueError, match="needs 16 devices"):
        make_mesh(4, 4)
    _, state = batched(seeds=3)
    with pytest.raises(ValueError, match="does not divide over the 2 devices"):
        shard_state(state, make_mesh(2, 1))
    with pytest.raises(ValueError, match="unknown seed_loop"):
        over_seeds(lambda s: s, "pmap")
