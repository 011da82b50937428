import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--rounds", "2", "--auctions-per-round", "1000", "--window", "500", "--explore-steps", "200"]


def run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    return subprocess.run(
        [sys.executable, "-m", "experiments.deep_mechanism_optimization", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_smoke_deep(tmp_path):
    out = tmp_path / "dmo"
    proc = run([*TINY, "--seeds", "3", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "platform reward (mean +- std)" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "config",
        "jax_version",
        "devices",
        "platform_reward",
        "platform_reward_per_seed",
        "loss",
        "compile_seconds",
        "run_seconds",
    ):
        assert key in metrics
    assert len(metrics["platform_reward"]) == 2
    assert len(metrics["platform_reward_per_seed"]) == 2 and len(metrics["platform_reward_per_seed"][0]) == 3
    assert metrics["config"]["mechanism"] == "deep"
    assert (out / "rounds.csv").read_text().count("\n") == 3
    for png in ("platform_reward.png", "bid_value.png", "payment_shares.png"):
        assert (out / png).stat().st_size > 1000


def test_smoke_classical_rule(tmp_path):
    proc = run([*TINY, "--mechanism", "second_price", "--bidders", "2", "--out", str(tmp_path), "--no-plots"])
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["n_bidders"] == 2


def test_bad_flags_fail_with_a_message(tmp_path):
    proc = run(["--mechanism", "vickrey", "--out", str(tmp_path)])
    assert proc.returncode == 2 and "unknown mechanism 'vickrey'" in proc.stderr
    proc = run(["--window", "3000", "--out", str(tmp_path)])
    assert proc.returncode == 2 and "multiple of window" in proc.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_resume_gives_the_same_rewards_as_one_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = [*TINY[2:], "--seeds", "2", "--no-plots", "--no-progress"]
    assert run(["--rounds", "2", "--out", str(a), *common]).returncode == 0
    proc = run(["--rounds", "4", "--resume", str(a), "--out", str(a), *common])
    assert proc.returncode == 0, proc.stderr
    assert run(["--rounds", "4", "--out", str(b), *common]).returncode == 0
    resumed, single = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert resumed["resumed_from_round"] == 2
    assert resumed["platform_reward_per_seed"] == single["platform_reward_per_seed"]
    assert resumed["loss"] == single["loss"]
    assert len((a / "rounds.jsonl").read_text().splitlines()) == 4
    assert (a / "rounds.csv").read_text() == (b / "rounds.csv").read_text()  # header + 4 rounds, resumed or not
    other = run(["--rounds", "4", "--resume", str(a), "--out", str(tmp_path / "c"), *common, "--bidders", "4"])
    assert other.returncode != 0 and "another configuration" in other.stderr
