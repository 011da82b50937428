import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction import UniformIntPrior, UniformPrior


def draws(prior, n, m=1, count=20_000, seed=0, params=None):
    params = prior.init_params(n, m) if params is None else params
    keys = jax.random.split(jax.random.key(seed), count)
    return np.asarray(jax.vmap(lambda k: prior.sample(k, params).values)(keys))


def test_uniform_int_support_and_mean():
    v = draws(UniformIntPrior(0, 9), 3)
    chex.assert_shape(v, (20_000, 3, 1))
    assert set(np.unique(v)) == set(range(10))
    np.testing.assert_allclose(v.mean(), 4.5, atol=0.05)
    freqs = np.bincount(v.astype(int).ravel(), minlength=10) / v.size
    np.testing.assert_allclose(freqs, 0.1, atol=0.006)


def test_per_bidder_and_per_item_ranges():
    v = draws(UniformIntPrior((0, 5, 2), (3, 5, 9)), 3)[..., 0]
    assert v[:, 0].min() == 0 and v[:, 0].max() == 3
    assert np.all(v[:, 1] == 5)
    assert v[:, 2].min() == 2 and v[:, 2].max() == 9
    u = draws(UniformPrior((0.0, 1.0), (1.0, 3.0)), 2)[..., 0]
    assert u[:, 0].min() >= 0 and u[:, 0].max() < 1
    assert u[:, 1].min() >= 1 and u[:, 1].max() < 3
    np.testing.assert_allclose(u.mean(0), [0.5, 2.0], atol=0.02)
    # per item (nested [1][m]): U[4,16] x U[4,7] for one bidder, two items
    items = draws(UniformPrior(((4.0, 4.0),), ((16.0, 7.0),)), 1, 2)
    chex.assert_shape(items, (20_000, 1, 2))
    np.testing.assert_allclose(items[:, 0].mean(0), [10.0, 5.5], atol=0.06)


def test_bounds_are_params():
    """Other bounds through params, not a new prior: the same program samples a different range."""
    prior = UniformPrior(0.0, 1.0)
    params = prior.init_params(2)
    wide = params._replace(high=params.high * 10)
    assert draws(prior, 2, params=wide).max() > 5
    sample = jax.jit(prior.sample)
    sample(jax.random.key(0), params)
    sample(jax.random.key(0), wide)
    assert sample._cache_size() == 1


def test_same_key_same_values_different_keys_differ():
    prior = UniformPrior(0.0, 1.0)
    params = prior.init_params(5)
    a = prior.sample(jax.random.key(1), params).values
    b = prior.sample(jax.random.key(1), params).values
    c = prior.sample(jax.random.key(2), params).values
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


def test_bad_params_and_shapes_raise():
    with pytest.raises(ValueError, match="3 bidders"):
        UniformIntPrior((0, 0), (9, 9)).init_params(3)
    prior = UniformPrior(0.0, 1.0)
    params = prior.init_params(2)
    with pytest.raises(ValueError, match="empty"):
        prior.check_params(params._replace(high=params.low))
    with pytest.raises(ValueError, match="finite"):
        prior.check_params(params._replace(high=params.high * np.nan))


def test_truncated_gaussian_and_wallet_priors():
    import jax

    from jaxauction.priors import TruncatedGaussianPrior, WalletPrior

    prior = TruncatedGaussianPrior(0.0, 100.0)  # N(50, 16.7) on [0, 100], the original docs' Gaussian setting
    params = prior.init_params(3, 1)
    values = jax.jit(jax.vmap(lambda k: prior.sample(k, params).values))(jax.random.split(jax.random.key(0), 50_000))
    assert float(values.min()) >= 0 and float(values.max()) <= 100
    assert float(values.mean()) == pytest.approx(50, abs=0.3)
    assert float(values.std()) == pytest.approx(16.45, abs=0.3)  # 100/6, narrowed by the truncation at 3 sd
    x = jax.numpy.asarray(60.0)
    one = jax.tree.map(lambda a: a[0, 0], params)
    assert float(prior.cdf(one, x)) == pytest.approx(float((values[:, 0, 0] <= 60).mean()), abs=0.01)
    rounded = TruncatedGaussianPrior(0, 9, integer=True)
    draws = rounded.sample(jax.random.key(1), rounded.init_params(1000, 1)).values
    np.testing.assert_array_equal(draws, np.round(draws))
    with pytest.raises(ValueError, match="sd must be finite and positive"):
        TruncatedGaussianPrior(0.0, 1.0, sd=0.0)
    wallet = WalletPrior(0, 9, integer=True)
    types = wallet.sample(jax.random.key(2), wallet.init_params(3, 1))
    np.testing.assert_array_equal(types.values[:, 0], types.signals.sum())  # everyone's value: the signals' sum
    np.testing.assert_array_equal(types.observation(), types.signals)  # bidders bid on their own signal


def test_top_value_is_the_one_scale_of_every_prior():
    """One helper for the prior's highest value (bid grids, reserve grids, normalised networks, plots): the top
    of the support, per-bidder bounds included; an exponential prior's is its 1 - 1e-4 quantile, where the old
    scale of normalised networks read a ``high`` the prior does not have (AttributeError)."""
    import math

    from jaxauction.specs import highest_bid

    assert ja.top_value(ja.UniformIntPrior(0, 9), 3) == 9.0
    assert ja.top_value(ja.UniformPrior(0.0, (1.0, 2.5)), 2) == 2.5
    assert ja.top_value(ja.UniformPrior(0.0, 1.0), 1, 2) == 1.0
    assert ja.top_value(ja.ExponentialPrior(2.0), 2) == pytest.approx(2.0 * math.log(1e4), rel=1e-6)
    assert highest_bid([ja.truthful(2)], ja.ExponentialPrior(1.0), 2, 1) == pytest.approx(math.log(1e4), rel=1e-6)
    # a market built while a function is traced (the throughput benchmark builds one inside fori_loop)
    traced = jax.jit(lambda x: x + ja.top_value(ja.UniformIntPrior(0, 9), 3))(jnp.float32(1.0))
    assert float(traced) == 10.0
