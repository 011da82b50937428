"""Shared helpers for the benchmarks: median timing, the device's matmul roofline, and list flags."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def median_seconds(fn: Callable[[], Any], repeats: int = 5) -> float:
    """Median wall time of ``fn()`` (blocked until ready) after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_gflops(dtype: str = "float32", size: int | None = None, repeats: int = 7) -> float:
    """This device's matmul throughput (GFLOP/s) in ``dtype``, the roofline the benchmarks are measured against.

    A square ``size`` matmul at JAX's default precision: 2048 on CPU, 8192 on
    accelerators (where float32 may run on TF32 tensor cores).
    """
    size = size or (2048 if jax.default_backend() == "cpu" else 8192)
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.dtype(dtype))
    mm = jax.jit(lambda x: x @ x)
    return 2 * size**3 / median_seconds(lambda: mm(a), repeats) / 1e9


def mlp_flops(n_bidders: int, hidden: tuple[int, ...]) -> int:
    """Multiply-add FLOPs of one payment-network forward pass: 34,304 for n = 3 and (128, 64, 128)."""
    widths = (n_bidders, *hidden, n_bidders)
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def device_info() -> dict[str, Any]:
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
    }


def int_list(text: str) -> list[int]:
    """``"1,64,4096"`` -> ``[1, 64, 4096]`` for argparse."""
    try:
        values = [int(float(x)) for x in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def str_list(text: str) -> list[str]:
    return [x for x in text.split(",") if x]
