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
#    hold their 640,000 training profiles), or on a later lease when RUNS comes back (below) and travels again.
#    Each cell's metrics.json, rounds.csv and params (the checkpoint's arrays under 1,000,000 elements,
#    params_<cell>.npz) and zoo_table.md come back, and RUNS itself in parts (zoo_runs.tar.gz.partNN) when it fits.
# 3. experiments.regretnet_table over RUNS: the table of every finished cell, also when step 2 was cut short.
#    CELLS (model:setting words) replaces experiments.zoo's own list: a 15-minute lease trains one cell usefully,
#    not fourteen (each cell's compile and audit come out of its share; EquivariantNet 2x2 trained 89,800
#    iterations in 231 s on the H200), e.g. BUDGET=568 CELLS=equivariantnet:additive_2x2. A cell
#    model:setting+other+... trains a size-free network on a mixture of sizes (experiments.zoo).
# FIT=1 (one cell): the bench times only that cell's iteration, and the cell is planned for the iterations that
#    fit what is left (85%, less AUDIT_SECONDS for its audit, default 90) instead of its method's schedule: a
#    schedule's shape (RegretFormer's regret budget decays over 2/3 of the plan) then completes in one lease.
# AUDIT: the cells' audit preset (strong). ON_SETTING=S: every finished EquivariantNet or RegretFormer cell is
#    then also audited on setting S (experiments.regret_audit --on-setting; ON_AUDIT, default quick, on
#    ON_PROFILES profiles when set: a 3x10 transformer costs about 11 s a profile on 2 CPU cores), with
#    ON_SECONDS (60) kept back from the zoo step; the table gets its row.
# ATTACK: the training attack's flags for the regret-trained cells, e.g. "--misreport-candidates 256
#    --misreport-keep-best" (experiments.regretnet; FIT's bench times the iteration with them).
# All matmuls at float32 ("highest"): the GPU default rounds float32 matmuls through TF32.
BUDGET=${BUDGET:-560}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
export JAX_DEFAULT_MATMUL_PRECISION=highest
RUNS=${RUNS:-/tmp/zoo_runs}
attack=${ATTACK:+ $ATTACK}
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  export JAX_PLATFORMS=cpu
  BENCH="--pairs myersonnet:single3 --iterations 2 --repeats 1 --audit-profiles 16"
  ZOO=(--audit quick "--flags=--batch 32 --menu-size 8 --profiles 64 --revenue-profiles 0 --no-interim --lines 2$attack")
  [[ -z "${CELLS:-}" ]] && ZOO+=(--cells rochetnet:additive_1x2 myersonnet:single3 --iterations 200)
  AUDIT_SECONDS=${AUDIT_SECONDS:-20}
  ON_FLAGS="--audit quick --profiles 64 --check-profiles 64 --revenue-profiles 0 --no-interim"
  RESERVE=40
else
  # Audits search 4,096 profiles at once (the CPU default is 256): on the H200 (2026-12-04) the strong audit of
  # EquivariantNet 2x2 took 59 s, where at 256 a cell's ran past 110 s unfinished. The bench's eight rows did
  # not fit 180 s at 256 (one row at 1,000 audit profiles; three at 256 profiles in 130 s): BENCH_SECONDS=240
  # is a guess for 4,096, not a measurement.
  BENCH="--iterations 20 --repeats 3 --audit-profiles 1000 --profile-chunk 4096"
  ZOO=(--audit "${AUDIT:-strong}" "--flags=--profile-chunk 4096$attack")
  ON_FLAGS="--audit ${ON_AUDIT:-quick} --profile-chunk 4096${ON_PROFILES:+ --profiles $ON_PROFILES --check-profiles $ON_PROFILES}"
  RESERVE=30
fi
read -ra cells <<<"${CELLS:-}"
((${#cells[@]})) && ZOO+=(--cells "${cells[@]}")
if [[ "${FIT:-0}" == 1 ]]; then # FIT=1: one cell, planned for the iterations its share fits at the bench's speed
  ((${#cells[@]} == 1)) || { echo "FIT=1 plans one cell: set CELLS to one model:setting" >&2; exit 2; }
  BENCH="$BENCH --pairs ${cells[0]} --iterations 20 --repeats 1 --audit-profiles 0" # its iteration, not its audit
  BENCH="$BENCH$attack" # timed as it will train
fi
audit_seconds=${AUDIT_SECONDS:-90}
on_seconds=0
[[ -n "${ON_SETTING:-}" ]] && on_seconds=${ON_SECONDS:-60} # kept back from the zoo step for the ON_SETTING audits

device_step
# shellcheck disable=SC2086  # BENCH is a word list
step zoo_bench "${BENCH_SECONDS:-240}" python3 -m benchmarks.regretnet --zoo $BENCH --out "$OUT/zoo_bench.json"
if [[ "${FIT:-0}" == 1 ]]; then
  # 85% of what is left after the audit's share and the cell's compile (30 s), at the bench's ms per iteration
  # (the chunks' logs and checkpoints cost the rest), in whole chunks of 100; the run records its plan, so the
  # regret budget's decay ends at 2/3 of it.
  iterations=$(python3 -c "import json, sys; ms = json.load(open(sys.argv[1]))['rows'][0]['ms_per_iteration']
print(max(100, int(0.85 * (float(sys.argv[2]) - 30) * 1e3 / ms) // 100 * 100))" "$OUT/zoo_bench.json" \
    $(($(seconds_left) - RESERVE - on_seconds - 10 - audit_seconds)))
  if [[ -n "$iterations" ]]; then
    echo "== FIT: ${cells[0]} planned for $iterations iterations, ${audit_seconds} s kept for its audit" |
      tee -a "$OUT/summary.log"
    ZOO+=(--iterations "$iterations")
  else
    echo "== FIT: no bench row to plan from: the cell keeps its method's schedule" | tee -a "$OUT/summary.log"
  fi
fi
ZOO+=(--audit-seconds "$audit_seconds")
step zoo $(($(seconds_left) - RESERVE - on_seconds)) python3 -m experiments.zoo --runs "$RUNS" \
  --budget $(($(seconds_left) - RESERVE - on_seconds - 10)) "${ZOO[@]}"
if [[ -n "${ON_SETTING:-}" ]]; then # ON_SETTING: each size-free cell audited on a size it may never have seen
  size_free=$(python3 -c "from jaxauction.train.regretnet import SIZE_FREE; print('|'.join(SIZE_FREE))")
  for run in "$RUNS"/*/; do
    name=$(basename "$run")
    audit="$RUNS/${name}_on_$ON_SETTING"
    [[ -f "$run/metrics.json" && $name =~ ^($size_free)_ && $name != *_on_* ]] || continue
    [[ -f "$audit/metrics.json" ]] && continue # audited by an earlier call
    # shellcheck disable=SC2086  # ON_FLAGS is a word list
    step "on_$name" $(($(seconds_left) - RESERVE)) python3 -m experiments.regret_audit --regretnet-run "$run" \
      --on-setting "$ON_SETTING" $ON_FLAGS --out "$audit"
  done
fi
# The table of every finished cell, also when the zoo step was cut short (a cell's audit past the budget)
step zoo_table 25 python3 -m experiments.regretnet_table "$RUNS"/* --out "$OUT/zoo_table.md"
for run in "$RUNS"/*/; do # each cell's metrics, training curve and params, in the results archive
  name=$(basename "$run")
  for f in metrics.json rounds.csv; do [[ -f "$run/$f" ]] && cp "$run/$f" "$OUT/${name}_$f"; done
  [[ -f "$run/checkpoint.npz" ]] && small_arrays "$run/checkpoint.npz" "$OUT/params_$name.npz"
done
pack
packed=$?
# The whole RUNS folder (checkpoints with their cached training profiles: about 21 MB a 2x2 cell) comes back in
# 15 MiB parts when it fits what the device tool returns (7 files beside the results archive, 64 MiB in all), so
# that a later lease resumes the cells: RUNS=.zoo_runs with .zoo_runs carried (benchmarks/README.md).
runs_archive=$(mktemp -d)/zoo_runs.tar.gz
if compgen -G "$RUNS/*/checkpoint.npz" >/dev/null && tar -czf "$runs_archive" -C "$RUNS" .; then
  size=$(stat -c %s "$runs_archive")
  if ((size <= 7 * 15 * 1024 * 1024 && size + $(stat -c %s "$OUT/gpu_results.tar.gz") < 63 * 1024 * 1024)); then
    split -b 15M -d "$runs_archive" "$OUT/zoo_runs.tar.gz.part" && echo "RUNS back in $(ls "$OUT" | grep -c part) part(s)"
  else
    echo "RUNS is $((size >> 20)) MiB compressed: too large to come back; the params of each cell are in the archive"
  fi
fi
exit $packed
