"""Truthful bidders: bid = value, no learning."""

from __future__ import annotations

import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner


def truthful(n_bidders: int, n_values: int | None = None) -> Learner:
    """Bid your value. With ``n_values`` (integer value levels), ``greedy_bids`` reports the identity policy."""
    check_positive_int(n_bidders, "n_bidders")
    greedy = None
    if n_values is not None:
        check_positive_int(n_values, "n_values")
        levels = jnp.arange(n_values, dtype=jnp.float32)
        greedy = lambda state: jnp.broadcast_to(levels, (n_bidders, n_values))  # noqa: E731
    return Learner(
        name="truthful",
        n_bidders=n_bidders,
        init=lambda key: jnp.zeros((n_bidders,), jnp.int32),  # no state; a stacked placeholder
        act=lambda key, state, values: values,
        update=lambda state, transition: state,
        greedy_bids=greedy,
    )
