"""The repeated auction: a market, one auction, a round as ``lax.scan``, and dataset collection.

A ``Market`` is static structure (a mechanism, a population of learners, a
prior and a utility); every number it uses is in ``MarketParams`` (the
mechanism's params, the prior's bounds, each group's learner params, the
utility's params). All functions are pure and act on one market; independent
markets, seeds and sweeps over params run under ``jax.vmap``. Per-auction
histories are never stacked: metrics are reduced inside the scan to one row
per window.

One auction (``play``): the prior draws types; every group of bidders bids on
its observations; the mechanism allocates and charges; utilities follow. A
learning auction then gives each group its ``Feedback`` and updates it.
Auction keys split three ways (types, bids, outcome), and the update key is
derived from the auction key with ``fold_in``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxauction._checks import check_choice, check_positive_int, is_concrete
from jaxauction.bidders.fixed import EXTERNAL
from jaxauction.bidders.grid import grid_bids
from jaxauction.bidders.population import Population
from jaxauction.mechanisms.base import Mechanism, checked
from jaxauction.mechanisms.dynamic import set_time
from jaxauction.metrics import KahanSum, efficiency_ratio, efficiency_terms, revenue
from jaxauction.priors import Prior
from jaxauction.types import FULL_INFORMATION, Array, Feedback, Outcome, Params, PRNGKey, State, Types
from jaxauction.utilities import Utility, quasi_linear

WINNER_ONLY = "winner_only"
INFORMATION_RULES = ("full", WINNER_ONLY)
_UPDATE_KEY = 0x75706474  # fold_in data that derives an auction's update key


@dataclasses.dataclass(frozen=True)
class Market:
    """A mechanism, a population of bidders, a prior over their types and their utility (static structure).

    ``checked=True`` adds ``checkify`` checks (finite, non-negative bids;
    finite outcomes) to every auction; run the program under
    ``checkify.checkify`` (the driver does, with ``checked=True``).

    ``information`` is what full-information learners observe after an
    auction: ``"full"``, their utility for every bid of their grid;
    ``"winner_only"``, the auctioneer reveals the price to winners only, so a
    bidder who won nothing observes only the bids up to its own (they would
    have lost too under a highest-bid rule) and learns nothing about higher
    ones (``Feedback.observed``).
    """

    mechanism: Mechanism
    population: Population
    prior: Prior
    utility: Utility = quasi_linear()
    checked: bool = False
    information: str = "full"

    @property
    def n_bidders(self) -> int:
        return self.mechanism.n_bidders

    @property
    def n_items(self) -> int:
        return self.mechanism.n_items


class MarketParams(NamedTuple):
    """Every number of a market, as arrays: a sweep over any of them is a ``vmap`` over this pytree."""

    mechanism: Params
    prior: Params
    learners: tuple[Params, ...]
    utility: Params


def init_params(market: Market, key: PRNGKey) -> MarketParams:
    """The default params: the mechanism's ``init(key)`` and every other component's defaults."""
    return MarketParams(
        mechanism=market.mechanism.init(key),
        prior=market.prior.init_params(market.n_bidders, market.n_items),
        learners=market.population.init_params(),
        utility=market.utility.init_params(),
    )


def tile_params(params: Params, size: int) -> Params:
    """Every leaf repeated on a new leading axis of ``size``: the start of a sweep, whose swept leaves are then
    replaced (``params._replace(...)``) and which runs under ``vmap``."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (size, *jnp.shape(x))), params)


def _bidder_range(sl: slice) -> str:
    return f"bidder {sl.start}" if sl.stop - sl.start == 1 else f"bidders {sl.start}-{sl.stop - 1}"


def check_market(market: Market, params: MarketParams | None = None) -> None:
    """Refuse a market whose parts do not fit together, naming the problem.

    Structure: bidder and item counts agree; a group with a tabular learner
    gets integer observations. With concrete ``params`` (any leading sweep
    axes): the prior's bounds are valid and every tabular learner's table
    covers every value its bidders can draw; learner params are valid.
    """
    n, m = market.n_bidders, market.n_items
    check_choice(market.information, INFORMATION_RULES, "information rule")
    if market.population.n_bidders != n:
        raise ValueError(f"the mechanism is built for {n} bidders but the population has {market.population.n_bidders}")
    for group, sl in zip(market.population.groups, market.population.slices, strict=True):
        if group.feedback == FULL_INFORMATION and m != 1:
            raise ValueError(f"{group.name} learns from full-information feedback, defined for one item (m = {m})")
        if group.observation_levels is not None and not market.prior.integer:
            raise ValueError(
                f"{_bidder_range(sl)} ({group.name}) learn a table over integer value levels, but prior "
                f"{market.prior.name!r} draws continuous values: use an integer prior (uniform_int)"
            )
    if params is None:  # the defaults; the mechanism's params are not needed to check the market
        params = MarketParams(None, market.prior.init_params(n, m), market.population.init_params(), ())
    market.prior.check_params(params.prior)
    for group, sl, p in zip(market.population.groups, market.population.slices, params.learners, strict=True):
        group.check_params(p)
        low, high = market.prior.support(params.prior)
        if group.observation_levels is None or not (is_concrete(low) and is_concrete(high)):
            continue
        top = float(np.max(np.asarray(high)[..., sl, :]))
        if top > group.observation_levels - 1 or float(np.min(np.asarray(low)[..., sl, :])) < 0:
            raise ValueError(
                f"{_bidder_range(sl)} ({group.name}) keep tables over value levels 0..{group.observation_levels - 1}, "
                f"but the prior draws values up to {top:g}: build the learner with n_values >= {int(top) + 1}"
            )


def refuse_external(market: Market, what: str) -> None:
    """Refuse to run a market whose bids come partly from outside (``external`` bidders) without the environment
    that writes them: those bidders would bid their initial state, 0, in every auction."""
    agents = [g.n_bidders for g in market.population.groups if g.name == EXTERNAL]
    if agents:
        raise ValueError(f"{what}: the market has {sum(agents)} external bidder(s), whose bids come from an "
                         "environment (jaxauction.envs); step it there, or give them a learner")  # fmt: skip


class Auction(NamedTuple):
    """One auction's record (all ``[n, ...]``): types, bids, outcome and utilities, and the outcome's key."""

    types: Types
    bids: Array
    outcome: Outcome
    utility: Array
    outcome_key: PRNGKey


def _mechanism(market: Market) -> Mechanism:
    return checked(market.mechanism) if market.checked else market.mechanism


def at_time(params: MarketParams, tau: Array | float) -> MarketParams:
    """``params`` for the auction at the point ``tau`` in ``[0, 1)`` of the horizon: every dynamic rule's clock
    set (``mechanisms.dynamic``); static rules' params unchanged."""
    return params._replace(mechanism=set_time(params.mechanism, tau))


def draw_types(market: Market, params: MarketParams, key: PRNGKey) -> Types:
    """The types of the auction played with ``key``: the draw ``play`` makes, known before anyone bids (an
    environment shows an agent its observation with it)."""
    return market.prior.sample(jax.random.split(key, 3)[0], params.prior)


def play(market: Market, params: MarketParams, states: tuple[State, ...], key: PRNGKey) -> Auction:
    """One auction with frozen bidders: types -> bids -> outcome -> utilities."""
    _, k_bids, k_outcome = jax.random.split(key, 3)
    types = draw_types(market, params, key)
    if market.checked:
        checkify.check(jnp.all(jnp.isfinite(types.values)), "the prior drew NaN or infinite values")
    bids = market.population.act(k_bids, states, types.observation(), params.learners)
    outcome = _mechanism(market).apply(params.mechanism, bids, k_outcome)
    utility = market.utility.apply(types, outcome, params.utility)
    if market.checked:
        checkify.check(jnp.all(jnp.isfinite(utility)), "utilities hold NaN or infinite entries")
    return Auction(types, bids, outcome, utility, k_outcome)


def counterfactual_utilities(
    market: Market, params: MarketParams, record: Auction, bidders: slice, grid: Array, relative: bool = False,
    capped: bool = False,
) -> Array:  # fmt: skip
    """``[k, G]``: each of ``bidders``' utility had it bid ``grid[g]`` (one item), all else held fixed.

    ``relative``: bid ``grid[g]`` times the bidder's observation instead;
    ``capped``: ``min(grid[g], observation)``. The mechanism's randomness
    (tie-breaking) is held fixed too: it reuses the auction's outcome key.
    """
    grid = jnp.asarray(grid, record.bids.dtype)
    observations = record.types.observation()

    def one(i: Array, point: Array) -> Array:
        bid = grid_bids(point, observations[i, 0], relative, capped)
        outcome = market.mechanism.apply(params.mechanism, record.bids.at[i, 0].set(bid), record.outcome_key)
        return market.utility.apply(record.types, outcome, params.utility)[i]

    rows = jnp.arange(bidders.start, bidders.stop)
    return jax.vmap(lambda i: jax.vmap(lambda b: one(i, b))(grid))(rows)


def learn(
    market: Market, params: MarketParams, states: tuple[State, ...], record: Auction, key: PRNGKey
) -> tuple[State, ...]:
    """Every group's update after the auction ``record`` played with ``key``."""
    observations = record.types.observation()
    population = market.population
    new_states = []
    update_keys = population.keys(jax.random.fold_in(key, _UPDATE_KEY))
    for group, sl, state, p, k in zip(
        population.groups, population.slices, states, params.learners, update_keys, strict=True
    ):
        counterfactual = observed = None
        if group.feedback == FULL_INFORMATION:
            counterfactual = counterfactual_utilities(market, params, record, sl, group.bid_grid, group.relative_grid,
                                                      group.capped_grid)  # fmt: skip
            if market.information == WINNER_ONLY:
                grid = jnp.asarray(group.bid_grid)[None, :]
                bids = grid_bids(grid, observations[sl, :1], group.relative_grid, group.capped_grid)
                won = jnp.sum(record.outcome.allocation[sl], axis=-1) > 0
                observed = won[:, None] | (bids <= record.bids[sl, :1])
        feedback = Feedback(
            observations[sl], record.bids[sl], record.outcome.allocation[sl], record.outcome.payments[sl],
            record.utility[sl], counterfactual, observed,
        )  # fmt: skip
        new_states.append(group.update(k, state, feedback, p))
    return tuple(new_states)


def auction(
    market: Market, params: MarketParams, states: tuple[State, ...], key: PRNGKey
) -> tuple[tuple[State, ...], Auction]:
    """One learning auction: play, then every bidder learns from its feedback."""
    record = play(market, params, states, key)
    return learn(market, params, states, record, key), record


class RoundMetrics(NamedTuple):
    """Per-window results of one round of one market (``W`` windows).

    revenue: ``[W]`` mean revenue (sum of payments) per auction.
    utility: ``[W, n]`` mean utility per bidder.
    efficiency: ``[W]`` realised over optimal welfare, summed over the window; for procurement (the ``seller``
      utility), the cheapest over the realised cost (see ``metrics``).
    bid: ``[W, n]`` mean bid per bidder (over its items too): how the learners' bids move over a round.
    """

    revenue: Array
    utility: Array
    efficiency: Array
    bid: Array

    @property
    def platform_reward(self) -> Array:
        """The seed's platform reward: mean revenue over the last window."""
        return self.revenue[..., -1]


def sum_block(window: int, largest: int = 1024) -> int:
    """The largest divisor of ``window`` up to ``largest``: the auctions summed plainly between compensated adds."""
    return max(d for d in range(1, min(window, largest) + 1) if window % d == 0)


def run_round(
    market: Market,
    n_auctions: int,
    window: int,
    params: MarketParams,
    states: tuple[State, ...],
    key: PRNGKey,
    unroll: int = 1,
) -> tuple[tuple[State, ...], RoundMetrics]:
    """``n_auctions`` learning auctions against fixed ``params`` (a dynamic rule's clock runs over them: auction
    ``t`` is played at ``tau = t / n_auctions``, see ``at_time``).

    A ``lax.scan`` over ``n_auctions // window`` windows, each a ``lax.scan``
    over blocks of ``sum_block(window)`` auctions (at most 1,024), each a
    ``lax.scan`` over auctions (``unroll`` per loop iteration). Auction ``t``
    uses ``fold_in(key, t)``. Metrics are summed in float32 within a block and
    the block sums are added with compensation, so window sums stay exact to
    float32 rounding for windows of any length.
    """
    check_positive_int(n_auctions, "n_auctions")
    check_positive_int(window, "window")
    refuse_external(market, "run_round")
    if n_auctions % window:
        raise ValueError(f"n_auctions ({n_auctions}) must be a multiple of the revenue window ({window})")
    n, block = market.n_bidders, sum_block(window)

    def one_auction(carry, t):
        states, sums = carry
        timed = at_time(params, t / n_auctions)
        states, record = auction(market, timed, states, jax.random.fold_in(key, t))
        achieved, best = efficiency_terms(record.types, record.outcome, market.mechanism.units, market.utility.costs)
        outcome = jnp.stack([revenue(record.outcome), achieved, best])
        bid = jnp.mean(record.bids.astype(jnp.float32), axis=-1)
        return (states, (sums[0] + outcome, sums[1] + record.utility, sums[2] + bid)), None

    def one_block(carry, first):
        states, sums = carry
        zeros = (jnp.zeros((3,), jnp.float32), jnp.zeros((n,), jnp.float32), jnp.zeros((n,), jnp.float32))
        (states, block_sums), _ = jax.lax.scan(one_auction, (states, zeros), first + jnp.arange(block), unroll=unroll)
        return (states, tuple(s.add(b) for s, b in zip(sums, block_sums, strict=True))), None

    def one_window(states, first):
        # revenue and efficiency's two terms; utilities; bids
        zeros = (KahanSum.zeros((3,)), KahanSum.zeros((n,)), KahanSum.zeros((n,)))
        (states, sums), _ = jax.lax.scan(one_block, (states, zeros), first + jnp.arange(0, window, block))
        (revenue_sum, achieved_sum, best_sum), utility_sum, bid_sum = (x.total for x in sums)
        efficiency = efficiency_ratio(achieved_sum, best_sum)
        return states, RoundMetrics(revenue_sum / window, utility_sum / window, efficiency, bid_sum / window)

    return jax.lax.scan(one_window, states, jnp.arange(0, n_auctions, window))


class Dataset(NamedTuple):
    """Auctions played by frozen bidders: ``types`` and ``bids`` ``[D, n, ...]``, the outcome keys ``[D]``."""

    types: Types
    bids: Array
    keys: Array


def fresh_round(
    market: Market, params: MarketParams, init_key: PRNGKey, round_key: PRNGKey, n_auctions: int, window: int
) -> tuple[tuple[State, ...], RoundMetrics]:
    """Fresh bidders (states from ``init_key``) learn for ``n_auctions`` auctions against fixed ``params``: the
    one way every evaluation, study and search starts its bidders."""
    states = market.population.init(init_key, params.learners)
    return run_round(market, n_auctions, window, params, states, round_key)


def collect(market: Market, size: int, params: MarketParams, states: tuple[State, ...], key: PRNGKey) -> Dataset:
    """``size`` independent auctions with frozen bidders (they act, exploration included, but do not learn)."""
    check_positive_int(size, "size")
    refuse_external(market, "collect")

    records = jax.vmap(lambda k: play(market, params, states, k))(jax.random.split(key, size))
    return Dataset(records.types, records.bids, records.outcome_key)


def policy_grid(market: Market, points: int = 11) -> np.ndarray:
    """Observations ``[G, d]`` to summarise learned bid functions on, from the prior's default bounds.

    Integer priors: every value level from the lowest to the highest bound (at
    most 101); continuous priors: ``points`` values spread over the range.
    Every item gets the same value.
    """
    params = market.prior.init_params(market.n_bidders, market.n_items)
    low, high = (float(np.min(params.low)), float(np.max(params.high)))
    if market.prior.integer and high - low < 101:
        levels = np.arange(low, high + 1)
    else:
        levels = np.linspace(low, high, points)
    return np.repeat(levels[:, None], market.n_items, axis=1).astype(np.float32)
