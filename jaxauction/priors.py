"""Value distributions (priors) over a stacked bidder axis.

A prior is a frozen, hashable dataclass (static configuration). ``low`` and
``high`` are either one number shared by every bidder or a tuple with one entry
per bidder (asymmetric bidders). ``prior.sample(key, n)`` returns ``values[n]``
as float32.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

Bound = int | float | tuple


def _per_bidder(bound: Bound, n: int, name: str) -> np.ndarray:
    arr = np.asarray(bound, dtype=np.float64)
    if arr.ndim == 0:
        return np.full((n,), float(arr))
    if arr.shape != (n,):
        raise ValueError(f"prior {name} has {arr.shape[0]} per-bidder entries but the market has {n} bidders")
    return arr


def _check_bounds(low: Bound, high: Bound, integer: bool) -> None:
    for name, b in (("low", low), ("high", high)):
        arr = np.asarray(b, dtype=np.float64)
        if arr.ndim > 1 or arr.size == 0:
            raise ValueError(f"prior {name} must be a number or a flat tuple of per-bidder numbers, got {b!r}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"prior {name} must be finite, got {b!r}")
        if np.any(arr < 0):
            raise ValueError(f"prior {name} must be non-negative (values are non-negative), got {b!r}")
        if integer and not np.all(arr == np.round(arr)):
            raise ValueError(f"integer prior {name} must hold integers, got {b!r}")
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if lo.ndim == 1 and hi.ndim == 1 and lo.shape != hi.shape:
        raise ValueError(f"prior low {low!r} and high {high!r} have different lengths")
    if integer and np.any(hi < lo):
        raise ValueError(f"empty integer prior: high {high!r} < low {low!r}")
    if not integer and np.any(hi <= lo):
        raise ValueError(f"empty uniform prior: high {high!r} must exceed low {low!r}")


def _as_tuple(b: Bound) -> Bound:
    # Lists are unhashable; keep configs hashable so they can be static jit arguments.
    return tuple(b) if isinstance(b, (list, np.ndarray)) else b


@dataclasses.dataclass(frozen=True)
class _RangePrior:
    """Shared validation and per-bidder bounds of the uniform priors."""

    low: Bound
    high: Bound
    integer = False  # class attribute, not a field

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _as_tuple(self.low))
        object.__setattr__(self, "high", _as_tuple(self.high))
        _check_bounds(self.low, self.high, integer=self.integer)

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return _per_bidder(self.low, n, "low"), _per_bidder(self.high, n, "high")


@dataclasses.dataclass(frozen=True)
class UniformIntPrior(_RangePrior):
    """Integer values uniform on ``{low, ..., high}`` (both inclusive), per bidder.

    The original platform's prior is ``UniformIntPrior(0, 9)``.
    """

    low: Bound = 0
    high: Bound = 9
    integer = True

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        lo, hi = self.bounds(n)
        u = jax.random.uniform(key, (n,), dtype=jnp.float32)
        width = jnp.asarray(hi - lo + 1, jnp.float32)
        # floor(u * width) is in {0..width-1}; the min guards the u -> 1 rounding edge.
        return jnp.minimum(jnp.floor(u * width), width - 1) + jnp.asarray(lo, jnp.float32)


@dataclasses.dataclass(frozen=True)
class UniformPrior(_RangePrior):
    """Continuous values uniform on ``[low, high)``, per bidder."""

    low: Bound = 0.0
    high: Bound = 1.0

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        lo, hi = self.bounds(n)
        return jax.random.uniform(
            key, (n,), dtype=jnp.float32, minval=jnp.asarray(lo, jnp.float32), maxval=jnp.asarray(hi, jnp.float32)
        )


Prior = UniformIntPrior | UniformPrior
