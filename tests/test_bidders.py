import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxauction import EpsilonGreedyConfig, Transition, effective_counts, epsilon, epsilon_greedy, truthful


class OriginalBandit:
    """A direct port of the original's EpsilonGreedy_auction update (original_behaviour.md section 2.2)."""

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


def feed(learner, state, values, bids, rewards):
    z = jnp.zeros_like(values)
    return learner.update(state, Transition(values, bids, z, z, rewards))


@pytest.mark.parametrize("explore_steps", [0, 1, 37])
def test_update_matches_the_original_bandit(explore_steps):
    n, V, B, steps = 3, 4, 5, 150
    config = EpsilonGreedyConfig(n_bidders=n, n_values=V, n_bids=B, explore_steps=explore_steps, half_life=20.0)
    learner = epsilon_greedy(config)
    state = learner.init(jax.random.key(0))
    refs = [OriginalBandit(V, B, explore_steps, 20.0) for _ in range(n)]
    rng = np.random.default_rng(0)
    update = jax.jit(lambda s, v, b, r: feed(learner, s, v, b, r))
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
        np.testing.assert_array_equal(np.asarray(effective_counts(config, state)[i]).ravel(), refs[i].counts)
        np.testing.assert_allclose(float(epsilon(config, state.t[i])), refs[i].eps, rtol=1e-6)


def test_shrunk_mean_closed_form():
    """After k pulls the estimate is sum/(k+1); after the reset the old estimate weighs as two pulls."""
    config = EpsilonGreedyConfig(n_bidders=1, n_values=3, n_bids=3, explore_steps=4)
    learner = epsilon_greedy(config)
    state = learner.init(jax.random.key(0))
    v, b = jnp.array([2.0]), jnp.array([1.0])
    rewards = [1.0, 3.0, 2.0, 6.0]
    for r in rewards:
        state = feed(learner, state, v, b, jnp.array([r]))
    estimate = sum(rewards) / (len(rewards) + 1)
    np.testing.assert_allclose(state.estimates[0, 2, 1], estimate, rtol=1e-6)
    later = [5.0, -1.0, 4.0]
    for r in later:
        state = feed(learner, state, v, b, jnp.array([r]))
    np.testing.assert_allclose(state.estimates[0, 2, 1], (2 * estimate + sum(later)) / (len(later) + 2), rtol=1e-6)


def test_epsilon_schedule():
    config = EpsilonGreedyConfig()
    t = jnp.array([0, 20_000, 30_000, 50_000, 100_000])
    np.testing.assert_allclose(epsilon(config, t), [1.0, 0.25, 0.125, 0.03125, 0.5**10], rtol=1e-6)


def act_many(learner, state, values, count=40_000, seed=0):
    keys = jax.random.split(jax.random.key(seed), count)
    return np.asarray(jax.jit(jax.vmap(lambda k: learner.act(k, state, values)))(keys))


def test_forced_exploration_is_uniform_over_allowed_bids():
    config = EpsilonGreedyConfig()
    learner = epsilon_greedy(config)
    state = learner.init(jax.random.key(0))
    values = jnp.array([0.0, 4.0, 9.0])
    bids = act_many(learner, state, values)
    chex.assert_shape(bids, (40_000, 3))
    assert np.all(bids[:, 0] == 0)
    for i, v in ((1, 4), (2, 9)):
        freq = np.bincount(bids[:, i].astype(int), minlength=10) / len(bids)
        np.testing.assert_allclose(freq[: v + 1], 1 / (v + 1), atol=5 * np.sqrt(1 / (v + 1) / len(bids)))
        assert freq[v + 1 :].sum() == 0  # never above the value without overbid
    over = epsilon_greedy(EpsilonGreedyConfig(overbid=True))
    bids = act_many(over, over.init(jax.random.key(0)), values)
    assert set(np.unique(bids[:, 0])) == set(range(10))


def test_greedy_choice_and_uniform_ties():
    config = EpsilonGreedyConfig(n_bidders=2, explore_steps=0, half_life=1.0)
    learner = epsilon_greedy(config)
    state = learner.init(jax.random.key(0))
    est = state.estimates.at[0, 6, 4].set(2.0).at[1, 6, 1].set(1.0).at[1, 6, 5].set(1.0).at[1, 6, 7].set(3.0)
    state = state._replace(estimates=est, t=jnp.array([10_000, 10_000]))  # eps = 2^-10000 = 0
    bids = act_many(learner, state, jnp.array([6.0, 6.0]))
    assert np.all(bids[:, 0] == 4)  # the best arm
    # bidder 1: bid 7 is above the value 6 (not allowed); bids 1 and 5 tie: each half of the time
    assert set(np.unique(bids[:, 1])) == {1.0, 5.0}
    np.testing.assert_allclose((bids[:, 1] == 1).mean(), 0.5, atol=5 * np.sqrt(0.25 / len(bids)))
    np.testing.assert_array_equal(learner.greedy_bids(state)[:, 6], [4, 1])


def test_act_is_pure_and_reproducible():
    learner = epsilon_greedy(EpsilonGreedyConfig())
    state = learner.init(jax.random.key(0))
    values = jnp.array([3.0, 9.0, 5.0])
    a = learner.act(jax.random.key(7), state, values)
    b = learner.act(jax.random.key(7), state, values)
    np.testing.assert_array_equal(a, b)
    many = act_many(learner, state, values, count=50)
    assert len({tuple(r) for r in many}) > 1


def test_truthful():
    learner = truthful(3, n_values=10)
    values = jnp.array([0.5, 2.0, 7.0])
    np.testing.assert_array_equal(learner.act(jax.random.key(0), learner.init(jax.random.key(0)), values), values)
    np.testing.assert_array_equal(learner.greedy_bids(None)[2], np.arange(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bids=5, n_values=10), "n_bids"),
        (dict(half_life=0.0), "half_life"),
        (dict(explore_steps=-1), "explore_steps"),
        (dict(n_bidders=0), "n_bidders"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpsilonGreedyConfig(**kwargs)
