"""Where the seed market's rollout time goes: the rollout against variants that drop one part of it.

    python -m benchmarks.breakdown --markets 2097152 --auctions 100     # GPU size

Variants, timed like ``benchmarks.throughput`` at one market count:
``seed`` (3 epsilon-greedy bidders, deep rule), ``frozen_bidders`` (the
bidders act but never update their tables), ``second_price`` (no payment
network at all) and ``precision_highest`` (float32 matmul products instead of
the backend's default, TF32 on NVIDIA GPUs).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from benchmarks.common import device_info
from benchmarks.throughput import rollout_rate
from jaxauction import DMOConfig, io, market_of


def variants() -> dict:
    seed = market_of(DMOConfig())
    bandit = seed.population.groups[0]
    frozen = dataclasses.replace(bandit, update=lambda key, state, feedback, params: state._replace(t=state.t + 1))
    return {
        "seed": seed,
        "frozen_bidders": dataclasses.replace(seed, population=dataclasses.replace(seed.population, groups=(frozen,))),
        "second_price": market_of(DMOConfig.of(mechanism="second_price")),
        "precision_highest": market_of(DMOConfig.of(matmul_precision="highest")),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int, default=4096)
    parser.add_argument("--auctions", type=int, default=1000, help="auctions per market per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"benchmark": "breakdown", **device_info(), "markets": args.markets, "auctions": args.auctions}
    for name, market in variants().items():
        result[name] = rollout_rate(market, args.markets, args.auctions, args.repeats)
        print(f"{name:>18}: {result[name]:>16,.0f} auctions/s", flush=True)
        if args.out:
            io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
