#!/usr/bin/env bash
# The GPU benchmark set of the market in one call, within 8 minutes; every result is JSON under $OUT.
# (RegretNet's GPU runs are benchmarks/gpu_regretnet.sh.)
#
#   OUT=/tmp/gpu bash benchmarks/gpu.sh                  # on the GPU machine, from the repository root
#   DRY_RUN=1 OUT=/tmp/gpu-dry bash benchmarks/gpu.sh    # the same steps at tiny sizes, on CPU
#
# Steps run in priority order, each under its own time limit and all under a
# total budget (BUDGET seconds, default 460); a step that would start with
# under 20 s left is skipped. Each benchmark rewrites its JSON after every
# measured row, so a step cut short keeps what it measured. Everything ends up
# in $OUT/gpu_results.tar.gz (JSON, logs, summary.log); the exit status is
# non-zero when a step failed or was cut short.
BUDGET=${BUDGET:-460}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh

if [[ "${DRY_RUN:-0}" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  MARKETS=1,64 BF16_MARKETS=64 BUDGET_AUCTIONS=20000 FORWARD=4096 BREAKDOWN="--markets 64 --auctions 200"
  SIZES=4096,16384 CHUNKED_SIZE=16384 CHUNK=4096 E2E_SEEDS=1 E2E_ARGS="-- --rounds 2 --auctions-per-round 20000 --explore-steps 4000 --half-life 2000"
  TEST_PLATFORM=cpu TESTS="tests/test_market.py"
  STUDY_ARGS="--reserves 11 --seeds 2 --auctions 1000 --repeats 1"
else
  MARKETS=1,4096,65536,262144,1048576,2097152,4194304 BF16_MARKETS=262144,1048576,2097152
  BUDGET_AUCTIONS=200000000 FORWARD=1048576,4194304 BREAKDOWN="--markets 2097152 --auctions 100"
  SIZES=65536,1048576,4194304,8388608 CHUNKED_SIZE=16777216 CHUNK=1048576 E2E_SEEDS=1,1024 E2E_ARGS=""
  TEST_PLATFORM=cuda TESTS="tests/test_mechanisms.py tests/test_market.py tests/test_dmo.py tests/test_bidders.py"
  TESTS="$TESTS tests/test_priors.py"
  STUDY_ARGS="--reserves 1001 --seeds 16,1024 --auctions 10000"
fi

device_step
step throughput_f32 150 python3 -m benchmarks.throughput --markets "$MARKETS" --auction-budget "$BUDGET_AUCTIONS" \
  --repeats 3 --forward "$FORWARD" --out "$OUT/throughput_f32.json"
# shellcheck disable=SC2086
step studies 60 python3 -m benchmarks.studies $STUDY_ARGS --out "$OUT/studies.json"
step update 110 python3 -m benchmarks.update --sizes "$SIZES" --dtypes float32,bfloat16 --repeats 3 \
  --out "$OUT/update.json"
step throughput_bf16 70 python3 -m benchmarks.throughput --markets "$BF16_MARKETS" --auction-budget "$BUDGET_AUCTIONS" \
  --dtypes bfloat16 --repeats 3 --forward "$FORWARD" --out "$OUT/throughput_bf16.json"
step throughput_highest 45 python3 -m benchmarks.throughput --markets "$BF16_MARKETS" \
  --auction-budget "$BUDGET_AUCTIONS" --precision highest --repeats 3 --forward "$FORWARD" \
  --out "$OUT/throughput_highest.json"
# shellcheck disable=SC2086
step breakdown 60 python3 -m benchmarks.breakdown $BREAKDOWN --out "$OUT/breakdown.json"
step update_chunked 40 python3 -m benchmarks.update --sizes "$CHUNKED_SIZE" --chunk "$CHUNK" --steps 2 --repeats 2 \
  --out "$OUT/update_chunked.json"
# shellcheck disable=SC2086  # TESTS and E2E_ARGS are word lists
step tests 120 env JAX_PLATFORMS="$TEST_PLATFORM" python3 -m pytest -q -p no:cacheprovider $TESTS
# shellcheck disable=SC2086
step end_to_end 120 python3 -m benchmarks.end_to_end --seeds "$E2E_SEEDS" --repeats 1 --timeout 100 \
  --out "$OUT/end_to_end.json" $E2E_ARGS
pack
