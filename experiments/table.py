"""One summary table of finished runs of any experiment.

    python -m experiments.table results/*/* --out runs.md

One row per run (per setting for an equilibrium run): the folder, the
experiment, what it learned or measured, its revenue +- standard error, the
best baseline measured in the same run with the same bidders and seeds (or
the setting's best simple mechanism in theory, for RegretNet and audits), its
regret, seeds and device. Folders that hold no finished run are skipped and
named on stderr. Writes Markdown (and the same rows as ``.csv`` beside it)
atomically, and prints it. ``experiments.regretnet_table`` is the RegretNet
table with the published figures beside ours.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import tyro

from jaxauction import cli, io, runs
from jaxauction.driver import RunError


@dataclasses.dataclass(frozen=True)
class TableArgs:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """run folders (each finished run has a metrics.json)"""
    out: Path | None = None
    """write the table here (Markdown; a .csv beside it)"""


def write_table(header: Sequence[str], rows: list[tuple[str, ...]], out: Path | None, skipped: list[str]) -> str:
    """Print the Markdown table (and write it to ``out`` and a ``.csv`` beside it); name the skipped folders."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    for why in skipped:
        print(f"skipped {why}", file=sys.stderr)
    if rows:
        if out is not None:
            io.atomic_write_bytes(out, table.encode())
            io.write_csv(Path(out).with_suffix(".csv"), header, rows)
        print(table)
    return table


def main(argv: list[str] | None = None) -> str:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> str:
    args = cli.quiet_cli(TableArgs, sys.argv[1:] if argv is None else argv, prog="python -m experiments.table")
    rows, skipped = [], []
    for folder in args.runs:
        try:
            rows += runs.summary(folder)
        except RunError as err:
            skipped.append(str(err))
    table = write_table(runs.HEADER, rows, args.out, skipped)
    if not rows:
        raise RunError("no finished run among the folders given")
    return table


if __name__ == "__main__":
    main()
