"""Memory of one deep-mechanism-optimization round as a function of its sizes, from XLA's compiled program.

    python -m benchmarks.memory --out benchmarks/results/memory_cpu.json

For each configuration the jitted ``vmap(step)`` over ``seeds`` is compiled
(not run) and XLA's ``memory_analysis()`` gives the bytes of its arguments
(the state), outputs (state and logs) and temporaries. The model printed beside
it is the one documented in the README:

* state: ``seeds * (3 * 4 * P + markets * n * V * B * 8)`` (parameters and two
  Adam moments of ``P`` float32 parameters; estimates and counts per market);
* dataset: ``seeds * markets * D * (8 * n + 8)`` (values, bids, a key each);
* update activations: ``seeds * min(markets * D, chunk) * (sum of widths) * 4 * k``
  with ``k`` measured here (forward activations kept for the backward pass);
* rollout: ``seeds * markets * (sum of widths) * 4 * k'`` per auction step.

The largest term is the update's activations; ``revenue_chunk`` bounds it and
``market_chunk`` bounds the rollout's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from benchmarks.common import device_info
from jaxauction import DMOConfig, io, make_dmo

GRID = [
    dict(seeds=1, markets=1, dataset_size=64),
    dict(seeds=1, markets=64, dataset_size=64),
    dict(seeds=1, markets=256, dataset_size=256),
    dict(seeds=1, markets=1024, dataset_size=256),
    dict(seeds=1, markets=1024, dataset_size=256, revenue_chunk=16_384),
    dict(seeds=1, markets=1024, dataset_size=256, market_chunk=128, revenue_chunk=16_384),
    dict(seeds=8, markets=256, dataset_size=256),
]


def measure(seeds: int, **fields) -> dict:
    config = DMOConfig.of(auctions_per_round=1_000, window=1_000, explore_steps=500, **fields)
    dmo = make_dmo(config)
    state = jax.eval_shape(jax.vmap(dmo.init), jax.random.split(jax.random.key(0), seeds))
    stats = jax.jit(jax.vmap(dmo.step)).lower(state).compile().memory_analysis()
    samples = config.rollout.markets * config.rollout.dataset_size
    return {
        "seeds": seeds,
        **fields,
        "dataset_samples": seeds * samples,
        "argument_bytes": stats.argument_size_in_bytes,
        "output_bytes": stats.output_size_in_bytes,
        "temp_bytes": stats.temp_size_in_bytes,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"benchmark": "memory", **device_info(), "rows": []}
    print(f"{'configuration':<72} {'out MB':>8} {'temp MB':>9} {'temp B/sample':>14}")
    for point in GRID:
        row = measure(**point)
        result["rows"].append(row)
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        per_sample = row["temp_bytes"] / row["dataset_samples"]
        mb = row["output_bytes"] / 1e6, row["temp_bytes"] / 1e6
        print(f"{label:<72} {mb[0]:>8.2f} {mb[1]:>9.2f} {per_sample:>14.0f}")
    if args.out:
        io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
