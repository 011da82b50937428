"""Configuration: one small frozen spec per part of a market, each naming its components.

A spec holds names and sizes, and the *initial values* of a component's
numbers; the numbers reach compiled programs only through params pytrees
(``MarketParams``), so changing or sweeping them never recompiles.

``MechanismSpec`` and ``PopulationSpec`` name components of the registries
(``jaxauction.registry``: ``MECHANISMS``, ``LEARNERS``) and hold the chosen
components' own options spec; ``PriorSpec`` and ``UtilitySpec`` name entries
of ``PRIORS`` (``PRIORS[name](low, high) -> Prior``) and ``UTILITIES``. Setting
names are unique across a config's specs and options, so experiments turn a
config into one flat command line (``--mechanism first_price --reserve 2``)
with tyro, showing the chosen components' options only; each field's
docstring is its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import tyro

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.bidders import Learner, population
from jaxauction.bidders.builders import ExplorationOptions, ValueScale
from jaxauction.market import Market, check_market
from jaxauction.mechanisms import Mechanism
from jaxauction.priors import (
    Prior,
    TruncatedGaussianPrior,
    UniformIntPrior,
    UniformPrior,
    WalletPrior,
    top_value,
)
from jaxauction.registry import LEARNERS, MECHANISMS, Component, Registry, coerce, option_names
from jaxauction.settings import setting
from jaxauction.types import FULL_INFORMATION
from jaxauction.utilities import UTILITIES, Utility


@dataclasses.dataclass(frozen=True)
class MechanismSpec:
    """The mechanism."""

    mechanism: str = "deep"
    """the rule, a name in jaxauction.MECHANISMS (the command line's --help lists them); its options follow"""
    options: Any = None
    """the rule's options: an instance of ``MECHANISMS[mechanism].options``, a dict of its fields, or None for
    its defaults (always the instance after construction)"""
    information: Literal["full", "winner_only"] = "full"
    """what full-information bidders (hedge) observe: full (every bid's utility) or winner_only (the price is
    revealed to winners; losers learn only about bids up to their own)"""

    def __post_init__(self) -> None:
        check_choice(self.mechanism, MECHANISMS, "mechanism")
        object.__setattr__(self, "options", MECHANISMS[self.mechanism].coerce(self.options))

    @property
    def component(self) -> Component:
        return MECHANISMS[self.mechanism]

    def build(self, n_bidders: int, n_items: int, bid_scale: float) -> Mechanism:
        return self.component(self.options, n_bidders, n_items, bid_scale)


@dataclasses.dataclass(frozen=True)
class PopulationSpec:
    """The bidders."""

    learner: str = "epsilon_greedy"
    """one learner for every bidder, or a comma list with one per bidder (e.g. truthful,epsilon_greedy,
    epsilon_greedy): names in jaxauction.LEARNERS (the command line's --help lists them); their options follow"""
    n_bidders: Annotated[int, tyro.conf.arg(aliases=("--bidders",))] = 3
    """number of bidders"""
    options: Any = None
    """the learners' options: an instance of ``LEARNERS.options(learners)`` (a single learner's own spec), a dict
    of its fields, or None for the defaults (always the instance after construction)"""

    def __post_init__(self) -> None:
        check_positive_int(self.n_bidders, "n_bidders", minimum=2)
        names = self.learners
        for name in names:
            check_choice(name, LEARNERS, "learner")
        if len(names) not in (1, self.n_bidders):
            raise ValueError(
                f"learner lists {len(names)} learners for {self.n_bidders} bidders: give one, or one per bidder"
            )
        object.__setattr__(self, "options", coerce(self.options_spec, self.options, f"learner {self.learner!r}"))

    @property
    def learners(self) -> tuple[str, ...]:
        """The learner of each bidder."""
        names = tuple(x.strip() for x in self.learner.split(","))
        return names * self.n_bidders if len(names) == 1 else names

    @property
    def options_spec(self) -> type:
        """The options dataclass of these learners together."""
        return LEARNERS.options(self.learners)

    def groups(self, n_items: int, values: ValueScale, n_bidders: int | None = None) -> list[Learner]:
        """One learner group per run of the same learner, each built with its own fields of the options;
        ``n_bidders`` builds that many bidders of a single learner instead (one buyer, for instance)."""
        groups = []
        learners = self.learners
        if n_bidders is not None:
            check_positive_int(n_bidders, "n_bidders")
            if len(set(learners)) != 1:
                raise ValueError(f"n_bidders builds one learner; this population has {', '.join(set(learners))}")
            learners = learners[:1] * n_bidders
        for name, run in itertools.groupby(learners):
            component = LEARNERS[name]
            own = {f.name: getattr(self.options, f.name) for f in dataclasses.fields(component.options)}
            groups.append(component(own, len(list(run)), n_items, values))
        return groups

    def check_horizon(self, auctions: int, flag: str) -> None:
        """Refuse a horizon that ends inside forced exploration: every bid of its exploring (epsilon-greedy,
        DQN) bidders would be a uniform draw, and the results would measure random bids, not learners."""
        exploring = [name for name in self.learners if issubclass(LEARNERS[name].options, ExplorationOptions)]
        if exploring and auctions <= self.options.explore_steps:
            raise ValueError(f"{flag} ({auctions}) must exceed explore_steps ({self.options.explore_steps}): "
                             f"{exploring[0]} bidders would never leave forced exploration")  # fmt: skip


COMPONENTS: dict[type, tuple[str, Registry]] = {MechanismSpec: ("mechanism", MECHANISMS),
                                                 PopulationSpec: ("learner", LEARNERS)}  # fmt: skip


def component_of(spec_type: Any) -> tuple[str, Registry] | None:
    """``(the field naming its component, the registry)`` of a spec type that names one (``MechanismSpec``,
    ``PopulationSpec`` and their subclasses); None for any other type."""
    return next((v for k, v in COMPONENTS.items() if isinstance(spec_type, type) and issubclass(spec_type, k)), None)


def switch(spec: Any, name: str) -> Any:
    """``spec`` (a ``MechanismSpec`` or ``PopulationSpec``) with another component ``name``: the options the new
    component shares with the old keep their values, the others take their defaults."""
    field = component_of(type(spec))[0]
    renamed = dataclasses.replace(spec, **{field: name, "options": None})
    kept = {f.name: getattr(spec.options, f.name) for f in dataclasses.fields(renamed.options)
            if hasattr(spec.options, f.name)}  # fmt: skip
    return dataclasses.replace(renamed, options=kept)


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
    bidders, and its values additive (unit-demand and combinatorial settings are the regret experiments')"""

    def __post_init__(self) -> None:
        check_choice(self.prior, PRIORS, "prior")
        check_positive_int(self.n_items, "n_items")
        for name in ("value_low", "value_high"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.setting is not None:  # it gives the prior and items (the command line refuses both spelled out)
            demand = setting(self.setting).demand
            if demand != "additive":  # a market's bidders value what they win item by item, added up
                what = "combinatorial (two items and their bundle)" if demand == "combinatorial" else (
                    "unit-demand (a bidder values at most one item)")  # fmt: skip
                raise ValueError(f"setting {self.setting!r} is {what}: a market sells each item by its own rule to "
                                 "bidders whose values add up, so only the regret experiments take it")  # fmt: skip
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
    value_prior = prior.build()
    values = ValueScale(top_value(value_prior, n, m), value_prior.integer)
    groups = bidders.groups(m, values)
    market = Market(
        mechanism=mechanism.build(n, m, highest_bid(groups, value_prior, n, m)),
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


def market_of(config: Any, checked: bool = False) -> Market:
    """The market of a config holding ``mechanism``, ``bidders`` and ``prior`` specs (and ``utility``, else
    quasi-linear): ``build_market`` on them."""
    utility = getattr(config, "utility", UtilitySpec())
    return build_market(config.mechanism, config.bidders, config.prior, utility, checked)


def refuse_inapplicable(names: Iterable[str], config: Any) -> None:
    """``ValueError`` for the first of ``names`` (settings ``config`` lacks) that is an option of a component
    other than the config's chosen ones, naming the components that take it."""
    specs = [getattr(config, f.name) for f in dataclasses.fields(config)]
    chosen = [f"{c[0]} {getattr(spec, c[0])!r}" for spec in specs if (c := component_of(type(spec)))]
    for name in names:
        owners = [f"{registry.kind} {c}" for registry in (MECHANISMS, LEARNERS) for c, component in
                  sorted(registry.items()) if name in option_names(component.options)]  # fmt: skip
        if owners:
            raise ValueError(f"{name} is an option of {', '.join(owners)}, not of the chosen {' and '.join(chosen)}")


def setting_paths(config: Any) -> dict[str, tuple[str, ...]]:
    """``{setting name: attribute path}`` of a config of specs, nested dataclasses (a spec's options included) by
    their own field names, which are unique across a config: they are its command line's flags."""
    paths: dict[str, tuple[str, ...]] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        nested = setting_paths(value) if dataclasses.is_dataclass(value) else {field.name: ()}
        for name, path in nested.items():
            if name in paths:
                raise TypeError(f"setting {name!r} appears twice in {type(config).__name__}")
            paths[name] = (field.name, *path)
    return paths


def _replaced(obj: Any, changes: dict[str, Any]) -> Any:
    """``obj`` with ``changes`` (a tree of field -> value or nested changes), one ``replace`` per dataclass so
    that settings checked together (a window and a horizon) change together."""
    return dataclasses.replace(obj, **{
        name: _replaced(getattr(obj, name), change) if isinstance(change, _Nested) else change
        for name, change in changes.items()
    })  # fmt: skip


class _Nested(dict):
    """Changes to a nested dataclass (a dict subclass, telling them apart from dict-valued settings)."""


def _tree(changes: dict[tuple[str, ...], Any]) -> _Nested:
    tree = _Nested()
    for path, value in changes.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, _Nested())
        node[path[-1]] = value
    return tree


def replace_fields(config: Any, **flat: Any) -> Any:
    """A copy of a config of specs with settings replaced by their (unique) names, the flags' names.

    For example ``replace_fields(config, rounds=3, mechanism="second_price", reserve=2.0)``: components
    (``mechanism``, ``learner``) change first, keeping the options they share (``switch``), then the rest.
    """
    for name, _ in COMPONENTS.values():
        path = setting_paths(config).get(name)
        if name in flat and path is not None:
            owner = functools.reduce(getattr, path[:-1], config)
            if component_of(type(owner)) is not None:
                config = _replaced(config, _tree({path[:-1]: switch(owner, flat[name])}))
                flat = {k: v for k, v in flat.items() if k != name}
    paths = setting_paths(config)
    unknown = sorted(set(flat) - set(paths))
    if unknown:
        refuse_inapplicable(unknown, config)
        raise ValueError(f"unknown setting {unknown[0]!r}; settings: {sorted(paths)}")
    return _replaced(config, _tree({paths[name]: value for name, value in flat.items()}))
