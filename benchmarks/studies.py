"""Market studies: (reserve, seed) pairs per second in one compiled sweep, beside the machine's matmul throughput.

    python -m benchmarks.studies --out benchmarks/results/studies_cpu.json

The reserve sweep's program (``jaxauction.studies.sweep_revenue``): second
price, ``--reserves`` reserves x ``--seeds`` seeds, each pair a fresh market
of ``--auctions`` auctions, for truthful bidders on ``U[0, 1]``,
epsilon-greedy bidders on ``0..9`` and Hedge bidders (51 value fractions,
full information) on ``U[0, 1]``. Each figure is the median of ``--repeats``
timed calls after a warm-up (compilation excluded). Matmul throughput is
measured in the same run, so that figures from different machines compare
as auctions per second per matmul GFLOP/s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from benchmarks.common import device_info, int_list, matmul_gflops, median_seconds, str_list
from jaxauction import io
from jaxauction.evaluation import reserve_grid, swept_reserves
from jaxauction.market import init_params
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import sweep_revenue

UNIT = PriorSpec("uniform", 0.0, 1.0)
PRIORS = {"truthful": UNIT, "epsilon_greedy": PriorSpec(), "hedge": UNIT}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=str_list, default=list(PRIORS))
    parser.add_argument("--reserves", type=int, default=201)
    parser.add_argument("--seeds", type=int_list, default=[16])
    parser.add_argument("--bidders", type=int, default=2)
    parser.add_argument("--auctions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    peak = matmul_gflops("float32")
    result = {"benchmark": "studies", **device_info(), "matmul_gflops": peak, "rows": []}
    print(f"{jax.devices()[0].platform}: matmul {peak:.0f} GFLOP/s")
    for learner in args.learners:
        for seeds in args.seeds:
            market = build_market(MechanismSpec("second_price"), PopulationSpec(learner, args.bidders), PRIORS[learner])
            grid = reserve_grid(market, args.reserves)
            swept = swept_reserves(init_params(market, jax.random.key(0)), grid)
            keys = jax.random.split(jax.random.key(1), seeds)
            program = jax.jit(lambda p, k, m=market: sweep_revenue(m, p, k, args.auctions, args.auctions))
            seconds = median_seconds(lambda p=program, s=swept, k=keys: p(s, k), args.repeats)
            pairs = len(grid) * seeds
            row = {"learner": learner, "bidders": args.bidders, "reserves": len(grid), "seeds": seeds,
                   "auctions_per_pair": args.auctions, "seconds": seconds, "pairs_per_second": pairs / seconds,
                   "auctions_per_second": pairs * args.auctions / seconds,
                   "auctions_per_second_per_matmul_gflops": pairs * args.auctions / seconds / peak}  # fmt: skip
            result["rows"].append(row)
            print(
                f"{learner:>15} {pairs:>6} pairs x {args.auctions} auctions: {seconds:7.3f} s, "
                f"{row['pairs_per_second']:10.1f} pairs/s, {row['auctions_per_second']:.3g} auctions/s"
            )
            if args.out:  # after every row: a run cut short keeps what it measured
                io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
