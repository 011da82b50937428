"""A JaxMARL environment: several RL bidders in one jaxauction market (``pip install "jaxauction[envs]"``).

The agents are the bidders of the market's ``external`` groups, named
``bidder_<i>`` by their index on the bidder axis; any other group is a
jaxauction learner that acts and learns as in ``run_round``. One step is one
auction; an episode is ``horizon`` auctions with fresh learners.
"""

from __future__ import annotations

import io
import sys
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxauction._checks import check_positive_int
from jaxauction.envs import core
from jaxauction.market import Market, MarketParams, init_params
from jaxauction.types import Array, PRNGKey

# Importing jaxmarl imports its whole zoo, prints about it, and (its MABrax module) points sys.stdout and
# sys.stderr at sys.__stdout__ and sys.__stderr__: keep the import quiet and the caller's streams (a redirect, a
# notebook) as they were.
_streams = sys.stdout, sys.stderr, sys.__stdout__
try:
    sys.stdout = sys.__stdout__ = io.StringIO()
    from jaxmarl.environments import spaces
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv
    from jaxmarl.environments.multi_agent_env import State as _State
finally:
    sys.stdout, sys.stderr, sys.__stdout__ = _streams


@struct.dataclass
class MultiBiddingState(_State):
    """JaxMARL's ``done`` and ``step``, the learners' states, the episode's round key and the market's params
    (JaxMARL's ``step`` takes no params, so they travel in the state: a sweep is a ``vmap`` over ``reset``'s
    ``params``)."""

    learners: tuple = ()
    round_key: Array | None = None
    params: MarketParams | None = None


class MultiBiddingEnv(MultiAgentEnv):
    """Every ``external`` bidder of ``market`` an agent, as a JaxMARL ``MultiAgentEnv``.

    Per agent: actions are its bids ``[m]`` (``Box(0, top value)``; not
    clipped) or, with ``bid_grid``, an index into the grid (``Discrete``, the
    same bid on every item); observations ``[d + 1]`` are its values (or
    signal) for the coming auction and ``t / horizon``; rewards its utility.
    ``infos`` hold the auction's revenue, values, bids, allocation, payments
    and utilities. ``reset(key, params=None)`` takes the market's params
    (``params`` given here, else ``init_params(market, key(0))``); auto-reset
    keeps the episode's params. The step's key is not used: an episode's
    auctions draw from keys fixed at reset, as in ``fresh_round``.
    """

    def __init__(
        self, market: Market, horizon: int = 1_000, params: MarketParams | None = None, bid_grid: Any = None
    ) -> None:
        bidders = core.agent_bidders(market)
        super().__init__(num_agents=len(bidders))
        check_positive_int(horizon, "horizon")
        self.market, self.horizon, self.bidders = market, horizon, bidders
        self.bid_grid = None if bid_grid is None else core.check_grid(bid_grid)
        self.params = init_params(market, jax.random.key(0)) if params is None else params
        self.agents = [f"bidder_{i}" for i in bidders]
        low, high = core.observation_bounds(market, bidders)
        if self.bid_grid is None:
            action = spaces.Box(0.0, core.top_bid(market), (market.n_items,), jnp.float32)
        else:
            action = spaces.Discrete(len(self.bid_grid))
        self.action_spaces = {a: action for a in self.agents}
        self.observation_spaces = {
            a: spaces.Box(jnp.asarray(low), jnp.asarray(high), low.shape, jnp.float32) for a in self.agents
        }

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key: PRNGKey, params: MarketParams | None = None) -> tuple[dict[str, Array], MultiBiddingState]:
        params = self.params if params is None else params
        learners, round_key = core.start(self.market, params, key)
        state = MultiBiddingState(jnp.bool_(False), jnp.int32(0), learners, round_key, params)
        return self.get_obs(state), state

    @partial(jax.jit, static_argnums=(0,))
    def step(self, key: PRNGKey, state: MultiBiddingState, actions: dict[str, Array], reset_state=None):
        """One auction, then a reset (with the episode's params, or to ``reset_state``) when the episode ends."""
        key, key_reset = jax.random.split(key)
        obs, stepped, rewards, dones, infos = self.step_env(key, state, actions)
        if reset_state is None:
            obs_reset, reset_state = self.reset(key_reset, state.params)
        else:
            obs_reset = self.get_obs(reset_state)
        pick = partial(jax.tree.map, lambda a, b: jax.lax.select(dones["__all__"], a, b))
        return pick(obs_reset, obs), pick(reset_state, stepped), rewards, dones, infos

    def step_env(self, key: PRNGKey, state: MultiBiddingState, actions: dict[str, Array]):
        stacked = jnp.stack([jnp.asarray(actions[a]) for a in self.agents])
        bids = core.bids_from_actions(stacked, self.market.n_items, self.bid_grid, self.num_agents)
        learners, record = core.advance(self.market, state.params, state.learners, state.round_key, state.step, bids,
                                        self.horizon)  # fmt: skip
        step = state.step + 1
        done = step >= self.horizon
        state = state.replace(done=done, step=step, learners=learners)
        rewards = {a: record.utility[i] for a, i in zip(self.agents, self.bidders, strict=True)}
        dones = {**{a: done for a in self.agents}, "__all__": done}
        return self.get_obs(state), state, rewards, dones, core.info(record)

    def get_obs(self, state: MultiBiddingState) -> dict[str, Array]:
        seen = core.observations(self.market, state.params, state.round_key, state.step, self.horizon, self.bidders)
        return {a: seen[i] for i, a in enumerate(self.agents)}

    def get_avail_actions(self, state: MultiBiddingState) -> dict[str, Array]:
        """Every action is available: ``[G]`` ones for a bid grid, ``[m]`` ones for continuous bids."""
        size = self.market.n_items if self.bid_grid is None else len(self.bid_grid)
        return {a: jnp.ones((size,), jnp.bool_) for a in self.agents}

    @property
    def name(self) -> str:
        return f"jaxauction-{self.market.mechanism.name}"

    @property
    def agent_classes(self) -> dict[str, list[str]]:
        return {"bidders": list(self.agents)}
