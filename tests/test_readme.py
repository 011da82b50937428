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
    assert (tmp_path / "run" / "metrics.json").exists() or (tmp_path / "run" / "rounds.csv").exists()
