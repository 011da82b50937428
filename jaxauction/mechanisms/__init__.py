"""Allocation and payment rules behind one signature: ``apply(params, bids, key) -> Outcome``."""

from __future__ import annotations

from typing import Any

from jaxauction._checks import check_choice
from jaxauction.mechanisms.deep import PaymentNet, deep_payment, payment_shares, torch_linear_init
from jaxauction.mechanisms.rules import (
    RULES,
    Mechanism,
    RuleParams,
    all_pay,
    first_price,
    highest_bid_allocation,
    second_price,
    third_price,
)

MECHANISMS = (*RULES, "deep")


def make_mechanism(name: str, n_bidders: int, **options: Any) -> Mechanism:
    """Build a mechanism by name: one of ``MECHANISMS``.

    ``options`` go to the rule's constructor (``reserve`` for the analytical
    rules; ``hidden``, ``winner_only``, ``normalise``, ``bid_scale``, ``dtype`` for ``deep``).
    """
    check_choice(name, MECHANISMS, "mechanism")
    if name == "deep":
        return deep_payment(n_bidders, **options)
    return RULES[name](n_bidders, **options)


__all__ = [
    "MECHANISMS",
    "Mechanism",
    "PaymentNet",
    "RuleParams",
    "all_pay",
    "deep_payment",
    "first_price",
    "highest_bid_allocation",
    "make_mechanism",
    "payment_shares",
    "second_price",
    "third_price",
    "torch_linear_init",
]
