"""Run folders as data: the trained rule of a run, and one summary row per run of any experiment.

``load_rule(folder, seed)`` rebuilds the trained rule of a deep mechanism
optimization, learning-aware or RegretNet/RochetNet run from its checkpoint
(finished or not) as a ``Mechanism`` and its params, with the prior and
utility it was trained for, ready for one's own JAX code::

    rule = ja.runs.load_rule("results/regretnet/my-run")
    outcome = rule.mechanism.apply(rule.params, bids, key)
    report = ja.regret.evaluate(rule.mechanism, rule.params, rule.prior, key, utility=rule.utility)

``summary(folder)`` reads a finished run's ``metrics.json`` into one row of the
table ``python -m experiments.table`` prints (``RunError`` for a folder that
is not a finished run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax

from jaxauction import checkpoint, cli
from jaxauction.driver import RunError
from jaxauction.io import plus_minus
from jaxauction.mechanisms.base import Mechanism
from jaxauction.priors import Prior
from jaxauction.settings import setting as get_setting
from jaxauction.utilities import Utility

TRAINING_EXPERIMENTS = ("deep_mechanism_optimization", "learning_aware_dmo", "regretnet")


class Rule(NamedTuple):
    """A trained rule read back from a run folder (``load_rule``): the mechanism and its params for one seed, the prior
    and utility it was trained for, the experiment and configuration that trained it, and the steps trained."""

    mechanism: Mechanism
    params: Any  # the mechanism's params of the chosen seed
    prior: Prior  # the value prior it was trained for
    prior_params: Any
    utility: Utility
    experiment: str  # the experiment that trained it
    config: Any  # its training configuration (DMOConfig, LearningAwareConfig or RegretNetConfig)
    steps: int  # steps trained so far (rounds, ES iterations or optimizer iterations)


def _template(init, seeds: int) -> Any:
    """A state of the run's structure (its values do not matter: the checkpoint's replace them)."""
    return jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), seeds))


def _checked(folder: Path, seed: int, expect: str | None, flag: str) -> dict[str, Any]:
    """The checkpoint header of the run in ``folder``, after the checks ``load_rule`` documents."""
    if not checkpoint.exists(folder):
        raise RunError(f"{flag} {folder}: no checkpoint there (not a run of {', '.join(TRAINING_EXPERIMENTS)})")
    meta = checkpoint.read_meta(folder)
    experiment = meta.get("experiment")
    if expect is not None and experiment != expect:
        raise RunError(f"{flag} {folder}: the checkpoint was written by {experiment!r}, not {expect}")
    if experiment not in TRAINING_EXPERIMENTS:
        raise RunError(f"{flag} {folder}: written by {experiment!r}, which trains no rule; load_rule reads runs of "
                       f"{', '.join(TRAINING_EXPERIMENTS)}")  # fmt: skip
    seeds = meta["run"]["seeds"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < seeds:
        raise RunError(f"{flag} {folder}: seed {seed!r} asked for; the run has seeds 0..{seeds - 1}")
    return meta


def load_regretnet_state(folder: str | Path, seed: int = 0, flag: str = "run") -> tuple[Any, Any, Any]:
    """``(config, trainer, state)`` of seed ``seed`` of the ``experiments.regretnet`` run in ``folder``: its
    ``RegretNetConfig``, the shared trainer it builds, and the whole training state of its checkpoint (params,
    optimizer state, training profiles and their cached misreports, multipliers), as ``trainer.step`` takes it."""
    folder = Path(folder)
    return _regretnet_state(folder, _checked(folder, seed, "regretnet", flag), seed)


def _regretnet_state(folder: Path, meta: dict[str, Any], seed: int) -> tuple[Any, Any, Any]:
    """``load_regretnet_state`` from the run's checked header ``meta``."""
    from jaxauction.train.regretnet import RegretNetConfig, make_regretnet

    config = cli.from_dict(RegretNetConfig, meta["config"]["train"])
    trainer = make_regretnet(config)
    state, _ = checkpoint.load(folder, _template(trainer.init, meta["run"]["seeds"]))
    return config, trainer, jax.tree.map(lambda x: x[seed], state)


def load_rule(folder: str | Path, seed: int = 0, expect: str | None = None, flag: str = "run") -> Rule:
    """The trained rule of seed ``seed`` of the run in ``folder``. ``RunError``, naming ``flag`` and the folder,
    when it is not a run of a training experiment (of ``expect``, when given), or has no such seed."""
    from jaxauction.market import init_params
    from jaxauction.train.dmo import DMOConfig, make_dmo
    from jaxauction.train.learning_aware import LearningAwareConfig, make_learning_aware

    folder = Path(folder)
    meta = _checked(folder, seed, expect, flag)
    experiment, seeds = meta["experiment"], meta["run"]["seeds"]
    pick = lambda tree: jax.tree.map(lambda x: x[seed], tree)  # noqa: E731
    if experiment == "regretnet":
        config, trainer, state = _regretnet_state(folder, meta, seed)
        s = config.the_setting
        return Rule(trainer.mechanism, state.params, s.prior, s.prior.init_params(s.n_bidders, s.n_items),
                    s.utility(), experiment, config, int(state.iteration))  # fmt: skip
    if experiment == "deep_mechanism_optimization":
        config = cli.from_dict(DMOConfig, meta["config"])
        dmo = make_dmo(config)
        state, _ = checkpoint.load(folder, _template(dmo.init, seeds))
        market, mechanism_params, steps = dmo.market, pick(state.params.mechanism), meta.get("steps_done", 0)
    else:
        config = cli.from_dict(LearningAwareConfig, meta["config"])
        if config.deploy is not None:  # pragma: no cover - a deploy run writes no checkpoint
            raise RunError(f"{flag} {folder}: it deployed the rule of {config.deploy}; load that run")
        search = make_learning_aware(config)
        state, _ = checkpoint.load(folder, _template(search.init, seeds))
        market, steps = search.market, int(state.iteration[seed])
        mechanism_params = search.rule(init_params(market, jax.random.key(0)), pick(state.theta)).mechanism
    prior_params = market.prior.init_params(market.n_bidders, market.n_items)
    return Rule(market.mechanism, mechanism_params, market.prior, prior_params, market.utility, experiment, config,
                int(steps))  # fmt: skip


# --- summary rows ---------------------------------------------------------------------------------------------

HEADER = ("run", "experiment", "what", "revenue", "best same-run baseline", "regret", "seeds", "device")


def _best_baseline(baselines: dict[str, Any]) -> str:
    if not baselines:
        return ""
    name, v = max(baselines.items(), key=lambda kv: kv[1]["mean"])
    label = name if "reserve" not in v else f"{name} (reserve {v['reserve']:g})"
    return f"{label}: {plus_minus(v['mean'], v['se'])}"


def _experiment(folder: Path, m: dict[str, Any]) -> str:
    if "experiment" in m:
        return m["experiment"]
    if checkpoint.exists(folder):  # results written before metrics.json named their experiment
        return checkpoint.read_meta(folder).get("experiment", "unknown")
    return "unknown"


def finished_metrics(folder: str | Path) -> dict[str, Any]:
    """The results (``metrics.json``) of the finished run in ``folder``, with ``experiment`` filled in;
    ``RunError`` saying why for a folder that holds none (unfinished, or not a run)."""
    folder = Path(folder)
    path = folder / "metrics.json"
    if not path.is_file():
        why = "unfinished: trained, not yet evaluated" if checkpoint.exists(folder) else "not a run folder"
        raise RunError(f"{folder}: no metrics.json ({why})")
    try:
        m = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RunError(f"{folder}: metrics.json cannot be read ({err})") from None
    return {**m, "experiment": _experiment(folder, m)}


def summary(folder: str | Path) -> list[tuple[str, ...]]:
    """Rows (``HEADER``) for the finished run in ``folder``: one per run, or one per setting of an equilibrium
    run. ``RunError`` when the folder holds no finished run."""
    m = finished_metrics(folder)
    experiment, seeds = m["experiment"], str(m.get("seeds", ""))
    device = m.get("device", ", ".join(m.get("devices", [])[:1]))
    row = lambda what, revenue="", baseline="", regret="": (  # noqa: E731
        str(folder), experiment, what, revenue, baseline, regret, seeds, device)
    config = m.get("config", {})
    if experiment == "deep_mechanism_optimization":
        what = f"deep rule ({config['mechanism']['mechanism']}) vs {', '.join(dict.fromkeys(m['learners']))}"
        if "final_eval" not in m:
            return [row(what, f"{m['platform_reward'][-1]:.4f} (last round, training bids)")]
        fe = m["final_eval"]
        regret = "" if "penalty_regret" not in m else f"{m['penalty_regret'][-1]:.3g} (penalty)"
        return [row(what, plus_minus(fe["mean"], fe["se"]), _best_baseline(m["baselines"]), regret)]
    if experiment == "learning_aware_dmo":
        network = config.get("family") == "network"
        what = "learned allocation network" if network else f"learned {config['rule']} reserve"
        what = f"deployed RegretNet ({m['deployed']['setting']})" if "deployed" in m else what
        le = m["learned"]
        return [row(what, plus_minus(le["mean"], le["se"]), _best_baseline(m["baselines"]),
                    f"{m['regret']['regret_mean']:.3g}")]  # fmt: skip
    if experiment in ("regretnet", "regret_audit"):
        what = (f"{m['model']} on {config['train']['setting']}" if experiment == "regretnet" else
                f"{m['audited']}" + (f" on {m['setting']}" if "setting" in m else ""))  # fmt: skip
        name = config["train"]["setting"] if experiment == "regretnet" else m.get("setting")
        s = get_setting(name) if name else None
        simple = None if s is None else max(s.baselines, key=lambda b: b[1], default=None)
        baseline = "" if simple is None else f"{simple[0]}: {simple[1]:.4f} (theory)"
        return [row(what, plus_minus(m["revenue"], m["revenue_se"]), baseline, f"{m['regret_mean']:.3g}")]
    if experiment == "reserve_sweep":
        return [row(f"second price, best reserve {m['best_reserve']:.3g} of {len(m['reserves'])}",
                    plus_minus(m["best_revenue"], m["best_revenue_se"]))]  # fmt: skip
    if experiment == "all_pay_design":
        return [row(f"all-pay, best w {m['best_w']:.3g}",
                    plus_minus(m["best_w_check_revenue"], m["best_w_check_revenue_se"]))]  # fmt: skip
    if experiment == "equilibrium":
        theory = lambda s: "" if s["theory_bid_to_value"] is None else f" (theory {s['theory_bid_to_value']:.3f})"  # noqa: E731
        return [row(f"{s['mechanism']}, {s['n_bidders']} {s['learner']} bidders: bid/value "
                    f"{s['mean_bid_to_value']:.3f}{theory(s)}", plus_minus(s["revenue"], s["revenue_se"]))
                for s in m["settings"]]  # fmt: skip
    raise RunError(f"{folder}: metrics.json of an unknown experiment {experiment!r}")


__all__ = ["HEADER", "Rule", "TRAINING_EXPERIMENTS", "finished_metrics", "load_rule", "summary"]
