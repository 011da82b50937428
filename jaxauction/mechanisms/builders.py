"""The package's mechanisms in the ``MECHANISMS`` registry, each with its options spec.

Every options field is a command-line flag of the experiments that build a
market (``--mechanism first_price --reserve 2``); its docstring is the help.
The classical rules share ``ClassicalOptions``: an entry fee, per-auction
budgets and, with several items, a decay for bidders who win more than one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax.numpy as jnp

from jaxauction._checks import check_choice, check_finite, check_positive_int, hidden_widths
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.deep import PRECISIONS, RAW_BID_LIMIT, anonymous_payment, deep_payment, learned_allocation
from jaxauction.mechanisms.dynamic import (
    check_declining,
    check_teaser,
    declining_reserve_first_price,
    learned_dynamic_first_price,
    phased,
    teaser_first_price,
)
from jaxauction.mechanisms.market_rules import (
    MULTI_UNIT_PRICING,
    PROCUREMENT_RULES,
    multi_unit,
    procurement,
    random_allocation,
    vcg,
    with_budgets,
    with_entry_fee,
)
from jaxauction.mechanisms.rules import RULES, discrete_myerson, prize_all_pay, simultaneous
from jaxauction.registry import MECHANISMS

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ClassicalOptions:
    """What every classical rule can add."""

    entry_fee: float = 0.0
    """every participant (a bidder with a positive bid) pays this; a bid of 0 stays out (initial value of a param)"""
    budgets: tuple[float, ...] = ()
    """per-auction budgets, one number or one per bidder: a winner charged above its budget loses its items and
    pays budget_penalty instead (the original's budget_with_punish; initial values of params)"""
    budget_penalty: tuple[float, ...] = (0.0,)
    """what a bidder over its budget pays, one number or one per bidder"""
    decay: float = 1.0
    """several items: a bidder winning k items pays decay^(k-1) x its payments (simultaneous rules) or is worth
    decay^(k-1) x its winning bids (vcg)"""
    phases: int = 1
    """a dynamic rule: the horizon of a round in this many equal phases, each with its own params (every phase
    starts from the same initial values); 1 for a static rule"""

    def __post_init__(self) -> None:
        check_positive_int(self.phases, "phases")
        check_finite(self.entry_fee, "entry_fee", minimum=0.0)
        check_finite(self.decay, "decay", positive=True)
        if self.decay > 1:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if self.budget_penalty != (0.0,) and not self.budgets:
            raise ValueError("budget_penalty applies when budgets are set (--budgets)")


@dataclasses.dataclass(frozen=True)
class ReserveOptions(ClassicalOptions):
    """A classical rule with a reserve price."""

    reserve: float = 0.0
    """reserve price (initial value of a param)"""

    def __post_init__(self) -> None:
        ClassicalOptions.__post_init__(self)
        check_finite(self.reserve, "reserve", minimum=0.0)


@dataclasses.dataclass(frozen=True)
class RuleOptions(ReserveOptions):
    """First, second, third price and all-pay: a hard or a smooth reserve."""

    temperature: float = 0.0
    """0 for a hard reserve, > 0 for its smooth, differentiable relaxation"""

    def __post_init__(self) -> None:
        ReserveOptions.__post_init__(self)
        check_finite(self.temperature, "temperature", minimum=0.0)


@dataclasses.dataclass(frozen=True)
class PrizeOptions(ReserveOptions):
    """All-pay with prize shares by rank."""

    prizes: tuple[float, ...] = (1.0,)
    """the share of the item for each rank, highest bid first (initial value of a param)"""


@dataclasses.dataclass(frozen=True)
class MultiUnitOptions(ReserveOptions):
    """Identical units, one per bidder."""

    units: int = 2
    """identical units sold, one per bidder (at least 2: one unit is a single-item auction)"""

    def __post_init__(self) -> None:
        ReserveOptions.__post_init__(self)
        check_positive_int(self.units, "units", minimum=2)


@dataclasses.dataclass(frozen=True)
class ProcurementOptions(ReserveOptions):
    """A reverse auction: the lowest ask wins (use --utility seller)."""

    reserve: float = 0.0
    """the highest ask accepted, 0 for none"""


@dataclasses.dataclass(frozen=True)
class DiscreteMyersonOptions(ReserveOptions):
    """Myerson's auction on a bid grid (set --reserve to Myerson's reserve: 5 for values 0..9)."""

    step: float = 1.0
    """the bid grid's step: a winner above the highest other bid h pays h + step k / (k + 1)"""

    def __post_init__(self) -> None:
        ReserveOptions.__post_init__(self)
        check_finite(self.step, "step", positive=True)


@dataclasses.dataclass(frozen=True)
class TeaserOptions(ReserveOptions):
    """Pay-your-bid at a discount for the first part of the horizon, then in full (a dynamic rule)."""

    discount: float = 0.2
    """during the teaser a winner pays this share of its bid (initial value of a param)"""
    teaser: float = 0.7
    """the teaser's share of the horizon (initial value of a param)"""

    def __post_init__(self) -> None:
        ReserveOptions.__post_init__(self)
        check_teaser(self.discount, self.teaser)
        if self.phases != 1:
            raise ValueError("teaser_first_price is a dynamic rule already: it takes no --phases")


@dataclasses.dataclass(frozen=True)
class DecliningReserveOptions(ClassicalOptions):
    """Pay-your-bid with reserves that fall over the horizon (a dynamic rule)."""

    reserves: tuple[float, ...] = (5.0, 4.0, 3.0)
    """the reserve in each of len(reserves) equal phases of the horizon, none above the one before (initial
    values of params)"""

    def __post_init__(self) -> None:
        ClassicalOptions.__post_init__(self)
        check_declining(self.reserves)
        if self.phases != 1:
            raise ValueError("declining_reserve_first_price is a dynamic rule already: its phases are --reserves")


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """A learned rule's network."""

    hidden: tuple[int, ...] = (128, 64, 128)
    """hidden layer widths of the network"""
    winner_only: bool = False
    """charge only the winner (the seed charges every bidder)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_widths(self.hidden))


@dataclasses.dataclass(frozen=True)
class LearnedDynamicOptions:
    """A learned dynamic rule's networks (of the bid and the point of the horizon)."""

    hidden: tuple[int, ...] = (16, 16)
    """hidden layer widths of its share and reserve networks"""
    static: bool = False
    """the networks see t/T = 0 in every auction: a learned static rule (the dynamic rule's baseline)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_widths(self.hidden))


@dataclasses.dataclass(frozen=True)
class DeepOptions(NetworkOptions):
    """The seed's payment network."""

    normalise: bool = False
    """feed bids / the market's highest bid to the network (the seed feeds raw bids)"""
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    """dtype of the network's matmuls (bfloat16 accumulates in float32)"""
    matmul_precision: Literal["default", "high", "highest"] = "default"
    """matmul precision; highest avoids TF32 for float32 on NVIDIA GPUs"""

    def __post_init__(self) -> None:
        NetworkOptions.__post_init__(self)
        check_choice(self.compute_dtype, COMPUTE_DTYPES, "compute_dtype")
        check_choice(self.matmul_precision, PRECISIONS, "matmul_precision")


def classical(options: ClassicalOptions, single: Mechanism | Callable[[], Mechanism], n_items: int) -> Mechanism:
    """A classical mechanism with ``options``' extras: the single-item ``single`` sold per item (``simultaneous``,
    with the decay) unless it sells every item itself, then the entry fee and the budgets, all of it in
    ``phases`` phases of the horizon (``phased``) when asked."""
    if options.decay != 1 and n_items == 1:
        raise ValueError("decay discounts bidders who win several items: it needs --items >= 2")
    mechanism = single if isinstance(single, Mechanism) else single()
    if mechanism.n_items != n_items:
        mechanism = simultaneous([mechanism] * n_items, options.decay)
    if options.entry_fee:
        mechanism = with_entry_fee(mechanism, options.entry_fee)
    if options.budgets:
        one = lambda x: x[0] if len(x) == 1 else x  # noqa: E731 - one number for every bidder
        mechanism = with_budgets(mechanism, one(options.budgets), one(options.budget_penalty))
    return mechanism if options.phases == 1 else phased(mechanism, options.phases)


SUMMARIES = {
    "first_price": "the highest bid wins and pays itself",
    "second_price": "the highest bid wins and pays the second-highest",
    "third_price": "the highest bid wins and pays the third-highest",
    "all_pay": "the highest bid wins; every entered bid pays itself",
    "pay_as_bid": "units to the highest bids, each paying itself",
    "uniform": "units to the highest bids, all paying the highest losing bid",
    "procurement_first_price": "the lowest ask wins and is paid itself (use --utility seller)",
    "procurement_second_price": "the lowest ask wins and is paid the second-lowest (use --utility seller)",
}


def _register_rule(name: str) -> None:
    @MECHANISMS.register(name, RuleOptions, SUMMARIES[name])
    def build(options: RuleOptions, n: int, m: int, bid_scale: float) -> Mechanism:
        return classical(options, RULES[name](n, reserve=options.reserve, temperature=options.temperature), m)


for _name in RULES:
    _register_rule(_name)


@MECHANISMS.register("prize_all_pay", PrizeOptions, "all-pay with prize shares by rank")
def _prize_all_pay(options: PrizeOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, prize_all_pay(n, options.prizes, options.reserve), m)


@MECHANISMS.register("discrete_myerson", DiscreteMyersonOptions, "the highest bid pays its tie-adjusted threshold")
def _discrete_myerson(options: DiscreteMyersonOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, discrete_myerson(n, options.reserve, options.step), m)


@MECHANISMS.register("teaser_first_price", TeaserOptions, "pay-your-bid at a discount, then in full (dynamic)")
def _teaser_first_price(options: TeaserOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, teaser_first_price(n, options.discount, options.teaser, options.reserve), m)


@MECHANISMS.register("declining_reserve_first_price", DecliningReserveOptions,
                      "pay-your-bid with reserves that fall over the horizon (dynamic)")  # fmt: skip
def _declining_reserve_first_price(options: DecliningReserveOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, declining_reserve_first_price(n, options.reserves), m)


@MECHANISMS.register("learned_dynamic_first_price", LearnedDynamicOptions,
                      "the highest bid above a learned reserve of t/T pays a learned share of it (dynamic)")
def _learned_dynamic_first_price(options: LearnedDynamicOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    if m != 1:
        raise ValueError("learned_dynamic_first_price sells one item (--items 1)")
    return learned_dynamic_first_price(n, options.hidden, bid_scale, options.static)


@MECHANISMS.register("random_allocation", ReserveOptions, "a uniformly random bidder above the reserve wins")
def _random_allocation(options: ReserveOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, random_allocation(n, options.reserve), m)


def _register_multi_unit(pricing: str) -> None:
    @MECHANISMS.register(f"multi_unit_{pricing}", MultiUnitOptions, SUMMARIES[pricing])
    def build(options: MultiUnitOptions, n: int, m: int, bid_scale: float) -> Mechanism:
        return classical(options, multi_unit(n, options.units, pricing, options.reserve), m)


def _register_procurement(rule: str) -> None:
    @MECHANISMS.register(f"procurement_{rule}", ProcurementOptions, SUMMARIES[f"procurement_{rule}"])
    def build(options: ProcurementOptions, n: int, m: int, bid_scale: float) -> Mechanism:
        return classical(options, procurement(n, rule, options.reserve or 1e9), m)


for _name in MULTI_UNIT_PRICING:
    _register_multi_unit(_name)
for _name in PROCUREMENT_RULES:
    _register_procurement(_name)


@MECHANISMS.register("vcg", ClassicalOptions, "Vickrey-Clarke-Groves over every assignment of the items")
def _vcg(options: ClassicalOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return classical(options, lambda: vcg(n, m, options.decay), m)


def _per_item(rule: Mechanism, m: int) -> Mechanism:
    return rule if m == 1 else simultaneous([rule] * m)


@MECHANISMS.register("deep", DeepOptions, "the seed's payment network")
def _deep(options: DeepOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    if not options.normalise and bid_scale > RAW_BID_LIMIT:
        raise ValueError(
            f"the payment network would see raw bids up to {bid_scale:g}; its softmax saturates (and its gradient "
            f"vanishes) above about {RAW_BID_LIMIT:g}: use normalise (--normalise)"
        )
    rule = deep_payment(n, options.hidden, options.winner_only, options.normalise, max(bid_scale, 1e-6),
                        COMPUTE_DTYPES[options.compute_dtype], options.matmul_precision)  # fmt: skip
    return _per_item(rule, m)


@MECHANISMS.register("deep_anonymous", NetworkOptions, "a shared per-bidder network: anonymous payment shares")
def _deep_anonymous(options: NetworkOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return _per_item(anonymous_payment(n, options.hidden, options.winner_only, max(bid_scale, 1e-6)), m)


@MECHANISMS.register("deep_allocation", NetworkOptions, "a learned, anonymous allocation with a no-sale option")
def _deep_allocation(options: NetworkOptions, n: int, m: int, bid_scale: float) -> Mechanism:
    return _per_item(learned_allocation(n, options.hidden, options.winner_only, max(bid_scale, 1e-6)), m)


def make_mechanism(name: str, n_bidders: int, n_items: int = 1, bid_scale: float = 9.0, **options: object) -> Mechanism:
    """A registered mechanism by name, e.g. ``make_mechanism("second_price", 3, reserve=0.5)``.

    ``options`` are the fields of its options spec (``MECHANISMS[name].options``); with ``n_items > 1`` a
    single-item rule sells each item simultaneously. ``bid_scale`` is the highest bid the bidders can make
    (normalised networks divide bids by it).
    """
    component = MECHANISMS[name]
    return component(dict(options), n_bidders, n_items, bid_scale)
