"""The README's API tour runs as written (slow: about 30 s)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_api_tour_runs(tmp_path, monkeypatch):
    text = README.read_text()
    tour = text[text.index("## API tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    code = code.replace('"/tmp/tour_run"', repr(str(tmp_path / "run")))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
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
