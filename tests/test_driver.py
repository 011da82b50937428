import contextlib

import chex
import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxauction import DMOConfig, checkpoint, io, make_dmo, make_train
from jaxauction.driver import run_chunked
from jaxauction.parallel import make_mesh, over_seeds, plan_mesh, shard_state, to_host

TINY = DMOConfig.of(rounds=4, auctions_per_round=600, window=300, explore_steps=200, half_life=100.0, dataset_size=32)


@pytest.fixture(scope="module")
def batched():
    """The step over 2 seeds and its initial state (one compiled step serves the tests that share it)."""
    dmo = make_dmo(TINY)
    return jax.vmap(dmo.step), jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 2))


@pytest.fixture(scope="module")
def full_run(batched):
    step, state0 = batched
    return run_chunked(step, state0, 4, chunk=1, progress=False)


def test_two_chunks_resume_two_chunks_equals_four(batched, full_run, tmp_path):
    step, state0 = batched
    store = io.LogStore(tmp_path / "logs", jax.eval_shape(step, state0)[1])
    seen = []
    first = run_chunked(step, state0, 2, chunk=1, checkpoint_dir=tmp_path, log_store=store, progress=False,
                        on_chunk=lambda done, logs, state: seen.append((done, int(state.round[0]))))  # fmt: skip
    assert seen == [(1, 1), (2, 2)]  # on_chunk sees the state after every chunk
    state, meta = checkpoint.load(tmp_path, state0)
    assert meta["steps_done"] == 2
    chex.assert_trees_all_equal(state, first.state)
    rest = run_chunked(step, state, 4, chunk=1, done=2, log_store=store, progress=False)
    assert rest.steps_run == 2
    chex.assert_trees_all_equal(rest.state, full_run.state)
    chex.assert_trees_all_equal(store.read(), full_run.logs)  # logs appended across the resume
    chex.assert_trees_all_equal(store.read(2), first.logs)


@pytest.mark.slow
def test_train_scan_equals_chunked_driver(batched):
    step, state0 = batched
    driver = run_chunked(step, state0, 4, chunk=2, progress=False)
    _, logs = jax.jit(jax.vmap(make_train(TINY)))(jax.random.split(jax.random.key(0), 2))
    # Two different compiled programs (a scan of 2-step chunks, and one scan of 4 steps): the same computation,
    # equal up to float32 rounding. XLA:CPU happened to round them alike on Intel Xeon (AVX-512) and does not on
    # AMD EPYC (one reward differs by 1 ulp). Bit-identity holds where the program is the same: resumed runs
    # (test_two_chunks_resume_two_chunks_equals_four) and same-key reruns.
    np.testing.assert_allclose(np.swapaxes(driver.logs.platform_reward, 0, 1), logs.platform_reward, rtol=1e-6)


def test_interrupt_leaves_a_usable_checkpoint(batched, full_run, tmp_path):
    step, state0 = batched

    def interrupt_after_two(done, logs, state):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chunked(step, state0, 4, chunk=1, checkpoint_dir=tmp_path, checkpoint_every=100,
                    on_chunk=interrupt_after_two, progress=False)  # fmt: skip
    state, meta = checkpoint.load(tmp_path, state0)
    assert meta["steps_done"] == 2
    rest = run_chunked(step, state, 4, chunk=1, done=2, progress=False)
    chex.assert_trees_all_equal(rest.state, full_run.state)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary files left


def test_a_time_limit_stops_after_a_chunk_with_a_checkpoint_and_resume_finishes(batched, full_run, tmp_path):
    step, state0 = batched
    first = run_chunked(step, state0, 4, chunk=1, checkpoint_dir=tmp_path, checkpoint_every=100, progress=False,
                        time_limit=1e-9)  # fmt: skip
    assert first.steps_run == 1  # one chunk always runs; the limit is checked after it
    state, meta = checkpoint.load(tmp_path, state0)
    assert meta["steps_done"] == 1  # checkpointed although checkpoint_every had not come round
    rest = run_chunked(step, state, 4, chunk=1, done=1, progress=False, time_limit=1e9)
    assert rest.steps_run == 3
    chex.assert_trees_all_equal(rest.state, full_run.state)
    with pytest.raises(ValueError, match="time_limit"):
        run_chunked(step, state0, 4, progress=False, time_limit=0)


@pytest.mark.parametrize("seed_loop", ["vmap", "map"])
def test_one_seed_runs_the_plain_step_bit_for_bit(seed_loop):
    dmo = make_dmo(TINY)
    state = dmo.init(jax.random.key(3))
    plain = jax.jit(dmo.step)(state)
    one = jax.jit(over_seeds(dmo.step, seed_loop))(jax.tree.map(lambda x: x[None], state))
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], one), plain)


def test_checkpoints_from_another_configuration_or_damaged_files_are_refused(batched, tmp_path):
    step, state0 = batched
    run_chunked(step, state0, 1, checkpoint_dir=tmp_path, progress=False)
    other = jax.vmap(make_dmo(TINY.replace(n_bidders=4)).init)(jax.random.split(jax.random.key(0), 2))
    with pytest.raises(checkpoint.CheckpointError, match="configuration expects"):
        checkpoint.load(tmp_path, other)
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "nothing", state0)
    path = tmp_path / "checkpoint.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(checkpoint.CheckpointError, match="not a readable jaxauction checkpoint"):
        checkpoint.read_meta(tmp_path)
    path.write_text("round,reward\n1,4.2\n")  # a text file
    with pytest.raises(checkpoint.CheckpointError, match="not a readable jaxauction checkpoint"):
        checkpoint.load(tmp_path, state0)


def test_log_store_appends_rows_and_truncates(tmp_path):
    template = {"a": jax.ShapeDtypeStruct((3,), np.float32), "b": jax.ShapeDtypeStruct((), np.int32)}
    store = io.LogStore(tmp_path, template)
    assert store.steps() == 0
    chunk = lambda start, n: {"a": np.arange(start, start + 3 * n, dtype=np.float32).reshape(n, 3),  # noqa: E731
                              "b": np.arange(start, start + n, dtype=np.int32)}  # fmt: skip
    store.append(chunk(0, 2))
    store.append(chunk(10, 3))
    assert store.steps() == 5
    logs = store.read()
    np.testing.assert_array_equal(logs["b"], [0, 1, 10, 11, 12])
    store.truncate(3)
    np.testing.assert_array_equal(store.read()["b"], [0, 1, 10])
    with pytest.raises(ValueError, match="fewer than 4 steps"):
        store.read(4)
    with pytest.raises(ValueError, match="shape"):
        store.append({"a": np.zeros((1, 4), np.float32), "b": np.zeros(1, np.int32)})


def test_checked_runs_raise_the_first_failed_check(batched):
    """The driver's checked mode runs the program under checkify; a NaN value makes the checked market fail."""
    dmo = make_dmo(TINY, checked=True)
    state = dmo.init(jax.random.key(0))
    bad = state._replace(
        params=state.params._replace(prior=state.params.prior._replace(high=state.params.prior.high * np.nan))
    )
    with pytest.raises(Exception, match="NaN"):
        run_chunked(dmo.step, bad, 1, progress=False, checked=True)
    run_chunked(dmo.step, state, 1, progress=False, checked=True)  # a sound run passes its checks


def _run(step, state, mesh=None):
    with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
        return run_chunked(step, state, 2, chunk=1, progress=False)


@pytest.mark.slow
def test_map_over_seeds_sharded_over_eight_devices_equals_single_device_bit_for_bit():
    assert jax.device_count() == 8, "tests/conftest.py sets 8 fake CPU devices"
    dmo = make_dmo(TINY)
    state0 = jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 16))
    single = _run(over_seeds(dmo.step, "map"), state0)
    mesh = plan_mesh(16, 1, "map")
    assert dict(mesh.shape) == {"seeds": 8, "batch": 1}
    sharded = _run(over_seeds(dmo.step, "map", mesh), shard_state(state0, mesh))
    kernel = sharded.state.params.mechanism["params"]["Dense_0"]["kernel"]
    assert len(kernel.sharding.device_set) == 8
    chex.assert_trees_all_equal(to_host(sharded.state), to_host(single.state))  # params, Adam, bandits, keys
    chex.assert_trees_all_equal(sharded.logs._replace(loss=0), single.logs._replace(loss=0))
    # The logged loss (the value beside the gradient) may round differently in its last bit.
    np.testing.assert_allclose(sharded.logs.loss, single.logs.loss, rtol=1e-6)


@pytest.mark.slow
def test_vmap_over_seeds_sharded_equals_single_device_up_to_float_rounding():
    dmo = make_dmo(TINY)
    state0 = jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 8))
    single = run_chunked(jax.vmap(dmo.step), state0, 2, chunk=1, progress=False)
    mesh = plan_mesh(8, 1)
    sharded = _run(over_seeds(dmo.step, "vmap", mesh), shard_state(state0, mesh))
    # Pulls, keys, bids and outcomes are identical; XLA:CPU picks other kernels for the batched
    # weight-gradient matmuls at another local batch size, so parameters (and through the payments of the
    # next round, the bandits' estimates) differ in the last bits.
    a, b = to_host(sharded.state), to_host(single.state)
    chex.assert_trees_all_equal(a.learner_state[0].counts, b.learner_state[0].counts)
    chex.assert_trees_all_equal(a.key, b.key)
    chex.assert_trees_all_close(a.learner_state[0].estimates, b.learner_state[0].estimates, rtol=1e-4, atol=1e-5)
    chex.assert_trees_all_equal(sharded.logs.policy, single.logs.policy)
    chex.assert_trees_all_equal(sharded.logs.platform_reward[0], single.logs.platform_reward[0])
    # Adam divides by the root of the squared-gradient average: where a gradient is near 0, last-bit differences
    # in it can change that weight's step by up to the learning rate (1e-3): two rounds, two steps.
    chex.assert_trees_all_close(a.params, b.params, atol=2e-3)
    chex.assert_trees_all_close(sharded.logs, single.logs, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_data_parallel_markets_replicate_params_and_match_single_device():
    config = TINY.replace(markets=8)
    dmo = make_dmo(config)
    state0 = jax.vmap(dmo.init)(jax.random.split(jax.random.key(0), 2))
    single = run_chunked(jax.vmap(dmo.step), state0, 2, chunk=1, progress=False)
    mesh = plan_mesh(2, 8)
    assert dict(mesh.shape) == {"seeds": 2, "batch": 4}
    sharded = _run(over_seeds(dmo.step, "vmap", mesh), shard_state(state0, mesh, lambda s: s.learner_state))
    assert sharded.state.learner_state[0].estimates.sharding.spec == P("seeds", "batch")
    kernel = sharded.state.params.mechanism["params"]["Dense_0"]["kernel"]
    assert kernel.sharding.is_equivalent_to(NamedSharding(mesh, P("seeds")), kernel.ndim)  # replicated over batch
    a, b = to_host(sharded.state), to_host(single.state)
    chex.assert_trees_all_equal(a.learner_state[0].counts, b.learner_state[0].counts)
    # The dataset mean is a cross-device sum: equal up to float32 rounding, which Adam's normalised step lifts
    # where a gradient is near 0 (on this AMD EPYC one hidden unit's bias and weights move by up to 2.8e-5 after
    # 2 rounds; 1e-6 held on the Intel Xeon that ran the previous release).
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-4)
    chex.assert_trees_all_close(sharded.logs, single.logs, rtol=1e-5, atol=1e-5)


def test_mesh_planning_and_bad_shapes(batched):
    with pytest.warns(UserWarning, match="use 1 of the 8 devices"):
        assert plan_mesh(3, 1) is None
    assert dict(plan_mesh(4, 6).shape) == {"seeds": 4, "batch": 2}
    with pytest.warns(UserWarning, match="use 4 of the 8 devices"):
        assert dict(plan_mesh(4, 6, "map").shape) == {"seeds": 4, "batch": 1}  # map shards seeds only
    with pytest.raises(ValueError, match="needs 16 devices"):
        make_mesh(4, 4)
    state = jax.vmap(make_dmo(TINY).init)(jax.random.split(jax.random.key(0), 3))
    with pytest.raises(ValueError, match="does not divide over the 2 devices"):
        shard_state(state, make_mesh(2, 1))
    with pytest.raises(ValueError, match="unknown seed_loop"):
        over_seeds(lambda s: s, "pmap")
