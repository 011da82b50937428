"""Named settings and the exponential prior: reference figures against exact results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.priors import ExponentialPrior
from jaxauction.settings import SETTINGS, setting


@pytest.mark.parametrize("name, optimum", [("single2", 5 / 12), ("single3", 17 / 32), ("single5", 0.671875)])
def test_single_item_optimum_is_myerson(name, optimum):
    s = setting(name)
    assert s.optimum == pytest.approx(optimum, abs=1e-6) and s.optimum_exact


def test_every_setting_builds_its_prior():
    assert len(SETTINGS) == 14
    for s in SETTINGS.values():
        params = s.prior.init_params(s.n_bidders, s.n_items)
        low, high = s.prior.support(params)
        assert low.shape == high.shape == (s.n_bidders, s.n_items) and bool(jnp.all(high > low))
    low, high = setting("additive_1x2_416_47").prior.support(setting("additive_1x2_416_47").prior.init_params(1, 2))
    np.testing.assert_array_equal(low, [[4, 4]])
    np.testing.assert_array_equal(high, [[16, 7]])


def test_seed_setting_optimum_matches_the_market_theory():
    """seed3's Myerson figure is the one the market evaluation computes for the seed's prior."""
    from jaxauction import evaluation

    market = ja.market_of(ja.DMOConfig.of(mechanism="second_price"))
    assert setting("seed3").optimum == pytest.approx(evaluation.theory(market)["myerson_optimum"], abs=1e-9)


def test_exponential_prior_second_price_revenue():
    """E[second highest of 3 exponentials with mean 3] = 3 (1/2 + 1/3) = 2.5 (the setting's second-price figure)."""
    prior = ExponentialPrior(3.0)
    params = prior.init_params(3, 1)
    values = jax.vmap(lambda k: prior.sample(k, params).values)(jax.random.split(jax.random.key(0), 200_000))
    second = np.sort(np.asarray(values[..., 0]), axis=1)[:, 1]
    assert abs(second.mean() - 2.5) < 4 * second.std() / np.sqrt(second.size)
    assert float(prior.support(params)[1][0, 0]) == pytest.approx(3 * np.log(1e4), rel=1e-6)


def test_unknown_names_and_bad_means_are_refused():
    with pytest.raises(ValueError, match="unknown setting 'single4'"):
        setting("single4")
    with pytest.raises(ValueError, match="mean"):
        ExponentialPrior(-1.0)


def test_unit_demand_presets_score_unit_demand_utility():

    unit = setting("unit_1x2")
    assert unit.demand == "unit" and unit.optimum == pytest.approx(2 / (3 * 3**0.5)) and unit.optimum_exact
    assert unit.utility().name == "unit_demand" and setting("unit_1x2_23").utility().name == "unit_demand"
    assert setting("additive_1x2").utility().name == "quasi_linear"
    # a 0/1 bundle is worth its best item to a unit-demand bidder; a lottery over single items its expectation
    types = ja.Types(values=jnp.array([[2.5, 2.9]]))
    bundle = ja.unit_demand().apply(types, ja.Outcome(jnp.array([[1.0, 1.0]]), jnp.array([2.0])), ())
    lottery = ja.unit_demand().apply(types, ja.Outcome(jnp.array([[0.5, 0.5]]), jnp.array([2.0])), ())
    assert float(bundle[0]) == pytest.approx(0.9) and float(lottery[0]) == pytest.approx(0.7)
