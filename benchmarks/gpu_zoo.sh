#!/usr/bin/env bash
# The learned-auction zoo table on a GPU in one call: every cell of experiments.zoo trained in turn for its share
# of the budget (--time-limit) and audited under the strong protocol; the table and each cell's metrics come back.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_zoo.sh                   # on the GPU machine, from the repository root
#   DRY_RUN=1 OUT=/tmp/gpu-dry bash benchmarks/gpu_zoo.sh     # the same steps at tiny sizes, on CPU
#
# 1. benchmarks.regretnet --zoo: every architecture's training iteration and audit, timed (ms per iteration,
#    ms per audited profile).
# 2. experiments.zoo over CELLS (default: its own list) in RUNS: a cell stopped by its share resumes from its
#    checkpoint on the next call with the same RUNS (on one machine; the checkpoints of the regret-trained cells
#    hold their 640,000 training profiles and stay there). metrics.json of every cell and zoo_table.md come back.
# All matmuls at float32 ("highest"): the GPU default rounds float32 matmuls through TF32.
BUDGET=${BUDGET:-560}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
export JAX_DEFAULT_MATMUL_PRECISION=highest
RUNS=${RUNS:-/tmp/zoo_runs}
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  BENCH="--pairs myersonnet:single3 --iterations 2 --repeats 1 --audit-profiles 16"
  ZOO=(--cells rochetnet:additive_1x2 myersonnet:single3 --iterations 200 --audit quick --audit-seconds 20
    "--flags=--batch 32 --menu-size 8 --profiles 64 --revenue-profiles 0 --no-interim --lines 2")
  RESERVE=40
else
  BENCH="--iterations 20 --repeats 3 --audit-profiles 1000"
  ZOO=(--audit strong --audit-seconds 60)
  RESERVE=20
fi

device_step
# shellcheck disable=SC2086  # BENCH is a word list
step zoo_bench 150 python3 -m benchmarks.regretnet --zoo $BENCH --out "$OUT/zoo_bench.json"
step zoo $(($(seconds_left) - RESERVE)) python3 -m experiments.zoo --runs "$RUNS" \
  --budget $(($(seconds_left) - RESERVE - 10)) "${ZOO[@]}" --out "$OUT/zoo_table.md"
for f in "$RUNS"/*/metrics.json; do [[ -f "$f" ]] && cp "$f" "$OUT/$(basename "$(dirname "$f")")_metrics.json"; done
pack
