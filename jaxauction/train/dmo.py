"""Deep mechanism optimization (DMO): collect-then-update, as one jit-compiled program.

Each round (the original platform's loop, with its bugs fixed):

1. ``markets`` independent markets of bidders (fresh, or warm-started from the
   previous round) learn for ``auctions_per_round`` auctions against the frozen
   mechanism; metrics are reduced inside the scan;
2. the learned, frozen bidders play ``dataset_size`` auctions per market;
3. optax takes ``updates_per_round`` gradient steps on ``-mean revenue`` of that
   dataset with respect to the mechanism's parameters, bids held constant.

``make_dmo(config)`` gives the pure pieces ``init(key) -> TrainState`` and
``step(state) -> (state, RoundLog)``; ``make_train(config)`` gives
``train(key)``, a ``lax.scan`` of ``step`` over all rounds, which callers wrap
in ``jax.jit`` (one run) or ``jax.jit(jax.vmap(train))`` (many seeds).

Every number of the market (prior bounds, learner hyperparameters, reserves)
is in ``TrainState.params`` (``MarketParams``), so seeds of different
settings stack on one axis: ``jax.vmap(dmo.step)`` over states whose params
differ runs a sweep in one compiled program.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.market import Market, MarketParams, collect, init_params, policy_grid, run_round
from jaxauction.mechanisms import PaymentNet, payment_shares
from jaxauction.mechanisms.builders import COMPUTE_DTYPES
from jaxauction.parallel import constrain_markets
from jaxauction.regret import batch_regret, check_scorable, refine_misreports
from jaxauction.specs import (
    MechanismSpec,
    PopulationSpec,
    PriorSpec,
    UtilitySpec,
    highest_bid,
    market_of,
    replace_fields,
)
from jaxauction.train import make_update, revenue_loss
from jaxauction.types import Array, PRNGKey

OPTIMISERS: dict[str, Callable[[float], optax.GradientTransformation]] = {
    "adam": optax.adam,
    "sgd": optax.sgd,
    "adamw": optax.adamw,
}


@dataclasses.dataclass(frozen=True)
class RolloutSpec:
    """The rounds and markets."""

    rounds: int = 10
    """outer rounds: learn -> collect -> update"""
    auctions_per_round: int = 100_000
    """learning auctions per round and market"""
    window: int = 10_000
    """revenue window; the platform reward is the mean revenue of the round's last window"""
    markets: int = 1
    """independent markets per round and seed; the dataset is pooled over them"""
    dataset_size: int = 64
    """dataset auctions per market"""
    warm_start: bool = False
    """keep the bidders' tables across rounds instead of fresh bidders each round"""
    market_chunk: int = 0
    """markets rolled out at a time (bounds memory); 0: all at once"""

    def __post_init__(self) -> None:
        for name in ("rounds", "auctions_per_round", "window", "markets", "dataset_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.market_chunk, "market_chunk", minimum=0)
        if self.auctions_per_round % self.window:
            raise ValueError(
                f"auctions_per_round ({self.auctions_per_round}) must be a multiple of window ({self.window})"
            )


@dataclasses.dataclass(frozen=True)
class OptimiserSpec:
    """The mechanism's optimiser."""

    optimiser: str = "adam"
    """optax optimiser: adam, adamw or sgd"""
    learning_rate: float = 1e-3
    """learning rate"""
    updates_per_round: int = 1
    """optimiser steps per round on the round's dataset (the seed takes 1)"""
    revenue_chunk: int = 0
    """dataset profiles per chunk of the revenue and its gradient (bounds memory); 0: all at once"""
    regret_weight: float = 0.0
    """add this weight x the learned rule's regret (mean over bidders of the gain from misreporting the
    dataset's values, the rule as a direct mechanism) to the loss; 0: the seed's revenue loss"""
    regret_steps: int = 25
    """projected Adam steps of the regret penalty's misreport search, from random starts, per round"""

    def __post_init__(self) -> None:
        check_choice(self.optimiser, OPTIMISERS, "optimiser")
        check_finite(self.regret_weight, "regret_weight", minimum=0.0)
        check_positive_int(self.regret_steps, "regret_steps")
        check_finite(self.learning_rate, "learning_rate", positive=True)
        check_positive_int(self.updates_per_round, "updates_per_round", minimum=0)
        check_positive_int(self.revenue_chunk, "revenue_chunk", minimum=0)

    def build(self) -> optax.GradientTransformation:
        return OPTIMISERS[self.optimiser](self.learning_rate)


@dataclasses.dataclass(frozen=True)
class EvaluationSpec:
    """The honest evaluation after training (jaxauction.evaluation)."""

    final_eval: bool = True
    """after training, fresh bidders learn against the final rule for a round's budget; the same learners,
    seeds and budget against second price, first price and second price with the best reserve (baselines)"""
    reserves: int = 19
    """reserve prices evenly on the best-reserve grid, 0 .. the highest value; with integer bids the grid also
    holds a reserve just below every bid level (where the best reserves are)"""

    def __post_init__(self) -> None:
        check_positive_int(self.reserves, "reserves")


@dataclasses.dataclass(frozen=True)
class DMOConfig:
    """Deep mechanism optimization; the defaults are the seed's effective configuration."""

    mechanism: MechanismSpec = MechanismSpec()
    bidders: PopulationSpec = PopulationSpec()
    prior: PriorSpec = PriorSpec()
    utility: UtilitySpec = UtilitySpec()
    rollout: RolloutSpec = RolloutSpec()
    optimiser: OptimiserSpec = OptimiserSpec()
    evaluation: EvaluationSpec = EvaluationSpec()

    def __post_init__(self) -> None:
        """Checks across specs that need no market (``make_dmo`` checks the market the specs build)."""
        self.bidders.check_horizon(self.rollout.auctions_per_round, "auctions_per_round")
        if self.optimiser.regret_weight > 0:
            check_scorable(self.prior.build(), self.utility.build(), "the regret penalty (regret_weight)")

    @classmethod
    def of(cls, **settings: Any) -> DMOConfig:
        """A config from flat settings, e.g. ``DMOConfig.of(mechanism="second_price", rounds=3)``."""
        return replace_fields(cls(), **settings)

    def replace(self, **settings: Any) -> DMOConfig:
        """A copy with flat settings replaced (field names are unique across the specs)."""
        return replace_fields(self, **settings)


class TrainState(NamedTuple):
    """The carry between rounds: everything a bit-exact resume needs."""

    params: MarketParams  # the mechanism's part is trained; the rest are the market's fixed numbers
    opt_state: Any  # of params.mechanism
    learner_state: Any  # [markets, ...]: the bidders after the last round
    key: PRNGKey
    round: Array  # int32, rounds done


class RoundLog(NamedTuple):
    """What one round reports (means over the markets)."""

    platform_reward: Array  # scalar: mean revenue over the round's last window
    revenue: Array  # [W] windowed mean revenue
    utility: Array  # [W, n] windowed mean utility per bidder
    efficiency: Array  # [W] realised over optimal welfare per window
    loss: Array  # scalar: the loss before this round's update: -mean dataset revenue (the seed's), + the penalty
    regret: Array  # scalar: the penalty's regret before the update (mean over bidders); NaN without a penalty
    policy: Array  # [n, G, m] the bidders' exploitation bid on the policy grid, end of round


class DMO(NamedTuple):
    """Deep mechanism optimization as built by ``make_dmo``: its configuration, market and optimizer, and the pure
    ``init(key) -> TrainState`` and ``step(state) -> (state, RoundLog)`` (one round)."""

    config: DMOConfig
    market: Market
    optimizer: optax.GradientTransformation
    grid: Any  # [G, d] observations of the policy summary
    init: Callable[[PRNGKey], TrainState]
    step: Callable[[TrainState], tuple[TrainState, RoundLog]]


def make_dmo(config: DMOConfig, checked: bool = False) -> DMO:
    """The pure ``init`` and ``step`` (one round) of deep mechanism optimization.

    Memoised on the (frozen, hashable) config, less its number of rounds, which a round does not depend on:
    the same settings give the same functions, so programs compiled from them (``jax.jit``, the driver's
    chunks) are reused rather than compiled again, also when a resumed run extends its length.
    """
    return _make_dmo(
        dataclasses.replace(config, rollout=dataclasses.replace(config.rollout, rounds=1)), checked
    )._replace(config=config)


@functools.lru_cache(maxsize=64)
def _make_dmo(config: DMOConfig, checked: bool) -> DMO:
    market = market_of(config, checked)
    mechanism, population = market.mechanism, market.population
    rollout, opt = config.rollout, config.optimiser
    if mechanism.trainable and opt.updates_per_round == 0:
        raise ValueError(f"updates_per_round is 0: the {config.mechanism.mechanism} rule would never train (use 1 "
                         "or more, or a classical mechanism to measure a fixed rule)")  # fmt: skip
    optimizer = opt.build()
    M = rollout.markets
    grid = jnp.asarray(policy_grid(market))

    def fresh_learners(key: PRNGKey, params: MarketParams) -> Any:
        return jax.vmap(population.init, in_axes=(0, None))(jax.random.split(key, M), params.learners)

    def init(key: PRNGKey) -> TrainState:
        k_params, k_learners, k_run = jax.random.split(key, 3)
        params = init_params(market, k_params)
        return TrainState(
            params,
            optimizer.init(params.mechanism),
            fresh_learners(k_learners, params),
            k_run,
            jnp.zeros((), jnp.int32),
        )

    seed_loss = revenue_loss(mechanism, opt.revenue_chunk or None)
    penalised = opt.regret_weight > 0 and mechanism.trainable

    def loss_fn(params: Any, bids: Array, keys: Array, values: Array, misreports: Array) -> tuple[Array, Array]:
        """The seed's loss, plus ``regret_weight`` x the rule's regret as a direct mechanism on the values."""
        regret = jnp.mean(batch_regret(mechanism, params, values, misreports, keys)[0]) if penalised else jnp.nan
        return seed_loss(params, bids, keys) + (opt.regret_weight * regret if penalised else 0.0), regret

    update = make_update(loss_fn, optimizer, has_aux=True)

    def over_markets(fn: Callable, *xs: Any) -> Any:
        """``vmap`` over the markets axis, or ``lax.map`` in batches of ``market_chunk`` to bound memory."""
        if rollout.market_chunk:
            return jax.lax.map(lambda args: fn(*args), xs, batch_size=rollout.market_chunk)
        return jax.vmap(fn)(*xs)

    def step(state: TrainState) -> tuple[TrainState, RoundLog]:
        key, k_learners, k_round, k_data = jax.random.split(state.key, 4)
        params = state.params
        learners = state.learner_state if rollout.warm_start else fresh_learners(k_learners, params)
        learners = constrain_markets(learners)  # data-parallel over markets under a mesh with a "batch" axis
        learners, metrics = over_markets(
            lambda s, k: run_round(market, rollout.auctions_per_round, rollout.window, params, s, k),
            learners,
            jax.random.split(k_round, M),
        )
        data = over_markets(
            lambda s, k: collect(market, rollout.dataset_size, params, s, k), learners, jax.random.split(k_data, M)
        )
        bids = data.bids.reshape(M * rollout.dataset_size, *data.bids.shape[2:])
        keys = data.keys.reshape(M * rollout.dataset_size)
        values = data.types.values.reshape(bids.shape)
        misreports = values
        if penalised:  # random starts, refined against the current rule (a key of its own: the seed's stream stays)
            low, high = market.prior.support(params.prior)
            starts = jax.random.uniform(jax.random.fold_in(k_data, 1), values.shape) * (high - low) + low
            misreports = refine_misreports(
                mechanism, params.mechanism, values, starts, keys, low, high, opt.regret_steps, 0.1
            )

        mechanism_params, opt_state = params.mechanism, state.opt_state
        if mechanism.trainable and opt.updates_per_round > 0:

            def one_update(carry: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], tuple[Array, Array]]:
                result = update(*carry, bids, keys, values, misreports)
                return (result.params, result.opt_state), (result.loss, result.aux)

            (mechanism_params, opt_state), (losses, regrets) = jax.lax.scan(
                one_update, (mechanism_params, opt_state), None, length=opt.updates_per_round
            )
            loss, regret = losses[0], regrets[0]
        else:
            loss, regret = loss_fn(mechanism_params, bids, keys, values, misreports)

        policy = jax.vmap(lambda s: population.policy(s, grid, params.learners))(learners)
        log = RoundLog(
            platform_reward=jnp.mean(metrics.platform_reward),
            revenue=jnp.mean(metrics.revenue, axis=0),
            utility=jnp.mean(metrics.utility, axis=0),
            efficiency=jnp.mean(metrics.efficiency, axis=0),
            loss=loss,
            regret=regret,
            policy=jnp.mean(policy, axis=0),
        )
        new_params = params._replace(mechanism=mechanism_params)
        return TrainState(new_params, opt_state, learners, key, state.round + 1), log

    return DMO(config, market, optimizer, grid, init, step)


@functools.lru_cache(maxsize=64)
def make_train(config: DMOConfig) -> Callable[[PRNGKey], tuple[TrainState, RoundLog]]:
    """``train(key) -> (final TrainState, RoundLog stacked over rounds)``: pure, jit- and vmap-able (memoised
    like ``make_dmo``)."""
    dmo = make_dmo(config)

    def train(key: PRNGKey) -> tuple[TrainState, RoundLog]:
        return jax.lax.scan(lambda s, _: dmo.step(s), dmo.init(key), None, length=config.rollout.rounds)

    return train


def deep_shares(config: DMOConfig, params: Any, bids: Array) -> Array:
    """The deep rule's payment shares ``s(b)`` ``[..., n]`` for bid profiles ``bids`` ``[..., n]`` (one item)."""
    spec = config.mechanism
    if spec.mechanism != "deep":
        raise ValueError(f"payment shares exist for mechanism 'deep' only, not {spec.mechanism!r}")
    o = spec.options
    net = PaymentNet(config.bidders.n_bidders, o.hidden, COMPUTE_DTYPES[o.compute_dtype], o.matmul_precision)
    market = market_of(config)
    scale = highest_bid(market.population.groups, market.prior, market.n_bidders, market.n_items)
    return payment_shares(net, params, bids, scale if o.normalise else 1.0)
