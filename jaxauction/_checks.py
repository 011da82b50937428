"""Input validation that runs before any computation.

Shapes are static under ``jit``, so shape errors are raised at trace time.
Values (NaN, negative bids, bad ranges) can only be checked when they are
concrete: when a public function is called eagerly, or on the host before a
program starts (``Market.check``, the experiments). Inside ``jit`` arrays are
tracers and the value checks are skipped; ``jaxauction.mechanisms.checked``
and ``Market(checked=True)`` add ``checkify`` checks to compiled code.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax
import numpy as np


def is_concrete(x: object) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_bids(bids: jax.Array, n_bidders: int, n_items: int, name: str = "bids") -> None:
    """Raise ``ValueError`` for bids that are not ``[n_bidders, n_items]``, or (when concrete) NaN or negative."""
    shape = np.shape(bids)
    if shape != (n_bidders, n_items):
        hint = "; one item is a [n, 1] column" if len(shape) == 1 else ""
        raise ValueError(
            f"{name} must be [bidders, items] = [{n_bidders}, {n_items}] for this mechanism, got shape "
            f"{list(shape)}{hint}; use jax.vmap for batches of auctions"
        )
    if is_concrete(bids):
        arr = np.asarray(bids)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contain NaN or infinite entries: {arr.tolist()}")
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative, got {arr.tolist()}")


def check_positive_int(value: object, name: str, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def hidden_widths(hidden: Iterable[int]) -> tuple[int, ...]:
    """Hidden layer widths as a tuple of ints; ``ValueError`` unless there is at least one and each is >= 1."""
    widths = tuple(int(h) for h in hidden)
    if not widths or any(h < 1 for h in widths):
        raise ValueError(f"hidden widths must be positive integers, got {widths}")
    return widths


def check_choice(value: str, choices: Iterable[str], name: str) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")


def check_finite(value: object, name: str, minimum: float | None = None, positive: bool = False) -> None:
    """A finite number (or array of them), optionally ``>= minimum`` or ``> 0``."""
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and np.any(arr < minimum):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be positive, got {value!r}")
