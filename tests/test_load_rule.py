"""``jaxauction.runs``: the trained rule of any training experiment's run, and one table over every experiment's
runs that skips (and names) folders that hold no finished run."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest

from experiments import deep_mechanism_optimization as dmo_experiment
from experiments import learning_aware_dmo, regretnet, regretnet_table, reserve_sweep, table
from jaxauction import cli, evaluation, market_of, runs
from jaxauction.driver import RunError
from jaxauction.market import init_params
from jaxauction.regret import Protocol, evaluate
from tests.test_runs import DMO, LA, RN

RUNS = {
    "dmo": (dmo_experiment, [*DMO, "--seeds", "2"]),
    "la": (learning_aware_dmo, LA),
    "rn": (regretnet, RN),
    "sweep": (reserve_sweep, ["--reserves", "3", "--auctions", "400", "--window", "200", "--no-progress",
                              "--no-plots", "--no-shard"]),  # fmt: skip
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``made(*names) -> (root, metrics)``: the tiny runs, each made once, when a test first asks for it (the DMO
    and learning-aware runs take half a minute each, so the default suite's tests use the RegretNet and sweep runs)."""
    root, metrics = tmp_path_factory.mktemp("runs"), {}

    def get(*names: str):
        for name in names:
            if name not in metrics:
                module, args = RUNS[name]
                module.main([*args, "--out", str(root / name)])
                metrics[name] = json.loads((root / name / "metrics.json").read_text())
        return root, metrics

    return get


@pytest.mark.slow
def test_load_rule_gives_the_trained_rule_of_every_training_experiment(made):
    root, metrics = made("rn", "dmo", "la")
    # RegretNet: seed 1's rule, audited as the run audited it, gives the run's figures for seed 1
    rule = runs.load_rule(root / "rn", 1)
    assert rule.experiment == "regretnet" and rule.steps == 20 and rule.config.setting == "single2"
    protocol = cli.from_dict(Protocol, metrics["rn"]["config"]["evaluation"])
    key = jax.random.fold_in(jax.random.key(0), 1_000_001)
    report = evaluate(rule.mechanism, rule.params, rule.prior, key, protocol, utility=rule.utility)
    assert report.revenue == pytest.approx(metrics["rn"]["per_seed"][1]["revenue"], rel=1e-6)
    other = runs.load_rule(root / "rn", 0).params
    pairs = zip(jax.tree.leaves(other), jax.tree.leaves(rule.params), strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)
    # DMO: seed 1's deep rule against fresh bidders with the run's evaluation key earns its final evaluation
    rule = runs.load_rule(root / "dmo", 1)
    c = rule.config
    market = market_of(c)
    params = init_params(market, jax.random.key(0))._replace(mechanism=rule.params)
    keys = evaluation.evaluation_keys(0, 2)[1:]
    r = c.rollout
    earned = jax.jit(lambda p, k: evaluation.fresh_rewards(market, p, k, r.auctions_per_round, r.window,
                                                           r.markets))(params, keys)  # fmt: skip
    assert float(earned[0]) == pytest.approx(metrics["dmo"]["final_eval"]["per_seed"][1], rel=1e-5)
    assert rule.mechanism.name == "deep" and rule.steps == 2
    # learning-aware: the classical rule with the learned reserve
    rule = runs.load_rule(root / "la")
    assert float(rule.params.reserve) == pytest.approx(metrics["la"]["learned_reserve"][0])
    assert rule.mechanism.name == "second_price" and rule.steps == 2


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_load_rule_refuses_what_is_not_a_trained_rule(made, tmp_path):
    root, metrics = made("rn", "sweep")
    rule = runs.load_rule(root / "rn", 1)  # what the slow test checks for every experiment, for RegretNet here
    assert rule.experiment == "regretnet" and rule.steps == 20 and rule.config.setting == "single2"
    for folder, seed, expect, words in [
        (tmp_path, 0, None, "no checkpoint there"),
        (root / "sweep", 0, None, "no checkpoint there"),
        (root / "rn", 2, None, "seeds 0..1"),
        (root / "rn", -1, None, "seeds 0..1"),
        (root / "rn", 0, "deep_mechanism_optimization", "not deep_mechanism_optimization"),
    ]:
        with pytest.raises(RunError, match=words):
            runs.load_rule(folder, seed, expect=expect)


@pytest.mark.slow
def test_one_table_for_every_experiment_skips_and_names_unfinished_folders(made, tmp_path, capsys):
    root, metrics = made("dmo", "la", "rn", "sweep")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(root / "rn", unfinished)
    (unfinished / "metrics.json").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "t.md"
    text = table.main([*(str(root / n) for n in ("dmo", "la", "rn", "sweep")), str(unfinished), str(empty),
                       "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert f"{unfinished}: no metrics.json (unfinished" in err and f"{empty}: no metrics.json (not a run" in err
    lines = [line for line in text.splitlines() if line.startswith(f"| {root}")]
    assert len(lines) == 4 and out.read_text() == text
    by_experiment = {line.split(" | ")[1]: line for line in lines}
    assert set(by_experiment) == {"deep_mechanism_optimization", "learning_aware_dmo", "regretnet", "reserve_sweep"}
    fe = metrics["dmo"]["final_eval"]
    assert f"{fe['mean']:.4f} +- {fe['se']:.4f}" in by_experiment["deep_mechanism_optimization"]
    name, best = max(metrics["dmo"]["baselines"].items(), key=lambda kv: kv[1]["mean"])  # the best same-run baseline
    assert f"{name}" in by_experiment["deep_mechanism_optimization"]
    assert f"{best['mean']:.4f} +- {best['se']:.4f}" in by_experiment["deep_mechanism_optimization"]
    assert f"{metrics['rn']['revenue']:.4f}" in by_experiment["regretnet"]
    assert f"{metrics['la']['regret']['regret_mean']:.3g}" in by_experiment["learning_aware_dmo"]


@pytest.mark.parametrize("which", ["table", "regretnet_table"])
def test_tables_without_a_finished_run_fail_in_one_line(which, made, capsys):
    root, _ = made("rn", "sweep")
    module = {"table": table, "regretnet_table": regretnet_table}[which]
    for argv in ([], [str(root / "sweep")] if which == "regretnet_table" else [str(root / "nope")]):
        with pytest.raises(SystemExit) as exc:
            module.main(argv)
        assert exc.value.code != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: no finished"), err
    text = regretnet_table.main([str(root / "rn"), str(root / "sweep")])  # the sweep's folder is skipped, named
    assert "single2" in text and "a reserve_sweep run, not" in capsys.readouterr().err
