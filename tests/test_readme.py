"""The README's short API tour (default suite) and the documentation's full tour (slow: about 30 s) run as
written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_tour(path: Path, heading: str, tmp_path, monkeypatch) -> dict:
    text = path.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S).group(1)
    code = code.replace('"/tmp/tour_run"', repr(str(tmp_path / "run")))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, path.name, "exec"), namespace)  # noqa: S102 - the documentation's own code
    return namespace


def test_readme_tour_runs(tmp_path, monkeypatch):
    ns = run_tour(ROOT / "README.md", "## API tour", tmp_path, monkeypatch)
    assert ns["out"].payments.tolist() == [0.0, pytest.approx(0.6), 0.0]
    bids = ns["market"].population.policy(ns["states"], ns["jnp"].full((1, 1), 0.8), ns["params"].learners)
    assert abs(float(bids.mean()) - 0.4) < 0.08  # Hedge bidders near the first-price equilibrium v / 2
    revenue = ns["m"].revenue[:, 0].tolist()
    assert revenue.index(max(revenue)) == 2 and abs(revenue[2] - 5 / 12) < 0.02  # reserve 0.5: 5/12 (Myerson)
    assert abs(ns["report"].regret_mean - 1 / 6) < 0.02


@pytest.mark.slow
def test_full_tour_runs(tmp_path, monkeypatch):
    namespace = run_tour(ROOT / "docs" / "tour.md", "# API tour", tmp_path, monkeypatch)
    assert namespace["logs"].platform_reward.shape == (4, 3)
    ns = namespace
    bids = ns["fp_market"].population.policy(ns["fp_states"], ns["jnp"].full((1, 1), 0.8), ns["fp_params"].learners)
    assert abs(float(bids.mean()) - 0.4) < 0.08  # Hedge bidders near the first-price equilibrium v / 2
    assert abs(namespace["eq"].revenue - 4.47) < 0.05
    # the Session wrote one summary row per round, a checkpoint of the final state, and left no lock behind
    rows = (tmp_path / "run" / "rounds.csv").read_text().splitlines()
    rounds = namespace["config"].rollout.rounds
    assert rows[0] == "round,reward" and [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, rounds + 1))
    assert (tmp_path / "run" / "checkpoint.npz").exists()
    assert namespace["result"].steps_run == rounds and namespace["result"].state.round.tolist() == [rounds] * 4
