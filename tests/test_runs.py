"""Runs that never lose a result: an interrupted final evaluation resumes, a run folder is locked while a run
uses it, and runs that cannot fit in memory are refused before anything is allocated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import deep_mechanism_optimization as dmo_experiment
from experiments import learning_aware_dmo, regret_audit, regretnet, reserve_sweep
from jaxauction import evaluation
from jaxauction import regret as regret_module

ROOT = Path(__file__).resolve().parents[1]
DMO = ["--rounds", "2", "--auctions-per-round", "1000", "--window", "500", "--explore-steps", "200", "--no-progress",
       "--no-shard", "--no-plots", "--reserves", "3"]  # fmt: skip
LA = ["--iterations", "2", "--population", "4", "--auctions", "400", "--window", "200", "--explore-steps", "100",
      "--half-life", "100.0", "--reserves", "3", "--eval-seeds", "2", "--regret-profiles", "8", "--no-progress",
      "--no-shard", "--no-plots"]  # fmt: skip
RN = ["--setting", "single2", "--iterations", "20", "--log-every", "10", "--batch", "16", "--train-size", "64",
      "--profiles", "16", "--random-starts", "1", "--steps", "5", "--stronger", "1", "--revenue-profiles", "0",
      "--no-interim", "--seeds", "2", "--no-progress", "--no-plots", "--no-shard"]  # fmt: skip
TIMINGS = {"compile_seconds", "run_seconds", "auctions_per_second", "optimization_seconds", "train_seconds",
           "audit_seconds", "seconds_per_iteration", "iterations_this_call", "resumed_from_round",
           "config"}  # fmt: skip


def interrupt_on_call(monkeypatch, module, name, which: int = 1) -> None:
    """Make call number ``which`` of ``module.name`` raise KeyboardInterrupt (Ctrl-C in the final evaluation)."""
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == which:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def same_value(x, y, where: str) -> None:
    """Equal results, bit for bit, timings aside."""
    if isinstance(x, dict) and isinstance(y, dict):
        same_results(x, y)
    elif isinstance(x, list) and isinstance(y, list):
        assert len(x) == len(y), where
        for u, v in zip(x, y, strict=True):
            same_value(u, v, where)
    else:
        assert x == y, (where, x, y)


def same_results(a: dict, b: dict) -> None:
    a = {k: v for k, v in json.loads(json.dumps(a, default=str)).items() if k not in TIMINGS}
    b = {k: v for k, v in json.loads(json.dumps(b, default=str)).items() if k not in TIMINGS}
    assert a.keys() == b.keys()
    for k in a:
        if k != "protocol":
            same_value(a[k], b[k], k)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["dmo", "learning_aware", "regretnet"])
def test_ctrl_c_in_the_final_evaluation_then_resume_gives_the_uninterrupted_results(experiment, tmp_path,
                                                                                    monkeypatch, capsys):
    module, args, target = {
        "dmo": (dmo_experiment, DMO, (evaluation, "report_rule")),
        "learning_aware": (learning_aware_dmo, LA, (evaluation, "report_rule")),
        "regretnet": (regretnet, RN, (regret_module, "_evaluate")),
    }[experiment]
    whole = module.main([*args, "--out", str(tmp_path / "whole")])
    out = tmp_path / "cut"
    # RegretNet: seed 0's audit finishes, seed 1's is cut (seed 0's is then read back, not redone)
    interrupt_on_call(monkeypatch, *target, which=2 if experiment == "regretnet" else 1)
    with pytest.raises(SystemExit) as exc:
        module.main([*args, "--out", str(out)])
    assert exc.value.code == 130
    assert not (out / "metrics.json").exists()  # nothing half-written
    monkeypatch.undo()
    capsys.readouterr()
    resumed = module.main(["--resume", str(out), "--no-progress", "--no-plots"])
    said = capsys.readouterr().out
    assert "evaluat" in said or "audit" in said
    assert resumed is not None and (out / "metrics.json").exists()
    same_results(resumed, whole)
    if experiment == "regretnet":
        assert (out / "evaluation" / "audit_seed0.json").exists()
    assert module.main(["--resume", str(out), "--no-progress"]) is None  # now finished: nothing more to do


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_a_run_folder_in_use_is_refused_with_the_holder_named(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename,
                                               "started": "2026-12-01T00:00:00"}))  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            dmo_experiment.main([*DMO, "--no-final-eval", "--out", str(out)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "in use by another run" in err and str(holder.pid) in err and len(err.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and the next run takes it over
    assert dmo_experiment.main([*DMO, "--no-final-eval", "--out", str(out)]) is not None


@pytest.mark.slow
def test_two_runs_into_one_folder_the_second_is_refused_the_first_finishes(tmp_path):
    out = tmp_path / "shared"
    args = [sys.executable, "-m", "experiments.deep_mechanism_optimization", *DMO, "--rounds", "3", "--no-final-eval",
            "--out", str(out)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / ".lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "in use by another run" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    rows = [json.loads(line)["round"] for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]  # one run's rows, in order
    assert json.loads((out / "metrics.json").read_text())["seeds"] == 1
    assert not (out / ".lock").exists()  # given back at exit


@pytest.mark.parametrize(("module", "args"), [
    (dmo_experiment, ["--seeds", "1000000000"]),
    (regretnet, ["--setting", "additive_3x10", "--seeds", "100000"]),
    (reserve_sweep, ["--reserves", "100000000"]),
    (regret_audit, ["--setting", "additive_3x10", "--mechanism", "second_price", "--profiles", "100000000"]),
])  # fmt: skip
def test_runs_that_cannot_fit_in_memory_are_refused_in_seconds(module, args, tmp_path, capsys):
    start = time.time()
    with pytest.raises(SystemExit) as exc:
        module.main([*args, "--out", str(tmp_path / "big"), "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs about" in err and "GiB" in err and "Traceback" not in err
    assert time.time() - start < 30
    assert not (tmp_path / "big" / "checkpoint.npz").exists()
