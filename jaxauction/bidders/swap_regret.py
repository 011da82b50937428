"""A no-swap-regret bidder: the Blum-Mansour reduction over Hedge, per context, from full-information feedback.

Blum and Mansour, "From External to Internal Regret" (JMLR 2007): one Hedge
instance per action ``i``, each holding a distribution ``q_i`` over the
actions (a row of the row-stochastic ``Q [A, A]``). The bidder plays the
stationary distribution ``p = p Q`` of their combination, and after every
auction instance ``i`` receives the utility of every action scaled by the
weight it was given, ``p_i r``::

    q_i(j) <- q_i(j) exp(eta p_i r_j / rho),   then normalised

(``rho``: the utility scale, the grid's top bid by default). The external
regret of each instance bounds the bidder's *swap* regret: no fixed
relabelling ``i -> phi(i)`` of its past actions would have earned more than
``O(sqrt(T A log A))``. Such a bidder is not mean-based in the sense of
Braverman et al. (EC 2018), and against it no mechanism earns more per
auction than against a best-responding bidder (their Theorem 4.1: Myerson's
reserve, for one buyer).

``p`` is the solution of ``(Q^T - I) p = 0`` with ``sum(p) = 1``, solved
exactly per context (``jnp.linalg.solve``); actions a bidder may not take
(bids above its value without overbid) have no weight in any ``q_i``, so
``p`` gives them none.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner
from jaxauction.bidders.grid import BidGrid, StepParams, softmax_table_learner, step_params, uniform_log_weights
from jaxauction.types import FULL_INFORMATION, Array, Feedback, PRNGKey


class SwapRegretState(NamedTuple):
    log_q: Array  # [k, C, A, A] float32: row i is instance i's log distribution over actions (-inf: not allowed)
    t: Array  # [k] int32


def stationary(q: Array, allowed: Array | None = None) -> Array:
    """``[..., A]`` the stationary distribution ``p = p Q`` of row-stochastic ``q [..., A, A]``; actions outside
    ``allowed [..., A]`` (which no row gives weight) get exactly none."""
    A = q.shape[-1]
    system = jnp.swapaxes(q, -1, -2) - jnp.eye(A, dtype=q.dtype)  # system @ p = 0; its rows sum to zero,
    system = system.at[..., -1, :].set(1.0)  # so one is redundant: replace it by sum(p) = 1
    ones_last = jnp.zeros(q.shape[:-1], q.dtype).at[..., -1].set(1.0)
    p = jnp.linalg.solve(system, ones_last[..., None])[..., 0]
    p = jnp.maximum(p, 0.0)  # float rounding only: the exact solution is a distribution
    if allowed is not None:
        p = jnp.where(allowed, p, 0.0)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def no_swap_regret(n_bidders: int, grid: BidGrid, learning_rate: float = 0.05, scale: float | None = None) -> Learner:
    """A group of ``n_bidders`` Blum-Mansour bidders over Hedge on ``grid`` (one item); params ``StepParams(eta,
    rho)``."""
    check_positive_int(n_bidders, "n_bidders")
    k, C, A = n_bidders, grid.n_contexts, grid.n_actions
    init_params, check_params = step_params("no_swap_regret", learning_rate,
                                            grid.top_bid if scale is None else scale)  # fmt: skip
    allowed = grid.allowed(jnp.arange(C))  # [C, A]

    def init(key: PRNGKey, params: StepParams) -> SwapRegretState:
        del key, params
        row = uniform_log_weights(grid)  # every instance starts uniform over the allowed bids
        return SwapRegretState(jnp.broadcast_to(row[:, None, :], (k, C, A, A)), jnp.zeros((k,), jnp.int32))

    def logits(state: SwapRegretState, bidders: Array, contexts: Array) -> Array:
        """``[..., A]`` log p of those bidders in those contexts (-inf where not allowed)."""
        return jnp.log(stationary(jnp.exp(state.log_q[bidders, contexts]), allowed[contexts]))

    def update(key: PRNGKey, state: SwapRegretState, feedback: Feedback, params: StepParams) -> SwapRegretState:
        del key
        context, rows = grid.context(feedback.observation[:, 0]), jnp.arange(k)
        log_q = state.log_q[rows, context]  # [k, A, A]
        p = stationary(jnp.exp(log_q), allowed[context])  # [k, A] what was played
        step = params.learning_rate * p[:, :, None] * (feedback.counterfactual / params.scale)[:, None, :]
        if feedback.observed is not None:  # the market's information rule hides some counterfactuals
            step = jnp.where(feedback.observed[:, None, :], step, 0.0)
        log_q = log_q + step
        log_q = log_q - jax.nn.logsumexp(log_q, axis=-1, keepdims=True)
        return SwapRegretState(state.log_q.at[rows, context].set(log_q), state.t + 1)

    return softmax_table_learner("no_swap_regret", k, grid, logits, init, update, init_params, check_params,
                                 FULL_INFORMATION)  # fmt: skip
