"""Deep mechanism optimization, the seed experiment.

    python -m experiments.deep_mechanism_optimization            # the seed's configuration
    python -m experiments.deep_mechanism_optimization --seeds 64 --mechanism second_price

Every ``DMOConfig`` field has a flag. Writes ``OUT/metrics.json``,
``OUT/rounds.csv`` and PNG plots (platform reward per round, learned bid/value,
payment shares).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxauction import checkpoint, io
from jaxauction.cpu_rng import use_unrolled_threefry_on_cpu
from jaxauction.dmo import DMOConfig, RoundLog, deep_shares, make_dmo
from jaxauction.driver import run_chunked
from jaxauction.parallel import SEED_LOOPS, initialize_distributed, over_seeds, plan_mesh, shard_state, to_host

ALIASES = {"n_bidders": ["--bidders"]}
HELP = {
    "mechanism": "payment rule: deep, first_price, second_price, third_price or all_pay",
    "learner": "bidders: epsilon_greedy or truthful",
    "value_low": "lowest value; a comma list gives one per bidder",
    "value_high": "highest value (inclusive for uniform_int); a comma list gives one per bidder",
    "hidden": "hidden widths of the payment network, comma separated",
    "markets": "independent markets per round and seed; the dataset is gathered from all of them",
    "dataset_size": "dataset auctions per market",
}


def _number_or_tuple(text: str) -> Any:
    parts = [float(p) if any(c in p for c in ".eE") else int(p) for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected a number or a comma list, got {text!r}")
    return parts[0] if len(parts) == 1 and "," not in text else tuple(parts)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.deep_mechanism_optimization",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(DMOConfig):
        flags = [f"--{field.name.replace('_', '-')}", *ALIASES.get(field.name, [])]
        default = field.default
        kwargs: dict[str, Any] = dict(dest=field.name, default=default, help=HELP.get(field.name, " "))
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field.name == "hidden":
            kwargs["type"] = _int_tuple
        elif field.name in ("value_low", "value_high"):
            kwargs["type"] = _number_or_tuple
        else:
            kwargs["type"] = type(default)
        parser.add_argument(*flags, **kwargs)
    parser.add_argument("--seeds", type=int, default=1, help="independent runs, vmapped")
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    parser.add_argument("--out", type=Path, default=Path("results/deep_mechanism_optimization"))
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True, help="write PNG plots")
    parser.add_argument("--chunk-rounds", type=int, default=1, help="rounds per compiled chunk")
    parser.add_argument("--checkpoint-every", type=int, default=1, help="chunks between checkpoints in OUT")
    parser.add_argument("--resume", type=Path, help="continue the run checkpointed in this directory")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    parser.add_argument(
        "--shard",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="split seeds, then markets (data-parallel), over all visible devices (when several are visible)",
    )
    parser.add_argument(
        "--seed-loop",
        choices=SEED_LOOPS,
        default="vmap",
        help="seeds vectorised (vmap), or one after another per device (map: sharded == single device, bit for bit)",
    )
    parser.add_argument("--coordinator-address", help="jax.distributed coordinator host:port ('auto' on clusters)")
    parser.add_argument("--num-processes", type=int, help="jax.distributed process count")
    parser.add_argument("--process-id", type=int, help="jax.distributed process id")
    parser.add_argument(
        "--fast-cpu-rng",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="unrolled threefry lowering on CPU (bit-identical, faster)",
    )
    return parser


def parse(argv: Sequence[str] | None = None) -> tuple[DMOConfig, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.chunk_rounds < 1 or args.checkpoint_every < 1:
        parser.error("--chunk-rounds and --checkpoint-every must be >= 1")
    if args.resume is not None and not checkpoint.exists(args.resume):
        parser.error(f"--resume {args.resume}: no checkpoint there")
    try:
        config = DMOConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DMOConfig)})
    except ValueError as err:
        parser.error(str(err))
    return config, args


def share_profiles(config: DMOConfig) -> np.ndarray:
    """A few bid profiles to show the payment network on: equal, one high, a ramp, and random ones."""
    n, top = config.n_bidders, config.max_bid
    rng = np.random.default_rng(0)
    profiles = [
        np.full(n, round(top / 2)),
        np.r_[top, np.zeros(n - 1)],
        np.round(np.linspace(top, 0, n)),
        np.r_[top, np.full(n - 1, top - 1)],
    ]
    profiles += [np.sort(rng.integers(0, int(top) + 1, n))[::-1] for _ in range(4)]
    return np.asarray(profiles, np.float32)


def print_table(rows: list[dict[str, Any]]) -> None:
    """The per-round table from ``_round_rows``."""
    print(f"{'round':>5}  {'platform reward (mean +- std)':>30}  {'loss':>9}  {'efficiency':>10}")
    for row in rows:
        pr = f"{row['platform_reward_mean']:.4f} +- {row['platform_reward_std']:.4f}"
        print(f"{row['round']:>5}  {pr:>30}  {row['loss_mean']:>9.4f}  {row['efficiency_mean']:>10.4f}")


def _resume_meta(config: DMOConfig, args: argparse.Namespace) -> dict[str, Any]:
    """What must match between a checkpoint and the run that resumes it (everything but the length)."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k != "rounds"}
    return io.to_jsonable({"config": fields, "seed": args.seed, "seeds": args.seeds, "seed_loop": args.seed_loop})


def _write_rounds_csv(out: Path, rows: list[dict[str, Any]]) -> None:
    io.write_csv(out / "rounds.csv", list(rows[0]) if rows else [], [tuple(row.values()) for row in rows])


def _round_rows(logs: RoundLog, first: int) -> list[dict[str, Any]]:
    """One JSON row per round from logs ``[rounds, seeds, ...]``."""
    rows = []
    for r in range(np.asarray(logs.platform_reward).shape[0]):
        reward = np.asarray(logs.platform_reward)[r]
        rows.append(
            {
                "round": first + r + 1,
                "platform_reward_mean": float(reward.mean()),
                "platform_reward_std": float(reward.std()),
                "loss_mean": float(np.asarray(logs.loss)[r].mean()),
                "efficiency_mean": float(np.asarray(logs.efficiency)[r, :, -1].mean()),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    config, args = parse(argv)
    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    if args.fast_cpu_rng and jax.default_backend() == "cpu":
        use_unrolled_threefry_on_cpu()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    leader = jax.process_index() == 0  # only process 0 writes and prints in multi-process runs
    dmo = make_dmo(config)
    mesh = plan_mesh(args.seeds, config.markets, args.seed_loop) if args.shard and jax.device_count() > 1 else None
    step = over_seeds(dmo.step, args.seed_loop, mesh)
    state = jax.vmap(dmo.init)(jax.random.split(jax.random.key(args.seed), args.seeds))
    meta = _resume_meta(config, args)
    done, logs = 0, None
    if args.resume is not None:
        saved = checkpoint.read_meta(args.resume)
        if {k: saved.get(k) for k in meta} != meta:
            raise SystemExit(f"--resume {args.resume}: the checkpoint was made with another configuration or seeds")
        template_logs = jax.eval_shape(jax.vmap(dmo.step), state)[1]
        state, logs, saved = checkpoint.load(args.resume, state, template_logs)
        done = int(saved["steps_done"])
        if done > config.rounds:
            raise SystemExit(
                f"--resume {args.resume}: {done} rounds are done already, more than --rounds {config.rounds}"
            )
    if mesh is not None:
        state = shard_state(state, mesh, lambda s: s.learner_state)

    jsonl = out / "rounds.jsonl"
    reported = _round_rows(logs, 0) if logs is not None else []
    if leader:
        io.write_jsonl(jsonl, reported)

    def on_chunk(steps_done: int, new_logs: RoundLog) -> None:
        """After every chunk: append its rounds to rounds.jsonl and rewrite rounds.csv (both atomic)."""
        if leader:
            new_rows = _round_rows(new_logs, steps_done - np.asarray(new_logs.platform_reward).shape[0])
            reported.extend(new_rows)
            io.append_jsonl(jsonl, new_rows)
            _write_rounds_csv(out, reported)

    with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
        result = run_chunked(
            step,
            state,
            config.rounds,
            chunk=args.chunk_rounds,
            done=done,
            logs=logs,
            checkpoint_dir=out,
            checkpoint_every=args.checkpoint_every,
            meta=meta,
            on_chunk=on_chunk,
            describe=lambda lg: {
                "reward": float(np.mean(lg.platform_reward[-1])),
                "loss": float(np.mean(lg.loss[-1])),
            },
            progress=args.progress and leader,
            unit="round",
        )
    params = to_host(result.state.params)  # a collective: every process gathers
    logs = jax.tree.map(lambda x: np.swapaxes(x, 0, 1), result.logs)  # [seeds, rounds, ...]
    compile_seconds, run_seconds = result.compile_seconds, result.run_seconds

    mesh_text = "" if mesh is None else f", mesh {dict(mesh.shape)} over {jax.process_count()} process(es)"
    auctions = result.steps_run * config.auctions_per_round * config.markets * args.seeds
    rate = auctions / run_seconds if run_seconds else float("nan")

    reward = np.asarray(logs.platform_reward)  # [seeds, rounds]
    loss = np.asarray(logs.loss)
    metrics = {
        "config": dataclasses.asdict(config),
        "seeds": args.seeds,
        "seed": args.seed,
        "jax_version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "mesh": None if mesh is None else dict(mesh.shape),
        "seed_loop": args.seed_loop,
        "platform_reward": reward.mean(0),
        "platform_reward_std": reward.std(0),
        "platform_reward_per_seed": reward.T,  # rounds x seeds
        "loss": loss.mean(0),
        "loss_per_seed": loss.T,
        "efficiency": np.asarray(logs.efficiency)[..., -1].mean(0),
        "utility": np.asarray(logs.utility)[..., -1, :].mean(0),  # rounds x bidders, last window
        "greedy_bids": np.asarray(logs.greedy_bids)[:, -1].mean(0),  # bidders x value levels, last round
        "resumed_from_round": done,
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "auctions_per_second": rate,
    }
    if not leader:
        return metrics
    print_table(reported)  # every round, resumed ones included
    print(
        f"compile {compile_seconds:.2f}s, run {run_seconds:.2f}s, "
        f"{rate:,.0f} auctions/s on {jax.device_count()} x {jax.devices()[0].device_kind}{mesh_text}"
    )
    io.write_json(out / "metrics.json", metrics)
    if args.plots:
        _plots(config, params, metrics, out)
    print(f"results in {out}/")
    return metrics


def _plots(config: DMOConfig, params: Any, metrics: dict[str, Any], out: Path) -> None:
    try:
        from jaxauction import plots
    except ImportError:  # pragma: no cover
        print("matplotlib is not installed: skipping plots (pip install -e '.[viz]')", file=sys.stderr)
        return
    title = f"{config.mechanism}, {config.n_bidders} {config.learner} bidders"
    plots.platform_reward(out / "platform_reward.png", metrics["platform_reward_per_seed"], title)
    if not np.all(np.isnan(metrics["greedy_bids"])):
        plots.bid_value(out / "bid_value.png", metrics["greedy_bids"], f"{title}, last round")
    if config.mechanism == "deep":
        profiles = share_profiles(config)
        params_seed0 = jax.tree.map(lambda x: x[0], params)
        shares = np.asarray(deep_shares(config, params_seed0, profiles))
        plots.payment_shares(out / "payment_shares.png", profiles, shares, f"{title}, seed 0 after training")


if __name__ == "__main__":
    main()
