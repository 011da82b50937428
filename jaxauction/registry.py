"""Registries of component builders: a name maps to a builder and the small options spec it declares.

A component is what a configuration names: a mechanism (``MECHANISMS``) or a
learner (``LEARNERS``). Each registers its builder with its own frozen
options dataclass, whose fields (with their docstrings) are that component's
settings, its checks live in the dataclass's ``__post_init__``, and the
command line shows exactly the chosen component's options::

    @dataclasses.dataclass(frozen=True)
    class MyOptions:
        tax: float = 0.1
        \"\"\"the share of the price kept by the platform\"\"\"

    @ja.MECHANISMS.register("my_rule", MyOptions, "second price plus a tax")
    def _my_rule(options, n_bidders, n_items, bid_scale):
        return my_rule(n_bidders, options.tax)

The builders' signatures:

* mechanisms: ``build(options, n_bidders, n_items, bid_scale) -> Mechanism``
  (``bid_scale``: the highest bid the market's bidders can make);
* learners: ``build(options, n_bidders, n_items, values) -> Learner``
  (``values``: a ``ValueScale``, what a learner may know of the prior).

The package registers its own components in ``jaxauction.mechanisms.builders``
and ``jaxauction.bidders.builders``; ``import jaxauction`` fills both registries.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jaxauction._checks import check_choice


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """A component with no options."""


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered builder: its name, its options spec and a one-line summary (the command line's help)."""

    name: str
    build: Callable[..., Any]
    options: type = NoOptions
    summary: str = ""
    kind: str = "component"

    def coerce(self, options: Any) -> Any:
        """The component's options from ``None`` (its defaults), a dict of fields (a checkpoint's JSON form) or
        an instance of its options spec; ``TypeError`` names any other."""
        return coerce(self.options, options, f"{self.kind} {self.name!r}")

    def __call__(self, options: Any, *sizes: Any) -> Any:
        """``build(options, *sizes)`` with the options coerced and checked first."""
        return self.build(self.coerce(options), *sizes)


def coerce(cls: type, options: Any, owner: str) -> Any:
    """``options`` as an instance of the options spec ``cls`` (see ``Component.coerce``)."""
    if options is None:
        return cls()
    if isinstance(options, Mapping):
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{owner} has no option {', '.join(unknown)}; its options: {option_names(cls)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    if type(options) is not cls:
        raise TypeError(f"{owner} takes {cls.__name__}, not {type(options).__name__}")
    return options


def option_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


class Registry(Mapping[str, Component]):
    """Names to ``Component`` builders of one kind (``"mechanism"``, ``"learner"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._components: dict[str, Component] = {}

    def register(self, name: str, options: type = NoOptions, summary: str = "") -> Callable[[Callable], Callable]:
        """A decorator registering ``build`` under ``name``, with its options spec (a frozen dataclass whose
        every field has a default) and a one-line summary."""
        if name in self._components:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        fields = dataclasses.fields(options) if dataclasses.is_dataclass(options) else None
        if fields is None or not options.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"the options of {self.kind} {name!r} must be a frozen dataclass, got {options!r}")
        missing = [
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise TypeError(f"every option needs a default; {options.__name__} has none for {missing}")

        def decorate(build: Callable) -> Callable:
            self._components[name] = Component(name, build, options, summary, self.kind)
            return build

        return decorate

    def __getitem__(self, name: str) -> Component:
        check_choice(name, self._components, self.kind)
        return self._components[name]

    def __contains__(self, name: object) -> bool:
        return name in self._components

    def __iter__(self) -> Iterator[str]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._components)})"

    def help(self) -> str:
        """One line per component, ``name: summary``, sorted."""
        return "; ".join(f"{name} ({c.summary})" if c.summary else name for name, c in sorted(self.items()))

    def options(self, names: Iterable[str]) -> type:
        """The options spec of several components together (a mixed population's learners): their own when they
        share one, else one dataclass inheriting them all. Options of the same name must agree in type and
        default (the package's learners share theirs through common bases, ``GridOptions``)."""
        specs = tuple(dict.fromkeys(self[name].options for name in names))
        return _merged(tuple(s for s in specs if s is not NoOptions) or (NoOptions,))


@functools.cache
def _merged(specs: tuple[type, ...]) -> type:
    """One options dataclass holding the fields of every spec (cached: the same specs give the same class, so
    configs holding it compare equal)."""
    if len(specs) == 1:
        return specs[0]
    seen: dict[str, tuple[type, dataclasses.Field]] = {}
    for spec in specs:
        for field in dataclasses.fields(spec):
            if field.name in seen:
                other, first = seen[field.name]
                if (first.type, first.default, first.default_factory) != (
                    field.type,
                    field.default,
                    field.default_factory,
                ):
                    raise TypeError(f"option {field.name!r} differs between {other.__name__} and {spec.__name__}; "
                                    "rename one to combine them")  # fmt: skip
            else:
                seen[field.name] = (spec, field)
    bases = tuple(s for s in specs if s is not NoOptions) or (NoOptions,)

    def __post_init__(self: Any) -> None:  # every spec's checks (a subclass would run only its first base's)
        for spec in specs:
            check = getattr(spec, "__post_init__", None)
            if check is not None:
                check(self)

    name = "And".join(s.__name__.removesuffix("Options") for s in specs) + "Options"
    merged = type(name, bases, {"__post_init__": __post_init__})
    merged.__doc__ = "The options of " + ", ".join(s.__name__ for s in specs) + "."
    merged.__module__ = __name__
    return dataclasses.dataclass(frozen=True)(merged)


MECHANISMS = Registry("mechanism")
"""Mechanism builders by name: ``build(options, n_bidders, n_items, bid_scale) -> Mechanism``."""

LEARNERS = Registry("learner")
"""Learner builders by name: ``build(options, n_bidders, n_items, values) -> Learner``."""
