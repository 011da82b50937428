"""The original platform's epsilon-greedy contextual bandit bidder, for a stacked group.

Each bidder keeps, per item, a table of estimates over (value level v, bid b)
arms, as the original's ``EpsilonGreedy_auction`` (its multi-item bidder keeps
one such table per item and updates each with the auction's total utility):

* allowed bids: ``0..v`` (no overbid, the seed's default) or ``0..n_bids-1``;
* explore iff ``U < eps`` or ``t < explore_steps`` (forced uniform
  exploration), uniformly over the allowed bids; otherwise the greedy bid,
  ties broken uniformly at random;
* update of the pulled arm, with ``c`` its count including this pull:
  ``estimate <- (utility + estimate * c) / (c + 1)``, a running mean shrunk
  towards the initial 0 by one phantom observation;
* ``t += 1``; when ``t == explore_steps`` every count is reset to 1
  (estimates kept); ``eps = 0.5 ** (t / half_life)``.

``explore_steps`` and ``half_life`` are params (arrays), so a sweep over them
is a ``vmap``; the table sizes (``n_values``, ``n_bids``, items) are static.

The counts reset is applied lazily, so that no auction touches the whole
table: before the reset a count is at most ``explore_steps``, so counts
written after the reset are stored offset by ``explore_steps``. A stored count
``<= explore_steps`` read after the reset is an arm not pulled since, whose
count is 1. ``effective_counts`` decodes the table; this is exactly the
original's eager reset (tests compare it with a direct port).

The original increments ``counts`` when it *selects* an arm, even with frozen
bidders in dataset mode (original bug 12). Here ``act`` never changes state:
counts move only in ``update``, which is the same for learning auctions.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_finite, check_positive_int, is_concrete
from jaxauction._ops import nth_true, row_max, row_sum
from jaxauction.bidders.base import Learner
from jaxauction.priors import uniform
from jaxauction.types import Array, Feedback, PRNGKey


class EpsilonGreedyParams(NamedTuple):
    """``epsilon_greedy``'s numbers: forced uniform exploration steps (the original's ``start_point``), then epsilon =
    0.5 ** (t / half_life) (the original's ``step_floor``)."""

    explore_steps: Array  # int32: forced uniform exploration (the original's start_point)
    half_life: Array  # float32: eps = 0.5 ** (t / half_life) (the original's step_floor)


class EpsilonGreedyState(NamedTuple):
    """``epsilon_greedy``'s state for ``k`` bidders: value estimates and encoded pull counts per item, value level and
    bid, and the updates so far."""

    estimates: Array  # [k, m, V, B] float32
    counts: Array  # [k, m, V, B] int32, encoded pull counts (decode with effective_counts)
    t: Array  # [k] int32, updates so far


def epsilon(params: EpsilonGreedyParams, t: Array) -> Array:
    """The exploration rate after ``t`` updates: ``0.5 ** (t / half_life)``."""
    return jnp.exp2(-t.astype(jnp.float32) / params.half_life)


def _reset_done(params: EpsilonGreedyParams, t: Array) -> Array:
    """Whether the counts reset has happened after ``t`` updates (it never happens with no forced exploration)."""
    return (t >= params.explore_steps) & (params.explore_steps > 0)


def _decode_counts(params: EpsilonGreedyParams, stored: Array, reset_done: Array) -> Array:
    offset = params.explore_steps
    return jnp.where(stored > offset, stored - offset, jnp.where(reset_done, 1, stored))


def effective_counts(params: EpsilonGreedyParams, state: EpsilonGreedyState) -> Array:
    """The counts table as the original holds it (with the reset applied), ``[k, m, V, B]``."""
    return _decode_counts(params, state.counts, _reset_done(params, state.t)[:, None, None, None])


def epsilon_greedy(
    n_bidders: int,
    n_values: int = 10,
    n_bids: int = 10,
    overbid: bool = False,
    n_items: int = 1,
    explore_steps: int = 20_000,
    half_life: float = 10_000.0,
) -> Learner:
    """A group of ``n_bidders`` epsilon-greedy bandit bidders.

    Args:
      n_values: value levels ``0..n_values-1`` (the table's context axis); the
        market refuses priors that can draw other values.
      n_bids: the bid grid ``0..n_bids-1``.
      overbid: allow bids above the value (the seed does not).
      n_items: one table per item; every item's arm is updated with the
        auction's total utility (the original's multi-item bidder).
      explore_steps, half_life: the defaults of the params (``init_params``).
    """
    for name, value in (("n_bidders", n_bidders), ("n_values", n_values), ("n_bids", n_bids), ("n_items", n_items)):
        check_positive_int(value, name)
    if not overbid and n_values > n_bids:
        raise ValueError(
            f"without overbid a bidder may bid up to its value, so n_bids ({n_bids}) must be >= n_values ({n_values})"
        )
    k, m, V, B = n_bidders, n_items, n_values, n_bids
    defaults = (explore_steps, half_life)
    bidders = jnp.arange(k)[:, None]
    items = jnp.arange(m)[None, :]

    def check_params(params: EpsilonGreedyParams) -> None:
        if is_concrete(params.explore_steps) and is_concrete(params.half_life):
            check_finite(np.asarray(params.explore_steps), "explore_steps", minimum=0)
            check_finite(np.asarray(params.half_life), "half_life", positive=True)

    check_params(EpsilonGreedyParams(*defaults))

    def init_params() -> EpsilonGreedyParams:
        return EpsilonGreedyParams(jnp.asarray(defaults[0], jnp.int32), jnp.asarray(defaults[1], jnp.float32))

    def init(key: PRNGKey, params: EpsilonGreedyParams) -> EpsilonGreedyState:
        del key, params
        return EpsilonGreedyState(
            estimates=jnp.zeros((k, m, V, B), jnp.float32),
            counts=jnp.zeros((k, m, V, B), jnp.int32),
            t=jnp.zeros((k,), jnp.int32),
        )

    def n_allowed(v: Array) -> Array:
        """How many bids (``0..upper-1``) a bidder with value level ``v`` may make."""
        return jnp.full_like(v, B) if overbid else v + 1

    def act(key: PRNGKey, state: EpsilonGreedyState, observations: Array, params: EpsilonGreedyParams) -> Array:
        v = observations.astype(jnp.int32)  # [k, m]
        u = uniform(key, (2, k, m))
        allowed_count = n_allowed(v)
        allowed = jnp.arange(B) < allowed_count[..., None]
        forced = state.t < params.explore_steps
        explore = (u[0] < epsilon(params, state.t)[:, None]) | forced[:, None]
        rows = state.estimates[bidders, items, v]  # [k, m, B]
        best = row_max(jnp.where(allowed, rows, -jnp.inf))
        tied = (allowed & (rows == best[..., None])).astype(jnp.float32)
        # One uniform picks uniformly among the allowed bids (explore) or among the tied greedy bids.
        n_choices = jnp.where(explore, allowed_count.astype(jnp.float32), row_sum(tied))
        pick = jnp.minimum(jnp.floor(u[1] * n_choices), n_choices - 1)
        return jnp.where(explore, pick, nth_true(tied, pick)).astype(observations.dtype)

    def update(key: PRNGKey, state: EpsilonGreedyState, feedback: Feedback, params: EpsilonGreedyParams):
        del key
        v = feedback.observation.astype(jnp.int32)
        b = feedback.bids.astype(jnp.int32)
        arm = (bidders, items, v, b)
        reset_done = _reset_done(params, state.t)[:, None]
        c = _decode_counts(params, state.counts[arm], reset_done) + 1  # this pull included
        estimate = (feedback.utility[:, None] + state.estimates[arm] * c) / (c + 1)
        stored = jnp.where(reset_done, c + params.explore_steps, c)
        return EpsilonGreedyState(
            estimates=state.estimates.at[arm].set(estimate), counts=state.counts.at[arm].set(stored), t=state.t + 1
        )

    def policy(state: EpsilonGreedyState, observations: Array, params: EpsilonGreedyParams) -> Array:
        """``[k, G, m]``: the greedy bid per observation (the lowest bid among tied estimates)."""
        del params
        v = jnp.clip(observations.astype(jnp.int32), 0, V - 1)  # [k, G, m]
        rows = state.estimates[bidders[:, :, None], items[:, None, :], v]  # [k, G, m, B]
        allowed = jnp.arange(B) < n_allowed(v)[..., None]
        return jnp.argmax(jnp.where(allowed, rows, -jnp.inf), axis=-1).astype(jnp.float32)

    return Learner(
        name="epsilon_greedy",
        n_bidders=k,
        init=init,
        act=act,
        update=update,
        init_params=init_params,
        policy=policy,
        observation_levels=V,
        max_bid=float(B - 1),
        check_params=check_params,
    )
