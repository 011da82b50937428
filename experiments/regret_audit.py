"""Audit a mechanism's regret with truthful reports under the strong protocol: a classical rule, or a DMO run's rule.

    python -m experiments.regret_audit --setting single2 --mechanism second_price     # regret 0
    python -m experiments.regret_audit --setting single2 --mechanism first_price      # regret 1/6
    python -m experiments.regret_audit --dmo-run results/deep_mechanism_optimization/<run>
    python -m experiments.regret_audit --regretnet-run results/regretnet/<run> --profiles 10000
    python -m experiments.regret_audit --regretnet-run results/regretnet/<run> --on-setting additive_3x10
    python -m experiments.regret_audit --setting additive_2x3 --mechanism first_price --audit quick --curve 1 2 4
    python -m experiments.regret_audit --setting additive_2x2 --optimaler optimaler/target_nets/RegretFormer/\
setting_additive_2x2_uniform/seed_0/model_200000

Classical rules (``--mechanism``, with ``--reserve``) are sold item by item
(simultaneous auctions) on additive settings. ``--dmo-run DIR`` loads the
deep payment rule of a deep mechanism optimization run from its checkpoint
(seed 0, or ``--run-seed``) and audits it as a direct mechanism on that run's
own value prior; ``--regretnet-run DIR`` does the same for an
``experiments.regretnet`` run (finished, or stopped by ``--time-limit``), for
instance under a stronger protocol than the run's own evaluation;
``--setting`` is then ignored. ``--on-setting S`` audits a size-independent
network (EquivariantNet, RegretFormer) of such a run on setting ``S``, a size
it may never have seen (same prior and demand). Writes ``metrics.json`` with the
same keys as ``experiments.regretnet`` (``revenue``, ``regret_mean``,
``regret_max``, ``regret_over_revenue``, ...) and which searches ran.
``--curve K1 K2 ...`` also writes the regret estimate against search effort
(``jaxauction.convergence_curve``: the protocol strengthened ``k`` times, the
same profiles) to ``curve.csv`` and ``metrics.json``: a curve still rising at
its largest ``k`` says the audit has not converged.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any

import jax
import tyro

from jaxauction import cli, io, optimaler
from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.driver import Session
from jaxauction.mechanisms import RULES, make_mechanism
from jaxauction.priors import UniformPrior
from jaxauction.regret import Protocol, check_words, convergence_curve, evaluate
from jaxauction.runs import load_rule
from jaxauction.settings import setting as get_setting
from jaxauction.train.regretnet import build_mechanism_on

NAME = "regret_audit"


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """What to audit."""

    setting: str = "single2"
    """the setting (values, bidders, items); see jaxauction.settings"""
    mechanism: str = "second_price"
    """a classical rule: first_price, second_price, third_price or all_pay (each item sold separately)"""
    reserve: float = 0.0
    """the classical rule's reserve price"""
    dmo_run: Path | None = None
    """audit the deep rule of this deep mechanism optimization run instead (its checkpoint and prior)"""
    regretnet_run: Path | None = None
    """audit the trained rule of this experiments.regretnet run instead (its checkpoint and setting; a run
    stopped by --time-limit too), e.g. under a stronger protocol than the run's own evaluation"""
    on_setting: str | None = None
    """with --regretnet-run of a size-independent network (equivariantnet, regretformer): audit its weights on this
    setting instead (another size, the same prior and demand), e.g. a size it never saw in training"""
    optimaler: Path | None = None
    """audit this network shipped by dimonenka/optimaler instead (a target_nets/<Architecture>/setting_additive_<n>x<m>
    _uniform/seed_<k>/model_200000 file) on --setting, an additive setting of its size"""
    curve: tuple[int, ...] = ()
    """also the regret estimate against search effort: the protocol strengthened k times for each k given (for
    example 1 2 4 8), on the same profiles; rows in metrics.json ("curve") and curve.csv"""
    run_seed: Annotated[int, tyro.conf.arg(aliases=("--dmo-seed",))] = 0
    """which seed of that run"""
    evaluation: Protocol = Protocol()

    def __post_init__(self) -> None:
        if get_setting(self.setting).demand == "combinatorial" and self.dmo_run is None and self.regretnet_run is None:
            raise ValueError(f"setting {self.setting} is combinatorial (two items and their bundle): the rules here "
                             "sell items one by one; audit a --regretnet-run trained on it")  # fmt: skip
        check_choice(self.mechanism, RULES, "mechanism")
        check_finite(self.reserve, "reserve", minimum=0.0)
        check_positive_int(self.run_seed, "run_seed", minimum=0)
        if sum(x is not None for x in (self.dmo_run, self.regretnet_run, self.optimaler)) > 1:
            raise ValueError("--dmo-run, --regretnet-run and --optimaler each name a rule to audit: give one")
        if self.optimaler is not None:
            target = get_setting(self.setting)
            if target.demand != "additive" or target.prior != UniformPrior(0.0, 1.0):
                raise ValueError(f"--optimaler: the shipped networks were trained on additive U[0,1] values; setting "
                                 f"{self.setting} has {target.demand} bidders, {target.prior}")  # fmt: skip
            if not self.optimaler.is_file():
                raise ValueError(f"--optimaler: no file {self.optimaler}")
        if self.on_setting is not None:
            get_setting(self.on_setting)
            if self.regretnet_run is None:
                raise ValueError("--on-setting audits a --regretnet-run's network on another size: give the run")
        if any(k < 1 for k in self.curve):
            raise ValueError(f"curve: strengthening factors are integers >= 1, got {self.curve}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(AuditConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    if config.dmo_run is not None or config.regretnet_run is not None:
        dmo = config.dmo_run is not None
        folder = config.dmo_run if dmo else config.regretnet_run
        rule = load_rule(folder, config.run_seed, expect="deep_mechanism_optimization" if dmo else "regretnet",
                         flag="--dmo-run" if dmo else "--regretnet-run")  # fmt: skip
        mechanism, params, prior, utility = rule.mechanism, rule.params, rule.prior, rule.utility
        if dmo:
            what = {"audited": "deep mechanism optimization run", "dmo_run": str(folder), "dmo_config": rule.config}
        else:
            what = {"audited": f"{rule.config.model} run", "regretnet_run": str(folder), "train": rule.config,
                    "setting": rule.config.setting, "iterations": rule.steps}  # fmt: skip
            if config.on_setting is not None:
                other = get_setting(config.on_setting)
                mechanism = build_mechanism_on(rule.config, other.name)  # refuses another prior or demand
                prior, utility = other.prior, other.utility()
                what.update(setting=other.name, trained_on=[rule.config.setting, *rule.config.mixture],
                            optimum=other.optimum)  # fmt: skip
    elif config.optimaler is not None:
        setting = get_setting(config.setting)
        state = optimaler.read_state_dict(config.optimaler)
        mechanism, params = optimaler.import_network(state, setting.n_bidders, setting.n_items)
        prior, utility, kind = setting.prior, setting.utility(), optimaler.architecture_of(state)
        what = {"audited": f"optimaler {kind}", "optimaler": str(config.optimaler), "setting": setting.name,
                "optimum": setting.optimum}  # fmt: skip
    else:
        setting = get_setting(config.setting)
        mechanism = make_mechanism(config.mechanism, setting.n_bidders, setting.n_items, reserve=config.reserve)
        params, prior, utility = mechanism.init(jax.random.key(0)), setting.prior, setting.utility()
        what = {"audited": config.mechanism, "setting": setting.name, "optimum": setting.optimum}
    session = Session(NAME, config, spec)
    report = evaluate(mechanism, params, prior, jax.random.key(spec.seed), config.evaluation, utility=utility,
                      progress=spec.progress)
    curve = None
    if config.curve:
        curve = session.cached("curve", lambda: convergence_curve(
            mechanism, params, prior, jax.random.key(spec.seed), config.evaluation, config.curve,
            utility=utility))  # fmt: skip
    m = {
        "config": config,
        **what,
        **report.as_dict(),
        "curve": curve,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
    if session.leader:
        session.write_metrics(m)
        se = "" if report.regret_se is None or not math.isfinite(report.regret_se) else f" +- {report.regret_se:.2g}"
        attack = check_words(report.as_dict())
        print(f"{what['audited']}: revenue {io.plus_minus(report.revenue, report.revenue_se)}, regret "
              f"{report.regret_mean:.4g}{se} per bidder {report.regret_per_bidder} (max "
              f"{report.regret_max:.3g}; {attack}), "
              f"regret/revenue {report.regret_over_revenue:.3g}, IR violations {report.ir_violation_rate:.3g}; "
              f"searches: {', '.join(report.searches)}")  # fmt: skip
        if curve:
            header = tuple(curve[0])
            io.write_csv(session.out / "curve.csv", header, [tuple(f"{row[h]:.6g}" for h in header) for row in curve])
            for row in curve:
                print(f"x{row['factor']}: {row['work_per_profile']:,} evaluations per profile, regret "
                      f"{row['regret_mean']:.4g} +- {row['regret_se']:.2g} (max {row['regret_max']:.3g}), "
                      f"{row['seconds']:.1f} s")  # fmt: skip
        print(f"results in {session.out}/")
    return m


if __name__ == "__main__":
    main()
