"""What a regret-trained run's loss sees: its regret on its own training profiles under training attacks.

    python -m experiments.training_attack .zoo_runs/regretformer_additive_2x2 --candidates 16 64 256

A RegretNet-style trainer measures regret on its cached misreports after a few
gradient steps (``jaxauction.regret.refine_misreports``), and a network can
learn to hide its regret from that search (docs/zoo.md). This reads a run's
checkpoint (finished or not) and, on ``batches`` of its own training profiles
with their cached misreports, reports the mean per-bidder regret
(``batch_regret``, what the loss is built from) of:

* ``cached``: the cached misreports as they are;
* ``cached + steps``: after the run's own refinement (its steps and step
  size), the last step kept, as the reference trains;
* ``cached + steps, best kept``: the same, keeping each bidder's best report
  on the way (``--misreport-keep-best``);
* for each ``C`` of ``candidates``: the best of the cached misreport and ``C``
  uniform random reports (``--misreport-candidates C``), then refined with
  the last step kept, and with the best kept.

By construction a row with the best kept is at least its start (per profile
and bidder). The audit (``experiments.regret_audit``) is the independent
measurement; this shows how much of it each training attack would hand the
loss. Fixed keys: the same run gives the same table. Prints the table, and
writes it (``table.md``, ``table.csv``) and ``metrics.json`` atomically into
``--out`` when given.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import tyro

from experiments.table import write_table
from jaxauction import cli, io, runs
from jaxauction._checks import check_positive_int
from jaxauction.regret import batch_regret, best_misreports, refine_misreports

HEADER = ("training attack", "mean regret per bidder", "against the reference's (cached + its steps)")


@dataclasses.dataclass(frozen=True)
class AttackArgs:
    run: tyro.conf.Positional[Path]
    """folder of an experiments.regretnet run of a regret-trained model (its checkpoint)"""
    candidates: tuple[int, ...] = (16, 64, 256)
    """random reports per profile and bidder, one row pair each"""
    batches: int = 2
    """training batches measured (the run's batch size each), spread over its training profiles"""
    out: Path | None = None
    """write table.md, table.csv and metrics.json into this folder"""


def run(argv: list[str] | None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = cli.quiet_cli(AttackArgs, argv, prog="python -m experiments.training_attack")
    check_positive_int(args.batches, "batches")
    for c in args.candidates:
        check_positive_int(c, "candidates")
    config, trainer, state = runs.load_regretnet_state(args.run, flag="run")
    if trainer.mechanism.incentive_compatible or config.mixture:
        raise ValueError(f"{args.run}: a {config.model} run{' on a mixture' if config.mixture else ''}; this "
                         "measures one regret-trained size")  # fmt: skip
    schedule = config.schedule()
    mechanism, params, (low, high), batch = trainer.mechanism, state.params, trainer.support, schedule.batch
    keys = jnp.broadcast_to(jax.random.key(0), (batch,))  # the trainer's: the learned mechanisms are deterministic
    regret = jax.jit(lambda v, m: jnp.mean(batch_regret(mechanism, params, v, m, keys)[0]))
    refine = jax.jit(lambda v, m, keep: refine_misreports(mechanism, params, v, m, keys, low, high,
                                                          schedule.misreport_steps, schedule.misreport_lr,
                                                          keep_best=keep), static_argnums=2)  # fmt: skip
    best = jax.jit(lambda v, m, k, c: best_misreports(mechanism, params, v, m, keys, low, high, k, c),
                   static_argnums=3)  # fmt: skip
    steps = schedule.misreport_steps
    rows: dict[str, list[float]] = {}
    n_batches = schedule.train_size // batch
    for b in range(args.batches):
        start = (b * n_batches // args.batches) * batch
        v, cached = state.values[start : start + batch], state.misreports[start : start + batch]
        found = {"cached": cached, f"cached + {steps} steps": refine(v, cached, False),
                 f"cached + {steps} steps, best kept": refine(v, cached, True)}  # fmt: skip
        for c in args.candidates:
            seeded = best(v, cached, jax.random.fold_in(jax.random.key(1), b), c)
            found[f"best of cached and {c} random"] = seeded
            found[f"best of cached and {c} random + {steps} steps"] = refine(v, seeded, False)
            found[f"best of cached and {c} random + {steps} steps, best kept"] = refine(v, seeded, True)
        for name, reports in found.items():
            rows.setdefault(name, []).append(float(regret(v, reports)))
    table = {name: sum(values) / len(values) for name, values in rows.items()}
    result = {"experiment": "training_attack", "run": str(args.run), "model": config.model,
              "setting": config.setting, "iterations": int(state.iteration), "batch": batch,
              "batches": args.batches, "misreport_steps": steps, "regret_mean": table}  # fmt: skip
    print(f"{config.model} {config.setting} after {int(state.iteration):,} iterations: mean regret per bidder on "
          f"{args.batches} x {batch} training profiles")  # fmt: skip
    reference = table[f"cached + {steps} steps"]
    rows_md = [(name, f"{value:.2e}", f"{value / reference:.1f}x" if reference > 0 else "")
               for name, value in table.items()]  # fmt: skip
    write_table(HEADER, rows_md, None if args.out is None else Path(args.out) / "table.md", [])
    if args.out is not None:
        io.write_json(Path(args.out) / "metrics.json", result)
    return result


def main(argv: list[str] | None = None) -> dict:
    return cli.main(lambda: run(argv))


if __name__ == "__main__":
    main()
