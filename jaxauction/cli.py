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
from typing import Any, TypeVar

import tyro

from jaxauction import checkpoint
from jaxauction.driver import RunError, RunSpec
from jaxauction.parallel import initialize_distributed
from jaxauction.specs import PriorSpec

C = TypeVar("C")


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a (nested) config dataclass from its ``dataclasses.asdict`` JSON form."""
    kwargs = {}
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


def parse(
    config_cls: type[C],
    argv: Sequence[str] | None = None,
    *,
    experiment: str,
    description: str = "",
    extendable: Sequence[str] = ("rounds",),
) -> tuple[C, RunSpec]:
    """Parse the command line of ``python -m experiments.<experiment>`` into ``(config, run spec)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {a.split("=")[0] for a in argv if a.startswith("--")}
    if "--setting" in flags and _has_prior_spec(config_cls):
        spelled = sorted(flags & {"--prior", "--value-low", "--value-high", "--items", "--n-items"})
        if spelled:
            _fail(f"--setting gives the prior and items; drop {', '.join(spelled)}")
    args_cls = dataclasses.make_dataclass(
        "Arguments",
        [
            ("config", config_cls, dataclasses.field(default_factory=config_cls)),
            ("run", RunSpec, dataclasses.field(default_factory=RunSpec)),
        ],
        frozen=True,
    )
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
            output = meta.get("output", {})
            default = args_cls(
                saved,
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
            _fail(f"--resume {resume}: the checkpoint's settings cannot be read back ({type(err).__name__}: {err}); "
                  "was its header edited?")  # fmt: skip
    args = quiet_cli(
        tyro.conf.OmitArgPrefixes[args_cls],  # type: ignore[index]
        argv,
        fields=[*flat_settings(config_cls()), *(f.name for f in dataclasses.fields(RunSpec))],
        default=default,
        prog=f"python -m experiments.{experiment}",
        description=description,
    )
    if saved is not None:
        conflicts = [
            f"{name}: {value!r} (the run has {flat_settings(saved)[name]!r})"
            for name, value in flat_settings(args.config).items()
            if name not in extendable and value != flat_settings(saved)[name]
        ]
        conflicts += [
            f"{name}: {getattr(args.run, name)!r} (the run has {getattr(default.run, name)!r})"
            for name in ("seed", "seeds", "seed_loop")
            if getattr(args.run, name) != getattr(default.run, name)
        ]
        if conflicts:
            _fail(f"--resume {resume} continues a run; these flags differ from its settings: " + "; ".join(conflicts))
    return args.config, args.run


def main(fn: Callable[[], Any]) -> Any:
    """Run an experiment's entry point; errors a user can cause end in one line on stderr, not a traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # the driver has said where the checkpoint is
    except (RunError, checkpoint.CheckpointError, OSError, ValueError) as err:
        # ValueError: the library's checks name the bad setting; OSError: the output folder (read-only, full)
        _fail(str(err) if isinstance(err, (RunError, ValueError)) else f"{type(err).__name__}: {err}")
