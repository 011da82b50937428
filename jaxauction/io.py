"""Result files, written atomically (temporary file + rename), so an interrupted run never leaves half a file."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_jsonable(x: Any) -> Any:
    """Arrays and numpy scalars to lists and floats; tuples to lists; NaN to None."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        arr = np.asarray(x)
        if arr.dtype.kind == "f":
            return to_jsonable(arr.tolist()) if arr.ndim else (None if np.isnan(arr) else float(arr))
        return arr.tolist()
    if isinstance(x, float) and np.isnan(x):
        return None
    return x


def write_json(path: str | os.PathLike, obj: Any) -> None:
    _atomic_write_bytes(Path(path), (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    _atomic_write_bytes(Path(path), buf.getvalue().encode())


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write (replace) a JSON-lines file atomically."""
    text = "".join(json.dumps(to_jsonable(row)) + "\n" for row in rows)
    _atomic_write_bytes(Path(path), text.encode())


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows to a JSON-lines file and flush them to disk."""
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(to_jsonable(row)) + "\n")
        f.flush()
        os.fsync(f.fileno())
