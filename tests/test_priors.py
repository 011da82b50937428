import chex
import jax
import numpy as np
import pytest

from jaxauction import UniformIntPrior, UniformPrior


def draws(prior, n, count=20_000, seed=0):
    keys = jax.random.split(jax.random.key(seed), count)
    return np.asarray(jax.vmap(lambda k: prior.sample(k, n))(keys))


def test_uniform_int_support_and_mean():
    v = draws(UniformIntPrior(0, 9), 3)
    chex.assert_shape(v, (20_000, 3))
    assert set(np.unique(v)) == set(range(10))
    np.testing.assert_allclose(v.mean(), 4.5, atol=0.05)
    # every level close to 1/10
    freqs = np.bincount(v.astype(int).ravel(), minlength=10) / v.size
    np.testing.assert_allclose(freqs, 0.1, atol=0.006)


def test_per_bidder_ranges():
    v = draws(UniformIntPrior((0, 5, 2), (3, 5, 9)), 3)
    assert v[:, 0].min() == 0 and v[:, 0].max() == 3
    assert np.all(v[:, 1] == 5)
    assert v[:, 2].min() == 2 and v[:, 2].max() == 9
    u = draws(UniformPrior((0.0, 1.0), (1.0, 3.0)), 2)
    assert u[:, 0].min() >= 0 and u[:, 0].max() < 1
    assert u[:, 1].min() >= 1 and u[:, 1].max() < 3
    np.testing.assert_allclose(u.mean(0), [0.5, 2.0], atol=0.02)


def test_same_key_same_values_different_keys_differ():
    prior = UniformPrior(0.0, 1.0)
    a = prior.sample(jax.random.key(1), 5)
    b = prior.sample(jax.random.key(1), 5)
    c = prior.sample(jax.random.key(2), 5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: UniformIntPrior(-1, 9), "non-negative"),
        (lambda: UniformIntPrior(5, 4), "empty"),
        (lambda: UniformPrior(1.0, 1.0), "empty"),
        (lambda: UniformIntPrior(0, 9.5), "integers"),
        (lambda: UniformPrior(0.0, float("nan")), "finite"),
        (lambda: UniformIntPrior((0, 1), (3, 4, 5)), "different lengths"),
    ],
)
def test_bad_ranges_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_per_bidder_length_must_match_market():
    with pytest.raises(ValueError, match="3 bidders"):
        UniformIntPrior((0, 0), (9, 9)).sample(jax.random.key(0), 3)
