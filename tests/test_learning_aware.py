"""The learning-aware experiment on a tiny market: the honest evaluation path, and bit-exact resume."""

import pytest

from experiments import learning_aware_dmo

TINY = ["--auctions", "2000", "--window", "1000", "--explore-steps", "400", "--half-life", "200.0", "--markets", "2",
        "--population", "4", "--reserves", "4", "--eval-seeds", "2", "--no-progress", "--no-shard",
        "--no-plots"]  # fmt: skip


@pytest.mark.slow
def test_tiny_run_reports_learned_rule_baselines_theory_and_resumes_bit_exactly(tmp_path):
    whole = learning_aware_dmo.main([*TINY, "--iterations", "4", "--out", str(tmp_path / "whole")])
    for key in ("learned", "baselines", "theory", "losers_share", "ir_violation_rate", "anonymity", "regret"):
        assert key in whole
    assert whole["losers_share"] == 0.0 and whole["anonymity"] == 0.0  # second price with a reserve
    assert whole["regret"]["regret_mean"] == 0.0  # and it is truthful as a direct mechanism
    assert whole["theory"]["myerson_optimum"] == pytest.approx(5.275)
    learning_aware_dmo.main([*TINY, "--iterations", "2", "--out", str(tmp_path / "split")])
    resumed = learning_aware_dmo.main(["--resume", str(tmp_path / "split"), "--iterations", "4", "--no-progress",
                                       "--no-shard", "--no-plots"])  # fmt: skip
    assert resumed["learned_reserve"] == whole["learned_reserve"]
    assert resumed["learned"]["per_seed"] == whole["learned"]["per_seed"]


def test_bad_configurations_stop_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit):
        learning_aware_dmo.main(["--rule", "vickrey", "--out", str(tmp_path)])
    assert "unknown rule 'vickrey'" in capsys.readouterr().err
