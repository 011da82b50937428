"""PRNG keys for jaxauction runs: JAX's threefry2x32, bit for bit, hashed with plain fused ``jnp`` ops.

Simulations draw a few random numbers in every auction of a ``lax.scan``. On
CPU, JAX lowers its threefry hash as a rolled 5-iteration loop (to keep
compile times short); inside a scan over small arrays, each draw then becomes
a nested loop and its overhead dominates the run.

``key(seed)`` makes a key of a PRNG implementation defined through JAX's
public ``jax.extend.random.define_prng_impl``: the same Threefry-2x32 (20
rounds, Salmon et al. 2011) and the same key derivation as JAX's default
``threefry2x32`` implementation (with the default ``jax_threefry_partitionable``),
written as elementwise ``jnp`` integer ops that XLA unrolls and fuses into the
code that consumes the bits. Every ``split``, ``fold_in`` and draw gives the
same bits as ``jax.random.key(seed)`` (tested), so results do not depend on
which key a caller uses; only the speed does (about 2x for 4,096 markets and
25x for one market on a 2-core CPU, see ``benchmarks/README.md``).

Any JAX key works with every jaxauction function; experiments and
benchmarks create theirs with ``key``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import define_prng_impl

from jaxauction.types import Array

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: Array, r: int) -> Array:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k1: Array, k2: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """Threefry-2x32 with 20 rounds: the block cipher of the counters ``(x0, x1)`` under the key ``(k1, k2)``."""
    schedule = (k1, k2, k1 ^ k2 ^ _PARITY)
    x0, x1 = x0 + k1, x1 + k2
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + schedule[(group + 1) % 3]
        x1 = x1 + schedule[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def _counters(shape: tuple[int, ...]) -> tuple[Array, Array]:
    """The high and low words of a 64-bit row-major counter over ``shape``."""
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2**32:
        raise ValueError(f"cannot draw {size} random words at once (at most 2**32 - 1)")
    low = jax.lax.iota(jnp.uint32, size).reshape(shape)
    return jnp.zeros(shape, jnp.uint32), low


def _seed(seed: Array) -> Array:
    return jax.random.key_data(jax.random.key(seed, impl="threefry2x32"))


def _split(key: Array, shape: tuple[int, ...]) -> Array:
    bits1, bits2 = threefry2x32(key[0], key[1], *_counters(shape))
    return jnp.stack([bits1, bits2], axis=-1)


def _fold_in(key: Array, data: Array) -> Array:
    bits1, bits2 = threefry2x32(key[0], key[1], jnp.uint32(0), jnp.asarray(data).astype(jnp.uint32))
    return jnp.stack([bits1, bits2])


def _random_bits(key: Array, bit_width: int, shape: tuple[int, ...]) -> Array:
    bits1, bits2 = threefry2x32(key[0], key[1], *_counters(shape))
    if bit_width == 64:
        return (bits1.astype(jnp.uint64) << np.uint64(32)) | bits2.astype(jnp.uint64)
    dtype = {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32}[bit_width]
    # Dividing by a divisor that is always 1 (the key's top bit or 1) changes no bit, but XLA
    # cannot prove it is 1, and it treats an integer divide as expensive: its fusion pass then
    # computes the hash once into a buffer instead of duplicating ~100 hash instructions into
    # every consumer (uniform -> threshold, -> index, ...). Measured +17 % auctions/s with 4,096
    # markets and +76 % with one market on a 2-core Xeon (benchmarks/README.md).
    opaque_one = (key[0] >> np.uint32(31)) | np.uint32(1)
    return ((bits1 ^ bits2) // opaque_one).astype(dtype)


THREEFRY_FUSED = define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_fused",
    tag="fyf",
)


def key(seed: int | Array) -> Array:
    """A typed PRNG key that gives the same bits as ``jax.random.key(seed)``, faster inside scans."""
    return jax.random.key(seed, impl=THREEFRY_FUSED)
