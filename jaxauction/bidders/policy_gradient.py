"""A softmax policy-gradient (REINFORCE) bidder over a bid grid, per context, from bandit feedback.

Each bidder keeps logits ``theta[context, action]`` (``-inf`` on actions its
context may not take) and a running baseline ``b[context]``. It bids an
action drawn from ``softmax(theta[c])`` (``policy``: the most likely action)
and, after the auction, takes one stochastic gradient step on its expected
utility:

``theta[c] += lr * (u - b[c]) / scale * (onehot(a) - softmax(theta[c]))``,
``b[c] += baseline_rate * (u - b[c])``,

the likelihood-ratio gradient of ``E_pi[u]`` with the baseline as a control
variate. ``lr``, ``baseline_rate`` and ``scale`` (the utility scale) are
params. Bandit feedback: the bidder learns from its own bid and utility only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_finite, check_positive_int, is_concrete
from jaxauction.bidders.base import Learner
from jaxauction.bidders.grid import BidGrid, softmax_table_learner
from jaxauction.types import Array, Feedback, PRNGKey


class PolicyGradientParams(NamedTuple):
    """``policy_gradient``'s numbers: the learning rate, the baseline's rate in (0, 1] and the utility scale."""

    learning_rate: Array  # float32 > 0
    baseline_rate: Array  # float32 in (0, 1]
    scale: Array  # float32 > 0: utilities are divided by it


class PolicyGradientState(NamedTuple):
    logits: Array  # [k, C, A] float32 (-inf: not allowed)
    baseline: Array  # [k, C] float32
    t: Array  # [k] int32


def policy_gradient(
    n_bidders: int,
    grid: BidGrid,
    learning_rate: float = 0.5,
    baseline_rate: float = 0.01,
    scale: float | None = None,
) -> Learner:
    """A group of ``n_bidders`` softmax policy-gradient bidders on ``grid`` (one item)."""
    check_positive_int(n_bidders, "n_bidders")
    k, C, A = n_bidders, grid.n_contexts, grid.n_actions
    scale = grid.top_bid if scale is None else scale
    defaults = (learning_rate, baseline_rate, scale)

    def check_params(params: PolicyGradientParams) -> None:
        if all(is_concrete(x) for x in params):
            check_finite(np.asarray(params.learning_rate), "policy gradient learning_rate", positive=True)
            rate = np.asarray(params.baseline_rate)
            if not np.all((rate > 0) & (rate <= 1)):
                raise ValueError(f"policy gradient baseline_rate must be in (0, 1], got {rate.tolist()}")
            check_finite(np.asarray(params.scale), "policy gradient scale", positive=True)

    check_params(PolicyGradientParams(*(np.float32(x) for x in defaults)))

    def init_params() -> PolicyGradientParams:
        return PolicyGradientParams(*(jnp.asarray(x, jnp.float32) for x in defaults))

    def init(key: PRNGKey, params: PolicyGradientParams) -> PolicyGradientState:
        del key, params
        logits = jnp.where(grid.allowed(jnp.arange(C)), 0.0, -jnp.inf)
        return PolicyGradientState(
            jnp.broadcast_to(logits, (k, C, A)), jnp.zeros((k, C), jnp.float32), jnp.zeros((k,), jnp.int32)
        )

    def update(key: PRNGKey, state: PolicyGradientState, feedback: Feedback, params: PolicyGradientParams):
        del key
        values = feedback.observation[:, 0]
        context = grid.context(values)
        action = grid.action(feedback.bids[:, 0], values)
        rows = jnp.arange(k)
        logits = state.logits[rows, context]  # [k, A]
        surprise = feedback.utility - state.baseline[rows, context]
        score = jax.nn.one_hot(action, A) - jax.nn.softmax(logits, axis=-1)
        step = params.learning_rate * (surprise / params.scale)[:, None] * score
        new_logits = jnp.where(jnp.isfinite(logits), logits + step, logits)
        baseline = state.baseline[rows, context] + params.baseline_rate * surprise
        return PolicyGradientState(
            state.logits.at[rows, context].set(new_logits), state.baseline.at[rows, context].set(baseline), state.t + 1
        )

    return softmax_table_learner(
        "policy_gradient", k, grid, lambda state, bidders, contexts: state.logits[bidders, contexts], init, update,
        init_params, check_params,
    )
