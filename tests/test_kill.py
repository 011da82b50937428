"""Real signals: SIGKILL and SIGINT during training and during the final evaluation of the DMO, learning-aware
and RegretNet experiments, then ``--resume``: the results equal an uninterrupted run's (timings aside).

Each interrupted run is a subprocess whose chosen call (a log append after a training chunk, or the final
evaluation) sends the signal to its own process, so the kill lands at a known point, deterministically: a
SIGKILL leaves no chance to clean up (the lock, the logs past the last checkpoint stay behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from experiments import deep_mechanism_optimization as dmo_experiment
from experiments import learning_aware_dmo, regretnet
from tests.test_runs import DMO, LA, RN, ROOT, same_results

MODULES = {"dmo": dmo_experiment, "learning_aware": learning_aware_dmo, "regretnet": regretnet}
ARGS = {  # four chunks of training, a checkpoint after each
    "dmo": [*DMO, "--rounds", "4"],
    "learning_aware": [*LA, "--iterations", "4"],
    "regretnet": [*RN, "--iterations", "40"],
}
PHASES = {  # (module, attribute, class or None, which call sends the signal)
    "training": ("jaxauction.io", "LogStore", "append", 3),  # chunk 3's logs written, its checkpoint not yet
    "evaluation": ("jaxauction.evaluation", None, "report_rule", 1),
}
RN_EVALUATION = ("jaxauction.regret", None, "_evaluate", 2)  # seed 0 audited, seed 1 cut

WRAPPER = """
import importlib, os, signal, sys, runpy
module, owner, name, which, sig = sys.argv[1:6]
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job's children start with SIGINT ignored
target = importlib.import_module(module)
holder = getattr(target, owner) if owner != "-" else target
real, calls = getattr(holder, name), [0]
def wrapped(*args, **kwargs):
    calls[0] += 1
    if calls[0] == int(which):
        os.kill(os.getpid(), getattr(signal, sig))
    return real(*args, **kwargs)
setattr(holder, name, wrapped)
sys.argv = [sys.argv[6], *sys.argv[7:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole")
    return {name: MODULES[name].main([*args, "--out", str(root / name)]) for name, args in ARGS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("phase", ["training", "evaluation"])
@pytest.mark.parametrize("experiment", ["dmo", "learning_aware", "regretnet"])
def test_a_signal_then_resume_gives_the_uninterrupted_results(experiment, phase, sig, uninterrupted, tmp_path,
                                                              capsys):  # fmt: skip
    module, owner, name, which = RN_EVALUATION if (experiment, phase) == ("regretnet", "evaluation") else PHASES[phase]
    out = tmp_path / "cut"
    command = [sys.executable, "-c", WRAPPER, module, owner or "-", name, str(which), sig,
               f"experiments.{MODULES[experiment].__name__.split('.')[-1]}", *ARGS[experiment], "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
    cut = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    expected = -signal.SIGKILL if sig == "SIGKILL" else 130
    assert cut.returncode == expected, cut.stderr[-2000:]
    assert not (out / "metrics.json").exists()
    if sig == "SIGINT":
        assert "Traceback" not in cut.stderr
    else:
        assert (out / ".lock").exists()  # a killed process leaves its lock: the resume takes it over
    capsys.readouterr()
    resumed = MODULES[experiment].main(["--resume", str(out), "--no-progress"])
    assert resumed is not None and (out / "metrics.json").exists()
    same_results(resumed, uninterrupted[experiment])
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert len(rows) == 4  # the rows past the last checkpoint were rewritten once, not duplicated
    assert not list(out.glob("*.png"))  # --no-plots was remembered by --resume


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_no_plots_and_no_shard_are_remembered_by_resume(tmp_path):
    from jaxauction import cli
    from jaxauction.train.dmo import DMOConfig

    out = tmp_path / "run"
    dmo_experiment.main([*DMO, "--no-final-eval", "--out", str(out)])
    _, spec = cli.parse(DMOConfig, ["--resume", str(out)], experiment=dmo_experiment.NAME)
    assert not spec.plots and not spec.shard  # sharding changes the last bits of some results (RegretNet's)
    dmo_experiment.main(["--resume", str(out), "--rounds", "3", "--no-progress"])
    assert not list(out.glob("*.png"))
    dmo_experiment.main(["--resume", str(out), "--rounds", "4", "--no-progress", "--plots"])
    assert list(out.glob("*.png"))


def test_logs_are_never_padded_to_meet_a_checkpoint(tmp_path):
    """A checkpoint ahead of its logs is refused on resume, never read back with zero rows (the Ctrl-C bug:
    interrupted between a chunk and its log append, the run checkpointed the chunk's state)."""
    import numpy as np

    from jaxauction.io import LogStore

    store = LogStore(tmp_path / "logs", {"reward": np.zeros((2,), np.float32)})
    store.append({"reward": np.ones((3, 2), np.float32)})
    store.truncate(2)
    assert store.steps() == 2
    with pytest.raises(ValueError, match="hold 2 steps, fewer than the 3"):
        store.truncate(3)
    assert store.steps() == 2 and np.all(store.read()["reward"] == 1)
