import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxauction import Feedback, effective_counts, epsilon, epsilon_greedy, per_bidder, population, truthful
from jaxauction._ops import kth_largest, nth_true, prefix_sum


class OriginalBandit:
    """A direct port of the original's EpsilonGreedy_auction update (original platform, rl_utils/solver.py)."""

    def __init__(self, n_values, n_bids, start_point, step_floor):
        self.B = n_bids
        self.estimates = np.zeros(n_values * n_bids)
        self.counts = np.zeros(n_values * n_bids, dtype=np.int64)
        self.t = 0
        self.start_point, self.step_floor = start_point, step_floor
        self.eps = 0.01

    def pull_and_update(self, value, bid, reward):
        i = value * self.B + bid
        self.counts[i] += 1  # counted at selection time
        c = self.counts[i]
        self.estimates[i] = (reward + self.estimates[i] * c) / (c + 1)
        self.t += 1
        if self.t == self.start_point:
            self.counts = np.ones_like(self.counts)
        self.eps = 0.5 ** (self.t / self.step_floor)


def feed(learner, state, params, values, bids, rewards):
    z = jnp.zeros_like(values)
    feedback = Feedback(values[:, None], bids[:, None], z[:, None], z, rewards)
    return learner.update(jax.random.key(0), state, feedback, params)


@pytest.mark.parametrize("explore_steps", [0, 1, 37])
def test_update_matches_the_original_bandit(explore_steps):
    n, V, B, steps = 3, 4, 5, 150
    learner = epsilon_greedy(n, n_values=V, n_bids=B, explore_steps=explore_steps, half_life=20.0)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    refs = [OriginalBandit(V, B, explore_steps, 20.0) for _ in range(n)]
    rng = np.random.default_rng(0)
    update = jax.jit(lambda s, v, b, r: feed(learner, s, params, v, b, r))
    for _ in range(steps):
        # few arms, so that arms are pulled before and after the counts reset
        values = rng.integers(0, 2, n)
        bids = np.minimum(rng.integers(0, 2, n), values)
        rewards = rng.normal(size=n).astype(np.float32)
        state = update(state, jnp.asarray(values, jnp.float32), jnp.asarray(bids, jnp.float32), jnp.asarray(rewards))
        for i in range(n):
            refs[i].pull_and_update(values[i], bids[i], float(rewards[i]))
    for i in range(n):
        np.testing.assert_allclose(np.asarray(state.estimates[i]).ravel(), refs[i].estimates, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(effective_counts(params, state)[i]).ravel(), refs[i].counts)
        np.testing.assert_allclose(float(epsilon(params, state.t[i])), refs[i].eps, rtol=1e-6)


def test_shrunk_mean_closed_form():
    """After k pulls the estimate is sum/(k+1); after the reset the old estimate weighs as two pulls."""
    learner = epsilon_greedy(1, n_values=3, n_bids=3, explore_steps=4)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    v, b = jnp.array([2.0]), jnp.array([1.0])
    rewards = [1.0, 3.0, 2.0, 6.0]
    for r in rewards:
        state = feed(learner, state, params, v, b, jnp.array([r]))
    estimate = sum(rewards) / (len(rewards) + 1)
    np.testing.assert_allclose(state.estimates[0, 0, 2, 1], estimate, rtol=1e-6)
    later = [5.0, -1.0, 4.0]
    for r in later:
        state = feed(learner, state, params, v, b, jnp.array([r]))
    np.testing.assert_allclose(state.estimates[0, 0, 2, 1], (2 * estimate + sum(later)) / (len(later) + 2), rtol=1e-6)


def test_epsilon_schedule():
    params = epsilon_greedy(3).init_params()
    t = jnp.array([0, 20_000, 30_000, 50_000, 100_000])
    np.testing.assert_allclose(epsilon(params, t), [1.0, 0.25, 0.125, 0.03125, 0.5**10], rtol=1e-6)


def act_many(learner, state, params, values, count=40_000, seed=0):
    keys = jax.random.split(jax.random.key(seed), count)
    return np.asarray(jax.jit(jax.vmap(lambda k: learner.act(k, state, values, params)))(keys))


def test_forced_exploration_is_uniform_over_allowed_bids():
    learner = epsilon_greedy(3)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    values = jnp.array([[0.0], [4.0], [9.0]])
    bids = act_many(learner, state, params, values)[..., 0]
    chex.assert_shape(bids, (40_000, 3))
    assert np.all(bids[:, 0] == 0)
    for i, v in ((1, 4), (2, 9)):
        freq = np.bincount(bids[:, i].astype(int), minlength=10) / len(bids)
        np.testing.assert_allclose(freq[: v + 1], 1 / (v + 1), atol=5 * np.sqrt(1 / (v + 1) / len(bids)))
        assert freq[v + 1 :].sum() == 0  # never above the value without overbid
    over = epsilon_greedy(3, overbid=True)
    bids = act_many(over, over.init(jax.random.key(0), params), params, values)
    assert set(np.unique(bids[:, 0])) == set(range(10))


def test_greedy_choice_uniform_ties_and_policy():
    learner = epsilon_greedy(2, explore_steps=0, half_life=1.0)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    est = state.estimates.at[0, 0, 6, 4].set(2.0).at[1, 0, 6, 1].set(1.0).at[1, 0, 6, 5].set(1.0)
    state = state._replace(estimates=est.at[1, 0, 6, 7].set(3.0), t=jnp.array([10_000, 10_000]))  # eps = 0
    bids = act_many(learner, state, params, jnp.array([[6.0], [6.0]]))[..., 0]
    assert np.all(bids[:, 0] == 4)  # the best arm
    # bidder 1: bid 7 is above the value 6 (not allowed); bids 1 and 5 tie: each half of the time
    assert set(np.unique(bids[:, 1])) == {1.0, 5.0}
    np.testing.assert_allclose((bids[:, 1] == 1).mean(), 0.5, atol=5 * np.sqrt(0.25 / len(bids)))
    grid = jnp.arange(10.0)[:, None]
    policy = learner.policy(state, jnp.broadcast_to(grid, (2, 10, 1)), params)
    chex.assert_shape(policy, (2, 10, 1))
    np.testing.assert_array_equal(policy[:, 6, 0], [4, 1])  # the lowest of tied bids


@pytest.mark.parametrize("width", [3, 10, 40])
def test_short_axis_ops_match_the_general_ops(width):
    mask = jax.random.bernoulli(jax.random.key(0), 0.4, (500, width)).astype(jnp.float32)
    n = jnp.floor(jax.random.uniform(jax.random.key(1), (500,)) * jnp.maximum(mask.sum(-1), 1))
    np.testing.assert_array_equal(nth_true(mask, n), jnp.sum(jnp.cumsum(mask, -1) <= n[:, None], -1))
    np.testing.assert_array_equal(prefix_sum(mask), jnp.cumsum(mask, -1))
    x = jnp.floor(jax.random.uniform(jax.random.key(2), (500, width)) * 5)  # many ties
    for k in (1, 2, 3, 5, width + 1):
        expected = jnp.sort(x, -1)[:, max(width - k, 0)]
        np.testing.assert_array_equal(jax.vmap(lambda v, k=k: kth_largest(v, k))(x), expected)


def test_multi_item_bidders_keep_one_table_per_item():
    learner = epsilon_greedy(2, n_items=3, explore_steps=5)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    chex.assert_shape(state.estimates, (2, 3, 10, 10))
    values = jnp.array([[1.0, 5.0, 9.0], [0.0, 2.0, 3.0]])
    bids = learner.act(jax.random.key(1), state, values, params)
    chex.assert_shape(bids, (2, 3))
    assert np.all(np.asarray(bids) <= np.asarray(values))
    feedback = Feedback(values, bids, jnp.zeros((2, 3)), jnp.zeros(2), jnp.array([2.0, -1.0]))
    new = learner.update(jax.random.key(2), state, feedback, params)
    pulled = np.asarray(new.counts).sum(axis=(2, 3))
    np.testing.assert_array_equal(pulled, 1)  # one arm per bidder and item
    v, b = np.asarray(values, int), np.asarray(bids, int)
    np.testing.assert_allclose(new.estimates[0, np.arange(3), v[0], b[0]], 1.0)  # (2 + 0 * 1) / 2 on every item


def test_act_is_pure_and_reproducible():
    learner = epsilon_greedy(3)
    params = learner.init_params()
    state = learner.init(jax.random.key(0), params)
    values = jnp.array([[3.0], [9.0], [5.0]])
    a = learner.act(jax.random.key(7), state, values, params)
    b = learner.act(jax.random.key(7), state, values, params)
    np.testing.assert_array_equal(a, b)
    many = act_many(learner, state, params, values, count=50)
    assert len({tuple(r.ravel()) for r in many}) > 1


def test_truthful_and_per_bidder_lift():
    values = jnp.array([[0.5], [2.0], [7.0]])
    learner = truthful(3)
    np.testing.assert_array_equal(
        learner.act(jax.random.key(0), learner.init(jax.random.key(0), ()), values, ()), values
    )
    # a learner written for one bidder: bids a learned fraction of its value, keeps its own key-driven noise
    shade = per_bidder(
        "shade",
        3,
        init=lambda key, params: jax.random.uniform(key),
        act=lambda key, state, obs, params: obs * params * state,
        update=lambda key, state, feedback, params: state + feedback.utility,
        init_params=lambda: jnp.float32(0.5),
        policy=lambda state, obs, params: obs * params * state,
    )
    params = shade.init_params()
    state = shade.init(jax.random.key(0), params)
    chex.assert_shape(state, (3,))
    assert len(set(np.asarray(state).tolist())) == 3  # one key per bidder
    np.testing.assert_allclose(shade.act(jax.random.key(1), state, values, params), values * 0.5 * state[:, None])
    fb = Feedback(values, values, values, values[:, 0], jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(shade.update(jax.random.key(2), state, fb, params), state + jnp.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="unknown feedback"):
        per_bidder("x", 2, *(lambda *a: None,) * 5, feedback="oracle")


def test_mixed_population_keeps_bidder_order():
    pop = population([truthful(1), epsilon_greedy(2)])
    assert pop.n_bidders == 3 and pop.names == ("truthful", "epsilon_greedy", "epsilon_greedy")
    params = pop.init_params()
    states = pop.init(jax.random.key(0), params)
    values = jnp.array([[7.0], [9.0], [9.0]])
    bids = pop.act(jax.random.key(1), states, values, params)
    assert float(bids[0, 0]) == 7.0  # the truthful bidder bids its value
    assert np.all(np.asarray(bids[1:]) <= 9)
    policy = pop.policy(states, jnp.arange(10.0)[:, None], params)
    chex.assert_shape(policy, (3, 10, 1))
    np.testing.assert_array_equal(policy[0, :, 0], np.arange(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bids=5, n_values=10), "n_bids"),
        (dict(half_life=0.0), "half_life"),
        (dict(half_life=float("nan")), "half_life"),
        (dict(explore_steps=-1), "explore_steps"),
        (dict(n_bidders=0), "n_bidders"),
    ],
)
def test_bad_learner_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        epsilon_greedy(**{"n_bidders": 3, **kwargs})
