"""Rollout throughput of the seed market against the number of markets, as a fraction of the matmul roofline.

    python -m benchmarks.throughput --out benchmarks/results/throughput_cpu.json

The seed market: 3 epsilon-greedy bidders (values and bids 0..9), the deep
payment rule (MLP 3 -> 128 -> 64 -> 128 -> 3), one ``lax.scan`` round per
market, ``vmap``-ed over markets. The roofline fraction is
``auctions/s * forward FLOPs per auction / matmul FLOP/s``, both measured in
this run: the bandit, RNG and bookkeeping all count against it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from benchmarks.common import device_info, matmul_gflops, median_seconds, mlp_flops
from jaxauction import io
from jaxauction.cpu_rng import use_unrolled_threefry_on_cpu
from jaxauction.dmo import DMOConfig, make_market
from jaxauction.market import run_round


def rollout_rate(config: DMOConfig, markets: int, auctions: int, window: int, repeats: int) -> float:
    market = make_market(config)
    params = market.mechanism.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), markets)
    states = jax.vmap(market.learner.init)(keys)
    go = jax.jit(jax.vmap(lambda s, k: run_round(market, auctions, window, params, s, k)))
    return markets * auctions / median_seconds(lambda: go(states, keys), repeats)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--markets", type=lambda s: [int(x) for x in s.split(",")], default=[1, 64, 512, 2048, 4096, 8192]
    )
    parser.add_argument("--auctions", type=int, default=2_000, help="auctions per market per timed call")
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mechanism", default="deep")
    parser.add_argument("--fast-cpu-rng", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.fast_cpu_rng and jax.default_backend() == "cpu":
        use_unrolled_threefry_on_cpu()

    config = DMOConfig(mechanism=args.mechanism)
    flops = mlp_flops(config.n_bidders, config.hidden)
    gflops = matmul_gflops()
    print(f"{device_info()}  matmul {gflops:.1f} GFLOP/s, forward {flops} FLOPs/auction")
    rows = []
    for m in args.markets:
        auctions = args.auctions * (10 if m == 1 else 1)  # one market needs a longer scan to time
        rate = rollout_rate(config, m, auctions, args.window, args.repeats)
        fraction = rate * flops / (gflops * 1e9)
        rows.append({"markets": m, "auctions_per_second": rate, "roofline_fraction": fraction})
        print(f"markets {m:>6}: {rate:>14,.0f} auctions/s   roofline fraction {fraction:.3f}", flush=True)
    best = max(rows, key=lambda r: r["auctions_per_second"])
    result = {
        "benchmark": "throughput",
        **device_info(),
        "jax_version": jax.__version__,
        "mechanism": args.mechanism,
        "fast_cpu_rng": bool(args.fast_cpu_rng),
        "forward_flops_per_auction": flops,
        "matmul_gflops": gflops,
        "auctions_per_second": best["auctions_per_second"],
        "markets": best["markets"],
        "roofline_fraction": best["roofline_fraction"],
        "sweep": rows,
    }
    if args.out:
        io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
