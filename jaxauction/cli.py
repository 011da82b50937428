"""Command lines for experiments, generated from their configuration dataclasses with tyro.

``parse(Config, argv, experiment=...)`` turns ``Config`` (a dataclass of
specs) and ``RunSpec`` into one flat command line: every field is a flag
named after it (``--mechanism``, ``--rounds``, ``--seeds`` ...), its
docstring is the help, its default is shown, and ``Literal`` fields list
their choices. Bad values stop with a short message naming the problem
before anything runs.

``--resume DIR`` reads the run's configuration and seeds from its
checkpoint, so no other flag is needed; flags given with it may only extend
the run (``--rounds``), and any conflict is named setting by setting.

``main(fn)`` runs an experiment's entry point and turns the errors a user
can cause (a bad setting, a bad or read-only folder, a damaged checkpoint,
Ctrl-C) into one line on stderr and a non-zero status instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import tyro

from jaxauction import checkpoint
from jaxauction.driver import RunError, RunSpec
from jaxauction.parallel import initialize_distributed
from jaxauction.specs import PriorSpec, component_of, refuse_inapplicable, switch

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a (nested) config dataclass from its ``dataclasses.asdict`` JSON form."""
    kwargs = {}
    unknown = sorted(set(data) - {field.name for field in dataclasses.fields(cls)})
    if unknown:  # a setting this version no longer has (or an edited header): never drop it silently
        raise ValueError(f"{cls.__name__} has no setting {', '.join(unknown)}")
    for field in dataclasses.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        default = field.default if field.default is not dataclasses.MISSING else None
        if default is None and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def flat_settings(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{setting: value}`` of a config of specs (nested fields by their own names)."""
    settings: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            settings.update(flat_settings(value))
        else:
            settings[field.name] = value
    return settings


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def one_line(box: str, fields: Iterable[str] = ()) -> str:
    """tyro's error box as one line, in flags: its first section's text, without the box, the ``Error parsing
    config.x:`` prefix, and with configuration ``fields`` named as the flags that set them (``--n-bidders``)."""
    sections: list[list[str]] = [[]]
    for line in box.splitlines():
        if re.search(r"[─-]{10}", line):  # a rule (or the title bar of a terminal's box) starts a section
            sections.append([])
        elif line.strip(" │"):
            sections[-1].append(line.strip(" │"))
    texts = [" ".join(section) for section in sections if section]
    # the first section is the box's title ("Value error") where no terminal draws it into the top rule
    message = next((t for t in texts if ":" in t or "." in t), texts[0] if texts else "")
    message = message or "the command line cannot be parsed"
    message = re.sub(r"^Error parsing (config|run)(\.[\w.]+)?: ", "", message)
    message = re.sub(r"^Error parsing (--[\w-]+): ", r"\1: ", message)
    for name in sorted(set(fields), key=len, reverse=True):
        message = re.sub(rf"(?<![\w-])({re.escape(name)})(?= \(| must| is | has |:)", "--" + name.replace("_", "-"),
                         message)  # fmt: skip
    return message


def quiet_cli(cls: Any, argv: Sequence[str], fields: Iterable[str] = (), **kwargs: Any) -> Any:
    """``tyro.cli`` whose parse errors are one line on stderr (``error: ...``, status 2) rather than a box that
    names internal fields; ``--help`` prints as usual."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            return tyro.cli(cls, args=argv, **kwargs)
    except SystemExit as exit_:
        if not exit_.code:  # --help
            sys.stdout.write(stdout.getvalue())
            raise
        _fail(one_line(stderr.getvalue() + stdout.getvalue(), fields))


def _preparse(argv: Sequence[str]) -> argparse.Namespace:
    """The flags needed before the full parse: ``--resume`` (its settings become the defaults) and the
    ``jax.distributed`` ones (initialised before any JAX call, which validating a configuration makes)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--resume", type=Path)
    pre.add_argument("--coordinator-address")
    pre.add_argument("--num-processes", type=int)
    pre.add_argument("--process-id", type=int)
    known, _ = pre.parse_known_args(argv)
    return known


def _has_prior_spec(config_cls: type) -> bool:
    """Whether a config holds a ``PriorSpec`` (whose ``--setting`` replaces the prior's flags)."""
    return any(isinstance(t, type) and issubclass(t, PriorSpec) for t in typing.get_type_hints(config_cls).values())


def _flag_value(argv: Sequence[str], name: str) -> str | None:
    """The value of ``--name`` (or ``--name=value``) in ``argv``, the last one given; None if absent."""
    flag, value = "--" + name.replace("_", "-"), None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _specialised(config_cls: type, argv: Sequence[str], base: Any) -> tuple[type, Any]:
    """``config_cls`` with each component spec's ``options`` typed as the chosen components' options spec, so that
    tyro shows (and parses) exactly their options, and ``base`` (the defaults, or a resumed run's settings) as an
    instance of it, not yet checked as a whole (the command line's other flags may be what makes it valid). The
    chosen components are the command line's (``--mechanism``, ``--learner``), else ``base``'s; options they share
    with ``base``'s components keep its values."""
    hints = typing.get_type_hints(config_cls, include_extras=True)
    overrides: dict[str, tuple[type, Any]] = {}
    for field in dataclasses.fields(config_cls):
        spec_cls = hints[field.name]
        component = component_of(spec_cls)
        if component is None:
            continue
        name_field, registry = component
        spec = getattr(base, field.name)
        chosen = _flag_value(argv, name_field) or getattr(spec, name_field)
        try:
            spec = switch(spec, chosen) if chosen != getattr(spec, name_field) else spec
        except (TypeError, ValueError) as err:  # an unknown name, or options that do not combine
            _fail(str(err))
        what = "the rule" if name_field == "mechanism" else "one learner for every bidder, or a comma list, one each"
        help_ = f"{what}: {registry.help()}"
        namespace = {
            "__annotations__": {
                name_field: Annotated[str, tyro.conf.arg(help=help_)],
                "options": Annotated[type(spec.options), tyro.conf.arg(help=f"the options of {chosen}")],
            },
            "options": dataclasses.field(default=spec.options),
        }
        sub = dataclasses.dataclass(frozen=True)(type(spec_cls.__name__, (spec_cls,), namespace))
        sub.__doc__ = spec_cls.__doc__
        overrides[field.name] = (sub, sub(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}))
    if not overrides:
        return config_cls, base
    namespace = {"__annotations__": {k: sub for k, (sub, _) in overrides.items()}}
    namespace.update({k: dataclasses.field(default=value) for k, (_, value) in overrides.items()})
    special = dataclasses.dataclass(frozen=True)(type(config_cls.__name__, (config_cls,), namespace))
    special.__doc__ = config_cls.__doc__
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(config_cls)}
    default = object.__new__(special)  # unchecked: __post_init__ runs on the parsed config
    for name, value in {**values, **{k: value for k, (_, value) in overrides.items()}}.items():
        object.__setattr__(default, name, value)
    return special, default


def _general(config_cls: type, config: Any) -> Any:
    """A parsed (specialised) config as an instance of ``config_cls`` and its own spec classes."""
    hints = typing.get_type_hints(config_cls)
    values = {}
    for field in dataclasses.fields(config_cls):
        value = getattr(config, field.name)
        if component_of(hints[field.name]) is not None:
            value = hints[field.name](**{f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        values[field.name] = value
    return config_cls(**values)


def parse(
    config_cls: type[C],
    argv: Sequence[str] | None = None,
    *,
    experiment: str,
    description: str = "",
    extendable: Sequence[str] = ("rounds",),
    check: Callable[[C], Any] | None = None,
) -> tuple[C, RunSpec]:
    """Parse the command line of ``python -m experiments.<experiment>`` into ``(config, run spec)``.

    ``check(config)`` (building the experiment's market, say) runs before anything else does; its errors are one
    line naming the flags, like the parse's own."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {a.split("=")[0] for a in argv if a.startswith("--")}
    if "--setting" in flags and _has_prior_spec(config_cls):
        spelled = sorted(flags & {"--prior", "--value-low", "--value-high", "--items", "--n-items"})
        if spelled:
            _fail(f"--setting gives the prior and items; drop {', '.join(spelled)}")
    early = _preparse(argv)
    initialize_distributed(early.coordinator_address, early.num_processes, early.process_id)
    resume = early.resume
    default, saved = None, None
    if resume is not None:
        try:
            meta = checkpoint.read_meta(resume)
        except (FileNotFoundError, checkpoint.CheckpointError) as err:
            _fail(f"--resume {resume}: {err}")
        if meta.get("experiment") != experiment:
            _fail(f"--resume {resume}: the checkpoint was written by {meta.get('experiment')!r}, not {experiment!r}")
        try:
            saved = from_dict(config_cls, meta["config"])
            run = meta["run"]
        except (KeyError, TypeError, ValueError) as err:
            _fail(f"--resume {resume}: the checkpoint's settings cannot be read back ({type(err).__name__}: {err}); "
                  "was its header edited, or written by another version of jaxauction?")  # fmt: skip
    special_cls, special_default = _specialised(config_cls, argv, config_cls() if saved is None else saved)
    args_cls = dataclasses.make_dataclass(
        "Arguments",
        [
            ("config", special_cls, dataclasses.field(default_factory=special_cls)),
            ("run", RunSpec, dataclasses.field(default_factory=RunSpec)),
        ],
        frozen=True,
    )
    fields = [*flat_settings(special_default), *(f.name for f in dataclasses.fields(RunSpec))]
    given = [a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")]
    try:
        refuse_inapplicable([name for name in given if name not in fields], special_default)
    except ValueError as err:
        name, rest = str(err).split(" ", 1)
        _fail(f"--{name.replace('_', '-')} {rest}")
    if saved is not None:
        try:
            output = meta.get("output", {})
            default = args_cls(
                special_default,
                RunSpec(
                    seed=run["seed"],
                    seeds=run["seeds"],
                    seed_loop=run["seed_loop"],
                    resume=resume,
                    plots=bool(output.get("plots", True)),
                    shard=bool(output.get("shard", True)),
                ),
            )
        except (KeyError, TypeError, ValueError) as err:
            _fail(f"--resume {resume}: the checkpoint's run settings cannot be read back ({type(err).__name__}: "
                  f"{err}); was its header edited?")  # fmt: skip
    args = quiet_cli(
        tyro.conf.OmitArgPrefixes[args_cls],  # type: ignore[index]
        argv,
        fields=fields,
        default=default,
        prog=f"python -m experiments.{experiment}",
        description=description,
    )
    if saved is not None:
        before = flat_settings(saved)  # options of components the run did not use are covered by the component's
        conflicts = [
            f"{name}: {value!r} (the run has {before[name]!r})"
            for name, value in flat_settings(args.config).items()
            if name in before and name not in extendable and value != before[name]
        ]
        conflicts += [
            f"{name}: {getattr(args.run, name)!r} (the run has {getattr(default.run, name)!r})"
            for name in ("seed", "seeds", "seed_loop")
            if getattr(args.run, name) != getattr(default.run, name)
        ]
        if conflicts:
            _fail(f"--resume {resume} continues a run; these flags differ from its settings: " + "; ".join(conflicts))
    config = _general(config_cls, args.config)
    if check is not None:
        try:
            check(config)
        except ValueError as err:
            _fail(one_line(str(err), fields))
    return config, args.run


def main(fn: Callable[[], Any]) -> Any:
    """Run an experiment's entry point; errors a user can cause end in one line on stderr, not a traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # the driver has said where the checkpoint is
    except (RunError, checkpoint.CheckpointError, OSError, ValueError) as err:
        # ValueError: the library's checks name the bad setting; OSError: the output folder (read-only, full)
        _fail(str(err) if isinstance(err, (RunError, ValueError)) else f"{type(err).__name__}: {err}")
