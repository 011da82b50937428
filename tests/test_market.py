import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction import (
    FULL_INFORMATION,
    Market,
    UniformIntPrior,
    UniformPrior,
    build_market,
    check_market,
    collect,
    deep_payment,
    epsilon_greedy,
    init_params,
    mean_revenue,
    population,
    run_round,
    second_price,
    truthful,
)
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec


def make_market(mechanism, learners, prior):
    return Market(mechanism, population(learners), prior)


def states_for(market, params, keys):
    return jax.vmap(market.population.init, in_axes=(0, None))(keys, params.learners)


def test_truthful_second_price_round_matches_theory():
    """3 truthful bidders, U{0..9}: revenue E[second highest] = 4.5, efficiency 1, utility (6.975 - 4.5) / 3, and
    the mean bid per window is the mean value 4.5 (standard deviation 2.87 per auction)."""
    market = make_market(second_price(3), truthful(3), UniformIntPrior(0, 9))
    params = init_params(market, jax.random.key(0))
    markets, T = 64, 5_000
    keys = jax.random.split(jax.random.key(0), markets)
    _, metrics = jax.jit(jax.vmap(lambda s, k: run_round(market, T, 1_000, params, s, k)))(
        states_for(market, params, keys), keys
    )
    chex.assert_shape(metrics.revenue, (markets, 5))
    chex.assert_shape(metrics.utility, (markets, 5, 3))
    per_market = np.asarray(metrics.revenue).mean(1)
    assert abs(per_market.mean() - 4.5) < 4 * per_market.std() / np.sqrt(markets)
    np.testing.assert_array_equal(np.asarray(metrics.efficiency), 1.0)
    np.testing.assert_allclose(np.asarray(metrics.utility).mean(), (6.975 - 4.5) / 3, atol=0.02)
    chex.assert_shape(metrics.bid, (markets, 5, 3))
    assert abs(float(np.asarray(metrics.bid).mean()) - 4.5) < 4 * 2.87 / np.sqrt(markets * T * 3)


@pytest.mark.slow
def test_twenty_million_auction_window_sums_stay_exact():
    """Float32 running sums stop growing at 2**24 additions of a constant; the window sums are compensated.

    One 20,000,000-auction window of truthful second price: efficiency exactly 1 and revenue 4.5 within
    4 standard errors (about 0.002); a plain float32 sum reported 0.839 and 4.507. Slow: 20M sequential
    auctions take about 30 s on 2 CPU cores (``pytest -m slow``).
    """
    market = make_market(second_price(3), truthful(3), UniformIntPrior(0, 9))
    params = init_params(market, jax.random.key(0))
    T = 20_000_000
    state = market.population.init(jax.random.key(0), params.learners)
    _, metrics = jax.jit(lambda s, k: run_round(market, T, T, params, s, k))(state, ja.key(1))
    assert float(metrics.efficiency[0]) == 1.0
    std = 2.07  # standard deviation of the second-highest of 3 values on 0..9
    assert abs(float(metrics.revenue[0]) - 4.5) < 4 * std / np.sqrt(T)


def seed_market():
    return make_market(deep_payment(3), epsilon_greedy(3), UniformIntPrior(0, 9))


def test_round_is_reproducible_and_key_sensitive():
    market = seed_market()
    params = init_params(market, jax.random.key(0))
    state = market.population.init(jax.random.key(0), params.learners)
    go = jax.jit(lambda k: run_round(market, 2_000, 500, params, state, k))
    (s1, m1), (s2, m2), (_, m3) = go(jax.random.key(1)), go(jax.random.key(1)), go(jax.random.key(2))
    chex.assert_trees_all_equal((s1, m1), (s2, m2))
    assert not np.array_equal(m1.revenue, m3.revenue)
    assert int(s1[0].t[0]) == 2_000


def test_round_compiles_once_and_vmap_matches_single_markets():
    market = seed_market()
    params = init_params(market, jax.random.key(0))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def go(params, state, key):
        return run_round(market, 1_000, 250, params, state, key)

    state = market.population.init(jax.random.key(0), params.learners)
    for seed in range(3):
        state, _ = go(params, state, jax.random.key(seed))
    keys = jax.random.split(jax.random.key(3), 4)
    states = states_for(market, params, keys)
    _, batched = jax.jit(jax.vmap(lambda s, k: run_round(market, 1_000, 250, params, s, k)))(states, keys)
    for i in range(4):
        _, single = go(params, jax.tree.map(lambda x, i=i: x[i], states), keys[i])
        np.testing.assert_allclose(batched.revenue[i], single.revenue, rtol=1e-5)


def test_collect_and_mean_revenue():
    market = seed_market()
    params = init_params(market, jax.random.key(0))
    state = market.population.init(jax.random.key(0), params.learners)
    data = jax.jit(lambda k: collect(market, 64, params, state, k))(jax.random.key(0))
    chex.assert_shape([data.types.values, data.bids], (64, 3, 1))
    assert np.all(np.asarray(data.bids) <= np.asarray(data.types.values))
    rev = jax.jit(mean_revenue, static_argnums=0)(market.mechanism, params.mechanism, data.bids, data.keys)
    assert 0 <= float(rev) <= float(np.asarray(data.bids).max(1).mean())
    with pytest.raises(ValueError, match="multiple of the revenue window"):
        run_round(market, 1_000, 300, params, state, jax.random.key(0))


@pytest.mark.parametrize("chunk", [300, 1_000])  # 300: three chunks and a remainder of 100
def test_chunked_revenue_matches_value_and_gradient(chunk):
    market = seed_market()
    params = init_params(market, jax.random.key(0))
    state = market.population.init(jax.random.key(0), params.learners)
    data = jax.jit(lambda k: collect(market, 1_000, params, state, k))(jax.random.key(1))
    mech = market.mechanism

    def value_and_grad(chunk):
        revenue = jax.value_and_grad(lambda p, b, k: mean_revenue(mech, p, b, k, chunk))
        return jax.jit(revenue)(params.mechanism, data.bids, data.keys)

    chex.assert_trees_all_close(value_and_grad(chunk), value_and_grad(None), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="chunk"):
        mean_revenue(mech, params.mechanism, data.bids, data.keys, 0)


def test_markets_whose_parts_do_not_fit_are_refused():
    """A bandit table must cover every value the prior can draw, and bandits need integer values."""
    with pytest.raises(ValueError, match=r"value levels 0..9, but the prior draws values up to 19.*n_values >= 20"):
        check_market(make_market(second_price(3), epsilon_greedy(3), UniformIntPrior(0, 19)))
    with pytest.raises(ValueError, match="draws continuous values"):
        check_market(make_market(second_price(3), epsilon_greedy(3), UniformPrior(0, 1)))
    with pytest.raises(ValueError, match="population has 2"):
        check_market(make_market(second_price(3), epsilon_greedy(2), UniformIntPrior(0, 9)))
    market = make_market(second_price(3), epsilon_greedy(3), UniformIntPrior(0, 9))
    params = init_params(market, jax.random.key(0))
    wide = params._replace(prior=params.prior._replace(high=params.prior.high + 5))
    with pytest.raises(ValueError, match="up to 14"):
        check_market(market, wide)  # params are checked too, with any leading sweep axes
    # The spec builders size the tables from the prior, and refuse raw bids that saturate the payment network.
    twenty = PopulationSpec(options={"n_bids": 20})
    built = build_market(MechanismSpec("second_price"), twenty, PriorSpec(value_high=19))
    assert built.population.groups[0].observation_levels == 20
    with pytest.raises(ValueError, match="raw bids up to 499.*normalise"):
        build_market(MechanismSpec(), PopulationSpec(options={"n_bids": 500}), PriorSpec(value_high=499))
    build_market(MechanismSpec(options={"normalise": True}), PopulationSpec(options={"n_bids": 500}),
                 PriorSpec(value_high=499))  # fmt: skip


@pytest.mark.slow
def test_sweep_of_256_reserves_by_4_half_lives_is_one_trace():
    """Numbers are params: 1,024 (reserve, half-life) settings run in one jit, traced once, and rerun with
    other numbers without retracing."""
    market = make_market(second_price(3), epsilon_greedy(3, explore_steps=50), UniformIntPrior(0, 9))
    base = init_params(market, jax.random.key(0))
    reserves, half_lives = np.linspace(0, 9, 256, dtype=np.float32), np.array([10, 100, 1e3, 1e4], np.float32)
    r, h = (x.ravel() for x in np.meshgrid(reserves, half_lives, indexing="ij"))

    def stack(r, h):
        params = ja.tile_params(base, r.size)
        return params._replace(
            mechanism=params.mechanism._replace(reserve=jnp.asarray(r)),
            learners=(params.learners[0]._replace(half_life=jnp.asarray(h)),),
        )

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(params, keys):
        states = jax.vmap(market.population.init, in_axes=(0, 0))(keys, params.learners)
        return jax.vmap(lambda p, s, k: run_round(market, 200, 200, p, s, k)[1].platform_reward)(params, states, keys)

    keys = jax.random.split(jax.random.key(0), r.size)
    params = stack(r, h)
    revenue = np.asarray(sweep(params, keys))
    sweep(stack(r[::-1].copy(), h), keys)  # other numbers, same program
    assert len(np.unique(revenue)) > 100
    for i in (5, 700):  # a point of the sweep is the run with its numbers alone
        point = jax.tree.map(lambda x, i=i: x[i], params)
        state = market.population.init(keys[i], point.learners)
        alone = run_round(market, 200, 200, point, state, keys[i])[1].platform_reward
        np.testing.assert_allclose(revenue[i], alone, rtol=1e-6)


def test_full_information_feedback_is_the_utility_of_every_grid_bid():
    """A learner that asks for full information gets, for each bid on its grid, the utility it would have
    had with the others' bids and the tie-break held fixed; bandit learners get no counterfactual."""
    grid = np.arange(10, dtype=np.float32)
    seen = {}

    def update(key, state, feedback, params):
        seen["feedback"] = feedback
        return state

    recorder = ja.Learner(
        "recorder", 1,
        init=lambda key, params: jnp.zeros((1,)),
        act=lambda key, state, obs, params: obs,
        update=update,
        init_params=lambda: (),
        policy=lambda state, obs, params: obs,
        feedback=FULL_INFORMATION,
        bid_grid=grid,
    )  # fmt: skip
    market = Market(second_price(3), population([recorder, truthful(2)]), UniformIntPrior(0, 9))
    params = init_params(market, jax.random.key(0))
    states = market.population.init(jax.random.key(0), params.learners)
    record = ja.play(market, params, states, jax.random.key(5))
    ja.market.learn(market, params, states, record, jax.random.key(5))
    feedback = seen["feedback"]
    chex.assert_shape(feedback.counterfactual, (1, 10))
    v = float(record.types.values[0, 0])
    others = np.asarray(record.bids[1:, 0])
    top = others.max()
    expected = np.where(grid > top, v - top, 0.0)  # second price: win above the others' top bid, pay it
    at_tie = grid == top
    assert np.all(np.isin(np.asarray(feedback.counterfactual[0])[at_tie], [0.0, v - top]))  # the fixed tie-break
    np.testing.assert_allclose(np.asarray(feedback.counterfactual[0])[~at_tie], expected[~at_tie])
    np.testing.assert_allclose(feedback.counterfactual[0, int(v)], record.utility[0])  # its own bid: what happened


def test_mixed_population_market_runs_one_scan():
    market = make_market(second_price(3), [truthful(1), epsilon_greedy(2, explore_steps=100)], UniformIntPrior(0, 9))
    check_market(market)
    params = init_params(market, jax.random.key(0))
    state = market.population.init(jax.random.key(0), params.learners)
    states, metrics = jax.jit(lambda s, k: run_round(market, 2_000, 1_000, params, s, k))(state, jax.random.key(1))
    assert int(states[1].t[0]) == 2_000
    chex.assert_shape(metrics.utility, (2, 3))
    assert float(metrics.utility[-1, 0]) > 0  # the truthful bidder earns its surplus


def test_policy_grid():
    assert ja.policy_grid(seed_market()).ravel().tolist() == list(range(10))
    continuous = make_market(second_price(2), truthful(2), UniformPrior(0.0, 2.0))
    np.testing.assert_allclose(ja.policy_grid(continuous)[:, 0], np.linspace(0, 2, 11))
