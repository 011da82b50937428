"""The deep mechanism optimization experiment as a user meets it: outputs, resume, bad input, files.

Most runs call the module's ``main`` in this process (``--no-shard``: the test process has 8 fake devices);
Ctrl-C and the command line itself run as subprocesses.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jaxauction
from experiments import deep_mechanism_optimization as dmo_experiment

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--rounds", "2", "--auctions-per-round", "1000", "--window", "500", "--explore-steps", "200", "--no-progress",
        "--no-final-eval"]  # fmt: skip
FAST = [*TINY, "--no-shard", "--no-plots"]


def run(args):
    return dmo_experiment.main([*FAST, *args])


def fails(args, capsys, code=2):
    with pytest.raises(SystemExit) as exc:
        dmo_experiment.main(args)
    assert exc.value.code == code
    return " ".join(capsys.readouterr().err.replace("│", " ").split())  # tyro's boxes wrap lines


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_smoke_deep_with_plots_and_file_permissions(tmp_path):
    out = tmp_path / "dmo"
    old = os.umask(0o022)
    try:
        metrics = dmo_experiment.main([*TINY, "--no-shard", "--seeds", "3", "--out", str(out)])
    finally:
        os.umask(old)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("config", "jax_version", "devices", "platform_reward", "platform_reward_per_seed", "loss",
                "greedy_bids", "compile_seconds", "run_seconds", "learners"):  # fmt: skip
        assert key in saved
    assert saved["platform_reward"] == metrics["platform_reward"].tolist()
    assert np.array(saved["platform_reward_per_seed"]).shape == (2, 3)
    assert saved["config"]["mechanism"]["mechanism"] == "deep"
    assert (out / "rounds.csv").read_text().count("\n") == 3
    assert len((out / "rounds.jsonl").read_text().splitlines()) == 2
    for png in ("platform_reward.png", "bid_value.png", "payment_shares.png"):
        assert (out / png).stat().st_size > 1000
    for name in ("metrics.json", "rounds.csv", "rounds.jsonl", "checkpoint.npz", "platform_reward.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name  # readable by others: the umask mode


@pytest.mark.slow
def test_mixed_population_from_the_command_line(tmp_path):
    metrics = run(["--mechanism", "second_price", "--learner", "truthful,epsilon_greedy,epsilon_greedy",
                   "--out", str(tmp_path)])  # fmt: skip
    assert metrics["learners"] == ["truthful", "epsilon_greedy", "epsilon_greedy"]
    greedy = np.asarray(metrics["greedy_bids"])
    np.testing.assert_array_equal(greedy[0], np.arange(10))  # the truthful bidder's bid function
    assert np.asarray(metrics["utility"])[-1, 0] > 0


@pytest.mark.slow
def test_each_run_gets_its_own_folder_and_others_results_are_protected(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run([])
    run(["--mechanism", "second_price"])
    folders = sorted((tmp_path / "results" / "deep_mechanism_optimization").iterdir())
    assert len(folders) == 2 and all((f / "metrics.json").exists() for f in folders)
    deep_run = folders[0]
    assert "another run's results" in fails([*FAST, "--out", str(deep_run)], capsys)
    (deep_run / "payment_shares.png").write_bytes(b"old plot")
    run(["--mechanism", "second_price", "--out", str(deep_run), "--overwrite"])
    assert not (deep_run / "payment_shares.png").exists()  # no stale plots of the replaced run
    assert json.loads((deep_run / "metrics.json").read_text())["config"]["mechanism"]["mechanism"] == "second_price"


@pytest.mark.slow
def test_resume_reads_the_configuration_and_extends_only_the_length(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--seeds", "2", "--auctions-per-round", "1000", "--window", "500", "--explore-steps", "200",
              "--half-life", "300", "--no-progress", "--no-shard", "--no-plots", "--no-final-eval"]  # fmt: skip
    dmo_experiment.main([*common, "--rounds", "2", "--out", str(a)])
    resumed = dmo_experiment.main(["--resume", str(a), "--rounds", "4", "--no-progress"])  # no settings typed
    single = dmo_experiment.main([*common, "--rounds", "4", "--out", str(b)])
    assert resumed["resumed_from_round"] == 2
    assert resumed["platform_reward_per_seed"].tolist() == single["platform_reward_per_seed"].tolist()
    assert resumed["loss"].tolist() == single["loss"].tolist()
    assert (a / "rounds.csv").read_text() == (b / "rounds.csv").read_text()
    assert len((a / "rounds.jsonl").read_text().splitlines()) == 4
    err = fails(
        ["--resume", str(a), "--rounds", "5", "--bidders", "4", "--learner", "truthful", "--seeds", "3"], capsys
    )
    for setting in ("n_bidders: 4 (the run has 3)", "learner: 'truthful'", "seeds: 3 (the run has 2)"):
        assert setting in err
    before = (a / "metrics.json").read_text()
    assert dmo_experiment.main(["--resume", str(a), "--no-progress"]) is None
    assert "has done all 4 rounds already" in capsys.readouterr().out
    assert (a / "metrics.json").read_text() == before  # timings are not overwritten


def test_bad_input_stops_with_a_message_before_anything_runs(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file, not a folder" in fails([*FAST, "--out", str(afile)], capsys)
    out = tmp_path / "never"
    err = fails([*FAST, "--hidden", "0", "5", "--out", str(out)], capsys)
    assert "hidden widths must be positive" in err and not out.exists()
    assert "must be finite" in fails([*FAST, "--value-high", "nan", "--out", str(out)], capsys)
    assert "unknown mechanism 'vickrey'" in fails([*FAST, "--mechanism", "vickrey", "--out", str(out)], capsys)
    assert "multiple of --window" in fails([*FAST, "--window", "300", "--out", str(out)], capsys)
    assert not out.exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoint.npz").write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable jaxauction checkpoint" in fails(["--resume", str(broken)], capsys)
    (broken / "checkpoint.npz").write_text("round,reward\n1,4.2\n")
    assert "not a readable jaxauction checkpoint" in fails(["--resume", str(broken)], capsys)
    assert "no checkpoint" in fails(["--resume", str(tmp_path / "nowhere")], capsys)


@pytest.mark.slow
def test_plots_degrade_with_a_message_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "jaxauction.plots", raising=False)
    monkeypatch.delattr(jaxauction, "plots", raising=False)  # so that the import runs again
    dmo_experiment.main([*TINY, "--no-shard", "--out", str(tmp_path)])
    assert "plots skipped" in capsys.readouterr().err
    assert (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_command_line_and_ctrl_c(tmp_path):
    """The module runs as a command; Ctrl-C stops it with one line, keeping a checkpoint and the rounds so far."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    out = tmp_path / "long"
    args = ["--rounds", "200", "--auctions-per-round", "20000", "--window", "10000", "--explore-steps", "2000",
            "--no-progress", "--no-plots"]
    # A shell starts background jobs with SIGINT ignored, and children inherit that (Python then installs no
    # KeyboardInterrupt handler): the run gets the handler a terminal's Ctrl-C meets, then runs as `-m` would.
    launch = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['deep_mechanism_optimization', *sys.argv[1:]]; "
        "runpy.run_module('experiments.deep_mechanism_optimization', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", launch, *args, "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "rounds.jsonl").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    assert (out / "checkpoint.npz").exists() and (out / "rounds.jsonl").read_text()


@pytest.mark.slow
def test_a_resume_keeps_the_runs_sharding_and_its_results_bit_for_bit(tmp_path):
    """``--no-shard`` is remembered by ``--resume``. It was not: the resumed part ran sharded over the visible
    devices, and a RegretNet run extended that way differed from an uninterrupted one in the last bits (revenue_se
    0.0030842101 against 0.0030842041)."""
    from experiments import regretnet
    from tests.test_runs import RN, same_results

    whole = regretnet.main([*RN, "--iterations", "40", "--out", str(tmp_path / "whole")])
    regretnet.main([*RN, "--out", str(tmp_path / "part")])  # 20 iterations, then extended by a resume
    resumed = regretnet.main(["--resume", str(tmp_path / "part"), "--iterations", "40", "--no-progress"])
    same_results(resumed, whole)
