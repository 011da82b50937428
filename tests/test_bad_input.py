"""Bad input through every experiment: one line on stderr naming the problem in flags, status 2, no traceback,
and nothing written, before any computation."""

from __future__ import annotations

import importlib

import pytest

from experiments import regretnet_table, table

EXPERIMENTS = ("deep_mechanism_optimization", "learning_aware_dmo", "regretnet", "regret_audit", "reserve_sweep",
               "equilibrium", "all_pay_design")  # fmt: skip

DMO = "deep_mechanism_optimization"
BAD = [
    (DMO, ["--rounds", "0"], "--rounds must be an integer >= 1, got 0"),
    (DMO, ["--rounds", "abc"], "--rounds: invalid literal"),
    (DMO, ["--bidders", "1"], "--n-bidders must be an integer >= 2"),
    (DMO, ["--learner", "nope"], "unknown learner 'nope'"),
    (DMO, ["--mechanism", "nope"], "unknown mechanism 'nope'"),
    (DMO, ["--nope", "3"], "Unrecognized options: --nope"),
    (DMO, ["--seeds", "0"], "--seeds must be an integer >= 1"),
    (DMO, ["--updates-per-round", "0"], "--updates-per-round is 0: the deep rule would never"),
    (DMO, ["--auctions-per-round", "20000"],
     "--auctions-per-round (20000) must exceed --explore-steps (20000): epsilon_greedy bidders would never leave"),
    (DMO, ["--auctions-per-round", "1000", "--window", "300"],
     "--auctions-per-round (1000) must be a multiple of --window (300)"),
    (DMO, ["--learning-rate", "nan"], "--learning-rate must be finite"),
    ("learning_aware_dmo", ["--initial-reserve", "nan"], "--initial-reserve must be finite"),
    ("learning_aware_dmo", ["--initial-reserve", "-5"], "--initial-reserve must be >= 0"),
    ("learning_aware_dmo", ["--auctions", "4000", "--window", "1000"], "--auctions (4000) must exceed --explore-steps"),
    ("learning_aware_dmo", ["--rule", "nope"], "unknown rule 'nope'"),
    ("learning_aware_dmo", ["--seeds", "4", "--eval-seeds", "2"], "--eval-seeds (2) must be at least --seeds (4)"),
    ("regretnet", ["--rho-increment", "nan"], "--rho-increment must be finite"),
    ("regretnet", ["--lambda-init", "-1"], "--lambda-init must be >= 0"),
    ("regretnet", ["--setting", "nope"], "unknown setting 'nope'"),
    ("regretnet", ["--iterations", "1500", "--log-every", "1000"], "--iterations (1500) must be a multiple of"),
    ("regretnet", ["--model", "rochetnet", "--setting", "single2"], "rochetnet is for one bidder"),
    ("regretnet", ["--model", "regretnet", "--mixture", "additive_2x3"], "mixture needs a size-independent"),
    ("regretnet", ["--model", "regretformer", "--dual", "lagrange"], "invalid choice"),
    ("regret_audit", ["--on-setting", "additive_3x10"], "--on-setting audits a --regretnet-run"),
    ("regret_audit", ["--setting", "nope"], "unknown setting 'nope'"),
    ("regret_audit", ["--reserve", "nan"], "--reserve must be finite"),
    ("regret_audit", ["--reserve", "-1"], "--reserve must be >= 0"),
    ("regret_audit", ["--curve", "1", "0"], "strengthening factors are integers >= 1"),
    ("regret_audit", ["--mechanism", "nope"], "unknown mechanism 'nope'"),
    ("reserve_sweep", ["--reserves", "1"], "--reserves must be an integer >= 2"),
    ("reserve_sweep", ["--learner", "epsilon_greedy"], "--auctions (20000) must exceed --explore-steps"),
    ("equilibrium", ["--solver-iterations", "0"], "--solver-iterations must be an integer >= 1"),
    ("equilibrium", ["--learner", "truthful"], "does not learn"),
    ("all_pay_design", ["--points", "1"], "--points must be an integer >= 2"),
]


@pytest.mark.parametrize(("experiment", "argv", "words"), BAD, ids=[f"{e}:{' '.join(a)}" for e, a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(experiment, argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    module = importlib.import_module(f"experiments.{experiment}")
    with pytest.raises(SystemExit) as exc:
        module.main([*argv, "--out", str(out)])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert words in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out and "config." not in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_output_folder_that_cannot_be_made_is_one_line(experiment, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    module = importlib.import_module(f"experiments.{experiment}")
    with pytest.raises(SystemExit) as exc:
        module.main(["--out", str(blocker / "run")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(blocker) in lines[0], lines


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_help_is_plain_text(experiment, capsys):
    module = importlib.import_module(f"experiments.{experiment}")
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "``" not in text


@pytest.mark.parametrize("module", [table, regretnet_table])
def test_tables_refuse_bad_flags_in_one_line(module, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--nope"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
