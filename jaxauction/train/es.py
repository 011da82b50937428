"""Evolution strategies on a mechanism's params, for objectives without useful gradients.

Learning-aware mechanism optimization maximises the revenue a rule earns
*after the bidders have adapted to it*: the fitness of a rule is the platform
reward of fresh learning bidders against it (``evaluation.fresh_rewards``).
That is a noisy, non-differentiable function of the rule, so its gradient is
estimated by antithetic evolution strategies (Salimans et al. 2017):

* ``population`` pairs ``theta +- sigma * eps_i``, ``eps_i ~ N(0, I)``, all
  evaluated in one program (``vmap`` over pairs and their markets);
* common random numbers: both members of a pair are evaluated with the same
  keys (the same bidders' randomness), so their difference measures the rule;
* fitness shaping (``shaping="centered_ranks"``: ranks scaled to [-0.5, 0.5]
  over all 2P evaluations; ``"none"``: raw fitness);
* ``g = mean_i (f(theta + sigma eps_i) - f(theta - sigma eps_i)) eps_i / (2 sigma)``,
  applied by any optax optimiser (ascent); each step logs the mean fitness of
  the pairs, the gradient's norm and its variance (the trace of the per-pair
  estimates' covariance, divided by P: the variance of ``g``).

This is a dozen lines on optax rather than evosax: the pairing with common
random numbers, the shaping and the logged variance are explicit here, and the
state is a plain pytree that the chunked driver checkpoints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.types import Array, Params, PRNGKey

SHAPINGS = ("centered_ranks", "none")


@dataclasses.dataclass(frozen=True)
class ESSpec:
    """The evolution strategy."""

    population: int = 16
    """antithetic pairs per iteration"""
    sigma: float = 0.5
    """perturbation scale, in the units of the params (a reserve price: value units)"""
    es_learning_rate: float = 0.1
    """Adam's learning rate on the estimated gradient"""
    shaping: str = "centered_ranks"
    """fitness shaping: centered_ranks or none"""

    def __post_init__(self) -> None:
        check_positive_int(self.population, "population")
        check_finite(self.sigma, "sigma", positive=True)
        check_finite(self.es_learning_rate, "es_learning_rate", positive=True)
        check_choice(self.shaping, SHAPINGS, "shaping")


class ESState(NamedTuple):
    theta: Params  # the optimised params
    opt_state: Any
    key: PRNGKey
    iteration: Array


class ESLog(NamedTuple):
    fitness: Array  # mean fitness over the 2P perturbed evaluations
    fitness_best: Array
    grad_norm: Array
    grad_variance: Array  # the variance of the gradient estimate, summed over coordinates
    theta_norm: Array


def centered_ranks(x: Array) -> Array:
    """Ranks of ``x`` scaled to [-0.5, 0.5] (ties broken by position)."""
    ranks = jnp.argsort(jnp.argsort(x)).astype(jnp.float32)
    return ranks / jnp.maximum(x.shape[0] - 1, 1) - 0.5


class ES(NamedTuple):
    """The evolution strategy as every trainer is shaped: ``init(key) -> ESState`` and ``step(state) -> (state,
    ESLog)``."""

    init: Callable[[PRNGKey], ESState]
    step: Callable[[ESState], tuple[ESState, ESLog]]


def make_es(
    fitness: Callable[[Params, PRNGKey], Array],
    start: Callable[[PRNGKey], Params],
    spec: ESSpec = ESSpec(),  # noqa: B008 - frozen
) -> ES:
    """``init(key)`` (the search starts at ``start(key)``) and ``step(state)`` maximising ``fitness(theta, key)``."""
    optimizer = optax.adam(spec.es_learning_rate)
    P, sigma = spec.population, spec.sigma

    def init(key: PRNGKey) -> ESState:
        theta = start(key)
        return ESState(theta, optimizer.init(theta), key, jnp.zeros((), jnp.int32))

    def step(state: ESState) -> tuple[ESState, ESLog]:
        key, k_noise, k_eval = jax.random.split(state.key, 3)
        flat, unravel = ravel_pytree(state.theta)
        eps = jax.random.normal(k_noise, (P, flat.shape[0]), flat.dtype)
        keys = jax.random.split(k_eval, P)  # one key per pair: common random numbers for + and -
        evaluate = jax.vmap(lambda x, k: fitness(unravel(x), k))
        f_plus, f_minus = evaluate(flat + sigma * eps, keys), evaluate(flat - sigma * eps, keys)
        both = jnp.concatenate([f_plus, f_minus])
        shaped = centered_ranks(both) if spec.shaping == "centered_ranks" else both
        per_pair = (shaped[:P] - shaped[P:])[:, None] * eps / (2 * sigma)  # [P, D]
        grad = jnp.mean(per_pair, axis=0)
        variance = jnp.sum(jnp.var(per_pair, axis=0)) / P
        updates, opt_state = optimizer.update(unravel(-grad), state.opt_state, state.theta)  # ascent
        theta = optax.apply_updates(state.theta, updates)
        log = ESLog(jnp.mean(both), jnp.max(both), jnp.linalg.norm(grad), variance, jnp.linalg.norm(flat))
        return ESState(theta, opt_state, key, state.iteration + 1), log

    return ES(init, step)
