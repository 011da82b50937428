"""``jaxauction.key`` gives the same bits as ``jax.random.key`` for every operation the library uses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja


@pytest.mark.parametrize("seed", [0, 2**31 - 1])
def test_fused_threefry_matches_jax_bit_for_bit(seed):
    ours, theirs = ja.key(seed), jax.random.key(seed)
    data = jax.random.key_data
    np.testing.assert_array_equal(data(ours), data(theirs))
    for n in (1, 2, 3, 7):
        np.testing.assert_array_equal(data(jax.random.split(ours, n)), data(jax.random.split(theirs, n)))
    for x in (0, 1, 12345, 2**31):
        np.testing.assert_array_equal(data(jax.random.fold_in(ours, x)), data(jax.random.fold_in(theirs, x)))
    for shape in ((), (1,), (3,), (3, 1), (2, 3), (7, 5)):
        np.testing.assert_array_equal(jax.random.uniform(ours, shape), jax.random.uniform(theirs, shape))
        np.testing.assert_array_equal(jax.random.bits(ours, shape), jax.random.bits(theirs, shape))
    np.testing.assert_array_equal(jax.random.normal(ours, (9,)), jax.random.normal(theirs, (9,)))
    np.testing.assert_array_equal(jax.random.randint(ours, (9,), 0, 7), jax.random.randint(theirs, (9,), 0, 7))
    for dtype in (jnp.uint8, jnp.uint16):
        np.testing.assert_array_equal(jax.random.bits(ours, (4,), dtype), jax.random.bits(theirs, (4,), dtype))


def test_fused_keys_under_jit_and_vmap():
    keys = jax.random.split(ja.key(3), 16)
    ref = jax.random.split(jax.random.key(3), 16)
    draw = jax.jit(jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, 5), (2, 3))))
    np.testing.assert_array_equal(draw(keys), draw(ref))
