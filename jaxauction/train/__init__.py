"""Training: one generic optimizer step, and the training loops built on it (``dmo``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from jaxauction.mechanisms.base import Mechanism
from jaxauction.metrics import mean_revenue
from jaxauction.types import Array, Params


class UpdateResult(NamedTuple):
    params: Params
    opt_state: Any
    loss: Array  # the loss before the step
    aux: Any  # the loss function's auxiliary output (None without ``has_aux``)


def make_update(
    loss_fn: Callable[..., Any], optimizer: optax.GradientTransformation, has_aux: bool = False
) -> Callable[..., UpdateResult]:
    """One optimizer step on ``loss_fn(params, *batch)``: ``update(params, opt_state, *batch) -> UpdateResult``.

    With ``has_aux``, ``loss_fn`` returns ``(loss, aux)`` and ``aux`` is passed
    through (metrics, or state such as cached misreports). Deep mechanism
    optimization uses ``revenue_loss``; other objectives are other loss functions.
    """

    def update(params: Params, opt_state: Any, *batch: Any) -> UpdateResult:
        value, grads = jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *batch)
        loss, aux = value if has_aux else (value, None)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return UpdateResult(optax.apply_updates(params, updates), opt_state, loss, aux)

    return update


def revenue_loss(mechanism: Mechanism, chunk: int | None = None) -> Callable[[Params, Array, Array], Array]:
    """The seed's objective: ``-mean revenue`` over bids ``[D, n, m]`` and keys ``[D]``, bids held fixed."""
    return lambda params, bids, keys: -mean_revenue(mechanism, params, bids, keys, chunk)


__all__ = ["UpdateResult", "make_update", "revenue_loss"]
