"""Opt-in: compile JAX's threefry PRNG unrolled on CPU (same bits, faster simulations).

On CPU, JAX lowers the threefry hash as a rolled ``fori_loop`` (5 iterations)
to keep compile times short. Inside a simulation that draws random numbers in
every auction of a ``lax.scan``, each draw becomes a nested while loop over
small arrays, and loop overhead dominates: on a 2-core CPU the seed market runs
about 1.3-1.7x faster with the unrolled lowering that JAX already uses on
GPU/TPU (see benchmarks/README.md).

The unrolled and rolled lowerings compute the same function, so results are
bit-identical (tested). This touches a private JAX registration, so it is never
done on import: experiment drivers and benchmarks call it explicitly, and it
degrades to a no-op (returning False) if JAX's internals move.
"""

from __future__ import annotations

import warnings

_enabled = False


def use_unrolled_threefry_on_cpu() -> bool:
    """Register JAX's unrolled threefry lowering for the CPU platform. Returns whether it is active."""
    global _enabled
    if _enabled:
        return True
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry

        mlir.register_lowering(threefry.threefry2x32_p, threefry._threefry2x32_lowering_rule, platform="cpu")
    except (ImportError, AttributeError) as err:  # pragma: no cover - depends on the JAX version
        warnings.warn(f"could not unroll threefry on CPU ({err}); using JAX's default lowering", stacklevel=2)
        return False
    _enabled = True
    return True
