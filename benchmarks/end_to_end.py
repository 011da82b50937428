"""End-to-end time of the deep mechanism optimization experiment (the seed's configuration by default).

    python -m benchmarks.end_to_end --out benchmarks/results/end_to_end_cpu.json

Each run is a fresh ``python -m experiments.deep_mechanism_optimization``
process (imports, compile, run and result files, no plots): the wall time is
what a user waits for; compile and run seconds come from its ``metrics.json``.
Medians over ``--repeats`` runs. Arguments after ``--`` go to the experiment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import device_info, int_list
from jaxauction import io


def run_once(seeds: int, extra: list[str], timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "experiments.deep_mechanism_optimization", "--seeds", str(seeds)]
        command += ["--out", tmp, "--no-plots", "--no-progress", *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
    return {
        "wall_seconds": wall,
        "compile_seconds": metrics["compile_seconds"],
        "run_seconds": metrics["run_seconds"],
        "auctions_per_second": metrics["auctions_per_second"],
        "final_platform_reward": metrics["platform_reward"][-1],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int_list, default=[1, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("extra", nargs="*", help="experiment arguments (after --)")
    args = parser.parse_args(argv)

    result = {"benchmark": "end_to_end", **device_info(), "experiment_args": args.extra, "runs": []}
    for seeds in args.seeds:
        runs = [run_once(seeds, args.extra, args.timeout) for _ in range(args.repeats)]
        row = {"seeds": seeds, "repeats": len(runs)}
        row.update({k: float(np.median([r[k] for r in runs])) for k in runs[0]})
        result["runs"].append(row)
        if args.out:
            io.write_json(args.out, result)
        print(
            f"seeds {seeds:>5}: wall {row['wall_seconds']:.2f} s (compile {row['compile_seconds']:.2f} s, "
            f"run {row['run_seconds']:.2f} s), {row['auctions_per_second']:,.0f} auctions/s, "
            f"final reward {row['final_platform_reward']:.4f}",
            flush=True,
        )
    return result


if __name__ == "__main__":
    main()
