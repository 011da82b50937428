"""Input validation that runs before any computation.

Shapes are static under ``jit``, so shape errors are raised at trace time.
Values (NaN, negative bids) can only be checked when they are concrete, i.e.
when a public function is called eagerly; inside ``jit`` the arrays are
tracers and the value checks are skipped.
"""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(x: object) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_bids(bids: jax.Array, n_bidders: int | None = None, name: str = "bids") -> None:
    """Raise ``ValueError`` for a bid vector of the wrong shape, or NaN/negative bids."""
    shape = np.shape(bids)
    if len(shape) != 1:
        raise ValueError(
            f"{name} must be a 1-D array over the bidder axis, got shape {shape}; use jax.vmap for batches of auctions"
        )
    if n_bidders is not None and shape[0] != n_bidders:
        raise ValueError(f"{name} has {shape[0]} entries but the mechanism is built for {n_bidders} bidders")
    if shape[0] < 1:
        raise ValueError(f"{name} is empty")
    if is_concrete(bids):
        arr = np.asarray(bids)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contain NaN or infinite entries: {arr}")
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative, got {arr}")


def check_positive_int(value: object, name: str, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_choice(value: str, choices: tuple[str, ...] | list[str], name: str) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
