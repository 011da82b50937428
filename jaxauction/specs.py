"""Configuration: one small frozen spec per component, and name -> builder registries.

A spec holds names and sizes, and the *initial values* of a component's
numbers; the numbers reach compiled programs only through params pytrees
(``MarketParams``), so changing or sweeping them never recompiles. Field
names are unique across specs, so experiments turn the specs into one flat
command line (``--mechanism``, ``--learner``, ``--reserve`` ...) with tyro;
each field's docstring is its ``--help`` text.

Registries map a name to a builder; add your own with ``MECHANISMS[name] =
builder`` (and likewise ``LEARNERS``, ``PRIORS``, ``UTILITIES``):

* ``MECHANISMS[name](spec, n_bidders, n_items, bid_scale) -> Mechanism``
* ``LEARNERS[name](spec, n_bidders, n_items, values) -> Learner`` (``values``: a ``ValueScale``)
* ``PRIORS[name](low, high) -> Prior``
* ``UTILITIES[name](...) -> Utility`` (crra and cara take their coefficient)
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Annotated, Any, Literal

import jax.numpy as jnp
import numpy as np
import tyro

from jaxauction._checks import check_choice, check_finite, check_positive_int, hidden_widths
from jaxauction.bidders import (
    BidGrid,
    Learner,
    absolute_grid,
    capped_grid,
    dqn,
    epsilon_greedy,
    fraction_grid,
    hedge,
    policy_gradient,
    population,
    shading,
    truthful,
)
from jaxauction.market import Market, check_market
from jaxauction.mechanisms import (
    MULTI_UNIT_PRICING,
    PROCUREMENT_RULES,
    RAW_BID_LIMIT,
    RULES,
    Mechanism,
    anonymous_payment,
    deep_payment,
    learned_allocation,
    multi_unit,
    prize_all_pay,
    procurement,
    random_allocation,
    simultaneous,
    vcg,
    with_budgets,
    with_entry_fee,
)
from jaxauction.mechanisms.deep import PRECISIONS
from jaxauction.priors import (
    Prior,
    TruncatedGaussianPrior,
    UniformIntPrior,
    UniformPrior,
    WalletPrior,
    top_value,
)
from jaxauction.settings import setting
from jaxauction.types import FULL_INFORMATION
from jaxauction.utilities import UTILITIES, Utility

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class MechanismSpec:
    """The mechanism."""

    mechanism: str = "deep"
    """the rule: deep (the seed's payment network), deep_anonymous (a shared per-bidder network: anonymous
    payment shares), deep_allocation (a learned, anonymous allocation with a no-sale option), first_price,
    second_price, third_price, all_pay, prize_all_pay (all-pay with prize shares by rank), random_allocation,
    multi_unit_uniform, multi_unit_pay_as_bid, vcg, procurement_first_price or procurement_second_price (lowest
    ask wins; use --utility seller)"""
    hidden: tuple[int, ...] = (128, 64, 128)
    """hidden layer widths of the payment network (deep, deep_anonymous, deep_allocation)"""
    winner_only: bool = False
    """deep, deep_anonymous, deep_allocation: charge only the winner (the seed charges every bidder)"""
    normalise: bool = False
    """deep: feed bids / the market's highest bid to the network (the seed feeds raw bids)"""
    reserve: float = 0.0
    """classical rules: reserve price (procurement: the highest ask accepted, 0 for none) (initial value of a
    param)"""
    temperature: float = 0.0
    """classical rules: 0 for a hard reserve, > 0 for its smooth, differentiable relaxation"""
    prizes: tuple[float, ...] = (1.0,)
    """prize_all_pay: the share of the item for each rank, highest bid first (initial value of a param)"""
    units: int = 1
    """multi_unit_*: identical units sold, one per bidder"""
    entry_fee: float = 0.0
    """every participant (a bidder with a positive bid) pays this; a bid of 0 stays out (initial value of a param)"""
    budgets: tuple[float, ...] = ()
    """per-auction budgets, one number or one per bidder: a winner charged above its budget loses its items and
    pays budget_penalty instead (the original's budget_with_punish; initial values of params)"""
    budget_penalty: tuple[float, ...] = (0.0,)
    """what a bidder over its budget pays, one number or one per bidder"""
    information: Literal["full", "winner_only"] = "full"
    """what full-information bidders (hedge) observe: full (every bid's utility) or winner_only (the price is
    revealed to winners; losers learn only about bids up to their own)"""
    decay: float = 1.0
    """several items: a bidder winning k items pays decay^(k-1) x its payments (simultaneous rules) or is worth
    decay^(k-1) x its winning bids (vcg)"""
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    """deep: dtype of the network's matmuls (bfloat16 accumulates in float32)"""
    matmul_precision: Literal["default", "high", "highest"] = "default"
    """deep: matmul precision; highest avoids TF32 for float32 on NVIDIA GPUs"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", hidden_widths(self.hidden))
        check_choice(self.mechanism, MECHANISMS, "mechanism")
        check_choice(self.compute_dtype, COMPUTE_DTYPES, "compute_dtype")
        check_choice(self.matmul_precision, PRECISIONS, "matmul_precision")
        check_finite(self.reserve, "reserve", minimum=0.0)
        check_finite(self.temperature, "temperature", minimum=0.0)
        deep = self.mechanism == "deep"
        if (self.compute_dtype, self.matmul_precision) != ("float32", "default") and not deep:
            raise ValueError(
                f"compute_dtype and matmul_precision apply to mechanism 'deep' only, not {self.mechanism!r}"
            )
        network = self.mechanism in ("deep", "deep_anonymous", "deep_allocation")
        if (self.reserve or self.temperature or self.entry_fee or self.decay != 1 or self.budgets) and network:
            raise ValueError(f"reserve, temperature, entry_fee, budgets and decay apply to the classical rules, not "
                             f"to mechanism {self.mechanism!r}")  # fmt: skip
        if self.budget_penalty != (0.0,) and not self.budgets:
            raise ValueError("budget_penalty applies when budgets are set (--budgets)")
        if self.temperature and self.mechanism not in RULES:
            raise ValueError(f"temperature (a smooth reserve) applies to {sorted(RULES)}, not {self.mechanism!r}")
        if self.reserve and self.mechanism == "vcg":
            raise ValueError("vcg has no reserve")
        check_positive_int(self.units, "units")
        check_finite(self.entry_fee, "entry_fee", minimum=0.0)
        check_finite(self.decay, "decay", positive=True)
        if self.decay > 1:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if self.units != 1 and not self.mechanism.startswith("multi_unit"):
            raise ValueError(f"units apply to the multi_unit rules only, not {self.mechanism!r}")
        if self.mechanism.startswith("multi_unit") and self.units < 2:
            raise ValueError("a multi_unit rule sells units >= 2 (one unit is a single-item auction): set --units")
        if self.prizes != (1.0,) and self.mechanism != "prize_all_pay":
            raise ValueError(f"prizes apply to mechanism 'prize_all_pay' only, not {self.mechanism!r}")
        if self.winner_only and not network:
            raise ValueError(f"winner_only applies to the network rules, not {self.mechanism!r}")
        if self.normalise and not deep:
            raise ValueError(f"normalise applies to mechanism 'deep' only, not {self.mechanism!r}")


@dataclasses.dataclass(frozen=True)
class PopulationSpec:
    """The bidders."""

    learner: str = "epsilon_greedy"
    """one learner for every bidder, or a comma list with one per bidder
    (e.g. truthful,epsilon_greedy,epsilon_greedy); learners: epsilon_greedy, hedge, hedge_linear,
    policy_gradient, dqn, shading, truthful"""
    n_bidders: Annotated[int, tyro.conf.arg(aliases=("--bidders",))] = 3
    """number of bidders"""
    n_bids: int = 10
    """epsilon_greedy: bid grid 0..n_bids-1"""
    overbid: bool = False
    """epsilon_greedy: allow bids above the value"""
    explore_steps: int = 20_000
    """epsilon_greedy, dqn: forced uniform exploration, in updates (initial value of a param)"""
    half_life: float = 10_000.0
    """epsilon_greedy, dqn: eps = 0.5 ** (t / half_life) (initial value of a param)"""
    bid_fractions: int = 51
    """hedge, policy_gradient on continuous values: bids are this many fractions of the value, evenly over
    [0, max_fraction], learned per value bin (integer values use the integer grid 0..n_bids-1, like
    epsilon_greedy)"""
    max_fraction: float = 1.0
    """hedge, policy_gradient on continuous values: the highest bid as a multiple of the observation (above 1
    for common-value settings, where the value exceeds the own signal)"""
    value_bins: int = 10
    """hedge, policy_gradient on continuous values: value bins (contexts) over [0, the prior's top]"""
    continuous_grid: Literal["fraction", "capped"] = "fraction"
    """hedge, policy_gradient, dqn on continuous values: fraction (bid_fractions fractions of the value) or
    capped (bid_fractions absolute levels over [0, max_fraction x the prior's top], each capped at the value:
    use it with reserves, which a fraction of the value cannot clear across a value bin)"""
    bidder_lr: float | None = None
    """hedge: eps in (0, 1) (default 0.05); policy_gradient: step size (default 0.5); dqn: Adam's step size
    (default 1e-3)"""
    shading: float = 1.0
    """shading: bid = shading * value (initial value of a param)"""

    def check_horizon(self, auctions: int, flag: str) -> None:
        """Refuse a horizon that ends inside forced exploration: every bid of its epsilon-greedy or DQN bidders
        would be a uniform draw, and the results would measure random bids, not learners."""
        exploring = [name for name in self.learners if name in ("epsilon_greedy", "dqn")]
        if exploring and auctions <= self.explore_steps:
            raise ValueError(f"{flag} ({auctions}) must exceed explore_steps ({self.explore_steps}): {exploring[0]} "
                             "bidders would never leave forced exploration")  # fmt: skip

    def __post_init__(self) -> None:
        check_positive_int(self.n_bidders, "n_bidders", minimum=2)
        check_positive_int(self.n_bids, "n_bids")
        check_positive_int(self.bid_fractions, "bid_fractions", minimum=2)
        check_positive_int(self.value_bins, "value_bins")
        check_choice(self.continuous_grid, ("fraction", "capped"), "continuous grid")
        check_finite(self.shading, "shading", minimum=0.0)
        check_finite(self.max_fraction, "max_fraction", positive=True)
        if self.bidder_lr is not None:
            check_finite(self.bidder_lr, "bidder_lr", positive=True)
        check_positive_int(self.explore_steps, "explore_steps", minimum=0)
        check_finite(self.half_life, "half_life", positive=True)
        names = self.learners
        for name in names:
            check_choice(name, LEARNERS, "learner")
        if len(names) not in (1, self.n_bidders):
            raise ValueError(
                f"learner lists {len(names)} learners for {self.n_bidders} bidders: give one, or one per bidder"
            )

    @property
    def learners(self) -> tuple[str, ...]:
        """The learner of each bidder."""
        names = tuple(x.strip() for x in self.learner.split(","))
        return names * self.n_bidders if len(names) == 1 else names


@dataclasses.dataclass(frozen=True)
class PriorSpec:
    """The bidders' values."""

    prior: str = "uniform_int"
    """value distribution: uniform_int (integers value_low..value_high), uniform ([value_low, value_high)),
    gaussian / gaussian_int (N(mid-range, range/6) truncated to the range; _int rounds), wallet / wallet_int
    (common value: each bidder sees its own signal on the range, every value is the sum of the signals)"""
    value_low: float | tuple[float, ...] = 0
    """lowest value; several numbers give one per bidder (initial value of a param)"""
    value_high: float | tuple[float, ...] = 9
    """highest value (inclusive for uniform_int); several numbers give one per bidder (initial value of a param)"""
    n_items: Annotated[int, tyro.conf.arg(aliases=("--items",))] = 1
    """number of items, each sold by the mechanism's rule at once"""
    setting: str | None = None
    """a named setting (jaxauction.settings, the RegretNet presets' names: seed3, single2, additive_1x2, ...): its
    prior and items replace --prior, --value-low, --value-high and --items; the market's bidders must be its
    bidders"""

    def __post_init__(self) -> None:
        check_choice(self.prior, PRIORS, "prior")
        check_positive_int(self.n_items, "n_items")
        for name in ("value_low", "value_high"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.setting is not None:  # it gives the prior and items (the command line refuses both spelled out)
            object.__setattr__(self, "n_items", setting(self.setting).n_items)
        self.build()  # validates the range

    def build(self) -> Prior:
        if self.setting is not None:
            return setting(self.setting).prior
        return PRIORS[self.prior](self.value_low, self.value_high)


@dataclasses.dataclass(frozen=True)
class UtilitySpec:
    """The bidders' utility."""

    utility: str = "quasi_linear"
    """bidder utility: quasi_linear (value received minus payment), crra (sign(r)|r|^a of that surplus r),
    cara (1 - exp(-a r)) or seller (procurement: payment received minus cost)"""
    risk: float = 0.5
    """crra: the power a; cara: the coefficient a (initial value of a param)"""

    def __post_init__(self) -> None:
        check_choice(self.utility, UTILITIES, "utility")
        if self.utility in ("crra", "cara"):
            check_finite(self.risk, "risk", positive=True)
        elif self.risk != 0.5:
            raise ValueError(f"risk applies to the crra and cara utilities, not {self.utility!r}")

    def build(self) -> Utility:
        return UTILITIES[self.utility](self.risk) if self.utility in ("crra", "cara") else UTILITIES[self.utility]()


def _per_item(rule: Callable[[MechanismSpec, int], Mechanism]) -> Callable[..., Mechanism]:
    """A builder selling each item by the single-item ``rule(spec, n_bidders)``, with the spec's entry fee and
    budgets."""

    def build(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
        del bid_scale
        single = rule(spec, n_bidders)
        return _extras(spec, single if n_items == 1 else simultaneous([single] * n_items, spec.decay))

    return build


def _extras(spec: MechanismSpec, mechanism: Mechanism) -> Mechanism:
    """The spec's entry fee and budgets around a classical mechanism."""
    if spec.entry_fee:
        mechanism = with_entry_fee(mechanism, spec.entry_fee)
    if spec.budgets:
        one = lambda x: x[0] if len(x) == 1 else x  # noqa: E731 - one number for every bidder
        mechanism = with_budgets(mechanism, one(spec.budgets), one(spec.budget_penalty))
    return mechanism


def _classical(name: str) -> Callable[..., Mechanism]:
    return _per_item(lambda spec, n: RULES[name](n, reserve=spec.reserve, temperature=spec.temperature))


def _vcg(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
    del bid_scale
    return _extras(spec, vcg(n_bidders, n_items, spec.decay))


def _deep(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
    if not spec.normalise and bid_scale > RAW_BID_LIMIT:
        raise ValueError(
            f"the payment network would see raw bids up to {bid_scale:g}; its softmax saturates (and its gradient "
            f"vanishes) above about {RAW_BID_LIMIT:g}: use normalise (--normalise)"
        )
    rule = deep_payment(
        n_bidders,
        hidden=spec.hidden,
        winner_only=spec.winner_only,
        normalise=spec.normalise,
        bid_scale=max(bid_scale, 1e-6),
        dtype=COMPUTE_DTYPES[spec.compute_dtype],
        precision=spec.matmul_precision,
    )
    return rule if n_items == 1 else simultaneous([rule] * n_items)


def _deep_anonymous(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
    rule = anonymous_payment(n_bidders, spec.hidden, spec.winner_only, bid_scale=max(bid_scale, 1e-6))
    return rule if n_items == 1 else simultaneous([rule] * n_items)


def _deep_allocation(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
    rule = learned_allocation(n_bidders, spec.hidden, spec.winner_only, bid_scale=max(bid_scale, 1e-6))
    return rule if n_items == 1 else simultaneous([rule] * n_items)


MECHANISMS: dict[str, Callable[..., Mechanism]] = {
    **{name: _classical(name) for name in RULES},
    "prize_all_pay": _per_item(lambda spec, n: prize_all_pay(n, spec.prizes, spec.reserve)),
    "random_allocation": _per_item(lambda spec, n: random_allocation(n, spec.reserve)),
    **{
        f"multi_unit_{p}": _per_item(lambda spec, n, p=p: multi_unit(n, spec.units, p, spec.reserve))
        for p in MULTI_UNIT_PRICING
    },
    **{
        f"procurement_{r}": _per_item(lambda spec, n, r=r: procurement(n, r, spec.reserve or 1e9))
        for r in PROCUREMENT_RULES
    },
    "vcg": _vcg,
    "deep": _deep,
    "deep_anonymous": _deep_anonymous,
    "deep_allocation": _deep_allocation,
}


@dataclasses.dataclass(frozen=True)
class ValueScale:
    """What learner builders know of the prior: its highest value and whether values are integers."""

    top: float
    integer: bool

    @property
    def n_values(self) -> int:
        """Value levels ``0..top`` that tabular learners need (at least 1)."""
        return max(int(np.ceil(self.top)) + 1, 1)


def bid_grid(spec: PopulationSpec, values: ValueScale, m: int, name: str) -> BidGrid:
    """The tabular learners' grid: integer bids per integer value, or fractions of the value per value bin."""
    if m != 1:
        raise ValueError(f"{name} learns from one item's bids; the market sells {m} items")
    if values.integer:
        return absolute_grid(values.n_values, spec.n_bids, spec.overbid)
    build = capped_grid if spec.continuous_grid == "capped" else fraction_grid
    return build(values.top, spec.value_bins, spec.bid_fractions, spec.max_fraction)


def _hedge(variant: str) -> Callable[..., Learner]:
    def build(spec: PopulationSpec, k: int, m: int, values: ValueScale) -> Learner:
        lr = 0.05 if spec.bidder_lr is None else spec.bidder_lr
        return hedge(k, bid_grid(spec, values, m, "hedge"), variant, lr)

    return build


def _policy_gradient(spec: PopulationSpec, k: int, m: int, values: ValueScale) -> Learner:
    lr = 0.5 if spec.bidder_lr is None else spec.bidder_lr
    return policy_gradient(k, bid_grid(spec, values, m, "policy_gradient"), lr)


def _dqn(spec: PopulationSpec, k: int, m: int, values: ValueScale) -> Learner:
    lr = 1e-3 if spec.bidder_lr is None else spec.bidder_lr
    grid = bid_grid(spec, values, m, "dqn")
    return dqn(k, grid, learning_rate=lr, explore_steps=spec.explore_steps, half_life=spec.half_life)


LEARNERS: dict[str, Callable[..., Learner]] = {
    "dqn": _dqn,
    "epsilon_greedy": lambda spec, k, m, values: epsilon_greedy(
        k, values.n_values, spec.n_bids, spec.overbid, m, spec.explore_steps, spec.half_life
    ),
    "hedge": _hedge("exponential"),
    "hedge_linear": _hedge("linear"),
    "policy_gradient": _policy_gradient,
    "shading": lambda spec, k, m, values: shading(k, spec.shading),
    "truthful": lambda spec, k, m, values: truthful(k),
}

PRIORS: dict[str, Callable[..., Prior]] = {
    "uniform_int": UniformIntPrior,
    "uniform": UniformPrior,
    "gaussian": TruncatedGaussianPrior,
    "gaussian_int": lambda low, high: TruncatedGaussianPrior(low, high, integer=True),
    "wallet": WalletPrior,
    "wallet_int": lambda low, high: WalletPrior(low, high, integer=True),
}


def highest_bid(groups: list[Learner] | tuple[Learner, ...], prior: Prior, n: int, m: int) -> float:
    """The highest bid a population can make: its learners' bid grids, or the prior's top value for those
    who bid their values. Normalised payment networks divide bids by it."""
    top = top_value(prior, n, m)
    return max(top if g.max_bid is None else g.max_bid for g in groups)


def build_market(
    mechanism: MechanismSpec,
    bidders: PopulationSpec,
    prior: PriorSpec,
    utility: UtilitySpec = UtilitySpec(),  # noqa: B008 - frozen
    checked: bool = False,
) -> Market:
    """The market the specs describe, validated (``check_market``) with its default params."""
    n, m = bidders.n_bidders, prior.n_items
    if prior.setting is not None and setting(prior.setting).n_bidders != n:
        raise ValueError(f"setting {prior.setting!r} has {setting(prior.setting).n_bidders} bidders; the market has "
                         f"{n} (--bidders)")  # fmt: skip
    if mechanism.decay != 1 and m == 1:
        raise ValueError("decay discounts bidders who win several items: it needs --items >= 2")
    value_prior = prior.build()
    values = ValueScale(top_value(value_prior, n, m), value_prior.integer)
    groups = [LEARNERS[name](bidders, len(list(run)), m, values) for name, run in itertools.groupby(bidders.learners)]
    market = Market(
        mechanism=MECHANISMS[mechanism.mechanism](mechanism, n, m, highest_bid(groups, value_prior, n, m)),
        population=population(groups),
        prior=value_prior,
        utility=utility.build(),
        checked=checked,
        information=mechanism.information,
    )
    check_market(market)
    if market.information != "full" and all(g.feedback != FULL_INFORMATION for g in market.population.groups):
        raise ValueError(f"information {market.information!r} restricts full-information feedback, but no bidder "
                         f"learns from it ({', '.join(bidders.learners)}); use hedge or hedge_linear")  # fmt: skip
    return market


def field_owner(spec_types: dict[str, type]) -> dict[str, str]:
    """``{field name: spec attribute}`` for a config composed of specs (field names are unique)."""
    owner: dict[str, str] = {}
    for attr, spec_type in spec_types.items():
        for field in dataclasses.fields(spec_type):
            if field.name in owner:
                raise TypeError(f"field {field.name!r} appears in two specs")
            owner[field.name] = attr
    return owner


def replace_fields(config: Any, **flat: Any) -> Any:
    """A copy of a config of specs with fields replaced by their (unique) names.

    For example ``replace_fields(config, rounds=3, mechanism="second_price")``.
    """
    types = {f.name: type(getattr(config, f.name)) for f in dataclasses.fields(config)}
    owner = field_owner(types)
    changes: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        if name not in owner:
            raise ValueError(f"unknown setting {name!r}; settings: {sorted(owner)}")
        changes.setdefault(owner[name], {})[name] = value
    return dataclasses.replace(
        config, **{attr: dataclasses.replace(getattr(config, attr), **kw) for attr, kw in changes.items()}
    )
