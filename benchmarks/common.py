"""Shared helpers for the benchmarks: median timing and the machine's matmul roofline."""

from __future__ import annotations

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


def matmul_gflops(size: int = 2048, repeats: int = 7) -> float:
    """This device's float32 matmul throughput (GFLOP/s), the roofline the benchmarks are measured against."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    return 2 * size**3 / median_seconds(lambda: mm(a), repeats) / 1e9


def mlp_flops(n_bidders: int, hidden: tuple[int, ...]) -> int:
    """Multiply-add FLOPs of one payment-network forward pass: 34,304 for n = 3 and (128, 64, 128)."""
    widths = (n_bidders, *hidden, n_bidders)
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def device_info() -> dict[str, Any]:
    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind, "device_count": jax.device_count()}
