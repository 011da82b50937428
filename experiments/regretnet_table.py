"""The RegretNet results table from finished ``experiments.regretnet`` runs.

    python -m experiments.regretnet_table results/regretnet/* --out regretnet_table.md

One row per run: setting, model, our revenue (+- standard error), our mean
and largest per-bidder regret and IR violation rate under the run's
evaluation protocol (named: preset, profiles, searches), its convergence
check (the protocol's search against a stronger attack on a subsample), the
setting's optimum or best simple mechanism, the published figure of the
model's family (else RegretNet's), iterations (of how many planned, when
``--time-limit`` stopped the run), train time and device. A folder of an
``experiments.regret_audit --optimaler FILE`` audit makes a row of that
imported network (trained elsewhere: its device is the audit's), and a folder
of an ``experiments.regret_audit --regretnet-run RUN`` audit a row of that run
under the audit's protocol (its train time read from RUN when it is there).
Writes Markdown (and the same rows as ``.csv`` beside it) atomically, and
prints it.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import tyro

from experiments.table import write_table
from jaxauction import cli, runs
from jaxauction.driver import RunError
from jaxauction.io import plus_minus
from jaxauction.regret import check_words
from jaxauction.settings import setting as get_setting

HEADER = ("setting", "model", "revenue", "regret (mean per bidder, max)", "IR violations", "protocol",
          "convergence check", "optimum", "best simple mechanism", "published (its protocol)", "iterations",
          "train time", "device")  # fmt: skip
# the published figure a model's row is set beside: its own family's, else RegretNet's
FAMILY = {"affine_maximizer": "AMenuNet", "regretformer": "RegretFormer"}
# Iterations a row is measured against: the method's reference schedule where its public code fixes one
# (RegretNet: Duetting et al., 400,000; EquivariantNet and RegretFormer: the 200,000-iteration networks shipped
# by dimonenka/optimaler), else this project's (20,000 for the exactly DSIC ones, where their revenue is flat
# on CPU runs: docs/incentive_compatibility.md; MyersonNet 40,000: on the irregular prior it still gains between
# 20,000 and 40,000, tests/test_myersonnet.py).
SCHEDULES = {"regretnet": 400_000, "equivariantnet": 200_000, "regretformer": 200_000, "rochetnet": 20_000,
             "affine_maximizer": 20_000, "myersonnet": 40_000}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TableArgs:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """folders of finished experiments.regretnet runs (each with metrics.json), or of experiments.regret_audit
    audits of such a run (--regretnet-run) or of a network shipped by dimonenka/optimaler (--optimaler)"""
    out: Path | None = None
    """write the table here (Markdown; a .csv beside it)"""


def iterations(done: int, planned: int, model: str, why: str = "") -> str:
    """Iterations trained, and of how many planned (how far through its schedule, and ``why``) when fewer; and of
    the method's reference schedule when it was planned shorter."""
    out = f"{done:,}" if done == planned else f"{done:,} of {planned:,} ({done / planned:.1%}{why})"
    reference = SCHEDULES.get(model, planned)
    short = f"; planned short: {done / reference:.1%} of the reference {reference:,}"
    return out if planned >= reference else out + short


def protocol(metrics: dict) -> str:
    """The audit preset, its profiles and the searches that ran (``jaxauction.regret``)."""
    if "audit" not in metrics:
        return ""
    searches = "+".join(metrics["searches"]) or "no search"
    return f"{metrics['audit']}: {metrics['protocol']['profiles']:,} profiles, {searches}"


def published(s, model: str) -> str:
    """The setting's published figure for ``model``'s family (else the first one), with its source."""
    own = [p for p in s.published if p[0].startswith(FAMILY.get(model, "RegretNet"))]
    label, value = (own or list(s.published) or [(None, None)])[0]
    return "" if label is None else f"{value:.3f} ({label})"


def convergence(metrics: dict) -> str:
    """The convergence check in words; for an enumerated menu, why there is none (exact, or an upper bound)."""
    if "audit" not in metrics:
        stronger = metrics.get("regret_mean_stronger")
        return "" if stronger is None else f"{stronger:.2e}"
    if metrics.get("regret_mean_stronger") is None and "menu" in metrics["searches"]:
        return "none needed: the menu is enumerated"
    return check_words(metrics)


def model_label(metrics: dict) -> str:
    """The model, with what tells its rows apart: the affine maximizer's deterministic menu, restarts chosen from,
    the other sizes of a mixture."""
    train = metrics["config"]["train"]
    label = metrics["model"] + (" (deterministic menu)" if metrics["model"] == "affine_maximizer"
                                and train.get("ama_menu") == "deterministic" else "")  # fmt: skip
    mixture = train.get("mixture") or ()
    return (label + (f" (best of {metrics['seeds']} restarts)" if metrics.get("select") == "best" else "")
            + (f" (trained on {' + '.join((train['setting'], *mixture))})" if mixture else ""))  # fmt: skip


def imported(metrics: dict) -> dict:
    """An ``experiments.regret_audit --optimaler FILE`` audit as a row's fields: the network shipped by
    dimonenka/optimaler, named with its seed, trained for the iterations its file name says, elsewhere."""
    path = Path(metrics["optimaler"])
    model = metrics["audited"].split()[-1].lower()
    trained = path.name.rsplit("_", 1)[-1]
    seed = path.parent.name.replace("_", " ") if path.parent.name.startswith("seed_") else path.name
    return {"setting": metrics["setting"], "model": model, "label": f"{model} (optimaler {seed}, imported)",
            "iterations": f"{int(trained):,} (the shipped file)" if trained.isdigit() else "(the shipped file)",
            "train time": "(trained elsewhere)"}  # fmt: skip


def audited_run(metrics: dict) -> dict:
    """An ``experiments.regret_audit --regretnet-run RUN`` audit as a row's fields: the run's model and how far
    through its schedule it was, its train time from RUN's own metrics when RUN is here and has them."""
    train = metrics["train"]
    try:
        seconds = runs.finished_metrics(metrics["regretnet_run"]).get("train_seconds")
    except RunError:  # the run is elsewhere, or was never evaluated
        seconds = None
    trained_on = metrics.get("trained_on", [train["setting"]])
    on = "" if trained_on == [metrics["setting"]] else f", trained on {' + '.join(trained_on)}"
    return {"setting": metrics["setting"], "model": train["model"], "label": f"{train['model']} (audited apart{on})",
            "iterations": iterations(metrics["iterations"], train["iterations"], train["model"]),
            "train time": "not in the audit" if seconds is None else f"{seconds:.0f} s"}  # fmt: skip


def row(metrics: dict) -> tuple[str, ...]:
    if metrics["experiment"] == "regret_audit":
        fields = imported(metrics) if metrics.get("optimaler") else audited_run(metrics)
    else:
        this_call = metrics.get("iterations_this_call", metrics["iterations"])
        planned = metrics.get("iterations_planned", metrics["iterations"])
        last = "" if this_call == metrics["iterations"] else f" (the last {this_call:,} iterations)"
        fields = {"setting": metrics["config"]["train"]["setting"], "model": metrics["model"],
                  "label": model_label(metrics),
                  "iterations": iterations(metrics["iterations"], planned, metrics["model"], "; --time-limit"),
                  "train time": f"{metrics['train_seconds']:.0f} s{last}"}  # fmt: skip
    s = get_setting(fields["setting"])
    optimum = "" if s.optimum is None else f"{s.optimum:.4f}" + ("" if s.optimum_exact else " (reported)")
    simple = max(s.baselines, key=lambda b: b[1], default=None)
    return (
        s.name,
        fields["label"],
        plus_minus(metrics["revenue"], metrics["revenue_se"]),
        f"{metrics['regret_mean']:.2e}, {metrics['regret_max']:.2e}",
        f"{metrics['ir_violation_rate']:.2g}",
        protocol(metrics),
        convergence(metrics),
        optimum,
        "" if simple is None else f"{simple[1]:.4f} ({simple[0]})",
        published(s, fields["model"]),
        fields["iterations"],
        fields["train time"],
        metrics["device"],
    )


def main(argv: list[str] | None = None) -> str:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    args = cli.quiet_cli(TableArgs, argv, prog="python -m experiments.regretnet_table")
    rows, skipped = [], []
    for folder in args.runs:
        try:
            m = runs.finished_metrics(folder)
            audit = m["experiment"] == "regret_audit" and (m.get("optimaler") or m.get("regretnet_run"))
            if m["experiment"] != "regretnet" and not audit:
                raise RunError(f"{folder}: a {m['experiment']} run, not an experiments.regretnet run or an "
                               "experiments.regret_audit audit of one (or of an --optimaler file)")  # fmt: skip
            rows.append(row(m))
        except RunError as err:
            skipped.append(str(err))
    table = write_table(HEADER, rows, args.out, skipped)
    if not rows:
        raise RunError("no finished experiments.regretnet run among the folders given")
    return table


if __name__ == "__main__":
    main()
