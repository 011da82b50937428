"""A gymnax environment: one RL bidder in a jaxauction market (``pip install "jaxauction[envs]"``).

The agent is the one bidder of the market's ``external`` group; every other
bidder is a jaxauction learner that acts and learns as in ``run_round``. One
step is one auction: the agent sees its values (or signal) and the clock
``t / T``, bids, and is rewarded with its utility. An episode is ``T =
params.max_steps_in_episode`` auctions with fresh learners.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from jaxauction._checks import check_positive_int
from jaxauction.envs import core
from jaxauction.market import Market, MarketParams, init_params
from jaxauction.types import Array, PRNGKey


@struct.dataclass
class BiddingState(environment.EnvState):
    """``time`` (auctions played this episode), the learners' states (the agent's group holds its last bid) and
    the episode's round key."""

    learners: tuple = ()
    round_key: Array | None = None


@struct.dataclass
class BiddingParams(environment.EnvParams):
    """Every number: the market's params (a sweep is a ``vmap`` over them) and the episode length."""

    market: MarketParams | None = None
    max_steps_in_episode: int = 1_000


class BiddingEnv(environment.Environment):
    """One RL bidder against a market of jaxauction learners, as a gymnax ``Environment``.

    ``market`` holds exactly one ``external(1, m)`` bidder, the agent. Actions:
    its bids ``[m]`` (``Box(0, top value)``; not clipped, so keep them in the
    space), or with ``bid_grid`` an index into the grid (``Discrete``), the
    same bid on every item. Observations ``[d + 1]``: the agent's values (or
    signal) for the coming auction and ``t / T``. Reward: its utility. ``info``
    holds the auction's revenue, values, bids, allocation, payments and
    utilities. ``params``: the default market params (``init_params(market,
    key(0))`` when omitted); ``horizon``: the default episode length. The step's
    key is not used: an episode's auctions draw from keys fixed at reset, as in
    ``fresh_round``.
    """

    def __init__(
        self, market: Market, horizon: int = 1_000, params: MarketParams | None = None,
        bid_grid: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.agents = core.agent_bidders(market)
        if len(self.agents) != 1:
            raise ValueError(f"a single-agent environment needs one external bidder, the market has "
                             f"{len(self.agents)}: use MultiBiddingEnv")  # fmt: skip
        check_positive_int(horizon, "horizon")
        self.market = market
        self.bid_grid = None if bid_grid is None else core.check_grid(bid_grid)
        market_params = init_params(market, jax.random.key(0)) if params is None else params
        self._params = BiddingParams(market=market_params, max_steps_in_episode=horizon)

    @property
    def default_params(self) -> BiddingParams:
        return self._params

    def reset_env(self, key: PRNGKey, params: BiddingParams) -> tuple[Array, BiddingState]:
        learners, round_key = core.start(self.market, params.market, key)
        state = BiddingState(time=jnp.int32(0), learners=learners, round_key=round_key)
        return self.get_obs(state, params), state

    def step_env(
        self, key: PRNGKey, state: BiddingState, action: Array, params: BiddingParams
    ) -> tuple[Array, BiddingState, Array, Array, dict[str, Array]]:
        bids = core.bids_from_actions(jnp.asarray(action)[None], self.market.n_items, self.bid_grid, 1)
        learners, record = core.advance(self.market, params.market, state.learners, state.round_key, state.time, bids,
                                        params.max_steps_in_episode)  # fmt: skip
        state = state.replace(time=state.time + 1, learners=learners)
        reward = record.utility[self.agents[0]]
        return self.get_obs(state, params), state, reward, jnp.bool_(False), core.info(record)

    def get_obs(self, state: BiddingState, params: BiddingParams | None = None, key: PRNGKey | None = None) -> Array:
        params = self.default_params if params is None else params
        return core.observations(self.market, params.market, state.round_key, state.time,
                                 params.max_steps_in_episode, self.agents)[0]  # fmt: skip

    def is_terminated(self, state: BiddingState, params: BiddingParams) -> Array:
        return jnp.bool_(False)

    @property
    def name(self) -> str:
        return f"jaxauction-{self.market.mechanism.name}"

    @property
    def num_actions(self) -> int:
        return self.market.n_items if self.bid_grid is None else len(self.bid_grid)

    def action_space(self, params: BiddingParams | None = None) -> spaces.Space:
        if self.bid_grid is not None:
            return spaces.Discrete(len(self.bid_grid))
        return spaces.Box(0.0, core.top_bid(self.market), (self.market.n_items,), jnp.float32)

    def observation_space(self, params: BiddingParams | None = None) -> spaces.Box:
        low, high = core.observation_bounds(self.market, self.agents)
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), low.shape, jnp.float32)
