"""Training RegretNet (augmented Lagrangian) and RochetNet, as pure jit-compiled steps.

RegretNet, as configured in Dütting et al. 2019 (the reference configuration):

* loss ``-revenue + sum_i lambda_i rgt_i + (rho / 2) sum_i rgt_i^2``, where
  ``rgt_i`` is the batch mean of bidder ``i``'s gain from its cached misreport
  (``max(0, u_i(misreport) - u_i(truthful))``);
* Adam (learning rate 1e-3), batch 128, 400,000 iterations over a fixed
  training set of 640,000 profiles;
* misreports: one per profile and bidder, cached across iterations and
  refined by 25 projected Adam steps (learning rate 0.1 of the support width,
  clipped to the support) every time its batch comes round; the refinement
  starts a fresh Adam state each iteration;
* ``lambda_i += rho * rgt_i`` every 100 iterations, from 5 (1 for 5x10);
  ``rho`` from 1 (0.25 for 5x10), raised every 10,000 iterations (100,000 for
  5x10) by 50 (1x2 additive), 5 (2x2), 10 (2x3), 1 (3x10), 0.25 (5x10), and 1
  for the settings the paper does not list.

RochetNet: Adam on ``-revenue`` of the softmax relaxation of the menu, over
fresh batches from the prior; it is evaluated with the argmax menu.

``make_regretnet(config)`` returns ``init(key) -> state`` and ``step(state) ->
(state, log)``, where one step runs ``log_every`` iterations in a ``lax.scan``
and logs their means; the experiment runs it through ``driver.Session``
(chunks, checkpoints, resume).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxauction._checks import check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.regretnet import regretnet, rochetnet, rochetnet_soft
from jaxauction.priors import top_value
from jaxauction.regret import batch_regret, refine_misreports
from jaxauction.settings import Setting, setting
from jaxauction.train import make_update
from jaxauction.types import Array, Params, PRNGKey

# rho's increment per setting (known_results section 4); other settings use 1.
RHO_INCREMENT = {"additive_1x2": 50.0, "additive_2x2": 5.0, "additive_2x3": 10.0, "additive_3x10": 1.0,
                 "additive_5x10": 0.25}  # fmt: skip
LARGE = ("additive_3x10", "additive_5x10")  # 5 hidden layers


@dataclasses.dataclass(frozen=True)
class RegretNetConfig:
    """One training run; an unset field takes the reference configuration's value for the setting."""

    setting: str = "additive_2x2"
    """the setting (jaxauction.settings): single2, single3, single5, seed3, single3_exp, additive_1x2, unit_1x2,
    unit_1x2_23, additive_1x2_416_47, additive_2x2, additive_2x3, additive_2x5, additive_3x10, additive_5x10"""
    model: Literal["regretnet", "rochetnet"] = "regretnet"
    """regretnet (any setting) or rochetnet (one bidder)"""
    iterations: int = 400_000
    """optimizer steps"""
    log_every: int = 1_000
    """iterations per logged step (one row of rounds.csv)"""
    batch: int | None = None
    """profiles per step (regretnet 128, rochetnet 1,024)"""
    train_size: int = 640_000
    """regretnet: fixed training profiles (their misreports are cached)"""
    learning_rate: float | None = None
    """Adam's learning rate for the mechanism (regretnet 1e-3, rochetnet 0.01)"""
    hidden_layers: int | None = None
    """regretnet: hidden layers per network (2; 5 for 3x10 and 5x10)"""
    hidden_units: int = 100
    """regretnet: units per hidden layer"""
    misreport_steps: int = 25
    """regretnet: projected Adam steps refining the cached misreports per iteration"""
    misreport_lr: float = 0.1
    """regretnet: their step size, as a fraction of the support's width"""
    misreport_unroll: int = 1
    """regretnet: refinement steps per iteration of the compiled loop (speed only: the same computation;
    on a GPU, unrolling all of them saves a loop round trip per step)"""
    lambda_init: float | None = None
    """regretnet: initial Lagrange multipliers (5; 1 for 5x10)"""
    lambda_every: int = 100
    """regretnet: iterations between multiplier updates lambda += rho * regret"""
    rho_init: float | None = None
    """regretnet: initial penalty weight (1; 0.25 for 5x10)"""
    rho_increment: float | None = None
    """regretnet: penalty weight increment (per setting, see the module)"""
    rho_every: int | None = None
    """regretnet: iterations between increments (10,000; 100,000 for 5x10)"""
    menu_size: int = 1_000
    """rochetnet: lotteries on the menu"""
    softness: float = 1_000.0
    """rochetnet: inverse temperature of the training softmax, per unit of the support's top value"""

    def __post_init__(self) -> None:
        s = setting(self.setting)
        for name in (
            "iterations",
            "log_every",
            "train_size",
            "hidden_units",
            "lambda_every",
            "menu_size",
            "misreport_unroll",
        ):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.misreport_steps, "misreport_steps", minimum=0)
        for name in ("batch", "hidden_layers", "rho_every"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        if self.iterations % self.log_every:
            raise ValueError(f"iterations ({self.iterations}) must be a multiple of log_every ({self.log_every})")
        if self.model == "rochetnet" and s.n_bidders != 1:
            raise ValueError(f"rochetnet is for one bidder; setting {self.setting} has {s.n_bidders}")
        if self.model not in ("regretnet", "rochetnet"):
            raise ValueError(f"unknown model {self.model!r}; choose regretnet or rochetnet")
        if self.model == "regretnet" and self.train_size < self.resolved("batch"):
            raise ValueError(f"train_size ({self.train_size}) must be at least the batch ({self.resolved('batch')})")
        for name in ("learning_rate", "misreport_lr", "softness"):
            check_finite(self.resolved(name), name, positive=True)
        for name in ("lambda_init", "rho_init", "rho_increment"):
            check_finite(self.resolved(name), name, minimum=0.0)

    def resolved(self, name: str) -> Any:
        """A setting with the reference configuration filled in for ``None``."""
        value = getattr(self, name)
        if value is not None:
            return value
        large = self.setting == "additive_5x10"
        return {
            "batch": 128 if self.model == "regretnet" else 1024,
            "learning_rate": 1e-3 if self.model == "regretnet" else 0.01,
            "hidden_layers": 5 if self.setting in LARGE else 2,
            "lambda_init": 1.0 if large else 5.0,
            "rho_init": 0.25 if large else 1.0,
            "rho_increment": RHO_INCREMENT.get(self.setting, 1.0),
            "rho_every": 100_000 if large else 10_000,
        }[name]

    @property
    def the_setting(self) -> Setting:
        return setting(self.setting)


class RegretNetState(NamedTuple):
    params: Params
    opt_state: Any
    values: Array  # [T, n, m] training profiles (regretnet; a [1, n, m] placeholder for rochetnet)
    misreports: Array  # [T, n, m] the cached misreports: row i of profile t is bidder i's
    lambdas: Array  # [n]
    rho: Array
    iteration: Array
    key: PRNGKey


class RegretNetLog(NamedTuple):
    """Means over the ``log_every`` iterations of one step."""

    revenue: Array
    regret: Array  # mean over bidders of the batch regret on the cached misreports
    loss: Array
    lambda_mean: Array
    rho: Array


class Trainer(NamedTuple):
    mechanism: Mechanism  # what is evaluated (RochetNet: the argmax menu)
    init: Callable[[PRNGKey], RegretNetState]
    step: Callable[[RegretNetState], tuple[RegretNetState, RegretNetLog]]
    support: tuple[Array, Array]  # [n, m] low, high


def build_mechanism(config: RegretNetConfig) -> Mechanism:
    s = config.the_setting
    top = top_value(s.prior, s.n_bidders, s.n_items)
    if config.model == "rochetnet":
        return rochetnet(s.n_items, config.menu_size, price_scale=top, demand=s.demand)
    hidden = (config.hidden_units,) * config.resolved("hidden_layers")
    return regretnet(s.n_bidders, s.n_items, s.demand, hidden, bid_scale=top)


def make_regretnet(config: RegretNetConfig) -> Trainer:
    """``init`` and ``step`` for ``config`` (module docstring)."""
    s = config.the_setting
    mechanism = build_mechanism(config)
    prior, prior_params = s.prior, s.prior.init_params(s.n_bidders, s.n_items)
    low, high = prior.support(prior_params)
    batch = config.resolved("batch")
    optimizer = optax.adam(config.resolved("learning_rate"))
    draw = jax.vmap(lambda k: prior.sample(k, prior_params).values)
    n_batches = config.train_size // batch

    keys = jnp.broadcast_to(jax.random.key(0), (batch,))  # the learned mechanisms are deterministic

    def lagrangian(params: Params, values: Array, misreports: Array, lambdas: Array, rho: Array):
        regret, revenue = batch_regret(mechanism, params, values, misreports, keys)
        loss = -revenue + jnp.sum(lambdas * regret) + rho / 2 * jnp.sum(regret**2)
        return loss, (revenue, regret)

    def rochet_loss(params: Params, values: Array):
        softness = config.softness / jnp.max(high)
        revenue = jnp.mean(jax.vmap(lambda v: rochetnet_soft(params, v, softness, s.demand).payments[0])(values))
        return -revenue, (revenue, jnp.zeros((1,)))

    update_regretnet = make_update(lagrangian, optimizer, has_aux=True)
    update_rochetnet = make_update(rochet_loss, optimizer, has_aux=True)

    def init(key: PRNGKey) -> RegretNetState:
        k_params, k_values, k_mis, k_run = jax.random.split(key, 4)
        params = mechanism.init(k_params)
        size = config.train_size if config.model == "regretnet" else 1
        values = draw(jax.random.split(k_values, size))
        misreports = jax.random.uniform(k_mis, values.shape) * (high - low) + low  # one random start each
        return RegretNetState(
            params=params,
            opt_state=optimizer.init(params),
            values=values,
            misreports=misreports,
            lambdas=jnp.full((s.n_bidders,), config.resolved("lambda_init"), jnp.float32),
            rho=jnp.float32(config.resolved("rho_init")),
            iteration=jnp.int32(0),
            key=k_run,
        )

    def one_iteration(state: RegretNetState, _) -> tuple[RegretNetState, RegretNetLog]:
        t = state.iteration
        if config.model == "rochetnet":
            key, k_batch = jax.random.split(state.key)
            values = draw(jax.random.split(k_batch, batch))
            result = update_rochetnet(state.params, state.opt_state, values)
            revenue, regret = result.aux
            new = state._replace(params=result.params, opt_state=result.opt_state, iteration=t + 1, key=key)
            return new, RegretNetLog(revenue, jnp.mean(regret), result.loss, jnp.float32(0), jnp.float32(0))
        start = (t % n_batches) * batch
        values = jax.lax.dynamic_slice_in_dim(state.values, start, batch)
        cached = jax.lax.dynamic_slice_in_dim(state.misreports, start, batch)
        misreports = refine_misreports(mechanism, state.params, values, cached, keys, low, high, config.misreport_steps,
                                       config.misreport_lr, config.misreport_unroll)  # fmt: skip
        result = update_regretnet(state.params, state.opt_state, values, misreports, state.lambdas, state.rho)
        revenue, regret = result.aux
        t1 = t + 1
        lambdas = jnp.where(t1 % config.lambda_every == 0, state.lambdas + state.rho * regret, state.lambdas)
        rho = jnp.where(t1 % config.resolved("rho_every") == 0, state.rho + config.resolved("rho_increment"), state.rho)
        new = RegretNetState(
            params=result.params,
            opt_state=result.opt_state,
            values=state.values,
            misreports=jax.lax.dynamic_update_slice_in_dim(state.misreports, misreports, start, 0),
            lambdas=lambdas,
            rho=rho,
            iteration=t1,
            key=state.key,
        )
        return new, RegretNetLog(revenue, jnp.mean(regret), result.loss, jnp.mean(state.lambdas), state.rho)

    def step(state: RegretNetState) -> tuple[RegretNetState, RegretNetLog]:
        state, logs = jax.lax.scan(one_iteration, state, None, length=config.log_every)
        return state, jax.tree.map(lambda x: jnp.mean(x, axis=0), logs)

    return Trainer(mechanism, init, step, (low, high))
