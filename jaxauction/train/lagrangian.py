"""One trainer for every learned auction: ``make_lagrangian_trainer(mechanism, schedule)``.

It takes any trainable ``Mechanism`` and a ``Schedule`` (every number of the
run, resolved once, before anything is traced) and returns a ``Trainer``:
``init(key) -> state`` and ``step(state) -> (state, log)``, one step being
``schedule.log_every`` iterations in a ``lax.scan`` with their means logged
(purejaxrl's ``make_train`` and optax's ``init``/``update`` are the models).
The ``driver.Session`` runs it in chunks with checkpoints and resume.

Two losses, chosen by the mechanism, not by a flag:

* a mechanism that can misreport-gain (``not mechanism.incentive_compatible``) trains on
  RegretNet's augmented Lagrangian (Dütting et al. 2019): ``-revenue +
  sum_i lambda_i rgt_i + (rho / 2) sum_i rgt_i^2`` over a fixed training set of
  ``train_size`` profiles, each with one cached misreport per bidder refined by
  ``misreport_steps`` projected Adam steps whenever its batch comes round;
  ``lambda_i += rho * rgt_i`` every ``lambda_every`` iterations; ``rho +=
  rho_increment`` every ``rho_every``;
* an exactly incentive-compatible mechanism (RochetNet, the affine
  maximizers) trains on ``-revenue`` of its ``surrogate`` (the softmax
  relaxation of its argmax) over fresh batches from the prior, with no
  regret terms.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxauction._checks import check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.priors import Prior
from jaxauction.regret import batch_regret, refine_misreports
from jaxauction.train import make_update
from jaxauction.types import Array, Outcome, Params, PRNGKey


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Every number of a training run, resolved: the data (``prior``), the batch, the optimizer, the misreport
    cache and its refinement, and the multiplier schedules. Built once, outside the traced step."""

    prior: Prior
    """the valuations the mechanism is trained on (its default params)"""
    batch: int
    learning_rate: float
    log_every: int = 1_000
    """iterations per step (one logged row)"""
    train_size: int = 640_000
    """fixed training profiles, each with cached misreports (regret-trained mechanisms only)"""
    misreport_steps: int = 25
    misreport_lr: float = 0.1
    """the misreports' step size, as a fraction of the support's width"""
    misreport_unroll: int = 1
    lambda_init: float = 5.0
    lambda_every: int = 100
    rho_init: float = 1.0
    rho_increment: float = 1.0
    rho_every: int = 10_000

    def __post_init__(self) -> None:
        for name in ("batch", "log_every", "train_size", "misreport_unroll", "lambda_every", "rho_every"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.misreport_steps, "misreport_steps", minimum=0)
        for name in ("learning_rate", "misreport_lr"):
            check_finite(getattr(self, name), name, positive=True)
        for name in ("lambda_init", "rho_init", "rho_increment"):
            check_finite(getattr(self, name), name, minimum=0.0)


class LagrangianState(NamedTuple):
    params: Params
    opt_state: Any
    values: Array  # [T, n, m] training profiles (a [1, n, m] placeholder for an incentive-compatible one)
    misreports: Array  # [T, n, m] the cached misreports: row i of profile t is bidder i's
    lambdas: Array  # [n]
    rho: Array
    iteration: Array
    key: PRNGKey


class LagrangianLog(NamedTuple):
    """Means over the ``log_every`` iterations of one step."""

    revenue: Array
    regret: Array  # mean over bidders of the batch regret on the cached misreports (0 when incentive compatible)
    loss: Array
    lambda_mean: Array
    rho: Array


class Trainer(NamedTuple):
    """What every trainer returns: the mechanism evaluated (RochetNet, AMAs: the argmax rule), ``init``, ``step``, and
    the prior's support ``[n, m]`` (low, high)."""

    mechanism: Mechanism
    init: Callable[[PRNGKey], LagrangianState]
    step: Callable[[LagrangianState], tuple[LagrangianState, LagrangianLog]]
    support: tuple[Array, Array]


def make_lagrangian_trainer(
    mechanism: Mechanism, schedule: Schedule, surrogate: Callable[[Params, Array], Outcome] | None = None
) -> Trainer:
    """``init`` and ``step`` training ``mechanism`` under ``schedule`` (module docstring). ``surrogate(params, bids
    [n, m]) -> Outcome``: what an incentive-compatible mechanism trains on (default: its ``apply``)."""
    if not mechanism.trainable:
        raise ValueError(f"mechanism {mechanism.name!r} has no trainable params")
    exact = mechanism.incentive_compatible  # revenue alone, on fresh batches
    if not exact and schedule.train_size < schedule.batch:
        raise ValueError(f"train_size ({schedule.train_size}) must be at least the batch ({schedule.batch})")
    n, m = mechanism.n_bidders, mechanism.n_items
    prior, prior_params = schedule.prior, schedule.prior.init_params(n, m)
    low, high = prior.support(prior_params)
    batch = schedule.batch
    optimizer = optax.adam(schedule.learning_rate)
    draw = jax.vmap(lambda k: prior.sample(k, prior_params).values)
    n_batches = schedule.train_size // batch
    keys = jnp.broadcast_to(jax.random.key(0), (batch,))  # the learned mechanisms are deterministic
    train_apply = surrogate or (lambda params, bids: mechanism.apply(params, bids, keys[0]))

    def lagrangian(params: Params, values: Array, misreports: Array, lambdas: Array, rho: Array):
        regret, revenue = batch_regret(mechanism, params, values, misreports, keys)
        loss = -revenue + jnp.sum(lambdas * regret) + rho / 2 * jnp.sum(regret**2)
        return loss, (revenue, regret)

    def revenue_loss(params: Params, values: Array):
        revenue = jnp.mean(jax.vmap(lambda v: jnp.sum(train_apply(params, v).payments))(values))
        return -revenue, (revenue, jnp.zeros((n,)))

    update = make_update(revenue_loss if exact else lagrangian, optimizer, has_aux=True)

    def init(key: PRNGKey) -> LagrangianState:
        k_params, k_values, k_mis, k_run = jax.random.split(key, 4)
        params = mechanism.init(k_params)
        values = draw(jax.random.split(k_values, 1 if exact else schedule.train_size))
        misreports = jax.random.uniform(k_mis, values.shape) * (high - low) + low  # one random start each
        return LagrangianState(
            params=params,
            opt_state=optimizer.init(params),
            values=values,
            misreports=misreports,
            lambdas=jnp.full((n,), schedule.lambda_init, jnp.float32),
            rho=jnp.float32(schedule.rho_init),
            iteration=jnp.int32(0),
            key=k_run,
        )

    def revenue_iteration(state: LagrangianState, _) -> tuple[LagrangianState, LagrangianLog]:
        key, k_batch = jax.random.split(state.key)
        result = update(state.params, state.opt_state, draw(jax.random.split(k_batch, batch)))
        revenue, regret = result.aux
        new = state._replace(params=result.params, opt_state=result.opt_state, iteration=state.iteration + 1, key=key)
        return new, LagrangianLog(revenue, jnp.mean(regret), result.loss, jnp.float32(0), jnp.float32(0))

    def regret_iteration(state: LagrangianState, _) -> tuple[LagrangianState, LagrangianLog]:
        t = state.iteration
        start = (t % n_batches) * batch
        values = jax.lax.dynamic_slice_in_dim(state.values, start, batch)
        cached = jax.lax.dynamic_slice_in_dim(state.misreports, start, batch)
        misreports = refine_misreports(mechanism, state.params, values, cached, keys, low, high,
                                       schedule.misreport_steps, schedule.misreport_lr,
                                       schedule.misreport_unroll)  # fmt: skip
        result = update(state.params, state.opt_state, values, misreports, state.lambdas, state.rho)
        revenue, regret = result.aux
        t1 = t + 1
        lambdas = jnp.where(t1 % schedule.lambda_every == 0, state.lambdas + state.rho * regret, state.lambdas)
        rho = jnp.where(t1 % schedule.rho_every == 0, state.rho + schedule.rho_increment, state.rho)
        new = LagrangianState(
            params=result.params,
            opt_state=result.opt_state,
            values=state.values,
            misreports=jax.lax.dynamic_update_slice_in_dim(state.misreports, misreports, start, 0),
            lambdas=lambdas,
            rho=rho,
            iteration=t1,
            key=state.key,
        )
        return new, LagrangianLog(revenue, jnp.mean(regret), result.loss, jnp.mean(state.lambdas), state.rho)

    def step(state: LagrangianState) -> tuple[LagrangianState, LagrangianLog]:
        iteration = revenue_iteration if exact else regret_iteration
        state, logs = jax.lax.scan(iteration, state, None, length=schedule.log_every)
        return state, jax.tree.map(lambda x: jnp.mean(x, axis=0), logs)

    return Trainer(mechanism, init, step, (low, high))
