import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys, jax, numpy as np
from jaxauction.cpu_rng import use_unrolled_threefry_on_cpu
if sys.argv[1] == "1":
    assert use_unrolled_threefry_on_cpu()
from jaxauction import DMOConfig, make_train
cfg = DMOConfig(rounds=2, auctions_per_round=500, window=250, explore_steps=100)
state, logs = jax.jit(make_train(cfg))(jax.random.key(3))
bits = jax.random.bits(jax.random.key(9), (64,))
np.save(sys.argv[2], np.concatenate([np.asarray(logs.platform_reward).view(np.uint32), np.asarray(bits)]))
"""


def test_unrolled_threefry_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    outs = []
    for flag in ("0", "1"):
        path = tmp_path / f"out{flag}.npy"
        subprocess.run([sys.executable, "-c", SCRIPT, flag, str(path)], check=True, env=env, timeout=300)
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
