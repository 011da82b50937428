"""Bidder utilities: ``apply(types, outcome, params) -> [n]``, one pluggable function per attitude.

The default is quasi-linear utility, ``u_i = sum_j allocation_ij * value_ij -
payment_i``: with a randomised allocation, the expected value of what bidder
``i`` receives minus what it pays. Utility parameters (risk aversion, budget
penalties: later issues) live in a params pytree like every other number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp

from jaxauction.types import Array, Outcome, Params, Types


class Utility(NamedTuple):
    """``apply(types, outcome, params) -> utilities [n]``; ``init_params()`` gives the default params."""

    name: str
    apply: Callable[[Types, Outcome, Params], Array]
    init_params: Callable[[], Params]


def received_value(types: Types, outcome: Outcome) -> Array:
    """``[n]``: the (expected) value each bidder receives, ``sum_j allocation_ij * value_ij``."""
    if types.values.shape[-1] == 1:  # one item: the product itself, without a reduction
        return types.values[..., 0] * outcome.allocation[..., 0]
    return jnp.sum(outcome.allocation * types.values, axis=-1)


def quasi_linear() -> Utility:
    """``u_i = received value - payment`` (risk-neutral, no budget)."""

    def apply(types: Types, outcome: Outcome, params: Params) -> Array:
        del params
        return received_value(types, outcome) - outcome.payments

    return Utility(name="quasi_linear", apply=apply, init_params=lambda: ())


UTILITIES: dict[str, Callable[[], Utility]] = {"quasi_linear": quasi_linear}
