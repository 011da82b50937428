"""Bidder utilities: ``apply(types, outcome, params) -> [n]``, one pluggable function per attitude.

The default is quasi-linear utility, ``u_i = sum_j allocation_ij * value_ij -
payment_i``: with a randomised allocation, the expected value of what bidder
``i`` receives minus what it pays. The others reshape that surplus ``r``
(the original's reward shaping), their numbers in a params pytree like every
other number:

* ``crra(a)``: ``sign(r) |r|^a``, the original's sign-preserving power
  (``r^a`` is undefined for a loss); ``a < 1`` is risk averse over gains.
* ``cara(a)``: ``1 - exp(-a r)`` (``a > 0``, risk averse).
* ``seller``: for procurement, where values are costs and the auctioneer
  pays (a negative payment): ``u_i = -payment_i - sum_j allocation_ij *
  cost_ij``. Its ``costs`` flag tells the metrics that values are costs
  (efficiency is then the cheapest cost over the realised cost).
* ``unit_demand``: quasi-linear for a bidder who wants at most one item
  (``unit_value``): it keeps its best item. For a lottery over single items
  (a row summing to at most 1, as unit-demand RegretNet and RochetNet
  allocate) that is ``sum_j allocation_ij * value_ij``; for a 0/1 bundle it is
  the highest value won.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxauction.types import Array, Outcome, Params, Types


@dataclasses.dataclass(frozen=True)
class Utility:
    """``apply(types, outcome, params) -> utilities [n]``; ``init_params()`` gives the default params."""

    name: str
    apply: Callable[[Types, Outcome, Params], Array]
    init_params: Callable[[], Params]
    costs: bool = False  # values are costs (procurement sellers): the metrics measure cost efficiency


def received_value(types: Types, outcome: Outcome) -> Array:
    """``[n]``: the (expected) value each bidder receives, ``sum_j allocation_ij * value_ij``."""
    if types.values.shape[-1] == 1:  # one item: the product itself, without a reduction
        return types.values[..., 0] * outcome.allocation[..., 0]
    return jnp.sum(outcome.allocation * types.values, axis=-1)


def unit_value(values: Array, allocation: Array) -> Array:
    """``[n]``: what a unit-demand bidder receives from ``allocation [n, m]`` (marginal probabilities).

    It keeps its best item, so items count in decreasing value, each with the
    probability left: ``sum_k v_(k) min(a_(k), (1 - sum_{l<k} a_(l))^+)``. That is
    ``sum_j a_ij v_ij`` when a row sums to at most 1 (a lottery over single
    items), the highest value won for a 0/1 allocation, and for other fractional
    allocations the most any joint lottery with these marginals can give.
    """
    order = jnp.argsort(-values, axis=-1)
    v = jnp.take_along_axis(values, order, axis=-1)
    a = jnp.take_along_axis(allocation, order, axis=-1)
    before = jnp.cumsum(a, axis=-1) - a
    return jnp.sum(v * jnp.clip(jnp.minimum(a, 1.0 - before), 0.0, None), axis=-1)


def unit_demand() -> Utility:
    """``u_i = unit_value - payment``: quasi-linear for bidders who want at most one item."""

    def apply(types: Types, outcome: Outcome, params: Params) -> Array:
        del params
        return unit_value(types.values, outcome.allocation) - outcome.payments

    return Utility(name="unit_demand", apply=apply, init_params=lambda: ())


def quasi_linear() -> Utility:
    """``u_i = received value - payment`` (risk-neutral, no budget)."""

    def apply(types: Types, outcome: Outcome, params: Params) -> Array:
        del params
        return received_value(types, outcome) - outcome.payments

    return Utility(name="quasi_linear", apply=apply, init_params=lambda: ())


class RiskParams(NamedTuple):
    a: Array  # float32: the CRRA power or the CARA coefficient


def _check_positive(a: float, name: str) -> None:
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"{name} needs a positive, finite coefficient, got {a!r}")


def crra(a: float = 0.5) -> Utility:
    """``u = sign(r) |r|^a`` of the quasi-linear surplus ``r`` (the original's CRRA shaping)."""
    _check_positive(a, "crra")

    def apply(types: Types, outcome: Outcome, params: RiskParams) -> Array:
        r = received_value(types, outcome) - outcome.payments
        return jnp.sign(r) * jnp.abs(r) ** params.a

    return Utility("crra", apply, lambda: RiskParams(jnp.asarray(a, jnp.float32)))


def cara(a: float = 0.5) -> Utility:
    """``u = 1 - exp(-a r)`` of the quasi-linear surplus ``r`` (the original's CARA shaping)."""
    _check_positive(a, "cara")

    def apply(types: Types, outcome: Outcome, params: RiskParams) -> Array:
        return 1.0 - jnp.exp(-params.a * (received_value(types, outcome) - outcome.payments))

    return Utility("cara", apply, lambda: RiskParams(jnp.asarray(a, jnp.float32)))


def seller() -> Utility:
    """Procurement: values are costs; ``u = -payment - cost of what the bidder supplies``."""

    def apply(types: Types, outcome: Outcome, params: Params) -> Array:
        del params
        return -outcome.payments - received_value(types, outcome)

    return Utility(name="seller", apply=apply, init_params=lambda: (), costs=True)


# The market's utilities (``unit_demand`` is the regret evaluator's: the market's welfare metrics are additive).
UTILITIES: dict[str, Callable[..., Utility]] = {"quasi_linear": quasi_linear, "crra": crra, "cara": cara,
                                               "seller": seller}  # fmt: skip
