"""Memory estimates, made before anything is allocated: a run that cannot fit is refused with one line.

``check_fits(bytes, what, detail)`` compares an estimate with what the default device can hold (the
accelerator's memory limit, or the host's available memory on a CPU) and raises ``DoesNotFit`` (a
``ValueError``, which the experiments turn into one line) naming the estimate and what it is made of.
Estimates come from shapes only (``jax.eval_shape``; ``tree_bytes``), so asking costs nothing.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


class DoesNotFit(ValueError):
    """A run whose estimated memory exceeds what the device can hold."""


def available_memory() -> tuple[int, str]:
    """``(bytes, where)``: what the default device can hold: the accelerator's memory limit less what is in use,
    or the host's available memory (``MemAvailable``) on a CPU."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), f"{device.device_kind} memory"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024, "available host memory"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def tree_bytes(tree: Any) -> int:
    """The bytes of a pytree of arrays or ``ShapeDtypeStruct``s (a typed PRNG key counts its two uint32 words)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        size = int(np.prod(leaf.shape))
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            total += size * 8
        else:
            total += size * np.dtype(leaf.dtype).itemsize
    return total


def compiled_bytes(compiled: Any) -> int:
    """What a compiled program (``jax.jit(f).lower(...).compile()``) holds while it runs, by XLA's own
    memory analysis: arguments, outputs and temporaries (0 where the backend does not say)."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return 0
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    return int(sum(getattr(analysis, f, 0) or 0 for f in fields))


def gigabytes(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_fits(needed: float, what: str, detail: str = "") -> None:
    """Refuse ``what`` when its estimate ``needed`` (bytes) exceeds what the device can hold."""
    have, where = available_memory()
    if needed > have:
        raise DoesNotFit(f"{what} needs about {gigabytes(needed)}{f' ({detail})' if detail else ''}, more than the "
                         f"{gigabytes(have)} of {where}: ask for less")  # fmt: skip
