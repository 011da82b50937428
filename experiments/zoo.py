"""The learned-auction zoo: every method x setting trained and audited by jaxauction under one protocol, in
chunks under a time budget, resumable, and written as one table.

    python -m experiments.zoo --budget 1800 --runs results/zoo --out docs/zoo_table.md

Each cell (``model:setting``) is one ``experiments.regretnet`` run in
``RUNS/<model>_<setting>``, planned for its method's reference schedule
(``regretnet_table.SCHEDULES``) and stopped by ``--time-limit`` after its share of the budget
(what is left, split evenly over the unfinished cells, less ``--audit-seconds``
for its audit). Calling again with the same ``--runs`` resumes every
unfinished cell from its checkpoint and skips the finished ones, so a long
table fills over several calls (or GPU leases) and an interrupted call loses
at most one chunk of one cell. Every run is audited (``--audit``) after each
call; the table (``experiments.regretnet_table``'s columns) then says, per row,
how far through its schedule it got, on which device, under which protocol.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path
from typing import Literal

from experiments import regretnet, regretnet_table
from jaxauction import checkpoint, cli, runs
from jaxauction._checks import check_choice
from jaxauction.driver import RunError
from jaxauction.settings import setting as get_setting
from jaxauction.train.regretnet import ARCHITECTURES, RegretNetConfig

# Per-method flags of a new cell. MyersonNet: 4 random restarts, the best on validation profiles audited (on the
# irregular prior about one key in three reaches the optimum within 0.01: docs/incentive_compatibility.md), and
# the revenue on 1,000,000 profiles, the resolution its rows are judged at (an exact optimum within 0.01).
METHOD_FLAGS = {"myersonnet": ("--seeds", "4", "--select", "best", "--revenue-profiles", "1000000")}
# Per-cell flags, after the method's. The affine maximizer on 3x10: softness 100 with its unused menu entries
# revived every 500 iterations (5.59 against 5.31 without; on 2x2 and 2x5, at softness 1,000, revival costs
# revenue: docs/incentive_compatibility.md).
CELL_FLAGS = {"affine_maximizer:additive_3x10": ("--softness", "100", "--revive-every", "500")}
CELLS = ("rochetnet:additive_1x2", "regretnet:additive_1x2", "regretnet:additive_2x2", "equivariantnet:additive_2x2",
         "regretformer:additive_2x2", "affine_maximizer:additive_2x2", "affine_maximizer:additive_2x5",
         "affine_maximizer:additive_3x10", "myersonnet:single3_irregular", "myersonnet:single5_asym",
         "regretnet:ca_2x2_sym", "regretnet:ca_2x2_asym", "affine_maximizer:ca_2x2_sym",
         "affine_maximizer:ca_2x2_asym")  # fmt: skip
LOG_EVERY = 100  # iterations per chunk: what a time limit or an interruption can cost


@dataclasses.dataclass(frozen=True)
class ZooArgs:
    budget: float = 1800.0
    """seconds for this call: training and audits of every unfinished cell"""
    runs: Path = Path("results/zoo")
    """the cells' run folders (RUNS/<model>_<setting>); an existing one is resumed or, finished, skipped"""
    cells: tuple[str, ...] = CELLS
    """model:setting pairs, one run each; model:setting+other+... trains a size-free network (equivariantnet,
    regretformer) on the setting and the other sizes together (--mixture), in RUNS/<model>_<setting>_and_<other>"""
    audit: Literal["quick", "standard", "strong"] = "quick"
    """the audit preset of every new cell: the table states it per row"""
    audit_seconds: float = 60.0
    """seconds kept back from each cell's share for its compile and audit"""
    iterations: int | None = None
    """plan every new cell for this many iterations instead of its method's schedule (a shorter table)"""
    flags: str = ""
    """further experiments.regretnet flags for every new cell, after an equals sign: --flags='--batch 64 --lines 5'"""
    out: Path | None = None
    """write the table here (Markdown; a .csv beside it)"""


def parse_cell(cell: str) -> tuple[str, str, tuple[str, ...]]:
    """``model:setting`` or ``model:setting+other+...`` (a size-free network trained on a mixture of sizes:
    ``--mixture other ...``), checked against the registries; a clear error names what is wrong."""
    model, sep, names = cell.partition(":")
    if not sep:
        raise ValueError(f"cell {cell!r}: expected model:setting, for example regretnet:additive_2x2")
    check_choice(model, ARCHITECTURES, "model")
    name, *mixture = names.split("+")
    for each in (name, *mixture):
        get_setting(each)
    if mixture:  # the trainer's own checks (a size-free model; same prior and demand; no repeats), before anything
        RegretNetConfig(setting=name, model=model, mixture=tuple(mixture))
    return model, name, tuple(mixture)


def label(model: str, name: str, mixture: tuple[str, ...] = ()) -> str:
    """The cell as the user wrote it: ``model:setting+other+...``."""
    return f"{model}:{'+'.join((name, *mixture))}"


def folder(args: ZooArgs, model: str, name: str, mixture: tuple[str, ...] = ()) -> Path:
    return args.runs / "_and_".join((f"{model}_{name}", *mixture))


def finished(path: Path) -> bool:
    """Trained through its schedule and audited."""
    try:
        m = runs.finished_metrics(path)
    except RunError:
        return False
    return m["iterations"] >= m["iterations_planned"]


def train_cell(args: ZooArgs, model: str, name: str, mixture: tuple[str, ...], seconds: float) -> None:
    """One call of the cell's run: a new one, or its checkpoint resumed, stopped after ``seconds`` of training."""
    path = folder(args, model, name, mixture)
    # the method's and the user's flags also on a resume, where the run refuses any that differ from its own
    common = [*METHOD_FLAGS.get(model, ()), *CELL_FLAGS.get(label(model, name, mixture), ()), *shlex.split(args.flags),
              "--time-limit", f"{seconds:.3g}",
              "--no-progress", "--no-plots"]  # fmt: skip
    if checkpoint.exists(path):
        argv = ["--resume", str(path), *common]
    else:
        planned = args.iterations or regretnet_table.SCHEDULES[model]
        argv = ["--setting", name, "--model", model, "--iterations", str(planned), "--log-every", str(LOG_EVERY),
                "--audit", args.audit, "--out", str(path), *(["--mixture", *mixture] if mixture else []),
                *common]  # fmt: skip
    print(f"== {label(model, name, mixture)}: {seconds:.0f} s of training ({' '.join(argv)})", flush=True)
    regretnet.run(argv)


def run(argv: list[str] | None) -> str:
    args = cli.quiet_cli(ZooArgs, sys.argv[1:] if argv is None else argv, prog="python -m experiments.zoo")
    if not args.budget > 0 or args.audit_seconds < 0:
        raise ValueError(f"budget must be positive and audit_seconds not negative, got {args.budget}, "
                         f"{args.audit_seconds}")  # fmt: skip
    if args.iterations is not None and (args.iterations <= 0 or args.iterations % LOG_EVERY):
        raise ValueError(f"iterations must be a positive multiple of {LOG_EVERY}, got {args.iterations}")
    cells = [parse_cell(c) for c in args.cells]
    if len(set(cells)) != len(cells):
        raise ValueError(f"cells repeat: {', '.join(args.cells)}")
    start = time.perf_counter()
    todo = [c for c in cells if not finished(folder(args, *c))]
    for k, (model, name, mixture) in enumerate(todo):
        left = args.budget - (time.perf_counter() - start)
        share = left / (len(todo) - k) - args.audit_seconds
        if share <= 0:
            print(f"== {label(model, name, mixture)}: skipped, {left:.0f} s of the budget left", flush=True)
            continue
        train_cell(args, model, name, mixture, share)
    done = [str(folder(args, *c)) for c in cells]
    return regretnet_table.run([*done, *(["--out", str(args.out)] if args.out else [])])


def main(argv: list[str] | None = None) -> str:
    return cli.main(lambda: run(argv))


if __name__ == "__main__":
    main()
