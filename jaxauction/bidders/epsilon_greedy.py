"""The original platform's epsilon-greedy contextual bandit bidder, vectorised.

Each bidder keeps a table of estimates over (value level v, bid b) arms, as in
``rl_utils/solver.py:EpsilonGreedy_auction`` (original_behaviour.md section 2.2):

* allowed bids: ``0..v`` (no overbid, the seed's default) or ``0..n_bids-1``;
* explore iff ``U < eps`` or ``t < explore_steps`` (forced uniform exploration),
  uniformly over the allowed bids; otherwise the greedy bid, ties broken
  uniformly at random;
* update of the pulled arm with ``c`` = its count including this pull:
  ``estimate <- (reward + estimate * c) / (c + 1)``, a running mean shrunk
  towards the initial 0 by one phantom observation;
* ``t += 1``; when ``t == explore_steps`` every count is reset to 1 (estimates
  kept); ``eps = 0.5 ** (t / half_life)``.

The counts reset is applied lazily, so that no auction touches the whole
table: before the reset a count is at most ``explore_steps``, so counts written
after the reset are stored offset by ``explore_steps``. A stored count
``<= explore_steps`` read after the reset is an arm not pulled since, whose
count is 1. ``effective_counts`` decodes the table; this is exactly the
original's eager reset (tests compare it with a direct port).

The original increments ``counts`` when it *selects* an arm, even with frozen
bidders in dataset mode (original bug 12). Here ``act`` never changes state:
counts move only in ``update``, which is the same for learning auctions.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner
from jaxauction.types import Array, PRNGKey, Transition


@dataclasses.dataclass(frozen=True)
class EpsilonGreedyConfig:
    n_bidders: int = 3
    n_values: int = 10  # value levels 0..n_values-1 (the table's context axis)
    n_bids: int = 10  # bid grid 0..n_bids-1
    explore_steps: int = 20_000  # forced uniform exploration (the original's start_point)
    half_life: float = 10_000.0  # eps = 0.5 ** (t / half_life) (the original's step_floor)
    overbid: bool = False  # allow bids above the value

    def __post_init__(self) -> None:
        check_positive_int(self.n_bidders, "n_bidders")
        check_positive_int(self.n_values, "n_values")
        check_positive_int(self.n_bids, "n_bids")
        check_positive_int(self.explore_steps, "explore_steps", minimum=0)
        if not self.half_life > 0:
            raise ValueError(f"half_life must be positive, got {self.half_life!r}")
        if not self.overbid and self.n_values > self.n_bids:
            raise ValueError(
                f"without overbid a bidder may bid up to its value, so n_bids ({self.n_bids}) "
                f"must be >= n_values ({self.n_values})"
            )


class EpsilonGreedyState(NamedTuple):
    estimates: Array  # [n, V, B] float32
    counts: Array  # [n, V, B] int32, encoded pull counts (decode with effective_counts)
    t: Array  # [n] int32, updates so far


def epsilon(config: EpsilonGreedyConfig, t: Array) -> Array:
    """The exploration rate after ``t`` updates: ``0.5 ** (t / half_life)``."""
    return jnp.exp2(-t.astype(jnp.float32) / jnp.float32(config.half_life))


def _reset_done(config: EpsilonGreedyConfig, t: Array) -> Array:
    """Whether the counts reset has happened after ``t`` updates (it never happens with no forced exploration)."""
    return (t >= config.explore_steps) & (config.explore_steps > 0)


def _decode_counts(config: EpsilonGreedyConfig, stored: Array, reset_done: Array) -> Array:
    offset = config.explore_steps
    return jnp.where(stored > offset, stored - offset, jnp.where(reset_done, 1, stored))


def effective_counts(config: EpsilonGreedyConfig, state: EpsilonGreedyState) -> Array:
    """The counts table as the original holds it (with the reset applied), ``[n, V, B]``."""
    return _decode_counts(config, state.counts, _reset_done(config, state.t)[:, None, None])


def _n_allowed(config: EpsilonGreedyConfig, v: Array) -> Array:
    """How many bids (``0..upper-1``) a bidder with value level ``v`` may make."""
    return jnp.full_like(v, config.n_bids) if config.overbid else v + 1


def epsilon_greedy(config: EpsilonGreedyConfig) -> Learner:
    n, V, B = config.n_bidders, config.n_values, config.n_bids
    bidders = jnp.arange(n)

    def init(key: PRNGKey) -> EpsilonGreedyState:
        del key
        return EpsilonGreedyState(
            estimates=jnp.zeros((n, V, B), jnp.float32),
            counts=jnp.zeros((n, V, B), jnp.int32),
            t=jnp.zeros((n,), jnp.int32),
        )

    # rank[..., b] = number of entries <= b; a [B, B] matmul is cheaper than cumsum on CPU.
    inclusive = jnp.triu(jnp.ones((B, B), jnp.float32))

    def act(key: PRNGKey, state: EpsilonGreedyState, values: Array) -> Array:
        v = values.astype(jnp.int32)
        u = jax.random.uniform(key, (2, n), dtype=jnp.float32)
        n_allowed = _n_allowed(config, v)
        allowed = jnp.arange(B)[None, :] < n_allowed[:, None]
        explore = (u[0] < epsilon(config, state.t)) | (state.t < config.explore_steps)
        rows = state.estimates[bidders, v]  # [n, B]
        best = jnp.max(jnp.where(allowed, rows, -jnp.inf), axis=-1, keepdims=True)
        tied = (allowed & (rows == best)).astype(jnp.float32)
        # One uniform picks uniformly among the allowed bids (explore) or among the tied greedy bids.
        n_choices = jnp.where(explore, n_allowed.astype(jnp.float32), jnp.sum(tied, axis=-1))
        pick = jnp.minimum(jnp.floor(u[1] * n_choices), n_choices - 1)
        greedy_bid = jnp.sum((tied @ inclusive) <= pick[:, None], axis=-1)  # the (pick+1)-th tied bid
        return jnp.where(explore, pick, greedy_bid).astype(values.dtype)

    def update(state: EpsilonGreedyState, transition: Transition) -> EpsilonGreedyState:
        v = transition.values.astype(jnp.int32)
        b = transition.bids.astype(jnp.int32)
        arm = (bidders, v, b)
        reset_done = _reset_done(config, state.t)
        c = _decode_counts(config, state.counts[arm], reset_done) + 1  # this pull included
        estimate = (transition.utilities + state.estimates[arm] * c) / (c + 1)
        stored = jnp.where(reset_done, c + config.explore_steps, c)
        return EpsilonGreedyState(
            estimates=state.estimates.at[arm].set(estimate), counts=state.counts.at[arm].set(stored), t=state.t + 1
        )

    def greedy_bids(state: EpsilonGreedyState) -> Array:
        """``[n, V]``: the greedy bid per value level (lowest bid among tied estimates)."""
        mask = jnp.arange(B)[None, :] < _n_allowed(config, jnp.arange(V))[:, None]
        return jnp.argmax(jnp.where(mask[None], state.estimates, -jnp.inf), axis=-1).astype(jnp.float32)

    return Learner(name="epsilon_greedy", n_bidders=n, init=init, act=act, update=update, greedy_bids=greedy_bids)
