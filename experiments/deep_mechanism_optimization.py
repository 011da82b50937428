"""Deep mechanism optimization, the seed experiment.

    python -m experiments.deep_mechanism_optimization            # the seed's configuration
    python -m experiments.deep_mechanism_optimization --seeds 64 --mechanism second_price

Every ``DMOConfig`` field has a flag. Writes ``OUT/metrics.json``,
``OUT/rounds.csv`` and PNG plots (platform reward per round, learned bid/value,
payment shares).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxauction import io
from jaxauction.cpu_rng import use_unrolled_threefry_on_cpu
from jaxauction.dmo import DMOConfig, RoundLog, deep_shares, make_train

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


def print_table(logs: RoundLog) -> None:
    reward = np.asarray(logs.platform_reward)  # [seeds, rounds]
    loss = np.asarray(logs.loss)
    eff = np.asarray(logs.efficiency)[..., -1]
    print(f"{'round':>5}  {'platform reward (mean +- std)':>30}  {'loss':>9}  {'efficiency':>10}")
    for r in range(reward.shape[1]):
        pr = f"{reward[:, r].mean():.4f} +- {reward[:, r].std():.4f}"
        print(f"{r + 1:>5}  {pr:>30}  {loss[:, r].mean():>9.4f}  {eff[:, r].mean():>10.4f}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    config, args = parse(argv)
    if args.fast_cpu_rng and jax.default_backend() == "cpu":
        use_unrolled_threefry_on_cpu()
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    train = jax.jit(jax.vmap(make_train(config)))

    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    state, logs = jax.block_until_ready(compiled(keys))
    run_seconds = time.perf_counter() - start

    print_table(logs)
    auctions = config.rounds * config.auctions_per_round * config.markets * args.seeds
    print(
        f"compile {compile_seconds:.2f}s, run {run_seconds:.2f}s, "
        f"{auctions / run_seconds:,.0f} auctions/s on {jax.devices()[0].device_kind}"
    )

    reward = np.asarray(logs.platform_reward)  # [seeds, rounds]
    loss = np.asarray(logs.loss)
    metrics = {
        "config": dataclasses.asdict(config),
        "seeds": args.seeds,
        "seed": args.seed,
        "jax_version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "platform_reward": reward.mean(0),
        "platform_reward_std": reward.std(0),
        "platform_reward_per_seed": reward.T,  # rounds x seeds
        "loss": loss.mean(0),
        "loss_per_seed": loss.T,
        "efficiency": np.asarray(logs.efficiency)[..., -1].mean(0),
        "utility": np.asarray(logs.utility)[..., -1, :].mean(0),  # rounds x bidders, last window
        "greedy_bids": np.asarray(logs.greedy_bids)[:, -1].mean(0),  # bidders x value levels, last round
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "auctions_per_second": auctions / run_seconds,
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    io.write_json(out / "metrics.json", metrics)
    io.write_csv(
        out / "rounds.csv",
        ["round", "platform_reward_mean", "platform_reward_std", "loss_mean", "efficiency_mean"],
        [
            (
                r + 1,
                float(reward[:, r].mean()),
                float(reward[:, r].std()),
                float(loss[:, r].mean()),
                float(metrics["efficiency"][r]),
            )
            for r in range(config.rounds)
        ],
    )
    if args.plots:
        _plots(config, state, metrics, out)
    print(f"results in {out}/")
    return metrics


def _plots(config: DMOConfig, state: Any, metrics: dict[str, Any], out: Path) -> None:
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
        params_seed0 = jax.tree.map(lambda x: x[0], state.params)
        shares = np.asarray(deep_shares(config, params_seed0, profiles))
        plots.payment_shares(out / "payment_shares.png", profiles, shares, f"{title}, seed 0 after training")


if __name__ == "__main__":
    main()
