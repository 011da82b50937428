#!/usr/bin/env bash
# Issue 18's seed-scale run on a GPU in one call: experiments.dynamic_mechanisms --preset seed (the table at
# 1,000,000 auctions per market, the horizon sweep 10^3..10^6, 120 s designs), under a time budget.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_dynamic.sh                  # on the GPU machine, from the repository root
#   DRY_RUN=1 OUT=/tmp/gpu-dry bash benchmarks/gpu_dynamic.sh    # the same steps at tiny sizes, on CPU
#
# Every cell is written when it finishes (evaluation/<cell>.json), so a run cut short by the budget keeps its
# finished cells: resume it on a later lease with
#   python3 -m experiments.dynamic_mechanisms --resume <its folder>
# Everything ends up in $OUT/gpu_results.tar.gz.
BUDGET=${BUDGET:-560}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  ARGS="--learners hedge epsilon_greedy --grids original --mechanisms teaser_first_price --auctions 4000"
  ARGS="$ARGS --windows 4 --explore-steps 500 --half-life 200 --horizons 1000 4000 --design-seconds 3 --seeds 2"
else
  ARGS="--preset seed"
fi
device_step
# shellcheck disable=SC2086  # ARGS is a word list
step dynamic_seed $((BUDGET - 40)) python3 -m experiments.dynamic_mechanisms $ARGS --no-progress --no-plots \
  --out "$OUT/dynamic_seed"
pack
