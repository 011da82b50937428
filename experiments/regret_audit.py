"""Audit a mechanism's regret with truthful reports under the strong protocol: a classical rule, or a DMO run's rule.

    python -m experiments.regret_audit --setting single2 --mechanism second_price     # regret 0
    python -m experiments.regret_audit --setting single2 --mechanism first_price      # regret 1/6
    python -m experiments.regret_audit --dmo-run results/deep_mechanism_optimization/<run>
    python -m experiments.regret_audit --regretnet-run results/regretnet/<run> --profiles 10000

Classical rules (``--mechanism``, with ``--reserve``) are sold item by item
(simultaneous auctions) on additive settings. ``--dmo-run DIR`` loads the
deep payment rule of a deep mechanism optimization run from its checkpoint
(seed 0, or ``--run-seed``) and audits it as a direct mechanism on that run's
own value prior; ``--regretnet-run DIR`` does the same for an
``experiments.regretnet`` run (finished, or stopped by ``--time-limit``), for
instance under a stronger protocol than the run's own evaluation;
``--setting`` is then ignored. Writes ``metrics.json`` with the
same keys as ``experiments.regretnet`` (``revenue``, ``regret_mean``,
``regret_max``, ``regret_over_revenue``, ...) and which searches ran.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import jax
import tyro

from experiments.regretnet import load_run
from jaxauction import checkpoint, cli, io
from jaxauction.driver import RunError, Session
from jaxauction.mechanisms import RULES, make_mechanism
from jaxauction.regret import Protocol, evaluate
from jaxauction.settings import setting as get_setting
from jaxauction.train.dmo import DMOConfig, make_dmo

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
    run_seed: Annotated[int, tyro.conf.arg(aliases=("--dmo-seed",))] = 0
    """which seed of that run"""
    evaluation: Protocol = Protocol()

    def __post_init__(self) -> None:
        if self.dmo_run is not None and self.regretnet_run is not None:
            raise ValueError("--dmo-run and --regretnet-run each name a run to audit: give one")


def dmo_mechanism(run: Path, seed: int):
    """The trained deep rule, its params, the run's market and config, from a DMO run's checkpoint."""
    meta = checkpoint.read_meta(run)
    if meta.get("experiment") != "deep_mechanism_optimization":
        raise RunError(f"--dmo-run {run}: the checkpoint was written by {meta.get('experiment')!r}")
    config = cli.from_dict(DMOConfig, meta["config"])
    seeds = meta["run"]["seeds"]
    if not 0 <= seed < seeds:
        raise RunError(f"--run-seed {seed}: the run has seeds 0..{seeds - 1}")
    dmo = make_dmo(config)
    template = jax.jit(jax.vmap(dmo.init))(jax.random.split(jax.random.key(0), seeds))  # the structure to load into
    state, _ = checkpoint.load(run, template)
    market = config.market()
    return market.mechanism, jax.tree.map(lambda x: x[seed], state.params.mechanism), market, config


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(AuditConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    if config.dmo_run is not None:
        mechanism, params, market, dmo_config = dmo_mechanism(config.dmo_run, config.run_seed)
        prior, utility = market.prior, market.utility
        what = {"audited": "deep mechanism optimization run", "dmo_run": str(config.dmo_run), "dmo_config": dmo_config}
    elif config.regretnet_run is not None:
        trainer, params, train, trained = load_run(config.regretnet_run, config.run_seed)
        mechanism, prior, utility = trainer.mechanism, train.the_setting.prior, train.the_setting.utility()
        what = {"audited": f"{train.model} run", "regretnet_run": str(config.regretnet_run), "train": train,
                "setting": train.setting, "iterations": trained}  # fmt: skip
    else:
        setting = get_setting(config.setting)
        if config.mechanism not in RULES:
            raise RunError(f"unknown mechanism {config.mechanism!r}; choose one of {sorted(RULES)} (or --dmo-run)")
        mechanism = make_mechanism(config.mechanism, setting.n_bidders, setting.n_items, reserve=config.reserve)
        params, prior, utility = mechanism.init(jax.random.key(0)), setting.prior, setting.utility()
        what = {"audited": config.mechanism, "setting": setting.name, "optimum": setting.optimum}
    session = Session(NAME, config, spec)
    report = evaluate(mechanism, params, prior, jax.random.key(spec.seed), config.evaluation, utility=utility)
    m = {
        "config": config,
        **what,
        **report.as_dict(),
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
    if session.leader:
        io.write_json(session.out / "metrics.json", m)
        stronger = report.regret_mean_stronger
        attack = "no stronger attack" if stronger is None else f"x{config.evaluation.stronger} attack: {stronger:.4g}"
        print(f"{what['audited']}: revenue {io.plus_minus(report.revenue, report.revenue_se)}, regret "
              f"{report.regret_mean:.4g} +- {report.regret_se:.2g} per bidder {report.regret_per_bidder} (max "
              f"{report.regret_max:.3g}; {attack}), "
              f"regret/revenue {report.regret_over_revenue:.3g}, IR violations {report.ir_violation_rate:.3g}; "
              f"searches: {', '.join(report.searches)}")  # fmt: skip
        print(f"results in {session.out}/")
    return m


if __name__ == "__main__":
    main()
