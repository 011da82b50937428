"""Small array ops written for short axes (bidders, bid grids), where XLA:CPU's general kernels are slow.

Under ``vmap`` over markets the market axis leads and the bidder or bid
axis is the short, minor one. XLA:CPU reduces such rows slowly, and
``cumsum`` (a reduce-window) and ``sort`` are costly kernels for a few
entries. These produce the same values from unrolled chains of elementwise
ops over the columns (which fuse into one vectorised loop over the markets)
when the axis is short, and fall back to the general ops otherwise.
Sums add left to right, as XLA:CPU's reductions of short rows do.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxauction.types import Array

SHORT = 16  # axes up to this length are unrolled


def row_max(x: Array) -> Array:
    """``jnp.max(x, axis=-1)``."""
    if x.shape[-1] > SHORT:
        return jnp.max(x, axis=-1)
    out = x[..., 0]
    for j in range(1, x.shape[-1]):
        out = jnp.maximum(out, x[..., j])
    return out


def row_sum(x: Array) -> Array:
    """``jnp.sum(x, axis=-1)``, added left to right."""
    if x.shape[-1] > SHORT:
        return jnp.sum(x, axis=-1)
    out = x[..., 0]
    for j in range(1, x.shape[-1]):
        out = out + x[..., j]
    return out


def prefix_sum(x: Array) -> Array:
    """Inclusive prefix sums along the last axis (``jnp.cumsum(x, -1)``)."""
    width = x.shape[-1]
    if width > SHORT:
        return jnp.cumsum(x, axis=-1)
    sums = [x[..., 0]]
    for j in range(1, width):
        sums.append(sums[-1] + x[..., j])
    return jnp.stack(sums, axis=-1)


def nth_true(mask: Array, n: Array) -> Array:
    """The position of the ``(n+1)``-th true entry along the last axis of ``mask`` (``n`` a float count).

    The number of positions whose inclusive prefix count of true entries is at most ``n``.
    """
    width = mask.shape[-1]
    if width > SHORT:
        return jnp.sum(jnp.cumsum(mask, axis=-1) <= n[..., None], axis=-1).astype(jnp.float32)
    prefix = jnp.zeros(mask.shape[:-1], jnp.float32)
    position = jnp.zeros(mask.shape[:-1], jnp.float32)
    for j in range(width):
        prefix = prefix + mask[..., j]
        position = position + (prefix <= n)
    return position


def kth_largest(x: Array, k: int) -> Array:
    """The ``k``-th largest entry of a vector (1-based), ties kept; the smallest entry when ``k > len(x)``."""
    n = x.shape[-1]
    if k > n:
        return jnp.min(x, axis=-1)
    if n > SHORT or k > 3:
        return jnp.sort(x, axis=-1)[..., n - k]
    positions = jnp.arange(n)
    for _ in range(k - 1):  # drop one copy of the current maximum
        x = jnp.where(positions == jnp.argmax(x, axis=-1)[..., None], -jnp.inf, x)
    return jnp.max(x, axis=-1)
