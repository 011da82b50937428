"""Scaling of the sharded path from 1 to 8 fake CPU devices: correctness first, time second.

    python -m benchmarks.scaling --out benchmarks/results/scaling_cpu.json

Each device count runs in a fresh process with
``XLA_FLAGS=--xla_force_host_platform_device_count=K`` and the same workload
(``--seeds`` seeds of a small DMO configuration through the chunked driver,
sharded over a ``(seeds, batch)`` mesh). Fake devices share the host's cores,
so the times show the overhead of the partitioned program, not a speed-up.
Reported per count: median run time, efficiency ``t(1) / t(K)`` (1.0 = no
overhead on the same cores) and the largest difference of the final
parameters and platform rewards from the 1-device run (0.0 with
``--seed-loop map``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import int_list
from jaxauction import io

WORKER = r"""
import json, sys, time
import jax, numpy as np
from jaxauction import DMOConfig, key, make_dmo
from jaxauction.driver import run_chunked
from jaxauction.parallel import over_seeds, plan_mesh, shard_state, to_host
seeds, seed_loop, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
config = DMOConfig.of(rounds=2, auctions_per_round=4_000, window=1_000, explore_steps=1_000, half_life=500.0)
dmo = make_dmo(config)
state = jax.vmap(dmo.init)(jax.random.split(key(0), seeds))
mesh = plan_mesh(seeds, config.rollout.markets, seed_loop) if jax.device_count() > 1 else None
if mesh is not None:
    state = shard_state(state, mesh, lambda s: s.learner_state)
times = []
with jax.set_mesh(mesh) if mesh is not None else __import__("contextlib").nullcontext():
    step = over_seeds(dmo.step, seed_loop, mesh)
    for _ in range(repeats + 1):
        result = run_chunked(step, state, config.rollout.rounds, chunk=config.rollout.rounds, progress=False)
        times.append(result.run_seconds)
params = np.concatenate([np.ravel(x) for x in jax.tree.leaves(to_host(result.state.params.mechanism))])
print(json.dumps({"devices": jax.device_count(), "run_seconds": float(np.median(times[1:])),
                  "params": params.tolist(), "platform_reward": np.ravel(result.logs.platform_reward).tolist()}))
"""


def run_worker(devices: int, seeds: int, seed_loop: str, repeats: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(seeds), seed_loop, str(repeats)],
        env=env, capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int_list, default=[1, 2, 4, 8])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seed-loops", default="vmap,map")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"benchmark": "scaling", "platform": "cpu (fake devices)", "seeds": args.seeds, "rows": []}
    for seed_loop in args.seed_loops.split(","):
        base = None
        for devices in args.devices:
            run = run_worker(devices, args.seeds, seed_loop, args.repeats)
            base = base or run
            row = {
                "seed_loop": seed_loop,
                "devices": devices,
                "run_seconds": run["run_seconds"],
                "efficiency": base["run_seconds"] / run["run_seconds"],
                "max_param_diff": float(np.max(np.abs(np.subtract(run["params"], base["params"])))),
                "max_reward_diff": float(np.max(np.abs(np.subtract(run["platform_reward"], base["platform_reward"])))),
            }
            result["rows"].append(row)
            if args.out:
                io.write_json(args.out, result)
            print(
                f"{seed_loop:>4} {devices} devices: run {row['run_seconds']:.3f} s, "
                f"efficiency {row['efficiency']:.2f}, "
                f"max |param diff| {row['max_param_diff']:.2e}, max |reward diff| {row['max_reward_diff']:.2e}",
                flush=True,
            )
    return result


if __name__ == "__main__":
    main()
