"""The regret experiments as a user meets them: audits of classical and DMO rules, a tiny RegretNet/RochetNet run."""

import json

import jax
import jax.numpy as jnp
import pytest

from experiments import deep_mechanism_optimization as dmo_experiment
from experiments import regret_audit, regretnet
from jaxauction import runs

GRID_ONLY = ["--steps", "0", "--grid", "1001", "--stronger", "1", "--revenue-profiles", "0", "--no-interim",
             "--no-progress", "--no-shard"]  # fmt: skip
TINY_ATTACK = ["--profiles", "200", "--random-starts", "1", "--steps", "20", "--stronger", "2",
               "--revenue-profiles", "0", "--no-interim", "--no-shard", "--no-progress"]  # fmt: skip


def test_audits_of_classical_rules_match_theory(tmp_path):
    """The issue's acceptance checks: second price 0; first price 1/6 +- 0.01 (2 truthful U[0,1] bidders)."""
    sp = regret_audit.main(["--setting", "single2", "--mechanism", "second_price", "--profiles", "4000", *GRID_ONLY,
                            "--out", str(tmp_path / "sp")])  # fmt: skip
    assert sp["regret_mean"] == 0.0 and sp["searches"] == ["grid"]
    fp = regret_audit.main(["--setting", "single2", "--mechanism", "first_price", "--profiles", "4000", *GRID_ONLY,
                            "--out", str(tmp_path / "fp")])  # fmt: skip
    assert abs(fp["regret_mean"] - 1 / 6) < 0.01
    saved = json.loads((tmp_path / "fp" / "metrics.json").read_text())
    for key in ("revenue", "regret_mean", "regret_max", "regret_over_revenue", "ir_violation_rate", "searches"):
        assert key in saved


def test_audit_refuses_what_it_cannot_judge(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        regret_audit.main(["--setting", "unit_1x2_23", "--mechanism", "second_price", "--out", str(tmp_path / "u")])
    assert exc.value.code == 2 and "at least 2 bidders" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        regret_audit.main(["--mechanism", "deep", "--out", str(tmp_path / "d")])
    assert "unknown mechanism" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        regret_audit.main(["--dmo-run", str(tmp_path), "--regretnet-run", str(tmp_path), "--out", str(tmp_path / "b")])
    assert "give one" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a RegretNet run
        regret_audit.main(["--regretnet-run", str(tmp_path / "nothing"), "--out", str(tmp_path / "c")])


@pytest.mark.slow  # an audit end to end, about 25 s (the importer itself: test_optimaler.py, default suite)
def test_a_network_shipped_by_optimaler_is_audited_and_tabled(tmp_path, capsys):
    """experiments.regret_audit --optimaler imports the file (jaxauction.optimaler, tested against the reference's
    forward pass in test_optimaler.py) and audits it; its folder makes a row of the results table, named as
    imported, with the iterations its file name says and no training time of ours."""
    import shutil
    from pathlib import Path

    from experiments import regretnet_table

    shipped = tmp_path / "target_nets" / "EquivariantNet" / "setting_additive_2x2_uniform" / "seed_0" / "model_200000"
    shipped.parent.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "data" / "optimaler" / "EquivariantNet_2x2_seed0", shipped)
    m = regret_audit.main(["--setting", "additive_2x2", "--optimaler", str(shipped), *TINY_ATTACK,
                           "--out", str(tmp_path / "audit")])  # fmt: skip
    assert m["audited"] == "optimaler EquivariantNet" and m["setting"] == "additive_2x2"
    assert 0.8 < m["revenue"] < 1.0 and m["regret_mean"] > 0 and m["ir_violation_rate"] == 0
    table = regretnet_table.main([str(tmp_path / "audit")])
    assert "| additive_2x2 | equivariantnet (optimaler seed 0, imported) |" in table
    assert "| 200,000 (the shipped file) | (trained elsewhere) |" in table
    for argv, message in [(["--setting", "unit_1x2"], "unit bidders"), (["--setting", "additive_1x2_416_47"], "U[0,1]"),
                          (["--regretnet-run", str(tmp_path)], "give one")]:  # fmt: skip
        with pytest.raises(SystemExit):
            regret_audit.main([*argv, "--optimaler", str(shipped), "--out", str(tmp_path / "x")])
        assert message in capsys.readouterr().err, message
    with pytest.raises(SystemExit):
        regret_audit.main(["--optimaler", str(tmp_path / "none"), "--out", str(tmp_path / "y")])
    assert "no file" in capsys.readouterr().err


@pytest.mark.slow
def test_audit_of_a_dmo_run_loads_its_checkpoint(tmp_path):
    dmo_experiment.main(["--rounds", "1", "--auctions-per-round", "1000", "--window", "500", "--no-final-eval",
                         "--explore-steps", "200",
                         "--no-progress", "--no-shard", "--no-plots", "--out", str(tmp_path / "dmo")])  # fmt: skip
    m = regret_audit.main(["--dmo-run", str(tmp_path / "dmo"), *TINY_ATTACK, "--out", str(tmp_path / "audit")])
    assert m["audited"] == "deep mechanism optimization run" and m["searches"] == ["gradient", "grid"]
    assert m["regret_mean"] > 0.1  # the seed's rule charges losers: bidding 0 instead saves them money
    assert m["ir_violation_rate"] > 0.1


@pytest.mark.slow
def test_rochetnet_run_writes_metrics_plots_and_resumes(tmp_path):
    args = ["--setting", "additive_1x2", "--model", "rochetnet", "--log-every", "10", "--batch", "64",
            "--menu-size", "16", *TINY_ATTACK, "--out", str(tmp_path / "r")]  # fmt: skip
    m = regretnet.main([*args, "--iterations", "20"])
    for key in ("revenue", "regret_mean", "regret_max", "regret_over_revenue", "train_seconds"):
        assert key in m
    assert m["regret_max"] < 1e-6  # RochetNet is exactly incentive compatible
    assert (tmp_path / "r" / "training.png").exists() and (tmp_path / "r" / "allocation.png").exists()
    longer = regretnet.main(["--resume", str(tmp_path / "r"), "--iterations", "30", "--no-progress"])
    assert longer["iterations"] == 30
    rows = (tmp_path / "r" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [10, 20, 30]


@pytest.mark.slow
def test_regretnet_run_on_two_bidders(tmp_path):
    from experiments import regretnet_table

    m = regretnet.main(["--setting", "additive_2x2", "--iterations", "10", "--log-every", "5", "--batch", "16",
                        "--train-size", "64", "--hidden-units", "8", "--misreport-steps", "2", *TINY_ATTACK,
                        "--no-plots", "--out", str(tmp_path / "rn")])  # fmt: skip
    assert m["model"] == "regretnet" and len(m["per_seed"][0]["regret_per_bidder"]) == 2
    assert m["ir_violation_rate"] == 0.0  # individually rational by construction
    audit = regret_audit.main(["--regretnet-run", str(tmp_path / "rn"), *TINY_ATTACK, "--out", str(tmp_path / "a")])
    assert audit["audited"] == "regretnet run" and audit["setting"] == "additive_2x2" and audit["iterations"] == 10
    assert audit["ir_violation_rate"] == 0.0 and audit["regret_mean"] >= 0.0
    assert abs(audit["revenue"] - m["revenue"]) < 0.1  # the same rule on other profiles
    table = regretnet_table.main([str(tmp_path / "a")])  # a row of the run under the audit's protocol
    assert "| additive_2x2 | regretnet (audited apart) |" in table
    assert "| 10; planned short: 0.0% of the reference 400,000 | " in table
    assert f"| {m['train_seconds']:.0f} s |" in table  # the run is here: its train time is read from it



def test_training_attack_reads_a_runs_cached_misreports_and_each_kept_best_is_at_least_its_start(tmp_path, capsys):
    """experiments.training_attack on a tiny RegretNet run: every attack's row; a refinement that keeps the best
    report is at least its start (per profile and bidder, so in the mean), and the best of the cached misreport
    and random reports at least the cached one; fixed keys: a second call gives the same table; a folder that is
    not a regret-trained run is refused with its reason."""
    from experiments import training_attack

    regretnet.main(["--setting", "additive_2x2", "--iterations", "10", "--log-every", "5", "--batch", "16",
                    "--train-size", "64", "--hidden-units", "8", "--misreport-steps", "3", *TINY_ATTACK,
                    "--no-plots", "--out", str(tmp_path / "rn")])  # fmt: skip
    argv = [str(tmp_path / "rn"), "--candidates", "4", "32", "--batches", "2", "--out", str(tmp_path / "ta")]
    result = training_attack.main(argv)
    r = result["regret_mean"]
    assert len(r) == 3 + 3 * 2 and result["iterations"] == 10 and result["batches"] == 2
    assert r["cached + 3 steps, best kept"] >= r["cached"] - 1e-9
    for c in (4, 32):
        seeded = r[f"best of cached and {c} random"]
        kept = r[f"best of cached and {c} random + 3 steps, best kept"]
        assert seeded >= r["cached"] - 1e-9 and kept >= seeded - 1e-9
    assert json.loads((tmp_path / "ta" / "metrics.json").read_text())["regret_mean"] == r
    assert "| cached + 3 steps | " in (tmp_path / "ta" / "table.md").read_text()
    assert training_attack.main(argv)["regret_mean"] == r
    assert "best of cached and 32 random + 3 steps, best kept" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        training_attack.main([str(tmp_path / "ta")])
    assert "no checkpoint there" in capsys.readouterr().err

@pytest.mark.slow
def test_regretformer_trained_on_a_mixture_is_audited_on_a_size_it_never_saw(tmp_path):
    from experiments import regretnet_table

    m = regretnet.main(["--setting", "additive_2x2", "--model", "regretformer", "--mixture", "additive_1x2",
                        "additive_2x3", "--iterations", "10", "--log-every", "5", "--batch", "16", "--train-size",
                        "64", "--hidden-units", "8", "--attention-units", "4", "--misreport-steps", "2", *TINY_ATTACK,
                        "--no-plots", "--out", str(tmp_path / "rf")])  # fmt: skip
    assert m["model"] == "regretformer" and m["ir_violation_rate"] == 0.0
    audit = regret_audit.main(["--regretnet-run", str(tmp_path / "rf"), "--on-setting", "additive_2x5", *TINY_ATTACK,
                               "--out", str(tmp_path / "a")])  # fmt: skip
    assert audit["setting"] == "additive_2x5" and audit["trained_on"] == ["additive_2x2", "additive_1x2",
                                                                          "additive_2x3"]  # fmt: skip
    assert len(audit["regret_per_bidder"]) == 2 and audit["ir_violation_rate"] == 0.0 and audit["revenue"] > 0
    table = regretnet_table.main([str(tmp_path / "a")])
    assert "| additive_2x5 | regretformer (audited apart, trained on additive_2x2 + additive_1x2 + additive_2x3) |" \
        in table
    resumed = regretnet.main(["--resume", str(tmp_path / "rf"), "--iterations", "15", "--no-progress"])
    assert resumed["iterations"] == 15  # the mixture's tuple state checkpoints and resumes


@pytest.mark.slow  # a run and its extension, about 30 s: mostly compilation
def test_extending_a_budget_dual_run_keeps_its_decay(tmp_path):
    """The budget's decay (two thirds of --iterations unless given) is recorded when the run starts: extended from
    6 to 30 iterations it stays at the end budget from iteration 4 on, instead of decaying again over 20 (the
    logged target is each window's mean)."""
    import csv

    out = tmp_path / "b"
    regretnet.main(["--setting", "additive_1x2", "--dual", "budget", "--iterations", "6", "--log-every", "3",
                    "--batch", "16", "--train-size", "64", "--hidden-units", "8", "--misreport-steps", "2",
                    *TINY_ATTACK, "--profiles", "50", "--no-plots", "--out", str(out)])  # fmt: skip
    m = regretnet.main(["--resume", str(out), "--iterations", "30", "--no-progress"])
    assert m["config"].train.budget_decay == 4 and m["iterations"] == 30
    with open(out / "rounds.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == list(range(3, 31, 3))
    assert float(rows[0]["rho"]) > float(rows[1]["rho"]) > 0.001  # the window's mean target: decaying until 4
    assert all(float(r["rho"]) == pytest.approx(0.001) for r in rows[2:])


@pytest.mark.slow  # two small runs, about 20 s: mostly compilation
def test_select_best_audits_the_restart_with_the_most_validation_revenue(tmp_path):
    """Two MyersonNet restarts: --select best audits only the one with the most revenue on the validation
    profiles, and its audit is the very report --select all gives that seed (same seeds, same audit key); the
    table names the restarts. The validation figures are each restart's mean on one shared sample."""
    from experiments import regretnet_table

    args = ["--setting", "single3", "--model", "myersonnet", "--iterations", "20", "--log-every", "10", "--batch",
            "64", "--lines", "2", "--groups", "2", "--seeds", "2", "--validation-profiles", "5000", *TINY_ATTACK,
            "--profiles", "50", "--grid", "11", "--no-plots"]  # fmt: skip
    best = regretnet.main([*args, "--select", "best", "--out", str(tmp_path / "best")])
    every = regretnet.main([*args, "--out", str(tmp_path / "all")])
    chosen = best["selected_seed"]
    assert len(best["validation_revenue"]) == 2 and len(set(best["validation_revenue"])) == 2
    assert chosen == max(range(2), key=lambda s: best["validation_revenue"][s])
    assert len(best["per_seed"]) == 1 and len(every["per_seed"]) == 2 and "selected_seed" not in every
    one, same = ({k: v for k, v in r.items() if k != "audit_seconds"} for r in (best["per_seed"][0],
                                                                               every["per_seed"][chosen]))  # fmt: skip
    assert one == same
    assert (best["revenue"], best["revenue_se"]) == (every["per_seed"][chosen]["revenue"],
                                                     every["per_seed"][chosen]["revenue_se"])  # fmt: skip
    table = regretnet_table.main([str(tmp_path / "best"), str(tmp_path / "all")])
    assert "| single3 | myersonnet (best of 2 restarts) |" in table and "| single3 | myersonnet |" in table


def test_select_best_is_refused_where_it_would_mislead(tmp_path):
    with pytest.raises(SystemExit):  # a regret-trained model: the richest restart may leak the most
        regretnet.main(["--setting", "additive_1x2", "--seeds", "2", "--select", "best", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit):  # one seed: nothing to choose from
        regretnet.main(["--setting", "single3", "--model", "myersonnet", "--select", "best",
                        "--out", str(tmp_path / "b")])  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_table_collects_finished_runs(tmp_path):
    from experiments import regretnet_table

    regretnet.main(["--setting", "additive_1x2", "--model", "rochetnet", "--iterations", "10", "--log-every", "10",
                    "--batch", "32", "--menu-size", "8", *TINY_ATTACK, "--no-plots",
                    "--out", str(tmp_path / "a")])  # fmt: skip
    stopped = regretnet.main(["--setting", "additive_1x2", "--model", "rochetnet", "--iterations", "30",
                              "--log-every", "10", "--batch", "32", "--menu-size", "8", *TINY_ATTACK, "--no-plots",
                              "--time-limit", "1e-9", "--out", str(tmp_path / "b")])  # fmt: skip
    assert (stopped["iterations"], stopped["iterations_planned"]) == (10, 30)  # one chunk, then evaluated
    ama = regretnet.main(["--setting", "additive_2x5", "--model", "affine_maximizer", "--iterations", "10",
                          "--log-every", "10", "--batch", "32", "--menu-size", "8", *TINY_ATTACK, "--no-plots",
                          "--out", str(tmp_path / "c")])  # fmt: skip
    assert ama["regret_max"] < 1e-5 and "menu" in ama["searches"]  # each bidder's menu enumerated
    regretnet.main(["--setting", "ca_2x2_sym", "--model", "affine_maximizer", "--ama-menu", "deterministic",
                    "--iterations", "10", "--log-every", "10", "--batch", "32", *TINY_ATTACK, "--no-plots",
                    "--out", str(tmp_path / "d")])  # fmt: skip
    table = regretnet_table.main([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"), str(tmp_path / "d"),
                                  "--out", str(tmp_path / "t.md")])  # fmt: skip
    assert "| ca_2x2_sym | affine_maximizer (deterministic menu) |" in table and "2.7766 (AMA_bsym" in table
    assert "| additive_1x2 | rochetnet |" in table and "0.5492" in table and "0.550 (RegretNet" in table
    assert "| additive_2x5 | affine_maximizer |" in table and "2.280 (AMenuNet (Duan et al. 2023))" in table
    assert "10 of 30 (33.3%; --time-limit)" in table and "| strong: 200 profiles, grid+menu |" in table
    assert (tmp_path / "t.csv").exists()
    with pytest.raises(SystemExit):
        regretnet_table.main([str(tmp_path)])


@pytest.mark.slow
def test_zoo_fills_its_table_over_calls_and_resumes_unfinished_cells(tmp_path, capsys):
    """Two cells planned for 200 iterations: the first's share (1 ms) stops it after one chunk (100), the
    second (what is left) finishes; both are audited and tabled. A call whose --flags differ from the first
    cell's run is refused (its resume names the flag); a second call resumes the first from its checkpoint to
    200 and skips the finished second (its metrics.json untouched); a third only writes the table.
    MyersonNet's cell takes its method's flags (4 restarts, the best audited), --flags after them."""
    from experiments import zoo

    argv = ["--runs", str(tmp_path / "zoo"), "--cells", "rochetnet:additive_1x2", "myersonnet:single3_irregular",
            "--flags=--batch 32 --menu-size 8 --profiles 200 --revenue-profiles 0 --no-interim --lines 2",
            "--iterations", "200", "--budget", "1000", "--audit-seconds", "499.999", "--out", str(tmp_path / "z.md")]
    table = zoo.main(argv)
    rochet, myerson = tmp_path / "zoo" / "rochetnet_additive_1x2", tmp_path / "zoo" / "myersonnet_single3_irregular"
    assert [runs.finished_metrics(p)["iterations"] for p in (rochet, myerson)] == [100, 200]
    assert "100 of 200 (50.0%; --time-limit)" in table and "| quick: 200 profiles, grid+menu |" in table
    assert "| myersonnet (best of 4 restarts) |" in table and runs.finished_metrics(myerson)["seeds"] == 4
    stamp = (myerson / "metrics.json").stat().st_mtime_ns
    other = [a.replace("--batch 32", "--batch 64") for a in argv]  # a resume refuses flags its run did not have
    with pytest.raises(SystemExit):
        zoo.main(other)
    assert "batch: 64 (the run has 32)" in capsys.readouterr().err
    zoo.main(argv)
    assert runs.finished_metrics(rochet)["iterations"] == 200 and zoo.finished(rochet)
    assert (myerson / "metrics.json").stat().st_mtime_ns == stamp
    assert "100 of 200" not in zoo.main(argv) and (tmp_path / "z.csv").exists()


def test_every_zoo_cell_parses_with_its_methods_flags():
    """Each default cell's setting, model, method and cell flags make a valid configuration (refusals happen before
    anything runs, not a lease later); the affine maximizer's 3x10 cell alone revives its menu, at softness 100."""
    from experiments import regretnet, zoo
    from jaxauction import cli

    for cell in zoo.CELLS:
        model, name, mixture = zoo.parse_cell(cell)
        flags = [*zoo.METHOD_FLAGS.get(model, ()), *zoo.CELL_FLAGS.get(zoo.label(model, name, mixture), ())]
        config, _ = cli.parse(regretnet.Config, ["--setting", name, "--model", model, *flags], experiment="regretnet")
        revived = cell == "affine_maximizer:additive_3x10"
        assert (config.train.revive_every, config.train.softness) == ((500, 100.0) if revived else (0, 1000.0))


def test_table_says_how_far_through_its_plan_and_the_reference_schedule_a_row_got():
    from experiments.regretnet_table import iterations

    assert iterations(89_800, 200_000, "equivariantnet") == "89,800 of 200,000 (44.9%)"
    assert iterations(19_600, 19_600, "regretformer") == "19,600; planned short: 9.8% of the reference 200,000"
    assert iterations(100, 200, "rochetnet", "; --time-limit") == (
        "100 of 200 (50.0%; --time-limit); planned short: 0.5% of the reference 20,000")
    assert iterations(500_000, 500_000, "regretnet") == "500,000"  # planned past the reference


@pytest.mark.parametrize(("argv", "message"), [
    (["--cells", "regretnet"], "expected model:setting"),
    (["--cells", "nope:additive_2x2"], "unknown model 'nope'"),
    (["--cells", "regretnet:nope"], "unknown setting 'nope'"),
    (["--cells", "regretnet:additive_2x2", "regretnet:additive_2x2"], "cells repeat"),
    (["--cells", "regretnet:additive_2x2+additive_2x3"], "mixture needs a size-independent network"),
    (["--cells", "regretformer:additive_2x2+nope"], "unknown setting 'nope'"),
    (["--cells", "regretformer:additive_2x2+additive_2x2"], "mixture repeats setting 'additive_2x2'"),
    (["--cells", "regretformer:additive_2x2+unit_1x2"], "another prior or demand"),
    (["--iterations", "150"], "positive multiple of 100"),
    (["--budget", "0"], "budget must be positive"),
])  # fmt: skip
def test_zoo_refuses_bad_cells_and_budgets_before_anything_runs(argv, message, tmp_path, capsys):
    from experiments import zoo

    with pytest.raises(SystemExit):
        zoo.main(["--runs", str(tmp_path / "zoo"), *argv])
    assert message in capsys.readouterr().err and not (tmp_path / "zoo").exists()


def test_a_diverged_run_is_refused_by_name_before_any_audit(tmp_path, capsys, monkeypatch):
    """Training that leaves the params non-finite (here a step that multiplies them by NaN) ends in an error that
    says so, names the seed and the iteration, and writes no metrics, instead of a table of NaN."""
    real = regretnet.make_regretnet

    def poisoned(config):
        trainer = real(config)

        def step(state):
            state, log = trainer.step(state)
            return state._replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params)), log

        return trainer._replace(step=step)

    monkeypatch.setattr(regretnet, "make_regretnet", poisoned)
    with pytest.raises(SystemExit):
        regretnet.main(["--setting", "additive_1x2", "--model", "rochetnet", "--iterations", "20", "--log-every",
                        "10", "--menu-size", "8", "--batch", "16", "--out", str(tmp_path / "run"), "--no-progress",
                        "--no-plots"])  # fmt: skip
    err = capsys.readouterr().err
    assert "training diverged: seed(s) [0]" in err and "after 20 iterations" in err
    assert not (tmp_path / "run" / "metrics.json").exists()
