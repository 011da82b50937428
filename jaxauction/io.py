"""Result files: written atomically or appended, never half-written, with the normal umask permissions.

* ``write_json``, ``write_csv``, ``write_jsonl``: a temporary file in the same
  folder, flushed and renamed over the target, so an interrupted run never
  leaves half a file; the file gets the mode a plain ``open`` would give it
  (``0o666`` minus the umask), so other users of a shared cluster can read it.
* ``append_jsonl``, ``append_csv``: rows appended and flushed to disk.
* ``LogStore``: per-step logs of a long run, appended as raw rows (one file
  per log array), so writing a run's logs costs time linear in its length.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_jsonable(x: Any) -> Any:
    """Arrays and numpy scalars to lists and floats; tuples to lists; NaN to None; dataclasses to dicts."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "__dataclass_fields__"):
        import dataclasses

        return to_jsonable(dataclasses.asdict(x))
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        arr = np.asarray(x)
        if arr.dtype.kind == "f":
            return to_jsonable(arr.tolist()) if arr.ndim else (None if np.isnan(arr) else float(arr))
        return arr.tolist()
    if isinstance(x, float) and np.isnan(x):
        return None
    return x


def plus_minus(mean: float, se: float | None, digits: int = 4) -> str:
    """``"mean +- se"``; without a standard error (one seed or profile: ``se`` NaN or, read back from JSON,
    None) ``"mean (one sample: no s.e.)"`` instead of ``+- nan``."""
    if se is None or not np.isfinite(se):
        return f"{mean:.{digits}f} (one sample: no s.e.)"
    return f"{mean:.{digits}f} +- {se:.{digits}f}"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def _csv_text(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    if header is not None:
        writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    atomic_write_bytes(Path(path), _csv_text(rows, header).encode())


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write (replace) a JSON-lines file atomically."""
    atomic_write_bytes(Path(path), "".join(json.dumps(to_jsonable(row)) + "\n" for row in rows).encode())


def _append_text(path: str | os.PathLike, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    with os.fdopen(fd, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows to a JSON-lines file and flush them to disk."""
    _append_text(path, "".join(json.dumps(to_jsonable(row)) + "\n" for row in rows))


def append_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Append rows to a CSV file (writing ``header`` first when the file is new) and flush them to disk."""
    new = not Path(path).exists() or Path(path).stat().st_size == 0
    _append_text(path, _csv_text(rows, header if new else None))


class LogStore:
    """Per-step logs appended to disk: ``directory/<i>.bin`` holds log leaf ``i``, one raw row per step.

    ``template`` is one step's log (arrays or ``ShapeDtypeStruct``s) and fixes
    the structure, shapes and dtypes. Rows are appended with ``append`` (a
    chunk of steps on a leading axis), read back with ``read``, and cut back
    to the steps a checkpoint holds with ``truncate`` (a resume).
    """

    def __init__(self, directory: str | os.PathLike, template: Any):
        self.directory = Path(directory)
        leaves, self.treedef = jax.tree.flatten(template)
        self.shapes = [tuple(leaf.shape) for leaf in leaves]
        self.dtypes = [np.dtype(leaf.dtype) for leaf in leaves]
        sizes = [int(np.prod(shape, dtype=np.int64)) for shape in self.shapes]
        self.row_bytes = [size * dtype.itemsize for size, dtype in zip(sizes, self.dtypes, strict=True)]

    def _path(self, i: int) -> Path:
        return self.directory / f"{i}.bin"

    def steps(self) -> int:
        """Complete steps stored (the least over the leaves)."""
        if not self.directory.is_dir():
            return 0
        counts = []
        for i, row in enumerate(self.row_bytes):
            path = self._path(i)
            counts.append(path.stat().st_size // max(row, 1) if path.exists() else 0)
        return min(counts) if counts else 0

    def truncate(self, steps: int) -> None:
        """Keep the first ``steps`` steps (and create empty files if there are none). ``ValueError`` when the
        logs hold fewer: they are never padded (a padded step would read back as zeros)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if steps > self.steps():
            raise ValueError(f"the logs in {self.directory} hold {self.steps()} steps, fewer than the {steps} asked "
                             "for (the checkpoint is ahead of its logs)")  # fmt: skip
        for i, row in enumerate(self.row_bytes):
            with open(self._path(i), "ab") as f:
                f.truncate(steps * row)

    def append(self, logs: Any) -> None:
        """Append a chunk of steps (leaves with a leading steps axis)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        leaves = jax.tree.leaves(logs)
        for i, (leaf, shape, dtype) in enumerate(zip(leaves, self.shapes, self.dtypes, strict=True)):
            arr = np.ascontiguousarray(np.asarray(leaf, dtype=dtype))
            if arr.shape[1:] != shape:
                raise ValueError(f"log leaf {i} has shape {list(arr.shape[1:])} per step, expected {list(shape)}")
            with open(self._path(i), "ab") as f:
                f.write(arr.tobytes())
                f.flush()
                os.fsync(f.fileno())

    def read(self, steps: int | None = None) -> Any:
        """The first ``steps`` steps (all complete ones by default), stacked on a leading axis."""
        steps = self.steps() if steps is None else steps
        leaves = []
        for i, (shape, dtype, row) in enumerate(zip(self.shapes, self.dtypes, self.row_bytes, strict=True)):
            with open(self._path(i), "rb") as f:
                data = f.read(steps * row)
            if len(data) < steps * row:
                raise ValueError(f"the logs in {self.directory} hold fewer than {steps} steps")
            leaves.append(np.frombuffer(data, dtype=dtype).reshape(steps, *shape))
        return jax.tree.unflatten(self.treedef, leaves)
