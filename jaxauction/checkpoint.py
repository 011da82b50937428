"""The one module that writes and reads checkpoints.

A checkpoint is a single ``.npz`` file written atomically (temporary file +
rename): the leaves of a state pytree (PRNG keys stored as their raw key data),
the logs gathered so far, and JSON metadata. Loading needs a *template* state
of the same structure (e.g. ``init(key)`` of the same configuration); shapes,
dtypes and structure are checked against it, so a checkpoint from another
configuration is refused with a clear error.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction.io import _atomic_write_bytes, to_jsonable
from jaxauction.parallel import is_prng_key, to_host

FILENAME = "checkpoint.npz"


def _to_numpy(tree: Any) -> tuple[list[np.ndarray], list[bool]]:
    return jax.tree.leaves(to_host(tree)), [is_prng_key(x) for x in jax.tree.leaves(tree)]


def save(directory: str | os.PathLike, state: Any, logs: Any = None, meta: dict | None = None) -> Path:
    """Write ``directory/checkpoint.npz`` atomically; returns its path.

    Arrays spread over several processes are gathered first (every process must
    call ``save``); only process 0 writes.
    """
    state_arrays, state_keys = _to_numpy(state)
    log_arrays, _ = _to_numpy(logs) if logs is not None else ([], [])
    payload = {f"state_{i}": a for i, a in enumerate(state_arrays)}
    payload.update({f"logs_{i}": a for i, a in enumerate(log_arrays)})
    header = {"meta": to_jsonable(meta or {}), "state_is_key": state_keys, "n_logs": len(log_arrays)}
    payload["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **payload)
    path = Path(directory) / FILENAME
    if jax.process_index() == 0:
        _atomic_write_bytes(path, buf.getvalue())
    return path


def exists(directory: str | os.PathLike) -> bool:
    return (Path(directory) / FILENAME).is_file()


def _existing(directory: str | os.PathLike) -> Path:
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def _header(data: Any) -> dict:
    return json.loads(bytes(data["header"]).decode())


def read_meta(directory: str | os.PathLike) -> dict:
    """The JSON metadata of a checkpoint (``steps_done`` and what the run stored), without loading arrays."""
    with np.load(_existing(directory)) as data:
        return _header(data)["meta"]


def load(directory: str | os.PathLike, template_state: Any, template_logs: Any = None) -> tuple[Any, Any, dict]:
    """Read a checkpoint into the structure of ``template_state`` (and ``template_logs``, per-step logs stacked
    on a leading axis of any length). Returns ``(state, logs or None, meta)``."""
    path = _existing(directory)
    with np.load(path) as data:
        header = _header(data)
        leaves, treedef = jax.tree.flatten(template_state)
        n_state = sum(1 for k in data.files if k.startswith("state_"))
        if n_state != len(leaves):
            raise ValueError(f"checkpoint {path} holds {n_state} state arrays, the configuration expects {len(leaves)}")
        restored = []
        for i, (template, is_key) in enumerate(zip(leaves, header["state_is_key"], strict=True)):
            arr = data[f"state_{i}"]
            if is_key != is_prng_key(template):
                raise ValueError(f"checkpoint {path}: state leaf {i} key-ness differs from the configuration")
            expected = jax.random.key_data(template) if is_key else template  # shape and dtype only
            if arr.shape != expected.shape or arr.dtype != expected.dtype:
                raise ValueError(
                    f"checkpoint {path}: state leaf {i} is {arr.dtype}{list(arr.shape)}, the configuration expects "
                    f"{expected.dtype}{list(expected.shape)}"
                )
            if is_key:
                restored.append(jax.random.wrap_key_data(arr, impl=jax.random.key_impl(template)))
            else:
                restored.append(jnp.asarray(arr))
        state = jax.tree.unflatten(treedef, restored)
        logs = None
        if template_logs is not None and header["n_logs"]:
            log_leaves, log_def = jax.tree.flatten(template_logs)
            logs = jax.tree.unflatten(log_def, [data[f"logs_{i}"] for i in range(len(log_leaves))])
    return state, logs, header["meta"]
