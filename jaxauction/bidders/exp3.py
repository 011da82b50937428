"""EXP3 over a bid grid, per context, from bandit feedback (Auer, Cesa-Bianchi, Freund and Schapire, 2002).

Each bidder keeps log-weights ``W[context, action]`` (``-inf`` off the
allowed actions), bids an action ``a`` drawn from ``p = softmax(W[c])`` and,
after the auction, sees only its own utility ``r``. It turns ``r`` into a
loss in ``[0, 1]``, ``l = (1 - r / rho) / 2`` (``rho``: the utility scale,
the grid's top bid by default, so ``|r| <= rho`` for bids up to the value),
and charges the played bid its importance-weighted loss::

    W[c, a] <- W[c, a] - eta * l / P(b)   for every action a that bids b

(``P(b)``: the probability of the bid made, the sum over the actions that
make it: one action, except on a capped grid, whose levels above the value
all bid the value)
an unbiased estimate of every action's loss (the loss-based EXP3 of Bubeck
and Cesa-Bianchi, "Regret Analysis of Stochastic and Nonstochastic
Multi-armed Bandit Problems", 2012, section 3.1). With ``eta =
sqrt(2 ln K / (T K))`` its expected regret against the best fixed action is
at most ``sqrt(2 T K ln K)``. It is mean-based in the sense of Braverman et
al. (EC 2018): an action whose estimated total utility trails the best one's
by a margin linear in ``T`` is played with vanishing probability.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner
from jaxauction.bidders.grid import BidGrid, StepParams, softmax_table_learner, step_params, uniform_log_weights
from jaxauction.types import Array, Feedback, PRNGKey


class EXP3State(NamedTuple):
    log_weights: Array  # [k, C, A] float32, each allowed row normalised (-inf: not allowed)
    t: Array  # [k] int32


def exp3(n_bidders: int, grid: BidGrid, learning_rate: float = 0.01, scale: float | None = None) -> Learner:
    """A group of ``n_bidders`` EXP3 bidders on ``grid`` (one item); params ``StepParams(eta, rho)``."""
    check_positive_int(n_bidders, "n_bidders")
    k, C, A = n_bidders, grid.n_contexts, grid.n_actions
    init_params, check_params = step_params("exp3", learning_rate, grid.top_bid if scale is None else scale)

    def init(key: PRNGKey, params: StepParams) -> EXP3State:
        del key, params
        return EXP3State(jnp.broadcast_to(uniform_log_weights(grid), (k, C, A)), jnp.zeros((k,), jnp.int32))

    def update(key: PRNGKey, state: EXP3State, feedback: Feedback, params: StepParams) -> EXP3State:
        del key
        values = feedback.observation[:, 0]
        context, rows = grid.context(values), jnp.arange(k)
        row = state.log_weights[rows, context]  # [k, A]
        # every action that makes the bid made (a capped grid's levels above the value all bid the value)
        same = jnp.isclose(grid.bids(jnp.arange(A)[None, :], values[:, None]), feedback.bids, rtol=1e-6, atol=1e-6)
        played = jnp.sum(jnp.where(same, jnp.exp(row), 0.0), axis=-1)  # [k] the probability of the bid made
        loss = jnp.clip((1.0 - feedback.utility / params.scale) / 2.0, 0.0, 1.0)
        row = row - jnp.where(same, (params.learning_rate * loss / played)[:, None], 0.0)
        row = row - jax.nn.logsumexp(row, axis=-1, keepdims=True)
        return EXP3State(state.log_weights.at[rows, context].set(row), state.t + 1)

    return softmax_table_learner("exp3", k, grid, lambda state, bidders, contexts: state.log_weights[bidders, contexts],
                                 init, update, init_params, check_params)  # fmt: skip
