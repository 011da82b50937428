"""Bidders who never learn: fixed bid shading and the closed-form equilibrium strategies.

* ``shading(k, alpha)``: ``bid = alpha * value`` (``alpha`` a param, so a
  sweep over it is a ``vmap``); ``alpha = 1`` is truthful.
* ``equilibrium_bids(rule, n, values, high)``: the symmetric Bayes-Nash
  equilibrium bid for ``n`` bidders with i.i.d. values ``U[0, high]``:
  truthful for second price (weakly dominant), ``(n - 1) / n * v`` for first
  price, and ``(n - 1) / n * v^n / high^(n - 1)`` for all-pay.
  ``equilibrium(k, rule, n, high)`` is a group of bidders who play it.
* ``external(k, m)``: bidders whose bids come from outside the market (an
  RL agent's actions in ``jaxauction.envs``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_choice, check_finite, check_positive_int, is_concrete
from jaxauction.bidders.base import Learner
from jaxauction.types import Array

EQUILIBRIA = ("second_price", "first_price", "all_pay")
EXTERNAL = "external"  # the name of the group whose bids an environment writes (jaxauction.envs)


class ShadingParams(NamedTuple):
    """``shading``'s number: bid = alpha x value."""

    alpha: Array  # float32 >= 0: bid = alpha * value


def _fixed(name: str, k: int, bid, init_params, check_params=lambda params: None) -> Learner:
    return Learner(
        name=name,
        n_bidders=k,
        init=lambda key, params: jnp.zeros((k,), jnp.int32),  # no state; a stacked placeholder
        act=lambda key, state, observations, params: bid(observations, params),
        update=lambda key, state, feedback, params: state,
        init_params=init_params,
        policy=lambda state, observations, params: bid(observations, params),
        check_params=check_params,
    )


def shading(n_bidders: int, alpha: float = 1.0) -> Learner:
    """``n_bidders`` bidders who bid ``alpha`` times their observation."""
    check_positive_int(n_bidders, "n_bidders")
    check_finite(alpha, "shading alpha", minimum=0.0)

    def check_params(params: ShadingParams) -> None:
        if is_concrete(params.alpha):
            check_finite(np.asarray(params.alpha), "shading alpha", minimum=0.0)

    return _fixed(
        "shading", n_bidders, lambda obs, p: p.alpha * obs,
        lambda: ShadingParams(jnp.asarray(alpha, jnp.float32)), check_params,
    )  # fmt: skip


def equilibrium_bids(rule: str, n: int, values: Array, high: float) -> Array:
    """The symmetric equilibrium bid of ``rule`` for ``n`` bidders with i.i.d. ``U[0, high]`` values."""
    check_choice(rule, EQUILIBRIA, "equilibrium rule")
    check_positive_int(n, "n", minimum=2)
    check_finite(high, "high", positive=True)
    if rule == "second_price":
        return values
    if rule == "first_price":
        return (n - 1) / n * values
    return (n - 1) / n * values**n / high ** (n - 1)


def equilibrium(n_bidders: int, rule: str, n: int, high: float) -> Learner:
    """``n_bidders`` bidders who play ``rule``'s symmetric equilibrium for ``n`` bidders, values ``U[0, high]``."""
    check_positive_int(n_bidders, "n_bidders")
    equilibrium_bids(rule, n, np.float32(0), high)  # validates
    return _fixed(f"equilibrium_{rule}", n_bidders, lambda obs, p: equilibrium_bids(rule, n, obs, high), lambda: ())


def external(n_bidders: int, n_items: int = 1) -> Learner:
    """``n_bidders`` bidders whose bids come from outside the market: the agents of ``jaxauction.envs``.

    Their state is the bids ``[k, m]`` they make in the next auction; an environment writes its agents' actions
    there before each auction, ``act`` returns them and ``update`` leaves them (the agent learns outside).
    ``policy`` reports the stored bids for every observation. ``run_round`` and ``collect`` refuse a market with
    them (without an environment they would bid their initial state, zero, in every auction).
    """
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_items, "n_items")
    return Learner(
        name=EXTERNAL,
        n_bidders=n_bidders,
        init=lambda key, params: jnp.zeros((n_bidders, n_items), jnp.float32),
        act=lambda key, state, observations, params: state,
        update=lambda key, state, feedback, params: state,
        init_params=lambda: (),
        policy=lambda state, observations, params: jnp.broadcast_to(
            state[:, None, :], (n_bidders, observations.shape[1], n_items)
        ),
    )
