"""Dynamic mechanisms in the market: the clock runs over a round's horizon, equal phases change nothing, and a
reserve schedule earns each phase's theory against truthful bidders."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.mechanisms import phase

UNIFORM = ja.PriorSpec("uniform", 0.0, 1.0)


def test_phase_of_a_point_of_the_horizon():
    taus = np.array([0.0, 0.1, 0.25, 0.2499999, 0.5, 0.75, 0.9999, 1.0])
    expected = [min(int(np.floor(np.float32(t) * 4)), 3) for t in taus]
    np.testing.assert_array_equal(phase(jnp.asarray(taus, jnp.float32), 4), expected)


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_equal_phases_play_exactly_the_static_rule():
    """A phased rule whose phases hold the same numbers is the static rule, auction for auction."""
    static = ja.build_market(ja.MechanismSpec("first_price", {"reserve": 2.0}), ja.PopulationSpec(), ja.PriorSpec())
    phased = ja.build_market(ja.MechanismSpec("first_price", {"reserve": 2.0, "phases": 3}), ja.PopulationSpec(),
                             ja.PriorSpec())  # fmt: skip
    assert phased.mechanism.name == "first_price+phases3"
    runs = []
    for market in (static, phased):
        params = ja.init_params(market, jax.random.key(0))
        states, metrics = jax.jit(lambda p, k, m=market: ja.fresh_round(m, p, k, k, 3_000, 1_000))(
            params, jax.random.key(1)
        )
        runs.append((states, metrics))
    jax.tree.map(np.testing.assert_array_equal, runs[0], runs[1])


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_a_reserve_schedule_earns_each_phases_theory():
    """Second price, two truthful bidders on U[0, 1]: no reserve earns E[min] = 1/3, the reserve 1/2 earns
    5/12 (Myerson's optimum). Four windows of 20,000 auctions; standard deviation about 0.24 per auction, so
    4 standard errors = 0.007."""
    market = ja.build_market(ja.MechanismSpec("second_price", {"phases": 2}), ja.PopulationSpec("truthful", 2),
                             UNIFORM)  # fmt: skip
    params = ja.init_params(market, jax.random.key(0))
    schedule = params.mechanism.schedule._replace(reserve=jnp.array([0.0, 0.5]))
    params = params._replace(mechanism=params.mechanism._replace(schedule=schedule))
    _, metrics = jax.jit(lambda k: ja.fresh_round(market, params, k, k, 80_000, 20_000))(jax.random.key(1))
    np.testing.assert_allclose(metrics.revenue, [1 / 3, 1 / 3, 5 / 12, 5 / 12], atol=0.007)
    assert float(ja.at_time(params, 0.75).mechanism.tau) == 0.75  # where the clock of a round stands


def test_phases_are_an_option_of_the_classical_rules():
    with pytest.raises(ValueError, match="phases must be an integer >= 1"):
        ja.MechanismSpec("second_price", {"phases": 0})
    with pytest.raises(ValueError, match="phases is an option of mechanism all_pay"):
        ja.DMOConfig.of(phases=2)  # the default rule, the seed's network, is not a classical rule
    config = ja.DMOConfig.of(mechanism="first_price", phases=4, learner="truthful", auctions_per_round=1_000,
                             window=250)  # fmt: skip
    assert ja.market_of(config).mechanism.name == "first_price+phases4"


@pytest.mark.slow
def test_dynamic_rules_earn_their_exact_horizon_revenue():
    """The validation table's dynamic rows: a phased and a stepped reserve over a horizon of 100,000 auctions,
    within 4 standard errors of the exact horizon revenue (the phases' enumerated revenues by their shares)."""
    from tests.validation_table import dynamic_rows

    for line in dynamic_rows():
        *_, value, estimate, se, gap = (c.strip() for c in line.strip("|").split("|"))
        assert float(gap) <= 4.0, line
