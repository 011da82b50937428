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
* ``LEARNERS[name](spec, n_bidders, n_items, n_values) -> Learner``
* ``PRIORS[name](low, high) -> Prior``
* ``UTILITIES[name]() -> Utility``
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
from jaxauction.bidders import Learner, epsilon_greedy, population, truthful
from jaxauction.market import Market, check_market
from jaxauction.mechanisms import RAW_BID_LIMIT, RULES, Mechanism, anonymous_payment, deep_payment, simultaneous
from jaxauction.mechanisms.deep import PRECISIONS
from jaxauction.priors import Prior, UniformIntPrior, UniformPrior, broadcast_bound
from jaxauction.utilities import UTILITIES

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class MechanismSpec:
    """The mechanism."""

    mechanism: str = "deep"
    """the rule: deep (the seed's payment network), deep_anonymous (a shared per-bidder network: anonymous
    payment shares), first_price, second_price, third_price or all_pay"""
    hidden: tuple[int, ...] = (128, 64, 128)
    """hidden layer widths of the payment network (deep, deep_anonymous)"""
    winner_only: bool = False
    """deep: charge only the winner (the seed charges every bidder)"""
    normalise: bool = False
    """deep: feed bids / the market's highest bid to the network (the seed feeds raw bids)"""
    reserve: float = 0.0
    """classical rules: reserve price (initial value of a param)"""
    temperature: float = 0.0
    """classical rules: 0 for a hard reserve, > 0 for its smooth, differentiable relaxation"""
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
        if (self.reserve or self.temperature) and deep:
            raise ValueError("reserve and temperature apply to the classical rules only, not to mechanism 'deep'")
        if (self.winner_only or self.normalise) and not deep:
            raise ValueError(f"winner_only and normalise apply to mechanism 'deep' only, not {self.mechanism!r}")


@dataclasses.dataclass(frozen=True)
class PopulationSpec:
    """The bidders."""

    learner: str = "epsilon_greedy"
    """one learner for every bidder, or a comma list with one per bidder
    (e.g. truthful,epsilon_greedy,epsilon_greedy); learners: epsilon_greedy, truthful"""
    n_bidders: Annotated[int, tyro.conf.arg(aliases=("--bidders",))] = 3
    """number of bidders"""
    n_bids: int = 10
    """epsilon_greedy: bid grid 0..n_bids-1"""
    overbid: bool = False
    """epsilon_greedy: allow bids above the value"""
    explore_steps: int = 20_000
    """epsilon_greedy: forced uniform exploration, in updates (initial value of a param)"""
    half_life: float = 10_000.0
    """epsilon_greedy: eps = 0.5 ** (t / half_life) (initial value of a param)"""

    def __post_init__(self) -> None:
        check_positive_int(self.n_bidders, "n_bidders", minimum=2)
        check_positive_int(self.n_bids, "n_bids")
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
    """value distribution: uniform_int (integers value_low..value_high) or uniform ([value_low, value_high))"""
    value_low: float | tuple[float, ...] = 0
    """lowest value; several numbers give one per bidder (initial value of a param)"""
    value_high: float | tuple[float, ...] = 9
    """highest value (inclusive for uniform_int); several numbers give one per bidder (initial value of a param)"""
    n_items: Annotated[int, tyro.conf.arg(aliases=("--items",))] = 1
    """number of items, each sold by the mechanism's rule at once"""

    def __post_init__(self) -> None:
        check_choice(self.prior, PRIORS, "prior")
        check_positive_int(self.n_items, "n_items")
        for name in ("value_low", "value_high"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self.build()  # validates the range

    def build(self) -> Prior:
        return PRIORS[self.prior](self.value_low, self.value_high)


@dataclasses.dataclass(frozen=True)
class UtilitySpec:
    """The bidders' utility."""

    utility: str = "quasi_linear"
    """bidder utility: quasi_linear (value received minus payment)"""

    def __post_init__(self) -> None:
        check_choice(self.utility, UTILITIES, "utility")


def _classical(name: str) -> Callable[..., Mechanism]:
    def build(spec: MechanismSpec, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
        del bid_scale
        rule = RULES[name](n_bidders, reserve=spec.reserve, temperature=spec.temperature)
        return rule if n_items == 1 else simultaneous([rule] * n_items)

    return build


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


MECHANISMS: dict[str, Callable[..., Mechanism]] = {
    **{name: _classical(name) for name in RULES},
    "deep": _deep,
    "deep_anonymous": _deep_anonymous,
}

LEARNERS: dict[str, Callable[..., Learner]] = {
    "epsilon_greedy": lambda spec, k, m, n_values: epsilon_greedy(
        k, n_values, spec.n_bids, spec.overbid, m, spec.explore_steps, spec.half_life
    ),
    "truthful": lambda spec, k, m, n_values: truthful(k),
}

PRIORS: dict[str, Callable[..., Prior]] = {"uniform_int": UniformIntPrior, "uniform": UniformPrior}


def _n_values(prior: Prior, n: int, m: int) -> int:
    """Value levels ``0..max value`` that tabular learners need (at least 1)."""
    return max(int(np.ceil(np.max(broadcast_bound(prior.high, n, m, "high")))) + 1, 1)


def highest_bid(groups: list[Learner] | tuple[Learner, ...], prior: Prior, n: int, m: int) -> float:
    """The highest bid a population can make: its learners' bid grids, or the prior's top value for those
    who bid their values. Normalised payment networks divide bids by it."""
    top_value = float(np.max(broadcast_bound(prior.high, n, m, "high")))
    return max(top_value if g.max_bid is None else g.max_bid for g in groups)


def build_market(
    mechanism: MechanismSpec,
    bidders: PopulationSpec,
    prior: PriorSpec,
    utility: UtilitySpec = UtilitySpec(),  # noqa: B008 - frozen
    checked: bool = False,
) -> Market:
    """The market the specs describe, validated (``check_market``) with its default params."""
    n, m = bidders.n_bidders, prior.n_items
    value_prior = prior.build()
    n_values = _n_values(value_prior, n, m)
    groups = [LEARNERS[name](bidders, len(list(run)), m, n_values) for name, run in itertools.groupby(bidders.learners)]
    market = Market(
        mechanism=MECHANISMS[mechanism.mechanism](mechanism, n, m, highest_bid(groups, value_prior, n, m)),
        population=population(groups),
        prior=value_prior,
        utility=UTILITIES[utility.utility](),
        checked=checked,
    )
    check_market(market)
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
