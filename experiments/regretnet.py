"""RegretNet or RochetNet on a named setting: train (augmented Lagrangian), then evaluate under the strong protocol.

    python -m experiments.regretnet --setting additive_1x2 --model rochetnet --iterations 20000
    python -m experiments.regretnet --setting single2 --iterations 50000 --train-size 64000
    python -m experiments.regretnet --resume results/regretnet/<run> --iterations 100000

Every setting is a flag (``--help``): the training configuration
(``RegretNetConfig``; unset values take the reference configuration for the
setting), the evaluation protocol (``regret.Protocol``) and the run. Writes, in
the run's own folder, ``metrics.json`` (``revenue``, ``regret_mean``,
``regret_max``, ``regret_over_revenue``, ``train_seconds``, ...), ``rounds.csv``
/ ``rounds.jsonl`` (one row per ``log_every`` iterations), ``checkpoint.npz`` and
plots (training curves; allocation maps for one bidder and two items).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction import cli, io
from jaxauction._checks import check_choice, check_positive_int
from jaxauction.driver import RunError, Session
from jaxauction.regret import Protocol, check_words, evaluate, sampled_revenue
from jaxauction.train.regretnet import REGRET_TRAINED, RegretNetConfig, RegretNetLog, make_regretnet

NAME = "regretnet"
EXTENDABLE = ("iterations", "misreport_unroll")  # what a resumed run may change: its length, and a speed knob


@dataclasses.dataclass(frozen=True)
class Config:
    """What to train and how to evaluate it."""

    train: RegretNetConfig = RegretNetConfig()
    evaluation: Protocol = Protocol()
    select: Literal["all", "best"] = "all"
    """all: audit every seed and report their mean; best (exactly DSIC models, several --seeds): the seeds are
    random restarts, and only the one with the most revenue on --validation-profiles fresh profiles is audited
    and reported (on the audit's own profiles, so its figure is not inflated by the choice)"""
    validation_profiles: int = 100_000
    """--select best: profiles the restarts are compared on (the same for all, drawn apart from training's and
    the audit's)"""

    def __post_init__(self) -> None:
        check_positive_int(self.validation_profiles, "validation_profiles")
        check_choice(self.select, ("all", "best"), "select")
        if self.select == "best" and self.train.model in REGRET_TRAINED:
            raise ValueError(f"--select best is for the exactly DSIC models: {self.train.model} is trained with "
                             "regret, and the restart with the most revenue may be the one that leaks the most")


def summarize(logs: RegretNetLog, first: int, log_every: int) -> list[dict[str, Any]]:
    """One row per logged step from logs ``[steps, seeds]``: means over seeds."""
    mean = {k: np.asarray(v).mean(axis=1) for k, v in logs._asdict().items()}
    return [
        {"iteration": (first + s + 1) * log_every, **{k: float(v[s]) for k, v in mean.items()}}
        for s in range(len(mean["revenue"]))
    ]


def pooled(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds (standard errors over seeds when there are several; else the evaluator's own)."""
    out: dict[str, Any] = {}
    for key in ("revenue", "regret_mean", "regret_over_revenue", "ir_violation_rate", "regret_mean_check",
                "regret_mean_stronger"):
        values = [r[key] for r in reports if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    out["regret_max"] = max(r["regret_max"] for r in reports)
    if len(reports) > 1:
        out["revenue_se"] = float(np.std([r["revenue"] for r in reports], ddof=1) / np.sqrt(len(reports)))
        out["regret_se"] = float(np.std([r["regret_mean"] for r in reports], ddof=1) / np.sqrt(len(reports)))
    else:
        out["revenue_se"], out["regret_se"] = reports[0]["revenue_se"], reports[0]["regret_se"]
    stronger = out["regret_mean_stronger"]
    out["regret_change"] = None if stronger is None else stronger - out["regret_mean_check"]  # like for like
    for key in ("searches", "skipped", "check_profiles", "audit", "protocol"):
        out[key] = reports[0][key]
    out["audit_seconds"] = float(sum(r["audit_seconds"] for r in reports))
    return out


def allocation_map(mechanism, params, low: np.ndarray, high: np.ndarray, points: int = 101) -> np.ndarray:
    """``[m, G, G]``: bidder 0's allocation over a grid of its two values (the other bidders absent: n = 1)."""
    v1 = np.linspace(low[0, 0], high[0, 0], points)
    v2 = np.linspace(low[0, 1], high[0, 1], points)
    grid = jnp.asarray(np.stack(np.meshgrid(v1, v2, indexing="ij"), -1).reshape(-1, 1, 2), jnp.float32)
    alloc = jax.jit(jax.vmap(lambda b: mechanism.apply(params, b, jax.random.key(0)).allocation[0]))(grid)
    return np.asarray(alloc).reshape(points, points, 2).transpose(2, 0, 1)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the experiment; returns its metrics (None when a resumed run was already complete)."""
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any] | None:
    config, spec = cli.parse(Config, argv, experiment=NAME, description=__doc__.split("\n\n")[0], extendable=EXTENDABLE)
    if config.select == "best" and spec.seeds < 2:
        raise ValueError("--select best picks among random restarts: pass --seeds 2 or more")
    if config.train.budget_decay is None and config.train.resolved("dual") == "budget":
        # recorded in the run's settings, so that extending the run with --iterations keeps its decay
        decay = config.train.resolved("budget_decay")
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, budget_decay=decay))
    session = Session(NAME, config, spec)
    train = config.train
    trainer = make_regretnet(train)
    steps = train.iterations // train.log_every
    result = session.run(
        trainer.init,
        trainer.step,
        steps,
        summarize=lambda logs, first: summarize(logs, first, train.log_every),
        describe=lambda logs: {"revenue": float(np.mean(logs.revenue[-1])), "regret": float(np.mean(logs.regret[-1]))},
        unit="step",
        extendable=EXTENDABLE,
    )
    if result.steps_run == 0 and not session.finished:
        session.print(f"the run in {session.out} is trained; its audit was interrupted: auditing (seeds already "
                      "audited are read back)")  # fmt: skip
    elif result.steps_run == 0:
        session.print(f"the run in {session.out} has done all {train.iterations} iterations already; "
                      "pass a larger --iterations to extend it")  # fmt: skip
        return None
    setting = train.the_setting
    timing = session.cached("training_time", lambda: {  # the training call's figures, read back on resume
        "train_seconds": result.run_seconds, "compile_seconds": result.compile_seconds,
        "iterations_this_call": result.steps_run * train.log_every})  # what train_seconds timed  # fmt: skip

    def seed_params(s: int) -> Any:
        return jax.tree.map(lambda x: x[s], result.state.params)

    finite = np.all([np.isfinite(np.asarray(x)).reshape(spec.seeds, -1).all(axis=1)
                     for x in jax.tree.leaves(result.state.params)], axis=0)  # [seeds]  # fmt: skip
    if not finite.all():  # nothing to audit: say so, not a NaN table
        diverged = np.flatnonzero(~finite).tolist()
        raise RunError(f"training diverged: seed(s) {diverged} of the run in {session.out} have non-finite params "
                       f"after {(result.done_before + result.steps_run) * train.log_every} iterations (its "
                       "rounds.csv shows where the logged revenue left the feasible range); nothing was audited")

    audited, selection = list(range(spec.seeds)), {}
    if config.select == "best":
        key = jax.random.fold_in(jax.random.key(spec.seed), 2_000_000)  # the same profiles for every restart
        selection = session.cached("selection", lambda: {"validation_revenue": [float(r) for r in sampled_revenue(
            trainer.mechanism, result.state.params, setting.prior, key, config.validation_profiles,
            stacked=True).mean(axis=1)]})  # every restart on the same profiles, one compile  # fmt: skip
        selection["selected_seed"] = int(np.argmax(selection["validation_revenue"]))
        audited = [selection["selected_seed"]]
    reports = []
    for s in audited:
        params = seed_params(s)
        key = jax.random.fold_in(jax.random.key(spec.seed), 1_000_000 + s)  # evaluation profiles: not training's
        reports.append(session.cached(f"audit_seed{s}", lambda params=params, key=key: evaluate(
            trainer.mechanism, params, setting.prior, key, config.evaluation, utility=setting.utility(),
            progress=spec.progress).as_dict()))
    m = {
        "config": config,
        "setting": dataclasses.asdict(setting) | {"prior": repr(setting.prior)},
        "model": train.model,
        **pooled(reports),
        "per_seed": reports,
        "seeds": spec.seeds,
        "select": config.select,
        **selection,
        **timing,
        "seconds_per_iteration": timing["train_seconds"] / max(timing["iterations_this_call"], 1),
        "iterations": (result.done_before + result.steps_run) * train.log_every,  # trained (all calls)
        "iterations_planned": train.iterations,  # above "iterations" only when --time-limit stopped the run
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }
    if not session.leader:
        return m
    session.write_metrics(m)
    if m["iterations"] < train.iterations:
        print(
            f"stopped by --time-limit after {m['iterations']} of {train.iterations} iterations "
            f"(--resume {session.out} continues)"
        )
    attack = check_words(m)
    regret_se = "" if m["regret_se"] is None else f" +- {m['regret_se']:.1e}"
    print(f"{setting.name} {train.model}: revenue {io.plus_minus(m['revenue'], m['revenue_se'])}, regret "
          f"{m['regret_mean']:.2e}{regret_se} (max {m['regret_max']:.3g}; {attack}), IR violations "
          f"{m['ir_violation_rate']:.3g}; trained {m['train_seconds']:.1f}s "
          f"({m['seconds_per_iteration'] * 1e3:.2f} ms/iteration), audited ({m['audit']}) in "
          f"{m['audit_seconds']:.1f}s on {m['device']}")  # fmt: skip
    if selection:
        print(f"the best of {spec.seeds} restarts: seed {selection['selected_seed']}, revenue on "
              f"{config.validation_profiles:,} validation profiles "
              + ", ".join(f"{r:.4f}" for r in selection["validation_revenue"]))  # fmt: skip
    if setting.optimum is not None:
        print(f"optimum for this setting: {setting.optimum}{' (exact)' if setting.optimum_exact else ' (reported)'}")
    if spec.plots:
        write_plots(session, result, trainer, m, train)
    print(f"results in {session.out}/")
    return m


def write_plots(session: Session, result, trainer, m: dict[str, Any], train: RegretNetConfig) -> None:
    try:
        from jaxauction import plots
    except ImportError as err:
        print(f"plots skipped: {err} (pip install matplotlib)", file=sys.stderr)
        return
    logs = result.logs
    iterations = (np.arange(np.asarray(logs.revenue).shape[0]) + 1) * train.log_every
    title = f"{train.setting}, {train.model}"
    plots.training_curves(session.out / "training.png", iterations,
                          {"revenue": logs.revenue, "regret (cached misreports)": logs.regret}, title)  # fmt: skip
    setting = train.the_setting
    if setting.n_bidders == 1 and setting.n_items == 2:
        low, high = (np.asarray(x) for x in trainer.support)
        params = jax.tree.map(lambda x: x[0], result.state.params)
        maps = allocation_map(trainer.mechanism, params, low, high)
        extent = (low[0, 0], high[0, 0], low[0, 1], high[0, 1])
        plots.allocation_maps(session.out / "allocation.png", extent, maps, f"{title}, seed 0")


if __name__ == "__main__":
    main()
