"""Rollout throughput of the seed market against the number of markets, as a fraction of the matmul roofline.

    python -m benchmarks.throughput --out benchmarks/results/throughput_cpu.json

The seed market: 3 epsilon-greedy bidders (values and bids 0..9), the deep
payment rule (MLP 3 -> 128 -> 64 -> 128 -> 3), one ``lax.scan`` round per
market, ``vmap``-ed over markets. The roofline fraction is
``auctions/s * forward FLOPs per auction / matmul FLOP/s``, both measured in
this run and in the same dtype: the bandit, RNG and bookkeeping all count
against it. ``--forward`` also times the payment network's forward pass alone
(softmax shares times bids) over that many bid profiles, the bound the rollout
can approach. The JSON is rewritten after every row, so a run cut short keeps
what it measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

from benchmarks.common import device_info, int_list, matmul_gflops, median_seconds, mlp_flops, str_list
from jaxauction import DMOConfig, deep_shares, init_params, io, key, market_of, run_round
from jaxauction.market import Market


def auctions_per_call(markets: int, budget: int | None, default: int) -> int:
    """Auctions per market in one timed call: ``default``, or ``budget`` auctions in all (100..20,000 per market)."""
    if budget is None:
        return default * (10 if markets == 1 else 1)  # one market needs a longer scan to time
    return int(min(20_000, max(100, budget // markets // 100 * 100)))


PRNGS = {"fused": key, "jax": jax.random.key}  # same bits; jaxauction.prng's fused threefry, or JAX's default


def rollout_rate(
    market: Market, markets: int, auctions: int, repeats: int, unroll: int = 1, prng: str = "fused"
) -> float:
    params = init_params(market, jax.random.key(0))
    keys = jax.random.split(PRNGS[prng](1), markets)
    states = jax.vmap(market.population.init, in_axes=(0, None))(keys, params.learners)
    window = auctions if auctions <= 1_000 or auctions % 1_000 else 1_000
    go = jax.jit(jax.vmap(lambda s, k: run_round(market, auctions, window, params, s, k, unroll)))
    return markets * auctions / median_seconds(lambda: go(states, keys), repeats)


def forward_rate(config: DMOConfig, batch: int, repeats: int, passes: int = 10) -> float:
    """Bid profiles per second through the payment network alone (``passes`` forward passes per timed call)."""
    params = market_of(config).mechanism.init(jax.random.key(0))
    n_bids = config.bidders.options.n_bids
    bids = jnp.floor(jax.random.uniform(jax.random.key(1), (batch, config.bidders.n_bidders)) * n_bids)

    @jax.jit
    def go(params, bids):
        def one(i, total):
            b = jnp.roll(bids, i, axis=-1)  # a different input each pass
            return total + jnp.sum(deep_shares(config, params, b) * b)

        return jax.lax.fori_loop(0, passes, one, jnp.zeros((), jnp.float32))

    return batch * passes / median_seconds(lambda: go(params, bids), repeats)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int_list, default=[1, 64, 512, 4096, 16384])
    parser.add_argument("--auctions", type=int, default=2_000, help="auctions per market per timed call")
    parser.add_argument(
        "--auction-budget",
        type=int,
        default=4_096_000,
        help="instead: about this many auctions per timed call in all; 0 uses --auctions",
    )
    parser.add_argument("--dtypes", type=str_list, default=["float32"], help="compute dtypes of the network")
    parser.add_argument("--unroll", type=int_list, default=[1], help="auctions per scan iteration")
    parser.add_argument("--precision", default="default", help="matmul precision of the network (default, highest)")
    parser.add_argument("--forward", type=int_list, default=[], help="also time the forward pass at these batches")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mechanism", default="deep")
    parser.add_argument("--prng", choices=sorted(PRNGS), default="fused", help="key implementation (same bits)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    base = DMOConfig.of(mechanism=args.mechanism, matmul_precision=args.precision)
    flops = mlp_flops(base.bidders.n_bidders, base.mechanism.options.hidden)
    peaks = {dtype: matmul_gflops(dtype) for dtype in dict.fromkeys(["float32", *args.dtypes])}
    info = device_info()
    peak_text = ", ".join(f"{d} {g:,.0f}" for d, g in peaks.items())
    print(f"{info['device_kind']} x{info['device_count']}: matmul GFLOP/s {peak_text}; {flops} FLOPs/auction")
    result = {
        "benchmark": "throughput",
        **info,
        "mechanism": args.mechanism,
        "prng": args.prng,
        "matmul_precision": args.precision,
        "forward_flops_per_auction": flops,
        "matmul_gflops": peaks,
        "sweep": [],
        "forward": [],
    }

    def record(key: str, row: dict) -> None:
        row["roofline_fraction"] = row["auctions_per_second"] * flops / (peaks[row["dtype"]] * 1e9)
        result[key].append(row)
        rows = result["sweep"]
        if rows:
            best = max(rows, key=lambda r: r["auctions_per_second"])
            result.update(
                auctions_per_second=best["auctions_per_second"],
                markets=best["markets"],
                roofline_fraction=best["roofline_fraction"],
                best=best,
            )
        if args.out:
            io.write_json(args.out, result)

    for dtype in args.dtypes:
        config = DMOConfig.of(mechanism=args.mechanism, compute_dtype=dtype, matmul_precision=args.precision)
        for unroll in args.unroll:
            for m in args.markets:
                auctions = auctions_per_call(m, args.auction_budget or None, args.auctions)
                rate = rollout_rate(market_of(config), m, auctions, args.repeats, unroll, args.prng)
                row = {"dtype": dtype, "unroll": unroll, "markets": m, "auctions": auctions}
                record("sweep", {**row, "auctions_per_second": rate})
                print(
                    f"{dtype:>8} unroll {unroll:>2} markets {m:>8}: {rate:>16,.0f} auctions/s   "
                    f"roofline fraction {result['sweep'][-1]['roofline_fraction']:.3f}",
                    flush=True,
                )
        for batch in args.forward:
            rate = forward_rate(config, batch, args.repeats)
            record("forward", {"dtype": dtype, "batch": batch, "auctions_per_second": rate})
            print(f"{dtype:>8} forward pass alone, batch {batch:>8}: {rate:>16,.0f} profiles/s", flush=True)
    return result


if __name__ == "__main__":
    main()
