"""Truthful bidders: bid your value, never learn."""

from __future__ import annotations

import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner


def truthful(n_bidders: int) -> Learner:
    """``n_bidders`` bidders who bid their observation (their values, in private-value settings)."""
    check_positive_int(n_bidders, "n_bidders")
    return Learner(
        name="truthful",
        n_bidders=n_bidders,
        init=lambda key, params: jnp.zeros((n_bidders,), jnp.int32),  # no state; a stacked placeholder
        act=lambda key, state, observations, params: observations,
        update=lambda key, state, feedback, params: state,
        init_params=lambda: (),
        policy=lambda state, observations, params: observations,
    )
