"""What both environments share: a market's agents, what they observe, and one auction with their bids.

There is no second simulator: an environment step is ``market.auction``, the
function ``run_round`` scans, with the agents' bids written into the state of
their ``external`` group first. An episode's randomness is drawn at reset: its
auction ``t`` uses ``fold_in(round_key, t)`` as in ``run_round``, so an
episode whose agents bid what a jaxauction learner would bid reproduces
``fresh_round`` bit for bit (tested).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_finite
from jaxauction.bidders.fixed import EXTERNAL
from jaxauction.market import Auction, Market, MarketParams, at_time, auction, draw_types
from jaxauction.metrics import revenue
from jaxauction.priors import default_support, top_value
from jaxauction.types import Array, PRNGKey, State


def agent_bidders(market: Market) -> tuple[int, ...]:
    """The bidders whose bids an agent chooses (those of ``external`` groups), in bidder order; refuses a market
    with none, or a checked market (its ``checkify`` checks need ``checkify.checkify`` around every step)."""
    if market.checked:
        raise ValueError("environments step unchecked markets: build the Market with checked=False")
    population = market.population
    agents = tuple(
        i for group, sl in zip(population.groups, population.slices, strict=True) if group.name == EXTERNAL
        for i in range(sl.start, sl.stop)
    )  # fmt: skip
    if not agents:
        raise ValueError("the market has no agents: give the RL bidders a group of ja.external(k, n_items)")
    return agents


def start(market: Market, params: MarketParams, key: PRNGKey) -> tuple[tuple[State, ...], PRNGKey]:
    """An episode's fresh learner states and its round key (``fresh_round``'s ``init_key, round_key`` are
    ``jax.random.split(key)``)."""
    init_key, round_key = jax.random.split(key)
    return market.population.init(init_key, params.learners), round_key


def observations(
    market: Market, params: MarketParams, round_key: PRNGKey, time: Array, horizon: Array, agents: tuple[int, ...]
) -> Array:  # fmt: skip
    """``[A, d + 1]``: each agent's observation for auction ``time`` (its values, or signals) and ``time /
    horizon``."""
    seen = draw_types(market, params, jax.random.fold_in(round_key, time)).observation()[np.asarray(agents)]
    clock = jnp.broadcast_to(jnp.asarray(time / horizon, seen.dtype), (len(agents), 1))
    return jnp.concatenate([seen, clock], axis=-1)


def observation_bounds(market: Market, agents: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``[d + 1]`` of an agent's observation at the prior's default params: its support (for a signal
    prior, the signals'), and ``[0, 1]`` for the clock."""
    d = jax.eval_shape(lambda: draw_types(market, _shape_params(market), jax.random.key(0)).observation()).shape[-1]
    low, high = np.full(d + 1, -np.inf, np.float32), np.full(d + 1, np.inf, np.float32)
    if d == market.n_items:
        support = default_support(market.prior, market.n_bidders, market.n_items)
        low[:d] = support[0][list(agents)].min(axis=0)
        high[:d] = support[1][list(agents)].max(axis=0)
    low[d], high[d] = 0.0, 1.0
    return low, high


def _shape_params(market: Market) -> MarketParams:
    return MarketParams((), market.prior.init_params(market.n_bidders, market.n_items), (), ())


def top_bid(market: Market) -> float:
    """The top of an agent's continuous action space: the prior's top value."""
    return top_value(market.prior, market.n_bidders, market.n_items)


def advance(
    market: Market,
    params: MarketParams,
    learners: tuple[State, ...],
    round_key: PRNGKey,
    time: Array,
    bids: Array,
    horizon: int | Array,
) -> tuple[tuple[State, ...], Auction]:
    """Auction ``time`` with the agents' ``bids [A, m]``: every other bidder acts and learns as in ``run_round``,
    a dynamic rule at the point ``time / horizon`` of the episode."""
    learners, first = list(learners), 0
    for g, group in enumerate(market.population.groups):
        if group.name == EXTERNAL:
            learners[g] = bids[first : first + group.n_bidders].astype(jnp.float32)
            first += group.n_bidders
    return auction(market, at_time(params, time / horizon), tuple(learners), jax.random.fold_in(round_key, time))


def check_grid(bid_grid: Any) -> np.ndarray:
    """A discrete action space's bid levels: one axis, at least two, finite and non-negative."""
    grid = np.asarray(bid_grid, np.float32)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"bid_grid must be one axis of at least 2 bid levels, got shape {grid.shape}")
    check_finite(grid, "bid_grid", minimum=0.0)
    return grid


def bids_from_actions(actions: Array, n_items: int, bid_grid: np.ndarray | None, agents: int) -> Array:
    """``[A, m]`` bids from the agents' actions: ``[A, m]`` bids, or ``[A]`` indices into ``bid_grid`` (one level
    on every item). Shapes are checked when the step is traced."""
    actions = jnp.asarray(actions)
    if bid_grid is None:
        if actions.shape != (agents, n_items):
            raise ValueError(f"actions have shape {actions.shape}; each of {agents} agents bids on {n_items} items")
        return actions
    if actions.shape != (agents,) or not jnp.issubdtype(actions.dtype, jnp.integer):
        raise ValueError(f"actions are {agents} integer indices into the bid grid, got {actions.dtype} "
                         f"{actions.shape}")  # fmt: skip
    return jnp.broadcast_to(jnp.asarray(bid_grid, jnp.float32)[actions][:, None], (agents, n_items))


def info(record: Auction) -> dict[str, Array]:
    """The auction's record as an info dict: revenue, every bidder's values, bids, allocation, payment and
    utility."""
    return {
        "revenue": revenue(record.outcome),
        "values": record.types.values,
        "bids": record.bids,
        "allocation": record.outcome.allocation,
        "payments": record.outcome.payments,
        "utility": record.utility,
    }
