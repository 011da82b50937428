# Sourced by the GPU scripts: the budgeted step runner, the small arrays of a checkpoint and the packing of results.
# Needs OUT (the results folder) and BUDGET (seconds for the whole script).
set -uo pipefail
: "${OUT:?set OUT to the results folder}"
: "${BUDGET:?set BUDGET (seconds)}"
mkdir -p "$OUT"
START=$(date +%s)
FAILED=0
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
# Pure-Python dependencies the GPU image lacks (tyro and its own) travel as wheels in .whl (benchmarks/README.md).
if compgen -G ".whl/*.whl" >/dev/null; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl &&
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

seconds_left() { echo $((BUDGET - ($(date +%s) - START))); }

step() { # step NAME LIMIT_SECONDS COMMAND...: run under min(LIMIT, what is left); skipped with under 20 s left
  local name=$1 limit=$2 left
  shift 2
  left=$(seconds_left)
  if ((left < 20)); then
    echo "== $name: skipped, ${left}s of the budget left" | tee -a "$OUT/summary.log"
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit}s)"
  timeout -k 5 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  ((rc != 0)) && FAILED=$((FAILED + 1))
  tail -n 25 "$OUT/$name.log"
  echo "== $name: rc $rc after $(($(date +%s) - START))s" | tee -a "$OUT/summary.log"
}

device_step() { # what the machine is: nvidia-smi and JAX's devices, to $OUT/device.json
  step device 30 bash -c 'nvidia-smi || true; python3 -c "
import json, jax
from benchmarks.common import device_info
print(json.dumps({**device_info(), \"devices\": [str(d) for d in jax.devices()]}))
" | tee "$OUT/device.json"'
}

small_arrays() { # small_arrays CHECKPOINT NPZ: a checkpoint's arrays under 1,000,000 elements (params and optimiser
  # state, not the cached training profiles, which are too large to come back)
  python3 -c "
import sys, numpy as np
z = np.load(sys.argv[1])
np.savez(sys.argv[2], **{k: z[k] for k in z.files if z[k].size < 1_000_000})
" "$1" "$2"
}

pack() { # the device tool returns a limited number of files: everything goes into one archive
  local archive
  archive=$(mktemp -d)/gpu_results.tar.gz # outside $OUT: tar refuses a folder that changes while it reads it
  tar -czf "$archive" -C "$OUT" . && find "$OUT" -type f -delete && mv "$archive" "$OUT/"
  echo "done in $(($(date +%s) - START))s, $FAILED step(s) failed or cut short; results in $OUT/gpu_results.tar.gz"
  ((FAILED == 0))
}
