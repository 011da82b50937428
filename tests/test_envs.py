"""The environments (``jaxauction.envs``): gymnax's and JaxMARL's interfaces, episodes that reproduce
``fresh_round`` bit for bit (one simulator), rewards against the numpy reference, sweeps under ``vmap``, keys,
and clear errors."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from tests import reference

gymnax = pytest.importorskip("gymnax")
pytest.importorskip("jaxmarl")

from gymnax.environments.environment import Environment  # noqa: E402
from gymnax.wrappers.purerl import LogWrapper  # noqa: E402
from jaxmarl.environments.multi_agent_env import MultiAgentEnv  # noqa: E402

from jaxauction.envs import BiddingEnv, BiddingParams, MultiBiddingEnv  # noqa: E402

U01 = ja.UniformPrior(0.0, 1.0)


def first_price_market() -> ja.Market:
    opponent = ja.equilibrium(1, "first_price", 2, 1.0)
    return ja.Market(ja.first_price(2), ja.population([ja.external(1), opponent]), U01)


def hedge_grid():
    return ja.fraction_grid(top=1.0, n_fractions=6, n_bins=4)


def truthful_episode(env: BiddingEnv, key, params: BiddingParams):
    """An episode in which the agent bids its value: every step's info, and the final state."""

    def step(carry, _):
        obs, state = carry
        obs, state, reward, _, info = env.step_env(jax.random.key(9), state, obs[:1], params)
        return (obs, state), (reward, info)

    obs, state = env.reset_env(key, params)
    length = env.default_params.max_steps_in_episode
    (_, state), (rewards, infos) = jax.lax.scan(step, (obs, state), None, length=length)
    return state, rewards, infos


def test_bidding_env_is_a_gymnax_environment_under_jit_vmap_and_its_wrappers():
    env = BiddingEnv(first_price_market(), horizon=4)
    params = env.default_params
    assert isinstance(env, Environment) and env.num_actions == 1
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == env.observation_space(params).shape == (2,)
    assert bool(env.observation_space(params).contains(obs)) and float(obs[1]) == 0.0
    action = env.action_space(params).sample(jax.random.key(1))
    assert action.shape == (1,) and bool(env.action_space(params).contains(action))
    # purejaxrl's wrapper and auto-reset: two episodes of 4 auctions under one jit, 8 environments vmapped
    wrapped = LogWrapper(env)

    def rollout(key):
        obs, state = wrapped.reset(key, params)

        def step(carry, k):
            obs, state = carry
            act = env.action_space(params).sample(k)
            obs, state, reward, terminated, truncated, info = wrapped.step(k, state, act, params)
            done = terminated | truncated
            return (obs, state), (reward, done, info["returned_episode_returns"], info["returned_episode_lengths"])

        return jax.lax.scan(step, (obs, state), jax.random.split(key, 8))[1]

    rewards, done, returns, lengths = jax.jit(jax.vmap(rollout))(jax.random.split(jax.random.key(2), 8))
    np.testing.assert_array_equal(done[0], [0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(lengths[0, [3, 7]], [4, 4])
    np.testing.assert_allclose(returns[:, 3], rewards[:, :4].sum(1), rtol=1e-6)
    np.testing.assert_allclose(returns[:, 7], rewards[:, 4:].sum(1), rtol=1e-6)


def test_an_episode_is_fresh_round_when_the_agent_bids_like_a_learner():
    """One simulator: the agent bidding its value beside 2 Hedge learners reproduces fresh_round with a truthful
    bidder there, auction by auction and in the learners' final states, bit for bit."""
    hedge = ja.hedge(2, hedge_grid())
    env = BiddingEnv(ja.Market(ja.first_price(3), ja.population([ja.external(1), hedge]), U01), horizon=50)
    params = env.default_params
    key = jax.random.key(3)
    state, rewards, infos = jax.jit(truthful_episode, static_argnums=0)(env, key, params)
    market = ja.Market(ja.first_price(3), ja.population([ja.truthful(1), hedge]), U01)
    states, metrics = jax.jit(lambda: ja.fresh_round(market, params.market, *jax.random.split(key), 50, 1))()
    np.testing.assert_array_equal(infos["revenue"], metrics.revenue)
    np.testing.assert_array_equal(infos["utility"], metrics.utility)
    np.testing.assert_array_equal(rewards, metrics.utility[:, 0])
    for ours, theirs in zip(jax.tree.leaves(state.learners[1]), jax.tree.leaves(states[1]), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert int(state.time) == 50


def test_rewards_and_revenue_match_the_numpy_reference():
    env = BiddingEnv(first_price_market(), horizon=20)
    params = env.default_params
    _, rewards, infos = truthful_episode(env, jax.random.key(4), params)
    for t in range(20):
        values, bids = np.asarray(infos["values"][t], np.float64), np.asarray(infos["bids"][t], np.float64)
        np.testing.assert_allclose(bids[1, 0], values[1, 0] / 2, rtol=1e-6)  # the equilibrium opponent
        (_, allocation, payments), = reference.first_price(list(bids[:, 0]))  # continuous draws: no ties
        utility = reference.utility("quasi_linear", values, allocation, payments)
        np.testing.assert_allclose(rewards[t], utility[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(infos["revenue"][t], reference.revenue(payments), rtol=1e-6)


def test_a_sweep_is_a_vmap_over_env_params_and_keys_reproduce():
    market = ja.Market(ja.second_price(2), ja.population([ja.external(1), ja.truthful(1)]), U01)
    env = BiddingEnv(market, horizon=200)
    base = env.default_params
    reserves = jnp.array([0.0, 0.5, 0.9])
    swept = jax.vmap(lambda r: base.replace(market=base.market._replace(
        mechanism=base.market.mechanism._replace(reserve=r))))(reserves)  # fmt: skip
    run = jax.jit(jax.vmap(lambda p: truthful_episode(env, jax.random.key(5), p)[2]["revenue"].mean()))
    revenue = np.asarray(run(swept))
    assert revenue[1] > revenue[0] and revenue[1] > revenue[2]  # 5/12 at Myerson's 0.5, 1/3 at 0
    one = jax.jit(lambda k: truthful_episode(env, k, base)[1])
    np.testing.assert_array_equal(one(jax.random.key(6)), one(jax.random.key(6)))
    assert not np.array_equal(one(jax.random.key(6)), one(jax.random.key(7)))


def test_discrete_actions_bid_from_the_grid():
    env = BiddingEnv(first_price_market(), horizon=3, bid_grid=[0.0, 0.25, 0.5])
    params = env.default_params
    assert env.action_space(params).n == 3 and env.num_actions == 3
    _, state = env.reset(jax.random.key(0), params)
    _, _, _, _, _, info = env.step(jax.random.key(1), state, jnp.int32(2), params)
    assert float(info["bids"][0, 0]) == 0.5


def test_multi_bidding_env_is_a_jaxmarl_environment_and_is_fresh_round():
    hedge = ja.hedge(1, hedge_grid())
    market = ja.Market(ja.second_price(3), ja.population([ja.external(2), hedge]), U01)
    env = MultiBiddingEnv(market, horizon=30)
    assert isinstance(env, MultiAgentEnv) and env.agents == ["bidder_0", "bidder_1"] and env.num_agents == 2
    assert env.action_space("bidder_1").shape == (1,) and env.observation_space("bidder_0").shape == (2,)
    obs, state = env.reset(jax.random.key(8))
    assert set(obs) == set(env.agents)

    def step(carry, k):
        obs, state = carry
        actions = {a: obs[a][:1] for a in env.agents}  # both agents bid their values
        obs, state, rewards, dones, infos = env.step(k, state, actions)
        return (obs, state), (rewards, dones, infos, state)

    _, (rewards, dones, infos, states) = jax.lax.scan(step, (obs, state), jax.random.split(jax.random.key(1), 31))
    np.testing.assert_array_equal(dones["__all__"], np.arange(1, 32) % 30 == 0)
    assert int(states.step[29]) == 0 and int(states.step[30]) == 1  # auto-reset
    reference_market = ja.Market(ja.second_price(3), ja.population([ja.truthful(2), hedge]), U01)
    _, metrics = ja.fresh_round(reference_market, env.params, *jax.random.split(jax.random.key(8)), 30, 1)
    np.testing.assert_array_equal(infos["revenue"][:30], metrics.revenue)
    np.testing.assert_array_equal(rewards["bidder_1"][:30], metrics.utility[:, 1])
    # a sweep over the market's params: vmap reset's params; the episode keeps them through auto-reset
    swept = jax.vmap(lambda r: env.params._replace(mechanism=env.params.mechanism._replace(reserve=r)))(
        jnp.array([0.0, 0.5]))  # fmt: skip
    _, states = jax.vmap(env.reset, in_axes=(None, 0))(jax.random.key(8), swept)
    np.testing.assert_array_equal(states.params.mechanism.reserve, [0.0, 0.5])


def test_envs_refuse_what_they_cannot_run():
    truthful = ja.Market(ja.first_price(2), ja.population(ja.truthful(2)), U01)
    with pytest.raises(ValueError, match="no agents"):
        BiddingEnv(truthful)
    # without an environment, external bidders would bid 0 forever: the round and the dataset refuse them
    market = first_price_market()
    params = ja.init_params(market, jax.random.key(0))
    with pytest.raises(ValueError, match="1 external bidder"):
        ja.fresh_round(market, params, jax.random.key(0), jax.random.key(1), 10, 10)
    with pytest.raises(ValueError, match="collect: the market has 1 external"):
        ja.collect(market, 4, params, market.population.init(jax.random.key(0), params.learners), jax.random.key(1))
    two = ja.Market(ja.first_price(2), ja.population(ja.external(2)), U01)
    with pytest.raises(ValueError, match="MultiBiddingEnv"):
        BiddingEnv(two)
    with pytest.raises(ValueError, match="horizon"):
        MultiBiddingEnv(two, horizon=0)
    with pytest.raises(ValueError, match="checked=False"):
        MultiBiddingEnv(dataclasses.replace(two, checked=True))
    with pytest.raises(ValueError, match="bid_grid"):
        BiddingEnv(first_price_market(), bid_grid=[0.5, -1.0])
    env = BiddingEnv(first_price_market(), horizon=3)
    _, state = env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="actions have shape"):
        env.step(jax.random.key(1), state, jnp.zeros((2,)))
    with pytest.raises(ValueError, match="integer indices"):
        MultiBiddingEnv(two, bid_grid=[0.0, 1.0]).step(jax.random.key(1), MultiBiddingEnv(two).reset(
            jax.random.key(0))[1], {"bidder_0": jnp.float32(1.0), "bidder_1": jnp.float32(0.0)})  # fmt: skip


def test_the_ppo_example_refuses_bad_settings_before_it_runs(tmp_path, capsys):
    from experiments import ppo_bidder

    for args, message in ((["--bidders", "1"], "bidders"), (["--num-minibatches", "3"], "multiple"),
                          (["--gamma", "1.5"], "gamma"), (["--total-timesteps", "100"], "one update")):  # fmt: skip
        with pytest.raises(SystemExit):
            ppo_bidder.main([*args, "--out", str(tmp_path / "x")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_ppo_bidder_learns_to_shade_to_the_first_price_equilibrium(tmp_path):
    """The issue's bar: 2 bidders in first price, the PPO bidder ends within 0.05 of (n - 1) / n = 0.5 (every
    one of 4 seeds; 400,000 auctions each, about 15 s on 2 cores), and the same seed reproduces bit for bit."""
    from experiments import ppo_bidder

    m = ppo_bidder.main(["--seeds", "4", "--out", str(tmp_path / "a"), "--no-plots"])
    assert m["theory_bid_to_value"] == 0.5
    assert np.all(np.abs(np.asarray(m["bid_to_value_per_seed"]) - 0.5) < 0.05), m["bid_to_value_per_seed"]
    assert abs(m["last_update_reward"] - 1 / 6) < 0.015  # the equilibrium's expected utility, less exploration
    again = ppo_bidder.main(["--seeds", "4", "--out", str(tmp_path / "b"), "--no-plots"])
    np.testing.assert_array_equal(again["bid_to_value_per_seed"], m["bid_to_value_per_seed"])
    other = ppo_bidder.main(["--seeds", "4", "--seed", "1", "--out", str(tmp_path / "c"), "--no-plots"])
    assert not np.array_equal(other["bid_to_value_per_seed"], m["bid_to_value_per_seed"])
