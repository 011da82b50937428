"""The discrete choices of the tabular learners (Hedge, policy gradient): contexts and actions, for one item.

Two kinds of grid:

* ``absolute`` (the original platform's): the context is the integer value
  level ``v`` in ``0..n_values-1`` and action ``a`` bids ``a`` in
  ``0..n_bids-1``; without overbid only bids ``0..v`` are allowed. For
  integer priors (``uniform_int``).
* ``fraction`` (for continuous values): the context is the value's bin,
  ``min(floor(v / top * n_contexts), n_contexts - 1)`` over ``[0, top]``, and
  action ``a`` bids ``fractions[a] * v`` with ``fractions`` spread evenly over
  ``[0, max_fraction]`` (1: never above the value).
* ``capped`` (for continuous values, "absolute bids per value bin"): the
  context is the value's bin as above, and action ``a`` bids
  ``min(levels[a], v)`` with ``levels`` spread evenly over ``[0, max_fraction
  * top]``: an absolute bid, never above the value. Use it with reserves: a
  fraction grid's bid ``f * v`` cannot clear a reserve ``r`` for every value of
  the bin that holds ``r`` while leaving surplus (in the bin ``[0.5, 0.6)``
  with ``r = 0.5`` only ``f = 1`` clears for ``v = 0.5``), so values just above
  the reserve never enter; the level ``r`` clears it for the whole bin.

``Learner.bid_grid`` holds the actions' bids (absolute) or fractions, with
``relative_grid`` telling the market which, so that full-information feedback
(``Feedback.counterfactual [k, A]``) is the utility of every action.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_choice, check_finite, check_positive_int, is_concrete
from jaxauction.bidders.base import Learner
from jaxauction.types import BANDIT, Array, Feedback, Params, PRNGKey, State

GRIDS = ("absolute", "fraction", "capped")


@dataclasses.dataclass(frozen=True)
class BidGrid:
    """Contexts and actions of a tabular learner (static structure).

    Build one with ``absolute_grid`` or ``fraction_grid``.
    """

    kind: str
    n_contexts: int
    n_actions: int
    overbid: bool = False
    top: float = 1.0  # fraction and capped grids: values are binned over [0, top]
    max_fraction: float = 1.0  # fraction grids: the largest bid as a fraction of the value; capped: of top

    def __post_init__(self) -> None:
        check_choice(self.kind, GRIDS, "grid")
        check_positive_int(self.n_contexts, "n_contexts")
        check_positive_int(self.n_actions, "n_actions", minimum=2)
        check_finite(self.top, "top", positive=True)
        check_finite(self.max_fraction, "max_fraction", positive=True)
        if self.kind == "absolute" and not self.overbid and self.n_contexts > self.n_actions:
            raise ValueError(f"without overbid a bidder may bid up to its value, so n_bids ({self.n_actions}) "
                             f"must be >= n_values ({self.n_contexts})")  # fmt: skip

    @property
    def relative(self) -> bool:
        return self.kind == "fraction"

    @property
    def capped(self) -> bool:
        return self.kind == "capped"

    @property
    def binned(self) -> bool:
        """Contexts are value bins over ``[0, top]`` (fraction and capped grids), not integer value levels."""
        return self.kind != "absolute"

    @property
    def points(self) -> np.ndarray:
        """The actions' bids (absolute), fractions of the value (fraction) or bid levels (capped), ``[A]`` float32."""
        if self.relative:
            return np.linspace(0.0, self.max_fraction, self.n_actions).astype(np.float32)
        if self.capped:
            return np.linspace(0.0, self.max_fraction * self.top, self.n_actions).astype(np.float32)
        return np.arange(self.n_actions, dtype=np.float32)

    @property
    def top_bid(self) -> float:
        """The largest bid the grid can make: the default utility scale of the learners on it."""
        return self.top * self.max_fraction if self.binned else float(self.n_actions - 1)

    @property
    def observation_levels(self) -> int | None:
        """Absolute grids keep a table per integer value level (the market checks the prior draws only those)."""
        return None if self.binned else self.n_contexts

    @property
    def max_bid(self) -> float | None:
        return None if self.binned else float(self.n_actions - 1)

    def context(self, values: Array) -> Array:
        """``[...]`` int32 contexts of values ``[...]``."""
        if self.binned:
            return jnp.clip(jnp.floor(values / self.top * self.n_contexts), 0, self.n_contexts - 1).astype(jnp.int32)
        return values.astype(jnp.int32)

    def allowed(self, context: Array) -> Array:
        """``[..., A]`` which actions a bidder in ``context`` may take."""
        if self.binned or self.overbid:
            return jnp.ones((*context.shape, self.n_actions), bool)
        return jnp.arange(self.n_actions) <= context[..., None]

    def bids(self, actions: Array, values: Array) -> Array:
        """The bids ``[...]`` of ``actions [...]`` for bidders with ``values [...]``."""
        return grid_bids(jnp.asarray(self.points)[actions], values, self.relative, self.capped)

    def action(self, bids: Array, values: Array) -> Array:
        """The action that made ``bids`` (the nearest grid point; fraction grids: 0 for a value of 0; capped
        grids: a bid capped at the value is the lowest level at or above it, which bids the same)."""
        if self.relative:
            step = self.max_fraction / (self.n_actions - 1)
            fraction = jnp.where(values > 0, bids / jnp.where(values > 0, values, 1.0), 0.0)
            return jnp.clip(jnp.round(fraction / step), 0, self.n_actions - 1).astype(jnp.int32)
        if self.capped:
            step = self.max_fraction * self.top / (self.n_actions - 1)
            return jnp.clip(jnp.ceil(bids / step - 1e-3), 0, self.n_actions - 1).astype(jnp.int32)
        return bids.astype(jnp.int32)


def grid_bids(points: Array, observations: Array, relative: bool, capped: bool) -> Array:
    """What the grid ``points`` bid for bidders observing ``observations`` (broadcast together): the points
    themselves, fractions of the observation (``relative``), or levels capped at it (``capped``)."""
    if relative:
        return points * observations
    if capped:
        return jnp.minimum(points, observations)
    return points


def absolute_grid(n_values: int = 10, n_bids: int = 10, overbid: bool = False) -> BidGrid:
    """Integer values ``0..n_values-1``, bids ``0..n_bids-1`` (the original's grid)."""
    return BidGrid("absolute", n_values, n_bids, overbid=overbid)


def fraction_grid(top: float, n_bins: int = 10, n_fractions: int = 51, max_fraction: float = 1.0) -> BidGrid:
    """Values binned into ``n_bins`` over ``[0, top]``; bids ``f * value`` for ``n_fractions`` even ``f``."""
    return BidGrid("fraction", n_bins, n_fractions, top=float(top), max_fraction=float(max_fraction))


def capped_grid(top: float, n_bins: int = 10, n_levels: int = 51, max_fraction: float = 1.0) -> BidGrid:
    """Values binned into ``n_bins`` over ``[0, top]``; bids ``min(level, value)`` for ``n_levels`` even levels
    over ``[0, max_fraction * top]`` (absolute bids per value bin, never above the value)."""
    return BidGrid("capped", n_bins, n_levels, top=float(top), max_fraction=float(max_fraction))


class StepParams(NamedTuple):
    """A tabular learner's numbers (EXP3, no-swap-regret): its learning rate > 0 and its utility scale > 0."""

    learning_rate: Array  # float32 > 0
    scale: Array  # float32 > 0: utilities are divided by it


def step_params(
    name: str, learning_rate: float, scale: float
) -> tuple[Callable[[], StepParams], Callable[[StepParams], None]]:
    """``(init_params, check_params)`` of a learner with a ``StepParams``; the defaults are checked at once."""

    def check_params(params: StepParams) -> None:
        if all(is_concrete(x) for x in params):
            check_finite(np.asarray(params.learning_rate), f"{name} learning_rate", positive=True)
            check_finite(np.asarray(params.scale), f"{name} scale", positive=True)

    check_params(StepParams(np.float32(learning_rate), np.float32(scale)))
    return lambda: StepParams(jnp.float32(learning_rate), jnp.float32(scale)), check_params


def uniform_log_weights(grid: BidGrid) -> Array:
    """``[C, A]`` log of the uniform distribution over each context's allowed actions (``-inf`` elsewhere)."""
    allowed = grid.allowed(jnp.arange(grid.n_contexts))
    return jnp.where(allowed, 0.0, -jnp.inf) - jnp.log(jnp.sum(allowed, axis=-1, keepdims=True))


def softmax_table_learner(
    name: str,
    n_bidders: int,
    grid: BidGrid,
    logits: Callable[[State, Array, Array], Array],
    init: Callable[[PRNGKey, Params], State],
    update: Callable[[PRNGKey, State, Feedback, Params], State],
    init_params: Callable[[], Params],
    check_params: Callable[[Params], None],
    feedback: str = BANDIT,
) -> Learner:
    """A group that bids an action drawn from ``softmax(logits(state, bidders, contexts))`` (the ``[..., A]``
    logits of those bidders in those contexts, ``-inf`` where not allowed) and whose ``policy`` is their argmax:
    Hedge, EXP3, no-swap-regret and policy gradient."""
    rows = jnp.arange(n_bidders)

    def act(key: PRNGKey, state: State, observations: Array, params: Params) -> Array:
        values = observations[:, 0]
        actions = jax.random.categorical(key, logits(state, rows, grid.context(values)), axis=-1)
        return grid.bids(actions, values)[:, None].astype(observations.dtype)

    def policy(state: State, observations: Array, params: Params) -> Array:
        values = observations[..., 0]  # [k, G]
        best = jnp.argmax(logits(state, rows[:, None], grid.context(values)), axis=-1)  # [k, G]
        return grid.bids(best, values)[..., None]

    return Learner(
        name=name,
        n_bidders=n_bidders,
        init=init,
        act=act,
        update=update,
        init_params=init_params,
        policy=policy,
        feedback=feedback,
        bid_grid=grid.points,
        relative_grid=grid.relative,
        capped_grid=grid.capped,
        observation_levels=grid.observation_levels,
        max_bid=grid.max_bid,
        check_params=check_params,
    )
