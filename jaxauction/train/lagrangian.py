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
  ``misreport_steps`` projected Adam steps whenever its batch comes round
  (from the best of the cached misreport and ``misreport_candidates`` fresh
  uniform reports, when that is set: random restarts that can land beyond a
  jump of the allocation a gradient step does not cross; and with
  ``misreport_keep_best``, the refinement hands back each bidder's best
  report on its way rather than its last step's);
  ``lambda_i += rho * rgt_i`` every ``lambda_every`` iterations; ``rho +=
  rho_increment`` every ``rho_every``;
* an exactly incentive-compatible mechanism (RochetNet, the affine
  maximizers) trains on ``-revenue`` of its ``surrogate`` (the softmax
  relaxation of its argmax) over fresh batches from the prior, with no
  regret terms.

The regret-trained loss has two duals, chosen by ``schedule.dual``:

* ``"augmented"`` (RegretNet's, above);
* ``"budget"`` (RegretFormer's, Ivanov et al. 2022): ``-revenue + gamma *
  sum_i rgt_i``, with one multiplier ``gamma`` (kept in every entry of
  ``lambdas``) moved after every iteration by ``gamma = max(0, gamma +
  budget_lr * (log(sum_i rgt_i / revenue) - log(target_t)))`` towards a
  regret budget, regret over revenue, that decays geometrically from
  ``budget_start`` to ``budget_end`` over ``budget_decay`` iterations and
  then stays there. ``rho`` is unused (0) and its log column holds the
  target. The reference code moves ``gamma`` with the batch's regret before
  its step; here the step's own regret moves it for the next iteration (one
  iteration later, no second forward pass).

``revive_every``: an exactly incentive-compatible mechanism with a learned menu
(``mechanism.revive``: the lottery affine maximizer) has the entries that no
profile of ``4 * batch`` fresh ones chooses replaced by perturbed copies of
chosen ones at the start of the first step at or after each multiple of it (a
step is ``log_every`` iterations, so every logged step ends ``log_every``
updates after any revival), and Adam's moments and step count restart (0:
never).

``clip_norm``: clip the gradient's global norm before Adam (RegretFormer's
reference clips at 1); ``None``: no clipping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.priors import Prior
from jaxauction.regret import batch_regret, best_misreports, refine_misreports
from jaxauction.train import make_update
from jaxauction.types import Array, Outcome, Params, PRNGKey

DUALS = ("augmented", "budget")


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
    misreport_candidates: int = 0
    """fresh uniform reports per profile and bidder each iteration; the best of them and the cached misreport
    starts the refinement (0: the cached one alone, as RegretNet)"""
    misreport_keep_best: bool = False
    """the refinement returns each bidder's best report on its way (the start included), not its last step's"""
    lambda_init: float = 5.0
    lambda_every: int = 100
    rho_init: float = 1.0
    rho_increment: float = 1.0
    rho_every: int = 10_000
    dual: str = "augmented"
    """the regret-trained loss's dual: "augmented" (RegretNet) or "budget" (RegretFormer; module docstring)"""
    budget_start: float = 0.01
    budget_end: float = 0.001
    budget_decay: int = 133_333
    """iterations over which the budget target decays from budget_start to budget_end"""
    budget_lr: float = 0.5
    clip_norm: float | None = None
    revive_every: int = 0
    """iterations between revivals of a learned menu's unused entries, at step starts (0: never)"""

    def __post_init__(self) -> None:
        for name in ("batch", "log_every", "train_size", "misreport_unroll", "lambda_every", "rho_every",
                     "budget_decay"):  # fmt: skip
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.misreport_steps, "misreport_steps", minimum=0)
        check_positive_int(self.misreport_candidates, "misreport_candidates", minimum=0)
        check_positive_int(self.revive_every, "revive_every", minimum=0)
        check_choice(self.dual, DUALS, "dual")
        for name in ("learning_rate", "misreport_lr", "budget_start", "budget_end", "budget_lr"):
            check_finite(getattr(self, name), name, positive=True)
        for name in ("lambda_init", "rho_init", "rho_increment"):
            check_finite(getattr(self, name), name, minimum=0.0)
        if self.clip_norm is not None:
            check_finite(self.clip_norm, "clip_norm", positive=True)
        if self.budget_end > self.budget_start:
            raise ValueError(f"budget_end ({self.budget_end}) must not exceed budget_start ({self.budget_start})")

    def budget_target(self, iteration: Array) -> Array:
        """The regret budget (regret over revenue) at ``iteration``: geometric from ``budget_start`` to
        ``budget_end`` over ``budget_decay`` iterations, then constant."""
        progress = jnp.minimum(iteration / self.budget_decay, 1.0)
        return self.budget_start * (self.budget_end / self.budget_start) ** progress


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
    lambda_mean: Array  # budget dual: gamma
    rho: Array  # budget dual: the regret target


class Trainer(NamedTuple):
    """What every trainer returns: the mechanism evaluated (RochetNet, AMAs: the argmax rule), ``init``, ``step``, and
    the prior's support ``[n, m]`` (low, high)."""

    mechanism: Mechanism
    init: Callable[[PRNGKey], LagrangianState]
    step: Callable[[LagrangianState], tuple[LagrangianState, LagrangianLog]]
    support: tuple[Array, Array]


def make_lagrangian_trainer(
    mechanism: Mechanism,
    schedule: Schedule,
    surrogate: Callable[[Params, Array], Outcome] | None = None,
    mixture: Sequence[Mechanism] = (),
) -> Trainer:
    """``init`` and ``step`` training ``mechanism`` under ``schedule`` (module docstring). ``surrogate(params, bids
    [n, m]) -> Outcome``: what an incentive-compatible mechanism trains on (default: its ``apply``).

    ``mixture``: mechanisms of other sizes that share ``mechanism``'s params (a size-independent, regret-trained
    network: EquivariantNet, RegretFormer), trained jointly: each size has its own training profiles, cached
    misreports and multipliers, and the loss is the mean of the sizes' losses. ``values``, ``misreports`` and
    ``lambdas`` of the state are then tuples, one entry per size (``mechanism`` first); the log's revenue and
    regret are ``mechanism``'s."""
    mechanisms = (mechanism, *mixture)
    for mk in mechanisms:
        if not mk.trainable:
            raise ValueError(f"mechanism {mk.name!r} has no trainable params")
    exact = mechanism.incentive_compatible  # revenue alone, on fresh batches
    if mixture:
        shapes = {str(jax.tree.structure(jax.eval_shape(mk.init, jax.random.key(0)))) for mk in mechanisms}
        if exact or any(mk.incentive_compatible for mk in mixture) or len(shapes) > 1:
            raise ValueError("a mixture of sizes needs regret-trained mechanisms with the same params (one "
                             f"size-independent network); got {[mk.name for mk in mechanisms]}")  # fmt: skip
    if schedule.revive_every and (not exact or mechanism.revive is None):
        raise ValueError(f"revive_every needs an exactly incentive-compatible mechanism with a learned menu to revive "
                         f"(the lottery affine maximizer); {mechanism.name!r} has none")  # fmt: skip
    if not exact and schedule.train_size < schedule.batch:
        raise ValueError(f"train_size ({schedule.train_size}) must be at least the batch ({schedule.batch})")
    n = mechanism.n_bidders
    prior = schedule.prior
    prior_params = [prior.init_params(mk.n_bidders, mk.n_items) for mk in mechanisms]
    supports = [prior.support(pp) for pp in prior_params]
    low, high = supports[0]
    batch = schedule.batch
    optimizer = optax.adam(schedule.learning_rate)
    if schedule.clip_norm is not None:
        optimizer = optax.chain(optax.clip_by_global_norm(schedule.clip_norm), optimizer)
    budget = schedule.dual == "budget"
    draws = [jax.vmap(lambda k, pp=pp: prior.sample(k, pp).values) for pp in prior_params]
    draw = draws[0]
    n_batches = schedule.train_size // batch
    keys = jnp.broadcast_to(jax.random.key(0), (batch,))  # the learned mechanisms are deterministic
    train_apply = surrogate or (lambda params, bids: mechanism.apply(params, bids, keys[0]))
    unpack = (lambda x: (x,)) if not mixture else tuple  # noqa: E731  the state holds one array per size
    pack = (lambda xs: xs[0]) if not mixture else tuple  # noqa: E731

    def lagrangian(params: Params, values: tuple, misreports: tuple, lambdas: tuple, rho: Array):
        losses, revenues, regrets = [], [], []
        for mk, v, mis, lam in zip(mechanisms, values, misreports, lambdas, strict=True):
            regret, revenue = batch_regret(mk, params, v, mis, keys)
            losses.append(-revenue + jnp.sum(lam * regret) + rho / 2 * jnp.sum(regret**2))
            revenues.append(revenue)
            regrets.append(regret)
        return sum(losses) / len(losses), (revenues, regrets)

    def revenue_loss(params: Params, values: Array):
        revenue = jnp.mean(jax.vmap(lambda v: jnp.sum(train_apply(params, v).payments))(values))
        return -revenue, (revenue, jnp.zeros((n,)))

    update = make_update(revenue_loss if exact else lagrangian, optimizer, has_aux=True)

    def init(key: PRNGKey) -> LagrangianState:
        k_params, k_values, k_mis, k_run = jax.random.split(key, 4)
        params = mechanism.init(k_params)
        values, misreports = [], []
        for k, (d, (lo, hi)) in enumerate(zip(draws, supports, strict=True)):
            kv, km = (k_values, k_mis) if k == 0 else jax.random.split(jax.random.fold_in(k_values, k))
            v = d(jax.random.split(kv, 1 if exact else schedule.train_size))
            values.append(v)
            misreports.append(jax.random.uniform(km, v.shape) * (hi - lo) + lo)  # one random start each
        return LagrangianState(
            params=params,
            opt_state=optimizer.init(params),
            values=pack(values),
            misreports=pack(misreports),
            lambdas=pack([jnp.full((mk.n_bidders,), schedule.lambda_init, jnp.float32) for mk in mechanisms]),
            rho=jnp.float32(0.0 if budget else schedule.rho_init),
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
        values, refined = [], []
        for k, (mk, v_all, cached_all, (lo, hi)) in enumerate(zip(mechanisms, unpack(state.values),
                                                                  unpack(state.misreports), supports, strict=True)):
            v = jax.lax.dynamic_slice_in_dim(v_all, start, batch)
            cached = jax.lax.dynamic_slice_in_dim(cached_all, start, batch)
            if schedule.misreport_candidates:  # random restarts: a key per iteration and size, from the run's key
                cached = best_misreports(mk, state.params, v, cached, keys, lo, hi,
                                         jax.random.fold_in(jax.random.fold_in(state.key, t), k),
                                         schedule.misreport_candidates)  # fmt: skip
            values.append(v)
            refined.append(refine_misreports(mk, state.params, v, cached, keys, lo, hi, schedule.misreport_steps,
                                             schedule.misreport_lr, schedule.misreport_unroll,
                                             schedule.misreport_keep_best))  # fmt: skip
        result = update(state.params, state.opt_state, values, refined, unpack(state.lambdas), state.rho)
        revenues, regrets = result.aux
        t1 = t + 1
        lambdas = []
        for lam, regret, revenue in zip(unpack(state.lambdas), regrets, revenues, strict=True):
            if budget:
                excess = jnp.log(jnp.maximum(jnp.sum(regret), 1e-30) / (revenue + 1e-8))
                lambdas.append(jnp.maximum(lam + schedule.budget_lr * (excess - jnp.log(schedule.budget_target(t))),
                                           0.0))  # fmt: skip
            else:
                lambdas.append(jnp.where(t1 % schedule.lambda_every == 0, lam + state.rho * regret, lam))
        if budget:
            rho, logged = state.rho, schedule.budget_target(t)
        else:
            rho = jnp.where(t1 % schedule.rho_every == 0, state.rho + schedule.rho_increment, state.rho)
            logged = state.rho
        misreports = [jax.lax.dynamic_update_slice_in_dim(all_, new, start, 0)
                      for all_, new in zip(unpack(state.misreports), refined, strict=True)]  # fmt: skip
        new = LagrangianState(
            params=result.params,
            opt_state=result.opt_state,
            values=state.values,
            misreports=pack(misreports),
            lambdas=pack(lambdas),
            rho=rho,
            iteration=t1,
            key=state.key,
        )
        log = LagrangianLog(revenues[0], jnp.mean(regrets[0]), result.loss, jnp.mean(unpack(state.lambdas)[0]), logged)
        return new, log

    def revive(state: LagrangianState) -> LagrangianState:
        """The revival due at the start of this step, if one is (computed every step and selected: under a
        ``vmap`` over seeds the iteration is batched, and a ``cond`` would run both branches anyway)."""
        k_values, k_menu = jax.random.split(jax.random.fold_in(state.key, 1))  # the iterations split state.key
        params = mechanism.revive(state.params, draw(jax.random.split(k_values, 4 * batch)), k_menu)
        t, every = state.iteration, schedule.revive_every
        due = (t > 0) & (t // every > (t - schedule.log_every) // every)  # a multiple of it in (t - log_every, t]
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(due, a, b), new, old)  # noqa: E731
        return state._replace(params=pick(params, state.params), opt_state=pick(optimizer.init(params),
                                                                                 state.opt_state))  # fmt: skip

    def step(state: LagrangianState) -> tuple[LagrangianState, LagrangianLog]:
        if schedule.revive_every:
            state = revive(state)
        iteration = revenue_iteration if exact else regret_iteration
        state, logs = jax.lax.scan(iteration, state, None, length=schedule.log_every)
        return state, jax.tree.map(lambda x: jnp.mean(x, axis=0), logs)

    return Trainer(mechanism, init, step, (low, high))
