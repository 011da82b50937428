"""Running experiments: a chunked driver, and a session that gives any experiment progress, checkpoints,
resume, logs and sharding in one call.

``run_chunked(step, state, total_steps, chunk=K)`` is generic over any pure
``step(state) -> (state, log)``: it jit-compiles a ``lax.scan`` of K steps,
loops over chunks in Python, and between chunks (on the host only) hands the
chunk's logs and the new state to ``on_chunk``, appends the logs to a
``LogStore``, updates a tqdm bar (steps, rate, ETA, latest metrics) and writes
an atomic checkpoint every ``checkpoint_every`` chunks and at the end. Ctrl-C
writes a checkpoint of the last completed chunk before re-raising, so an
interrupted run loses nothing it already reported. No host callback runs
inside the jitted loop. Checkpoints hold the state only and logs are appended,
so a run's cost is linear in its length.

``Session(name, config, spec)`` is what an experiment calls: it starts
``jax.distributed`` when asked, picks the run's own output folder (refusing
to overwrite another run's results without ``overwrite``), and ``run(init,
step, total_steps, ...)`` then batches seeds, shards them over a device mesh,
resumes from a checkpoint (checking that the configuration is the same), runs
the chunks, and writes one summary row per step to ``rounds.jsonl`` and
``rounds.csv``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import jax
import numpy as np
import tyro
from jax.experimental import checkify

from jaxauction import checkpoint, io, prng
from jaxauction.memory import check_fits, tree_bytes
from jaxauction.parallel import SEED_LOOPS, initialize_distributed, over_seeds, plan_mesh, shard_state, to_host

RESULTS_ROOT = Path("results")
RUN_FILES = ("checkpoint.npz", "metrics.json", "rounds.jsonl", "rounds.csv", "logs", "evaluation")
LOCK = ".lock"  # a run's lock file in its folder: {"pid", "host", "started"}
MEMORY_HEADROOM = 4.0  # a run may use its state's size this many times over (logs, temporaries, the update)


def acquire_lock(out: Path) -> None:
    """Take ``out``'s lock for this process, or refuse with one line naming the process that holds it. A lock
    left by a process that is gone (killed) is taken over; this process may take its own lock again (several
    runs one after another in one Python process)."""
    path = out / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.datetime.now().isoformat()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            pid, host = holder.get("pid"), holder.get("host")
            if pid == me["pid"] and host == me["host"]:
                return
            if host == me["host"] and isinstance(pid, int) and not _alive(pid):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise in_use(out, holder) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        atexit.register(release_lock, out)
        return
    raise RunError(f"{out}: could not take the run folder's lock ({path})")


def _holder(path: Path) -> dict[str, Any]:
    """The lock file's record (``{}`` when unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def in_use(out: Path, holder: dict[str, Any]) -> RunError:
    return RunError(f"{out} is in use by another run (process {holder.get('pid')} on {holder.get('host')}, since "
                    f"{holder.get('started')}): wait for it to finish, or choose another folder")


def check_not_in_use(out: Path) -> None:
    """Refuse ``out`` when another live process holds its lock (before anything else is said about the folder:
    a running run's files are not "another run's results")."""
    if not (out / LOCK).exists():
        return
    holder = _holder(out / LOCK)
    pid, host = holder.get("pid"), holder.get("host")
    if host == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        raise in_use(out, holder)


def release_lock(out: Path) -> None:
    """Give ``out``'s lock back if this process holds it."""
    path = out / LOCK
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunError(Exception):
    """A run that cannot start as asked (bad output folder, conflicting resume); the message says why."""


class RunResult(NamedTuple):
    state: Any
    logs: Any  # this call's per-step logs stacked on a leading axis (numpy), or None when no step ran
    compile_seconds: float
    run_seconds: float
    steps_run: int


# Compiled chunk programs, kept for the process: running the same step again (a resumed run, a repeated
# benchmark) does not compile it again. Keyed by the step function and the state's structure and placement.
_PROGRAMS: dict[Any, Any] = {}


def _signature(state: Any) -> Any:
    leaves, treedef = jax.tree.flatten(state)
    return treedef, tuple((x.shape, str(x.dtype), getattr(x, "sharding", None)) for x in leaves)


def _concat(chunks: list[Any]) -> Any:
    if not chunks:
        return None
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *chunks)


def run_chunked(
    step: Callable[[Any], tuple[Any, Any]],
    state: Any,
    total_steps: int,
    *,
    chunk: int = 1,
    done: int = 0,
    log_store: io.LogStore | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    meta: dict | None = None,
    on_chunk: Callable[[int, Any, Any], None] | None = None,
    describe: Callable[[Any], dict[str, float]] | None = None,
    progress: bool = True,
    unit: str = "step",
    checked: bool = False,
    time_limit: float | None = None,
) -> RunResult:
    """Run ``step`` until ``total_steps`` are done, ``chunk`` steps per compiled call.

    Args:
      step: pure ``state -> (state, log)``.
      state: the state after ``done`` steps (a fresh ``init`` or a loaded checkpoint).
      log_store: where each chunk's logs are appended (None: kept in memory only).
      checkpoint_dir: where ``checkpoint.npz`` goes (None: no checkpoints).
      checkpoint_every: chunks between checkpoints (the last chunk is always checkpointed).
      meta: extra JSON metadata stored with each checkpoint (``steps_done`` is added).
      on_chunk: ``on_chunk(steps_done, chunk_logs, state)`` after each chunk, on the host (evaluators, reports).
      describe: latest-log summary for the progress bar, ``chunk_logs -> {name: value}``.
      checked: run the program under ``checkify`` and raise the first failed check after its chunk.
      time_limit: stop after the first chunk that ends past this many seconds of running (compilation not
        counted), with a checkpoint; ``RunResult.steps_run`` says how far it got (None: no limit).
    """
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    if chunk < 1 or checkpoint_every < 1:
        raise ValueError(f"chunk ({chunk}) and checkpoint_every ({checkpoint_every}) must be >= 1")
    if not 0 <= done <= total_steps:
        raise ValueError(f"steps already done ({done}) must be between 0 and the total ({total_steps})")

    compile_seconds = 0.0

    def program(length: int):
        nonlocal compile_seconds
        key = (step, length, checked, _signature(state))
        if key not in _PROGRAMS:
            scan = lambda s: jax.lax.scan(lambda c, _: step(c), s, None, length=length)  # noqa: E731
            fn = jax.jit(checkify.checkify(scan, errors=checkify.user_checks) if checked else scan)
            start = time.perf_counter()
            _PROGRAMS[key] = fn.lower(state).compile()
            compile_seconds += time.perf_counter() - start
        return _PROGRAMS[key]

    def save(at_state: Any, steps_done: int) -> None:
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, at_state, {**(meta or {}), "steps_done": steps_done})

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=done, unit=unit, file=sys.stderr, dynamic_ncols=True)
    run_seconds, start_done, chunks, logs = 0.0, done, 0, []
    # The state whose every step's logs are stored: what Ctrl-C checkpoints. A chunk's state is not, until its
    # logs are appended: a checkpoint ahead of the logs would resume with steps that were never logged.
    safe = (state, done)
    try:
        while done < total_steps:
            length = min(chunk, total_steps - done)
            fn = program(length)
            start = time.perf_counter()
            out = jax.block_until_ready(fn(state))
            run_seconds += time.perf_counter() - start
            if checked:
                error, out = out
                error.throw()
            state, chunk_logs = out
            chunk_logs = to_host(chunk_logs)
            done, chunks = done + length, chunks + 1
            logs.append(chunk_logs)
            if log_store is not None and jax.process_index() == 0:
                log_store.append(chunk_logs)
            safe = (state, done)
            if on_chunk is not None:
                on_chunk(done, chunk_logs, state)
            if bar is not None:
                bar.update(length)
                if describe is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in describe(chunk_logs).items()})
            out_of_time = time_limit is not None and run_seconds >= time_limit
            if chunks % checkpoint_every == 0 or done == total_steps or out_of_time:
                save(state, done)
            if out_of_time and done < total_steps:
                print(
                    f"time limit ({time_limit:g} s) reached after {done} of {total_steps} {unit}s; "
                    f"checkpoint written to {checkpoint_dir}",
                    file=sys.stderr,
                )
                break
    except KeyboardInterrupt:
        save(*safe)
        if bar is not None:
            bar.close()
        where = f"; checkpoint written to {checkpoint_dir}" if checkpoint_dir is not None else ""
        print(f"\ninterrupted after {safe[1]} {unit}s{where}", file=sys.stderr)
        raise
    if bar is not None:
        bar.close()
    return RunResult(state, _concat(logs), compile_seconds, run_seconds, done - start_done)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """How an experiment runs: seeds, output, resume, devices."""

    seeds: int = 1
    """independent runs, batched on one axis"""
    seed: int = 0
    """base PRNG seed; run i uses split(key(seed), seeds)[i]"""
    out: Path | None = None
    """output folder; default: results/<experiment>/<time>-<config hash>, a new folder per run"""
    resume: Path | None = None
    """continue the run in this folder: its configuration is read from the checkpoint; flags may only
    extend its length"""
    overwrite: bool = False
    """replace the results of another run in --out"""
    chunk: Annotated[int, tyro.conf.arg(aliases=("--chunk-rounds",))] = 1
    """steps (rounds) per compiled chunk"""
    checkpoint_every: int = 1
    """chunks between checkpoints"""
    progress: bool = True
    """show a progress bar"""
    plots: bool = True
    """write PNG plots"""
    shard: bool = True
    """split seeds, then markets (data-parallel), over all visible devices, when several are visible"""
    seed_loop: Literal["vmap", "map"] = "vmap"
    """seeds vectorised (vmap), or one after another per device (map: sharded == single device, bit for bit)"""
    time_limit: float | None = None
    """stop after the first chunk that ends past this many seconds of running, with a checkpoint (--resume
    continues it); the experiment reports what it has (None: run to the end)"""
    checked: bool = False
    """debug: check every auction for NaN or negative bids and NaN outcomes (checkify), slower"""
    coordinator_address: str | None = None
    """jax.distributed coordinator host:port ('auto' on SLURM / TPU pods)"""
    num_processes: int | None = None
    """jax.distributed process count"""
    process_id: int | None = None
    """jax.distributed process id"""

    def __post_init__(self) -> None:
        for name in ("seeds", "chunk", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, got {self.time_limit!r}")
        if self.time_limit is not None and (self.num_processes or 1) > 1:
            raise ValueError("time_limit is for single-process runs (processes would stop at different chunks)")
        if self.seed_loop not in SEED_LOOPS:
            raise ValueError(f"unknown seed_loop {self.seed_loop!r}; choose one of {list(SEED_LOOPS)}")


def config_hash(config: Any) -> str:
    return hashlib.sha256(json.dumps(io.to_jsonable(config), sort_keys=True).encode()).hexdigest()[:8]


def run_meta(name: str, config: Any, spec: RunSpec) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint (the experiment, its configuration, the seeds)."""
    return io.to_jsonable(
        {
            "experiment": name,
            "config": config,
            "run": {"seed": spec.seed, "seeds": spec.seeds, "seed_loop": spec.seed_loop},
            # remembered by --resume (a flag given with it overrides): sharding changes how XLA partitions the
            # program, and so the last bits of the results, so a resume keeps the run's choice
            "output": {"plots": spec.plots, "shard": spec.shard},
        }
    )


def output_folder(name: str, config: Any, spec: RunSpec) -> Path:
    """The run's folder: ``--resume``'s, ``--out``, or a new ``results/<name>/<time>-<hash>``; checked, not created."""
    if spec.resume is not None:
        if spec.out is not None and Path(spec.out).resolve() != Path(spec.resume).resolve():
            raise RunError(f"--resume {spec.resume} continues the run in its own folder; drop --out {spec.out}")
        if not checkpoint.exists(spec.resume):
            raise RunError(f"--resume {spec.resume}: no checkpoint there")
        return Path(spec.resume)
    if spec.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        return RESULTS_ROOT / name / f"{stamp}-{config_hash(config)}"
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder")
    if jax.process_index() == 0:  # a distributed run's other processes share process 0's folder and lock
        check_not_in_use(out)
    taken = [f for f in RUN_FILES if (out / f).exists()]
    if taken and not spec.overwrite:
        raise RunError(f"--out {out} holds another run's results ({', '.join(taken)}): choose another folder, "
                       "--resume it, or pass --overwrite")  # fmt: skip
    return out


def clear_run_files(out: Path) -> None:
    """Remove a previous run's files (results, logs, plots) from ``out`` before a new run writes there."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for png in out.glob("*.png"):
        png.unlink()


def _leaves(tree: Any) -> dict[str, Any]:
    """``{name: value}`` of the leaves of nested dicts (a stored configuration), by their own names."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_leaves(value) if isinstance(value, dict) else {key: value})
    return out


class SessionResult(NamedTuple):
    state: Any  # the final state, gathered to the host
    logs: Any  # every step's logs (resumed ones included), stacked on a leading axis: [steps, seeds, ...]
    rows: list[dict[str, Any]]  # every step's summary row
    done_before: int  # steps the run had done before this call (resume)
    steps_run: int  # steps this call ran
    compile_seconds: float
    run_seconds: float
    mesh: dict[str, int] | None


class Session:
    """One experiment run: its output folder, devices, and the seeds-batched, chunked, resumable run.

    Args:
      name: the experiment's name (the default output folder's parent).
      config: the experiment's configuration (a dataclass; stored in checkpoints).
      spec: how to run it.
    """

    def __init__(self, name: str, config: Any, spec: RunSpec):
        self.name, self.config, self.spec = name, config, spec
        initialize_distributed(spec.coordinator_address, spec.num_processes, spec.process_id)
        self.leader = jax.process_index() == 0  # only process 0 writes and prints
        self.out = output_folder(name, config, spec)
        if self.leader:
            self.out.mkdir(parents=True, exist_ok=True)
            acquire_lock(self.out)  # before anything in the folder changes
            if spec.resume is None:
                clear_run_files(self.out)

    @property
    def finished(self) -> bool:
        """Whether the run's results (``metrics.json``) are written: a resumed, trained run without them
        still has its final evaluation to do."""
        return (self.out / "metrics.json").exists()

    def cached(self, name: str, compute: Callable[[], Any]) -> Any:
        """A part of the final evaluation, computed once: ``evaluation/<name>.json`` when an earlier
        (interrupted) call wrote it, else ``compute()`` (JSON-able), written atomically before it is returned.
        Training more steps clears the cache."""
        path = self.out / "evaluation" / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        value = io.to_jsonable(compute())
        if self.leader:
            path.parent.mkdir(exist_ok=True)
            io.write_json(path, value)
        return value

    def write_metrics(self, m: dict[str, Any]) -> None:
        """Write the run's results, ``metrics.json`` (naming the experiment), atomically: the run is finished."""
        if self.leader:
            io.write_json(self.out / "metrics.json", {"experiment": self.name, **m})

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.leader:
            print(*args, **kwargs)

    def run(
        self,
        init: Callable[[Any], Any],
        step: Callable[[Any], tuple[Any, Any]],
        total_steps: int,
        *,
        summarize: Callable[[Any, int], list[dict[str, Any]]],
        markets: int = 1,
        batch_leaves: Callable[[Any], Any] | None = None,
        describe: Callable[[Any], dict[str, float]] | None = None,
        unit: str = "round",
        extendable: tuple[str, ...] = ("rounds",),
    ) -> SessionResult:
        """Run ``step`` over the seeds until ``total_steps``, resuming when the spec says so.

        Args:
          init: ``key -> state`` for one seed; ``step``: ``state -> (state, log)`` for one seed.
          summarize: ``(logs [steps, seeds, ...], first_step) -> rows``: one summary row per step
            (``rounds.jsonl`` and ``rounds.csv``).
          markets, batch_leaves: with several devices, the markets of each seed (the subtrees
            ``batch_leaves(state)``, leading axis ``markets``) may split over a data-parallel mesh axis.
          extendable: the settings a resumed run may change (its length); any other difference is refused.
        """
        spec, out = self.spec, self.out
        key_shape = jax.eval_shape(lambda: jax.random.split(prng.key(spec.seed), spec.seeds))
        state_shape = jax.eval_shape(jax.vmap(init), key_shape)  # nothing allocated yet
        per_seed = tree_bytes(state_shape) // spec.seeds
        check_fits(int(MEMORY_HEADROOM * per_seed * spec.seeds), f"{spec.seeds:,} seeds",
                   f"{per_seed:,} bytes of state per seed, x{MEMORY_HEADROOM:g} for logs and temporaries")
        keys = jax.random.split(prng.key(spec.seed), spec.seeds)
        state = jax.jit(jax.vmap(init))(keys)
        log_template = jax.eval_shape(jax.vmap(step), state)[1]
        store = io.LogStore(out / "logs", log_template)
        meta = run_meta(self.name, self.config, spec)
        done = 0
        if spec.resume is not None:
            saved = checkpoint.read_meta(out)
            if {k: saved.get(k) for k in ("experiment", "run")} != {k: meta[k] for k in ("experiment", "run")}:
                raise RunError(f"--resume {out}: the checkpoint was made by another experiment or with other seeds")
            differ = [k for k in _leaves(meta["config"]) if k not in extendable and
                      _leaves(meta["config"])[k] != _leaves(saved.get("config", {})).get(k)]  # fmt: skip
            if differ:
                raise RunError(f"--resume {out}: the run was made with other settings ({', '.join(differ)})")
            state, saved = checkpoint.load(out, state)
            done = int(saved["steps_done"])
            if done > total_steps:
                raise RunError(
                    f"--resume {out}: {done} {unit}s are done already, more than the {total_steps} asked for"
                )
        if self.leader:
            store.truncate(done)
        previous = store.read(done) if done and self.leader else None
        rows = summarize(previous, 0) if previous is not None else []
        if self.leader:  # the reports hold exactly the steps of the checkpoint
            for name in ("rounds.jsonl", "rounds.csv"):
                (out / name).unlink(missing_ok=True)
            if rows:
                io.write_jsonl(out / "rounds.jsonl", rows)
                io.write_csv(out / "rounds.csv", list(rows[0]), [tuple(r.values()) for r in rows])
        if done == total_steps:
            return SessionResult(to_host(state), previous, rows, done, 0, 0.0, 0.0, None)
        if self.leader:  # training changes the rule: an earlier evaluation no longer holds
            (out / "metrics.json").unlink(missing_ok=True)
            shutil.rmtree(out / "evaluation", ignore_errors=True)

        mesh = None
        if spec.shard and jax.device_count() > 1:
            mesh = plan_mesh(spec.seeds, markets, spec.seed_loop)
        if mesh is not None:
            state = shard_state(state, mesh, batch_leaves)

        def on_chunk(steps_done: int, chunk_logs: Any, _: Any) -> None:
            if not self.leader:
                return
            length = np.asarray(jax.tree.leaves(chunk_logs)[0]).shape[0]
            new_rows = summarize(chunk_logs, steps_done - length)
            rows.extend(new_rows)
            io.append_jsonl(out / "rounds.jsonl", new_rows)
            io.append_csv(out / "rounds.csv", list(new_rows[0]), [tuple(r.values()) for r in new_rows])

        with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
            result = run_chunked(
                over_seeds(step, spec.seed_loop, mesh),
                state,
                total_steps,
                chunk=spec.chunk,
                done=done,
                log_store=store,
                checkpoint_dir=out,
                checkpoint_every=spec.checkpoint_every,
                meta=meta,
                on_chunk=on_chunk,
                describe=describe,
                progress=spec.progress and self.leader,
                unit=unit,
                checked=spec.checked,
                time_limit=spec.time_limit,
            )
        logs = result.logs if previous is None else _concat([previous, result.logs])
        return SessionResult(
            to_host(result.state),  # a collective: every process gathers
            logs,
            rows,
            done,
            result.steps_run,
            result.compile_seconds,
            result.run_seconds,
            None if mesh is None else dict(mesh.shape),
        )
