"""Two local processes joined by ``jax.distributed`` (CPU, gloo collectives) against one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import deep_mechanism_optimization as dmo_experiment

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--rounds", "2", "--auctions-per-round", "1000", "--window", "500", "--explore-steps", "200"]
ARGS += ["--no-plots", "--no-progress", "--no-final-eval"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], devices: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    # This process's other XLA flags (the same compiled code as the single-device run here), with its own devices.
    others = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={devices}", *others])
    command = [sys.executable, "-m", "experiments.deep_mechanism_optimization", *ARGS, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def _two_processes_and_one(args: list[str], tmp_path: Path) -> tuple[str, dict, dict]:
    """The same run as two processes with 2 CPU devices each (a 4-device mesh) in ``tmp_path/two`` and, while
    they run, on one device in this process (``--no-shard``) in ``tmp_path/one``. Returns process 0's printout
    and both metrics."""
    address = f"127.0.0.1:{_free_port()}"
    common = [*args, "--out", str(tmp_path / "two"), "--coordinator-address", address, "--num-processes", "2"]
    procs = [_launch([*common, "--process-id", str(i)], devices=2) for i in range(2)]
    dmo_experiment.main([*ARGS, *args, "--out", str(tmp_path / "one"), "--no-shard"])
    outputs = [_finish(p) for p in procs]
    assert "platform reward" in outputs[0] and "platform reward" not in outputs[1], "only process 0 reports"
    two, one = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("two", "one"))
    return outputs[0], two, one


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
    printed, two, one = _two_processes_and_one(["--seeds", "4", "--seed-loop", "map"], tmp_path)
    assert "mesh {'seeds': 4, 'batch': 1} over 2 process(es)" in printed
    assert two["mesh"] == {"seeds": 4, "batch": 1} and one["mesh"] is None
    assert two["platform_reward_per_seed"] == one["platform_reward_per_seed"]
    np.testing.assert_allclose(two["loss_per_seed"], one["loss_per_seed"], rtol=1e-6)  # last-bit rounding
    # The checkpoints (gathered from both processes, written by process 0) hold the same final state.
    with np.load(tmp_path / "two" / "checkpoint.npz") as a, np.load(tmp_path / "one" / "checkpoint.npz") as b:
        for name in (k for k in b.files if k.startswith("state_")):
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_two_processes_data_parallel_markets(tmp_path):
    printed, two, one = _two_processes_and_one(["--seeds", "2", "--markets", "2"], tmp_path)
    assert "mesh {'seeds': 2, 'batch': 2} over 2 process(es)" in printed
    # Cross-device sums of the dataset revenue: equal up to float32 rounding.
    np.testing.assert_allclose(two["platform_reward_per_seed"], one["platform_reward_per_seed"], rtol=1e-5)
    np.testing.assert_allclose(two["loss_per_seed"], one["loss_per_seed"], rtol=1e-5)
