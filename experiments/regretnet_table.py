"""The RegretNet results table from finished ``experiments.regretnet`` runs.

    python -m experiments.regretnet_table results/regretnet/* --out regretnet_table.md

One row per run: setting, model, our revenue (+- standard error), our mean
per-bidder regret under the run's evaluation protocol (and under the stronger
attack), the setting's optimum or best simple mechanism, the published
RegretNet revenue, iterations, train time and device. Writes Markdown (and the
same rows as ``.csv`` beside it) atomically, and prints it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import tyro

from jaxauction import io
from jaxauction.settings import setting as get_setting

HEADER = ("setting", "model", "revenue", "regret (mean per bidder)", "regret, stronger attack", "optimum",
          "best simple mechanism", "RegretNet (published)", "iterations", "train time", "device")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TableArgs:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """folders of finished experiments.regretnet runs (each with metrics.json)"""
    out: Path | None = None
    """write the table here (Markdown; a .csv beside it)"""


def iterations(metrics: dict) -> str:
    """Iterations trained, and of how many planned when ``--time-limit`` stopped the run."""
    done, planned = metrics["iterations"], metrics.get("iterations_planned", metrics["iterations"])
    return f"{done:,}" if done == planned else f"{done:,} of {planned:,} (stopped by --time-limit)"


def row(metrics: dict) -> tuple[str, ...]:
    this_call = metrics.get("iterations_this_call", metrics["iterations"])
    s = get_setting(metrics["config"]["train"]["setting"])
    optimum = "" if s.optimum is None else f"{s.optimum:.4f}" + ("" if s.optimum_exact else " (reported)")
    simple = max(s.baselines, key=lambda b: b[1], default=None)
    stronger = metrics.get("regret_mean_stronger")
    return (
        s.name,
        metrics["model"],
        f"{metrics['revenue']:.4f} +- {metrics['revenue_se']:.4f}",
        f"{metrics['regret_mean']:.2e}",
        "" if stronger is None else f"{stronger:.2e}",
        optimum,
        "" if simple is None else f"{simple[1]:.4f} ({simple[0]})",
        "" if not s.published else f"{s.published[0][1]:.3f}",
        iterations(metrics),
        f"{metrics['train_seconds']:.0f} s"
        + ("" if this_call == metrics["iterations"] else f" (the last {this_call:,} iterations)"),
        metrics["device"],
    )


def main(argv: list[str] | None = None) -> str:
    args = tyro.cli(TableArgs, args=argv, prog="python -m experiments.regretnet_table")
    rows = []
    for run in args.runs:
        path = Path(run) / "metrics.json"
        if not path.is_file():
            print(f"error: {run} has no metrics.json (not a finished experiments.regretnet run)", file=sys.stderr)
            raise SystemExit(2)
        rows.append(row(json.loads(path.read_text())))
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    if args.out is not None:
        io.atomic_write_bytes(args.out, table.encode())
        io.write_csv(Path(args.out).with_suffix(".csv"), HEADER, rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
