"""The one module that writes and reads checkpoints.

A checkpoint is one ``.npz`` file written atomically (temporary file +
rename): the leaves of a state pytree (PRNG keys stored as their raw key
data) and JSON metadata (the run's configuration, the steps done). Logs are
not in it: the driver appends them to a ``LogStore`` as the run goes, so a
checkpoint costs the size of the state, however long the run.

Loading needs a *template* state of the same structure (``init(key)`` of the
same configuration); shapes, dtypes and structure are checked against it, so
a checkpoint from another configuration is refused with a clear error, and so
are files that are not checkpoints (truncated, or another format).

Why not orbax: states here are small (a network and bandit tables) and must
resume bit for bit, including typed PRNG keys; one ``.npz`` gathered to
process 0 does that in 100 lines with numpy alone. Orbax would add
asynchronous, sharded writes that these states do not need, and an API that
changes between releases. Checkpoints that outgrow one host (many GB of
bandit tables) are the case to revisit.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction.io import atomic_write_bytes, to_jsonable
from jaxauction.parallel import is_prng_key, to_host

FILENAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint for this configuration."""


def save(directory: str | os.PathLike, state: Any, meta: dict | None = None) -> Path:
    """Write ``directory/checkpoint.npz`` atomically; returns its path.

    Arrays spread over several processes are gathered first (every process must
    call ``save``); only process 0 writes.
    """
    arrays = jax.tree.leaves(to_host(state))
    payload = {f"state_{i}": a for i, a in enumerate(arrays)}
    header = {"meta": to_jsonable(meta or {}), "state_is_key": [is_prng_key(x) for x in jax.tree.leaves(state)]}
    payload["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **payload)
    path = Path(directory) / FILENAME
    if jax.process_index() == 0:
        atomic_write_bytes(path, buf.getvalue())
    return path


def exists(directory: str | os.PathLike) -> bool:
    return (Path(directory) / FILENAME).is_file()


def _open(directory: str | os.PathLike) -> tuple[Path, Any, dict]:
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = np.load(path, allow_pickle=False)
        header = json.loads(bytes(data["header"]).decode())
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path} is not a readable jaxauction checkpoint (truncated or another format: {err})"
        ) from None
    return path, data, header


def read_meta(directory: str | os.PathLike) -> dict:
    """The JSON metadata of a checkpoint (``steps_done`` and what the run stored), without loading arrays."""
    _, data, header = _open(directory)
    data.close()
    return header["meta"]


def load(directory: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """Read a checkpoint into the structure of ``template``. Returns ``(state, meta)``."""
    path, data, header = _open(directory)
    with data:
        leaves, treedef = jax.tree.flatten(template)
        n_state = sum(1 for k in data.files if k.startswith("state_"))
        if n_state != len(leaves):
            raise CheckpointError(
                f"checkpoint {path} holds {n_state} state arrays, the configuration expects {len(leaves)}"
            )
        restored = []
        for i, (leaf, is_key) in enumerate(zip(leaves, header["state_is_key"], strict=True)):
            try:
                arr = data[f"state_{i}"]
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
                raise CheckpointError(f"checkpoint {path} is damaged: state leaf {i} cannot be read ({err})") from None
            if is_key != is_prng_key(leaf):
                raise CheckpointError(f"checkpoint {path}: state leaf {i} key-ness differs from the configuration")
            expected = jax.random.key_data(leaf) if is_key else leaf  # shape and dtype only
            if arr.shape != expected.shape or arr.dtype != expected.dtype:
                raise CheckpointError(
                    f"checkpoint {path}: state leaf {i} is {arr.dtype}{list(arr.shape)}, the configuration expects "
                    f"{expected.dtype}{list(expected.shape)}"
                )
            restored.append(
                jax.random.wrap_key_data(arr, impl=jax.random.key_impl(leaf)) if is_key else jnp.asarray(arr)
            )
    return jax.tree.unflatten(treedef, restored), header["meta"]
