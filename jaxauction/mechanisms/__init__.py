"""Mechanisms behind one signature: ``init(key) -> params``, ``apply(params, bids [n, m], key) -> Outcome``."""

from __future__ import annotations

from typing import Any

from jaxauction._checks import check_choice
from jaxauction.mechanisms.allocation import entry_probability, highest_bid_allocation
from jaxauction.mechanisms.base import Mechanism, checked
from jaxauction.mechanisms.deep import (
    RAW_BID_LIMIT,
    AllocationNet,
    AnonymousPaymentNet,
    PaymentNet,
    anonymous_payment,
    deep_payment,
    learned_allocation,
    payment_shares,
    torch_linear_init,
)
from jaxauction.mechanisms.market_rules import (
    MULTI_UNIT_PRICING,
    PROCUREMENT_RULES,
    BudgetParams,
    multi_unit,
    procurement,
    random_allocation,
    vcg,
    with_budgets,
    with_entry_fee,
)
from jaxauction.mechanisms.regretnet import regretnet, rochetnet, rochetnet_soft
from jaxauction.mechanisms.rules import (
    RULES,
    PrizeParams,
    RuleParams,
    all_pay,
    first_price,
    prize_all_pay,
    prize_shares,
    second_price,
    simultaneous,
    third_price,
)

MECHANISMS = (*RULES, "prize_all_pay", "deep")


def make_mechanism(name: str, n_bidders: int, n_items: int = 1, **options: Any) -> Mechanism:
    """A mechanism by name (one of ``MECHANISMS``); with ``n_items > 1``, that rule sells each item simultaneously.

    ``options`` go to the rule's constructor (``reserve``, ``temperature`` for
    the classical rules; ``prizes``, ``reserve`` for ``prize_all_pay``; ``hidden``, ``winner_only``, ``normalise``,
    ``bid_scale``, ``dtype``, ``precision`` for ``deep``).
    """
    check_choice(name, MECHANISMS, "mechanism")
    build = {"deep": deep_payment, "prize_all_pay": prize_all_pay}.get(name) or RULES[name]
    rule = build(n_bidders, **options)
    return rule if n_items == 1 else simultaneous([rule] * n_items)


__all__ = [
    "MECHANISMS",
    "MULTI_UNIT_PRICING",
    "PROCUREMENT_RULES",
    "multi_unit",
    "procurement",
    "random_allocation",
    "vcg",
    "BudgetParams",
    "with_budgets",
    "with_entry_fee",
    "AllocationNet",
    "AnonymousPaymentNet",
    "learned_allocation",
    "anonymous_payment",
    "RAW_BID_LIMIT",
    "Mechanism",
    "PaymentNet",
    "PrizeParams",
    "RuleParams",
    "all_pay",
    "checked",
    "deep_payment",
    "entry_probability",
    "first_price",
    "highest_bid_allocation",
    "make_mechanism",
    "payment_shares",
    "prize_all_pay",
    "prize_shares",
    "regretnet",
    "rochetnet",
    "rochetnet_soft",
    "second_price",
    "simultaneous",
    "third_price",
    "torch_linear_init",
]
