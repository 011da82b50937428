"""A neural value-learning bidder (the original's DQN, for the repeated auction): a Q-network over the bid grid.

Each bidder keeps a small MLP ``Q(context) -> [A]`` (one-hot context in,
one estimated utility per action out; hidden ReLU layers), an Adam state and
a replay buffer of its last ``buffer`` (context, action, utility) triples.

* ``act``: explore (uniform over the allowed actions) while ``t <
  explore_steps`` or with probability ``0.5 ** (t / half_life)``; otherwise
  the allowed action with the highest Q.
* ``update``: store the auction in the buffer, then one Adam step on
  ``batch`` triples drawn uniformly from the filled buffer, loss
  ``mean (Q(c)[a] - u)^2``. Each auction is one bandit step (the next
  observation is a fresh value), so the target is the utility itself: the
  original's DQN (tianshou, ``obs_next = obs``) with a terminal step.

Documented quirk not reproduced: without overbid the original replaces the
sampled action by the greedy one, so its DQN never explores in the seed's
default setting; here exploration draws among the allowed bids. Everything
runs inside the market's jitted scan; ``explore_steps`` and ``half_life`` are
params (sweepable), the network sizes, Adam's step size, the buffer and the
batch are static.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxauction._checks import check_finite, check_positive_int, hidden_widths, is_concrete
from jaxauction.bidders.base import Learner, per_bidder
from jaxauction.bidders.grid import BidGrid
from jaxauction.types import Array, Feedback, PRNGKey


class QNetwork(nn.Module):
    hidden: tuple[int, ...]
    n_actions: int

    @nn.compact
    def __call__(self, onehot: Array) -> Array:
        x = onehot
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.n_actions)(x)


class DQNParams(NamedTuple):
    """``dqn``'s numbers: forced uniform exploration steps, then epsilon = 0.5 ** (t / half_life)."""

    explore_steps: Array  # int32: forced uniform exploration
    half_life: Array  # float32: eps = 0.5 ** (t / half_life) afterwards


class DQNState(NamedTuple):
    network: Any  # the Q-network's params
    opt_state: Any
    contexts: Array  # [R] int32 replay buffer
    actions: Array  # [R] int32
    utilities: Array  # [R] float32
    t: Array  # int32: updates so far


def dqn(
    n_bidders: int,
    grid: BidGrid,
    hidden: tuple[int, ...] = (32, 32),
    learning_rate: float = 1e-3,
    buffer: int = 200,
    batch: int = 32,
    explore_steps: int = 20_000,
    half_life: float = 10_000.0,
) -> Learner:
    """A group of ``n_bidders`` Q-network bidders on ``grid`` (one item, bandit feedback)."""
    check_positive_int(n_bidders, "n_bidders")
    hidden = hidden_widths(hidden)
    check_finite(learning_rate, "dqn learning_rate", positive=True)
    check_positive_int(buffer, "buffer")
    check_positive_int(batch, "batch")
    C, A = grid.n_contexts, grid.n_actions
    model = QNetwork(hidden, A)
    optimizer = optax.adam(learning_rate)
    allowed_table = grid.allowed(jnp.arange(C))  # [C, A]
    defaults = (explore_steps, half_life)

    def check_params(params: DQNParams) -> None:
        if is_concrete(params.explore_steps) and is_concrete(params.half_life):
            check_finite(np.asarray(params.explore_steps), "explore_steps", minimum=0)
            check_finite(np.asarray(params.half_life), "half_life", positive=True)

    check_params(DQNParams(np.int32(explore_steps), np.float32(half_life)))

    def init_params() -> DQNParams:
        return DQNParams(jnp.asarray(defaults[0], jnp.int32), jnp.asarray(defaults[1], jnp.float32))

    def q_values(network: Any, context: Array) -> Array:
        return model.apply(network, jax.nn.one_hot(context, C))

    def init(key: PRNGKey, params: DQNParams) -> DQNState:
        del params
        network = model.init(key, jnp.zeros((C,)))
        return DQNState(
            network, optimizer.init(network), jnp.zeros((buffer,), jnp.int32), jnp.zeros((buffer,), jnp.int32),
            jnp.zeros((buffer,), jnp.float32), jnp.zeros((), jnp.int32),
        )  # fmt: skip

    def greedy(network: Any, context: Array) -> Array:
        return jnp.argmax(jnp.where(allowed_table[context], q_values(network, context), -jnp.inf), axis=-1)

    def act(key: PRNGKey, state: DQNState, observation: Array, params: DQNParams) -> Array:
        value = observation[0]
        context = grid.context(value)
        k_explore, k_pick = jax.random.split(key)
        eps = jnp.exp2(-state.t.astype(jnp.float32) / params.half_life)
        explore = (state.t < params.explore_steps) | (jax.random.uniform(k_explore) < eps)
        uniform = jax.random.categorical(k_pick, jnp.where(allowed_table[context], 0.0, -jnp.inf))
        action = jnp.where(explore, uniform, greedy(state.network, context))
        return grid.bids(action, value)[None].astype(observation.dtype)

    def update(key: PRNGKey, state: DQNState, feedback: Feedback, params: DQNParams) -> DQNState:
        del params
        value = feedback.observation[0]
        slot = state.t % buffer
        contexts = state.contexts.at[slot].set(grid.context(value))
        actions = state.actions.at[slot].set(grid.action(feedback.bids[0], value))
        utilities = state.utilities.at[slot].set(feedback.utility)
        filled = jnp.minimum(state.t + 1, buffer)
        rows = jnp.minimum(jnp.floor(jax.random.uniform(key, (batch,)) * filled).astype(jnp.int32), filled - 1)

        def loss(network: Any) -> Array:
            q = jax.vmap(q_values, in_axes=(None, 0))(network, contexts[rows])  # [batch, A]
            chosen = jnp.take_along_axis(q, actions[rows][:, None], axis=1)[:, 0]
            return jnp.mean((chosen - utilities[rows]) ** 2)

        grads = jax.grad(loss)(state.network)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.network)
        network = optax.apply_updates(state.network, updates)
        return DQNState(network, opt_state, contexts, actions, utilities, state.t + 1)

    def policy(state: DQNState, observations: Array, params: DQNParams) -> Array:
        del params
        values = observations[:, 0]  # [G]
        best = jax.vmap(lambda v: greedy(state.network, grid.context(v)))(values)
        return grid.bids(best, values)[:, None]

    return per_bidder(
        "dqn", n_bidders, init, act, update, init_params, policy,
        relative_grid=grid.relative, capped_grid=grid.capped, bid_grid=grid.points,
        observation_levels=grid.observation_levels, max_bid=grid.max_bid, check_params=check_params,
    )  # fmt: skip
