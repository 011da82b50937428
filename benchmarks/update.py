"""Payment-network update throughput: dataset samples per second per optimizer step, at large dataset sizes.

    python -m benchmarks.update --out benchmarks/results/update_cpu.json

One step is the experiment's own ``make_update``: value and gradient of the
mean revenue over ``D`` bid profiles (forward and backward through the MLP),
then an Adam update. ``--steps`` steps run in one ``lax.scan`` per timed call.
Roofline fraction = samples/s x 3 x forward FLOPs (forward + backward) /
matmul FLOP/s in the same dtype, measured in this run. ``--chunk`` evaluates
the dataset that many profiles at a time (``revenue_chunk``, memory-bounded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

from benchmarks.common import device_info, int_list, matmul_gflops, median_seconds, mlp_flops, str_list
from jaxauction import DMOConfig, io, make_update, market_of, revenue_loss


def update_rate(config: DMOConfig, size: int, steps: int, repeats: int, chunk: int | None) -> float:
    mechanism = market_of(config).mechanism
    optimizer = config.optimiser.build()
    update = make_update(revenue_loss(mechanism, chunk), optimizer)
    params = mechanism.init(jax.random.key(0))
    n, top = config.bidders.n_bidders, config.bidders.options.n_bids
    bids = jnp.floor(jax.random.uniform(jax.random.key(1), (size, n, 1)) * top)
    keys = jax.random.split(jax.random.key(2), size)

    @jax.jit
    def go(params, opt_state):
        def one(carry, _):
            result = update(*carry, bids, keys)
            return (result.params, result.opt_state), result.loss

        return jax.lax.scan(one, (params, opt_state), None, length=steps)

    opt_state = optimizer.init(params)
    return size * steps / median_seconds(lambda: go(params, opt_state), repeats)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int_list, default=[4_096, 65_536, 262_144, 1_048_576])
    parser.add_argument("--dtypes", type=str_list, default=["float32"])
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timed call")
    parser.add_argument("--chunk", type=int, help="revenue_chunk: profiles per chunk (default: whole dataset)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    base = DMOConfig()
    flops = 3 * mlp_flops(base.bidders.n_bidders, base.mechanism.options.hidden)
    peaks = {dtype: matmul_gflops(dtype) for dtype in dict.fromkeys(["float32", *args.dtypes])}
    result = {
        "benchmark": "update",
        **device_info(),
        "flops_per_sample": flops,
        "matmul_gflops": peaks,
        "steps_per_call": args.steps,
        "chunk": args.chunk,
        "sweep": [],
    }
    print(f"{result['device_kind']}: matmul GFLOP/s {peaks}; {flops} FLOPs per sample and step")
    for dtype in args.dtypes:
        config = DMOConfig.of(compute_dtype=dtype)
        for size in args.sizes:
            rate = update_rate(config, size, args.steps, args.repeats, args.chunk)
            fraction = rate * flops / (peaks[dtype] * 1e9)
            row = {"dtype": dtype, "dataset_size": size, "samples_per_second": rate, "roofline_fraction": fraction}
            result["sweep"].append(row)
            best = max(result["sweep"], key=lambda r: r["samples_per_second"])
            result.update(samples_per_second=best["samples_per_second"], best=best)
            if args.out:
                io.write_json(args.out, result)
            print(f"{dtype:>8} D {size:>9}: {rate:>16,.0f} samples/s per step   roofline {fraction:.3f}", flush=True)
    return result


if __name__ == "__main__":
    main()
