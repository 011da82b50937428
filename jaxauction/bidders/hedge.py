"""Multiplicative weights (Hedge) over a bid grid, per context, from full-information feedback.

The original platform documents a contextual MWU bidder (``ContextualMWU``;
its code is not in the repository). Each bidder keeps weights
``W[context, action]`` (1 on the allowed actions, 0 elsewhere), bids an
action drawn with probability proportional to its context's row (``policy``:
the heaviest action) and, after every auction, receives the utility ``r_a``
it would have had with every action of its grid, the others' bids held fixed
(``Feedback.counterfactual``), and updates its context's row:

* ``exponential``: ``W_a <- W_a (1 + eps)^(r_a / rho)`` when ``r_a > 0``,
  ``W_a (1 - eps)^(-r_a / rho)`` otherwise;
* ``linear``: ``W_a <- W_a max(0, 1 + eps r_a / rho)``;

then normalises the row to sum 1. Under an information rule that hides
some counterfactuals (``Feedback.observed``), only the observed actions'
weights move. ``eps`` is the learning rate (the docs use
0.05) and ``rho`` the utility scale (not stated in the docs; here the top of
the bid grid by default, so that ``|r / rho| <= 1`` for bids up to the value
and the linear factor stays positive). Documented oddity, fixed: the docs'
exponential branch multiplies the row of the *value* but normalises the row
of the *signal*; here the bidder's own context row is both updated and
normalised. Weights are kept as logarithms, so long runs do not underflow.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_choice, check_finite, check_positive_int, is_concrete
from jaxauction.bidders.base import Learner
from jaxauction.bidders.grid import BidGrid, softmax_table_learner, uniform_log_weights
from jaxauction.types import FULL_INFORMATION, Array, Feedback, PRNGKey

VARIANTS = ("exponential", "linear")


class HedgeParams(NamedTuple):
    """``hedge``'s numbers: the learning rate eps in (0, 1) and the utility scale rho > 0."""

    learning_rate: Array  # float32 eps in (0, 1)
    scale: Array  # float32 rho > 0: utilities are divided by it


class HedgeState(NamedTuple):
    log_weights: Array  # [k, C, A] float32, each row normalised (-inf: not allowed)
    t: Array  # [k] int32, updates so far


def hedge(
    n_bidders: int,
    grid: BidGrid,
    variant: str = "exponential",
    learning_rate: float = 0.05,
    scale: float | None = None,
) -> Learner:
    """A group of ``n_bidders`` Hedge bidders on ``grid`` (one item); ``scale`` defaults to the grid's top bid
    (absolute grids) or its top value (fraction grids)."""
    check_positive_int(n_bidders, "n_bidders")
    check_choice(variant, VARIANTS, "hedge variant")
    k, C, A = n_bidders, grid.n_contexts, grid.n_actions
    scale = grid.top_bid if scale is None else scale
    defaults = (learning_rate, scale)

    def check_params(params: HedgeParams) -> None:
        if is_concrete(params.learning_rate) and is_concrete(params.scale):
            eps = np.asarray(params.learning_rate)
            if not np.all((eps > 0) & (eps < 1)):
                raise ValueError(f"hedge learning_rate must be in (0, 1), got {eps.tolist()}")
            check_finite(np.asarray(params.scale), "hedge scale", positive=True)

    check_params(HedgeParams(np.float32(learning_rate), np.float32(scale)))

    def init_params() -> HedgeParams:
        return HedgeParams(jnp.asarray(defaults[0], jnp.float32), jnp.asarray(defaults[1], jnp.float32))

    def init(key: PRNGKey, params: HedgeParams) -> HedgeState:
        del key, params
        return HedgeState(jnp.broadcast_to(uniform_log_weights(grid), (k, C, A)), jnp.zeros((k,), jnp.int32))

    def update(key: PRNGKey, state: HedgeState, feedback: Feedback, params: HedgeParams) -> HedgeState:
        del key
        context = grid.context(feedback.observation[:, 0])
        r = feedback.counterfactual / params.scale  # [k, A]
        eps = params.learning_rate
        if variant == "exponential":
            step = jnp.where(r > 0, r * jnp.log1p(eps), -r * jnp.log1p(-eps))
        else:
            step = jnp.log(jnp.maximum(1.0 + eps * r, 0.0))
        if feedback.observed is not None:  # the market's information rule hides some counterfactuals
            step = jnp.where(feedback.observed, step, 0.0)
        row = state.log_weights[jnp.arange(k), context] + step
        row = row - jax.nn.logsumexp(row, axis=-1, keepdims=True)
        return HedgeState(state.log_weights.at[jnp.arange(k), context].set(row), state.t + 1)

    return softmax_table_learner(
        f"hedge_{variant}" if variant != "exponential" else "hedge",
        k, grid, lambda state, bidders, contexts: state.log_weights[bidders, contexts], init, update, init_params,
        check_params, FULL_INFORMATION,
    )  # fmt: skip
