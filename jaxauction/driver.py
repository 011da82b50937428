"""A chunked driver for long runs: jit a ``lax.scan`` of K steps, loop over chunks in Python.

Generic over any pure ``step(state) -> (state, log)`` (DMO rounds now; sweeps or
long network training later). Between chunks, on the host only: logs are
gathered and handed to ``on_chunk`` (append to JSONL, print), a tqdm progress
bar shows steps, rate, ETA and the latest metrics, and a checkpoint is written
atomically every ``checkpoint_every`` chunks and at the end. Ctrl-C writes a
checkpoint of the last completed chunk before re-raising, so an interrupted run
loses nothing it already reported. No host callback runs inside the jitted loop.

Resuming continues from a checkpoint's state and step count; because the state
carries its PRNG key, ``k`` chunks + resume + ``m`` chunks is bit-identical to
``k + m`` chunks of the same size (tested).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxauction import checkpoint
from jaxauction.parallel import to_host


class RunResult(NamedTuple):
    state: Any
    logs: Any  # per-step logs stacked on a leading axis (numpy), all steps so far including resumed ones
    compile_seconds: float
    run_seconds: float
    steps_run: int  # steps run by this call (not counting resumed ones)


def _concat(old: Any, new: Any) -> Any:
    if old is None:
        return new
    return jax.tree.map(lambda a, b: np.concatenate([a, b], axis=0), old, new)


def run_chunked(
    step: Callable[[Any], tuple[Any, Any]],
    state: Any,
    total_steps: int,
    *,
    chunk: int = 1,
    done: int = 0,
    logs: Any = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    meta: dict | None = None,
    on_chunk: Callable[[int, Any], None] | None = None,
    describe: Callable[[Any], dict[str, float]] | None = None,
    progress: bool = True,
    unit: str = "step",
) -> RunResult:
    """Run ``step`` until ``total_steps`` are done, ``chunk`` steps per compiled call.

    Args:
      step: pure ``state -> (state, log)``.
      state: the state after ``done`` steps (a fresh ``init`` or a loaded checkpoint).
      logs: the logs of the ``done`` steps already run (from a checkpoint), or None.
      checkpoint_dir: where ``checkpoint.npz`` goes (None: no checkpoints).
      checkpoint_every: chunks between checkpoints (the last chunk is always checkpointed).
      meta: extra JSON metadata stored with each checkpoint (``steps_done`` is added).
      on_chunk: ``on_chunk(steps_done, new_logs)`` after each chunk, on the host.
      describe: latest-log summary for the progress bar, ``new_logs -> {name: value}``.
    """
    if chunk < 1 or checkpoint_every < 1:
        raise ValueError(f"chunk ({chunk}) and checkpoint_every ({checkpoint_every}) must be >= 1")
    if not 0 <= done <= total_steps:
        raise ValueError(f"steps already done ({done}) must be between 0 and the total ({total_steps})")

    compiled: dict[int, Any] = {}
    compile_seconds = 0.0

    def program(length: int):
        nonlocal compile_seconds
        if length not in compiled:
            scan = jax.jit(lambda s: jax.lax.scan(lambda c, _: step(c), s, None, length=length))
            start = time.perf_counter()
            compiled[length] = scan.lower(state).compile()
            compile_seconds += time.perf_counter() - start
        return compiled[length]

    def save(steps_done: int) -> None:
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, state, logs, {**(meta or {}), "steps_done": steps_done})

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=done, unit=unit, file=sys.stderr, dynamic_ncols=True)
    run_seconds, start_done, chunks = 0.0, done, 0
    try:
        while done < total_steps:
            length = min(chunk, total_steps - done)
            fn = program(length)
            start = time.perf_counter()
            new_state, new_logs = jax.block_until_ready(fn(state))
            run_seconds += time.perf_counter() - start
            new_logs = to_host(new_logs)
            state, logs, done, chunks = new_state, _concat(logs, new_logs), done + length, chunks + 1
            if on_chunk is not None:
                on_chunk(done, new_logs)
            if bar is not None:
                bar.update(length)
                if describe is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in describe(new_logs).items()})
            if chunks % checkpoint_every == 0 or done == total_steps:
                save(done)
    except KeyboardInterrupt:
        save(done)
        if bar is not None:
            bar.close()
        print(f"\ninterrupted after {done} {unit}s; checkpoint written to {checkpoint_dir}", file=sys.stderr)
        raise
    if bar is not None:
        bar.close()
    return RunResult(state, logs, compile_seconds, run_seconds, done - start_done)
