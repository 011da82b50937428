"""Learning-aware mechanism optimization: evolution strategies on a rule's reserve, fitness = revenue after adaptation.

    python -m experiments.learning_aware_dmo                       # the CPU default (a reduced market, below)
    python -m experiments.learning_aware_dmo --preset seed         # the seed market: a GPU job
    python -m experiments.learning_aware_dmo --rule first_price --seeds 16
    python -m experiments.regretnet --setting seed3 --iterations 20000 --out runs/seed3
    python -m experiments.learning_aware_dmo --deploy runs/seed3                 # IC first, then deploy

The rule is a classical rule (``--rule``) whose reserve price is learned. Its
fitness is the platform reward of *fresh* epsilon-greedy bidders who learn
against it (``--markets`` markets of ``--auctions`` auctions per evaluation),
so the optimiser sees the revenue a rule earns after the bidders adapt, not
revenue on bids held fixed. The CPU default is a reduced seed market: 3
bidders, values and bids 0..9, 20,000 auctions per evaluation with
exploration 4,000 and half-life 2,000 (the seed's schedule scaled by 1/5).
``--preset seed`` sets the seed's 100,000 auctions, window 10,000,
exploration 20,000 and half-life 10,000.

IC first, then deploy (``--deploy DIR``): instead of a search, the rule is
the one a RegretNet run trained with its regret penalty on the values (for
example ``--setting seed3``, the seed market's 3 bidders and values 0..9),
deployed into this market of learning bidders. Its setting must match the
market (bidders, one item, value range).

After the search, the learned rule and the baselines (second price, first
price, second price with the best reserve on a grid) are evaluated with fresh
bidders, the same learners, seeds and budget (``learned``, ``baselines``),
beside ``theory``, ``losers_share``, ``ir_violation_rate``, ``anonymity`` and
the rule's ``regret`` as a direct mechanism.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction import cli, evaluation
from jaxauction.driver import RunError, Session
from jaxauction.market import Market, init_params
from jaxauction.priors import default_support
from jaxauction.regret import Protocol
from jaxauction.regret import evaluate as evaluate_regret
from jaxauction.runs import load_rule
from jaxauction.train.es import ESLog
from jaxauction.train.learning_aware import LearningAwareConfig, make_learning_aware, searched_market

NAME = "learning_aware_dmo"
def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any] | None:
    config, spec = cli.parse(LearningAwareConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0],
                             extendable=("iterations",), check=searched_market)  # fmt: skip
    c = config.resolved()
    if c.deploy is not None:
        market = searched_market(c)
        deployed = deployed_rule(c.deploy, market)  # checked before the session touches any folder
        return evaluate_deployed(Session(NAME, config, spec), c, spec, market, *deployed)
    if c.eval_seeds < spec.seeds:
        raise ValueError(f"--eval-seeds ({c.eval_seeds}) must be at least --seeds ({spec.seeds})")
    session = Session(NAME, config, spec)
    search = make_learning_aware(config)
    market, network = search.market, c.family == "network"
    base = init_params(market, jax.random.key(0))
    result = session.run(
        search.init,
        search.step,
        c.iterations,
        summarize=lambda logs, first: [
            {
                "iteration": first + i + 1,
                "fitness": float(np.mean(logs.fitness[i])),
                ("theta_norm" if network else "reserve_mean"): float(np.mean(logs.theta_norm[i])),
                "grad_variance": float(np.mean(logs.grad_variance[i])),
            }
            for i in range(np.asarray(logs.fitness).shape[0])
        ],  # fmt: skip
        describe=lambda logs: {"fitness": float(np.mean(logs.fitness[-1]))},
        unit="iteration",
        extendable=("iterations",),
    )
    if result.steps_run == 0 and session.finished:
        session.print(f"the run in {session.out} has done all {c.iterations} iterations already")
        return None
    if result.steps_run == 0:
        session.print(f"the run in {session.out} is trained; its final evaluation was interrupted: evaluating")
    timing = session.cached("training_time", lambda: {  # the optimization call's figures, read back on resume
        "optimization_seconds": result.run_seconds, "compile_seconds": result.compile_seconds})
    learned = broadcast_eval(base, c, spec)
    n_eval = jax.tree.leaves(learned)[0].shape[0]
    thetas = jax.tree.map(lambda x: jnp.asarray(x)[np.arange(n_eval) % spec.seeds], result.state.theta)
    learned = search.rule(learned, thetas)
    reserves = None if network else np.asarray(result.state.theta)  # [seeds]
    rule0 = jax.tree.map(lambda x: x[0], learned.mechanism)
    report, evaluated = session.cached("evaluation", lambda: evaluate_rule(market, learned, rule0, c, spec))
    logs: ESLog = result.logs
    m = {
        "config": config,
        **evaluated,
        **({} if network else {"learned_reserve": reserves.tolist()}),
        "fitness": np.asarray(logs.fitness).mean(axis=1).tolist(),
        "grad_variance": np.asarray(logs.grad_variance).mean(axis=1).tolist(),
        **timing,
        "market": {
            "auctions": c.auctions,
            "window": c.window,
            "markets": c.markets,
            "explore_steps": getattr(c.bidders.options, "explore_steps", None),
            "half_life": getattr(c.bidders.options, "half_life", None),
        },  # fmt: skip
    }
    if not session.leader:
        return m
    session.write_metrics(m)
    what = "an allocation network" if network else f"reserves {np.round(reserves, 3).tolist()} (per seed)"
    print(f"learned: {what}; ES {m['optimization_seconds']:.1f}s on {m['device']}")
    print_comparison(report, m, c, "learned allocation network" if network else f"learned {c.rule} reserve")
    if spec.plots:
        write_plots(session, m, market, rule0, c)
    print(f"results in {session.out}/")
    return m


def deployed_rule(run: Path, market: Market):
    """``(mechanism, params, setting name)`` of a RegretNet run's trained rule (seed 0), checked against ``market``."""
    rule = load_rule(run, expect="regretnet", flag="--deploy")
    s = rule.config.the_setting
    low, high = default_support(s.prior, s.n_bidders, s.n_items)
    m_low, m_high = default_support(market.prior, market.n_bidders)
    if (s.n_bidders, s.n_items) != (market.n_bidders, 1) or low.min() != m_low.min() or high.max() != m_high.max():
        raise RunError(f"--deploy {run}: the rule was trained for {s.name} ({s.n_bidders} bidders, {s.n_items} "
                       f"item(s), values {low.min():g}..{high.max():g}); this market has {market.n_bidders} bidders, "
                       f"1 item, values {m_low.min():g}..{m_high.max():g}")  # fmt: skip
    return rule.mechanism, rule.params, s.name


def broadcast_eval(base, c: LearningAwareConfig, spec):
    """The market's params ``base`` repeated over the evaluation seeds (at least the run's seeds)."""
    n_eval = max(spec.seeds, c.eval_seeds)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n_eval, *jnp.shape(x))), base)


def evaluate_rule(market: Market, learned, rule, c: LearningAwareConfig, spec) -> tuple[dict, dict]:
    """The honest evaluation of ``market.mechanism`` with params ``rule``: ``learned`` (market params over the
    evaluation seeds, holding the rule) against fresh learning bidders beside the baselines, with the same
    learners and keys for every rule, diagnostics, and the rule's regret as a direct mechanism. Returns
    ``(report, metrics)``."""
    keys = evaluation.evaluation_keys(spec.seed, jax.tree.leaves(learned)[0].shape[0])
    report = evaluation.report_rule(market, learned, keys, c.auctions, c.window, c.markets, c.reserves, diagnose=True,
                                    progress=spec.progress)  # fmt: skip
    protocol = Protocol(profiles=c.regret_profiles, random_starts=4, steps=100, stronger=1, revenue_profiles=0)
    regret = evaluate_regret(market.mechanism, rule, market.prior, jax.random.key(spec.seed), protocol,
                             progress=spec.progress)  # fmt: skip
    return report, {
        "learned": {k: report["final_eval"][k] for k in ("mean", "se", "per_seed")},
        "baselines": report["baselines"],
        "theory": report["theory"],
        **report["diagnostics"],
        "regret": regret.as_dict(),
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }


def print_comparison(report: dict, m: dict[str, Any], c: LearningAwareConfig, name: str) -> None:
    n_eval = len(m["learned"]["per_seed"])
    print(f"evaluation: fresh bidders, {c.auctions:,} auctions x {c.markets} markets, mean +- s.e. over {n_eval} "
          "seed(s); the same learners and keys for every rule")  # fmt: skip
    print("\n".join(evaluation.comparison_lines(report, name)))
    print(f"regret of the rule as a direct mechanism: {m['regret']['regret_mean']:.3g} (searches: "
          f"{', '.join(m['regret']['searches'])})")  # fmt: skip


def evaluate_deployed(session: Session, c: LearningAwareConfig, spec, market: Market, mechanism, rule, name: str):
    """The honest evaluation of a deployed RegretNet rule against this market's learning bidders."""
    market = dataclasses.replace(market, mechanism=mechanism)
    base = init_params(market, jax.random.key(0))._replace(mechanism=rule)
    report, evaluated = evaluate_rule(market, broadcast_eval(base, c, spec), rule, c, spec)
    m = {"config": c, "deployed": {"run": str(c.deploy), "setting": name}, **evaluated}
    if session.leader:
        session.write_metrics(m)
        print_comparison(report, m, c, f"deployed RegretNet ({name})")
        print(f"results in {session.out}/")
    return m


def write_plots(session: Session, m: dict[str, Any], market: Market, rule, c: LearningAwareConfig) -> None:
    try:
        from jaxauction import plots
    except ImportError as err:
        print(f"plots skipped: {err} (pip install matplotlib)", file=sys.stderr)
        return
    references = {name.replace("_", " "): v["mean"] for name, v in m["baselines"].items()}
    references["learned rule, fresh bidders"] = m["learned"]["mean"]
    per_iteration = np.asarray(m["fitness"])[:, None]
    title = "learning-aware allocation network" if c.family == "network" else f"learning-aware {c.rule}"
    plots.platform_reward(session.out / "revenue.png", per_iteration, title, references,
                          xlabel="ES iteration (mean fitness of the perturbed rules)")  # fmt: skip
    n = market.n_bidders
    others = np.linspace(3.0, 6.0, n - 1)
    bids, allocation, payment = evaluation.rule_curve(market, rule, others)
    plots.rule_curve(session.out / "rule.png", bids, allocation, payment,
                     f"{title}, others bid {others.tolist()}")  # fmt: skip


if __name__ == "__main__":
    main()
