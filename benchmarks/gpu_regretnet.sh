#!/usr/bin/env bash
# RegretNet on a GPU in one call: time per iteration, then reference schedules (3x10, 5x10)
# for as long as the budget allows, evaluated under a strong protocol; every result is under $OUT.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_regretnet.sh                   # on the GPU machine, from the repository root
#   DRY_RUN=1 OUT=/tmp/gpu-dry bash benchmarks/gpu_regretnet.sh     # the same steps at tiny sizes, on CPU
#
# 1. benchmarks.regretnet: ms per iteration (reference batch 128) for single2, 2x2, 3x10, 5x10 with the 25
#    misreport steps unrolled, and 2x2 rolled; the full 2x2 schedule's time is 400,000 x its figure.
# 2. experiments.regretnet on each of SETTINGS (default "additive_3x10 additive_5x10"), one after another,
#    each stopped by --time-limit so that its compilation (about 45 s) and evaluation fit its share of the
#    budget; metrics.json says how many of the 400,000 iterations ran (a 15-minute lease fits one setting
#    well). Their params (and Adam state) come back as params_<name>.npz (the checkpoints, with 640,000
#    cached profiles, are too large).
# 3. benchmarks.throughput at three market counts (the seed market's auctions per second).
# All matmuls at float32 ("highest"): the GPU default rounds float32 matmuls through TF32.
BUDGET=${BUDGET:-560}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
export JAX_DEFAULT_MATMUL_PRECISION=highest
RUNS=${RUNS:-/tmp/regretnet_runs}
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  BENCH="--settings single2 --iterations 2 --repeats 1" TRAIN="--iterations 400 --log-every 100 --train-size 2560"
  EVAL="--profiles 8 --random-starts 1 --steps 5 --revenue-profiles 100" RESERVE=${RESERVE:-30}
  THROUGHPUT="--markets 1,64 --auction-budget 20000 --forward 4096" THROUGHPUT_SECONDS=40
else
  BENCH="--settings ${BENCH_SETTINGS:-additive_2x2,additive_3x10,additive_5x10,single2} --iterations 200 --repeats 3"
  TRAIN=""
  EVAL="--profiles 2000 --random-starts 4 --steps 400 --profile-chunk 500" RESERVE=${RESERVE:-140}
  THROUGHPUT="--markets 4096,262144,2097152 --auction-budget 200000000 --forward 1048576" THROUGHPUT_SECONDS=60
fi

device_step
# shellcheck disable=SC2086  # BENCH is a word list
step bench_unrolled 120 python3 -m benchmarks.regretnet $BENCH --unrolls 25 --out "$OUT/regretnet_unrolled.json"
# shellcheck disable=SC2086
step bench_rolled 40 python3 -m benchmarks.regretnet $BENCH --unrolls 1 --settings additive_2x2 \
  --out "$OUT/regretnet_rolled.json"

train() { # train NAME SETTING: the reference schedule, stopped by --time-limit, evaluated; then its params
  local name=$1 setting=$2 rc
  # shellcheck disable=SC2086
  timeout -k 5 $(($(seconds_left) - 5)) python3 -m experiments.regretnet \
    --setting "$setting" $TRAIN --misreport-unroll 25 --time-limit "$TRAIN_SECONDS" $EVAL --stronger 2 \
    --no-progress --out "$RUNS/$name" >"$OUT/train_$name.log" 2>&1
  rc=$?
  for f in metrics.json rounds.csv training.png; do [[ -f "$RUNS/$name/$f" ]] && cp "$RUNS/$name/$f" "$OUT/${name}_$f"; done
  small_arrays "$RUNS/$name/checkpoint.npz" "$OUT/params_$name.npz"
  tail -n 8 "$OUT/train_$name.log"
  echo "== train_$name: rc $rc after $(($(date +%s) - START))s" | tee -a "$OUT/summary.log"
  return $rc
}
# One after another: side by side (two processes, 2026-11-27, H200) each ran at 6.6-6.8 ms per iteration
# against 2.7-3.1 ms alone, slower than taking turns.
read -ra SETTINGS <<<"${SETTINGS:-additive_3x10 additive_5x10}"
for i in "${!SETTINGS[@]}"; do
  runs_left=$((${#SETTINGS[@]} - i))
  TRAIN_SECONDS=$((($(seconds_left) - THROUGHPUT_SECONDS) / runs_left - RESERVE))
  name=${SETTINGS[$i]#additive_}
  if ((TRAIN_SECONDS < 30)); then
    echo "== train_$name: skipped, ${TRAIN_SECONDS}s of training time left" | tee -a "$OUT/summary.log"
    continue
  fi
  echo "== train_$name (${TRAIN_SECONDS}s of training)"
  train "$name" "${SETTINGS[$i]}" || FAILED=$((FAILED + 1))
done
# 3. the market's headline figure while the machine is here (the rest of it is benchmarks/gpu.sh)
# shellcheck disable=SC2086
step throughput "$THROUGHPUT_SECONDS" env -u JAX_DEFAULT_MATMUL_PRECISION python3 -m benchmarks.throughput $THROUGHPUT --repeats 3 --out "$OUT/throughput_f32.json"
pack
