"""Deep mechanism optimization (DMO): collect-then-update, as one jit-compiled program.

Each round (original_behaviour.md section 1.6, with the seed's bugs fixed):

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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxauction._checks import check_choice, check_positive_int
from jaxauction.bidders import LEARNERS, EpsilonGreedyConfig, Learner, epsilon_greedy, truthful
from jaxauction.market import Market, check_market, collect, revenue, run_round
from jaxauction.mechanisms import MECHANISMS, Mechanism, PaymentNet, make_mechanism, payment_shares
from jaxauction.mechanisms.deep import PRECISIONS
from jaxauction.parallel import constrain_markets
from jaxauction.priors import UniformIntPrior, UniformPrior
from jaxauction.types import Array, Params, PRNGKey

PRIORS = ("uniform_int", "uniform")
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class DMOConfig:
    """Static configuration. The defaults are the seed's effective configuration (original section 1.2)."""

    mechanism: str = "deep"  # one of MECHANISMS
    learner: str = "epsilon_greedy"  # one of LEARNERS
    n_bidders: int = 3
    prior: str = "uniform_int"  # "uniform_int": values in {value_low..value_high}; "uniform": [low, high)
    value_low: Any = 0  # a number, or a tuple with one entry per bidder
    value_high: Any = 9
    n_bids: int = 10  # bid grid {0..n_bids-1} of the epsilon-greedy bidders
    overbid: bool = False
    rounds: int = 10
    auctions_per_round: int = 100_000
    window: int = 10_000  # revenue window; the platform reward is the last window's mean revenue
    explore_steps: int = 20_000
    half_life: float = 10_000.0
    markets: int = 1  # independent markets per round; the dataset is gathered from all of them
    dataset_size: int = 64  # dataset auctions per market
    updates_per_round: int = 1
    learning_rate: float = 1e-3
    hidden: tuple = (128, 64, 128)
    winner_only: bool = False  # deep rule: charge only the winner
    normalise: bool = False  # deep rule: feed bids / max bid to the network
    warm_start: bool = False  # keep the bidders' tables across rounds instead of fresh bidders
    reserve: float = 0.0  # reserve price of the classical rules
    compute_dtype: str = "float32"  # deep rule: "bfloat16" runs its matmuls in bfloat16, accumulating in float32
    matmul_precision: str = "default"  # deep rule: "highest" avoids TF32 for float32 matmuls on NVIDIA GPUs
    market_chunk: int = 0  # markets rolled out at a time (lax.map); 0: all markets at once
    revenue_chunk: int = 0  # dataset profiles per chunk of the revenue and its gradient; 0: all at once

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in ("value_low", "value_high"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check_choice(self.mechanism, MECHANISMS, "mechanism")
        check_choice(self.learner, LEARNERS, "learner")
        check_choice(self.prior, PRIORS, "prior")
        check_positive_int(self.n_bidders, "n_bidders", minimum=2)
        for name in ("n_bids", "rounds", "auctions_per_round", "window", "markets", "dataset_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.updates_per_round, "updates_per_round", minimum=0)
        check_positive_int(self.market_chunk, "market_chunk", minimum=0)
        check_positive_int(self.revenue_chunk, "revenue_chunk", minimum=0)
        check_choice(self.compute_dtype, COMPUTE_DTYPES, "compute_dtype")
        check_choice(self.matmul_precision, PRECISIONS, "matmul_precision")
        if (self.compute_dtype, self.matmul_precision) != ("float32", "default") and self.mechanism != "deep":
            raise ValueError(
                f"compute_dtype and matmul_precision apply to mechanism 'deep' only, not {self.mechanism!r}"
            )
        check_positive_int(self.explore_steps, "explore_steps", minimum=0)
        if self.auctions_per_round % self.window:
            raise ValueError(
                f"auctions_per_round ({self.auctions_per_round}) must be a multiple of window ({self.window})"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not self.reserve >= 0:
            raise ValueError(f"reserve must be non-negative, got {self.reserve!r}")
        if self.reserve and self.mechanism == "deep":
            raise ValueError("reserve applies to the classical rules only, not to mechanism 'deep'")
        prior = self.make_prior()  # validates the value range
        prior.bounds(self.n_bidders)  # validates per-bidder lengths
        if self.learner == "epsilon_greedy":
            if self.prior != "uniform_int":
                raise ValueError("the epsilon_greedy learner needs integer values: use prior 'uniform_int'")
            self.learner_config()  # validates n_bids against the value range

    def make_prior(self) -> UniformIntPrior | UniformPrior:
        if self.prior == "uniform_int":
            return UniformIntPrior(self.value_low, self.value_high)
        return UniformPrior(self.value_low, self.value_high)

    @property
    def n_values(self) -> int:
        """Value levels of the bidders' tables: ``{0..max value}``."""
        return int(np.max(self.value_high)) + 1

    def learner_config(self) -> EpsilonGreedyConfig:
        return EpsilonGreedyConfig(
            n_bidders=self.n_bidders,
            n_values=self.n_values,
            n_bids=self.n_bids,
            explore_steps=self.explore_steps,
            half_life=self.half_life,
            overbid=self.overbid,
        )

    @property
    def max_bid(self) -> float:
        if self.learner == "epsilon_greedy":
            return float(self.n_bids - 1)
        return float(np.max(self.value_high))


def _deep_options(config: DMOConfig) -> dict[str, Any]:
    return dict(
        hidden=config.hidden,
        winner_only=config.winner_only,
        normalise=config.normalise,
        bid_scale=max(config.max_bid, 1.0),
        dtype=COMPUTE_DTYPES[config.compute_dtype],
        precision=config.matmul_precision,
    )


def deep_shares(config: DMOConfig, params: Params, bids: Array) -> Array:
    """The deep rule's payment shares ``s(b)`` ``[..., n]`` for bid profiles ``bids`` ``[..., n]``."""
    if config.mechanism != "deep":
        raise ValueError(f"payment shares exist for mechanism 'deep' only, not {config.mechanism!r}")
    options = _deep_options(config)
    net = PaymentNet(config.n_bidders, options["hidden"], options["dtype"], options["precision"])
    return payment_shares(net, params, bids, options["bid_scale"] if config.normalise else 1.0)


def make_market(config: DMOConfig) -> Market:
    """The mechanism, learner and prior that ``config`` describes."""
    n = config.n_bidders
    if config.mechanism == "deep":
        mechanism = make_mechanism("deep", n, **_deep_options(config))
    else:
        mechanism = make_mechanism(config.mechanism, n, reserve=config.reserve)
    if config.learner == "epsilon_greedy":
        learner: Learner = epsilon_greedy(config.learner_config())
    else:
        learner = truthful(n, config.n_values if config.prior == "uniform_int" else None)
    market = Market(mechanism, learner, config.make_prior())
    check_market(market)
    return market


class TrainState(NamedTuple):
    """The carry between rounds: everything a bit-exact resume needs."""

    params: Params
    opt_state: Any
    learner_state: Any  # [markets, ...]: the bidders after the last round
    key: PRNGKey
    round: Array  # int32, rounds done


class RoundLog(NamedTuple):
    """What one round reports (means over the markets)."""

    platform_reward: Array  # scalar: mean revenue over the round's last window
    revenue: Array  # [W] windowed mean revenue
    utility: Array  # [W, n] windowed mean utility per bidder
    efficiency: Array  # [W]
    loss: Array  # scalar: -mean dataset revenue before this round's update (the seed's logged loss)
    greedy_bids: Array  # [n, V] final greedy bid per value level (NaN without a table)


class DMO(NamedTuple):
    config: DMOConfig
    market: Market
    optimizer: optax.GradientTransformation
    init: Callable[[PRNGKey], TrainState]
    step: Callable[[TrainState], tuple[TrainState, RoundLog]]


def make_dmo(config: DMOConfig) -> DMO:
    """The pure ``init`` and ``step`` (one round) of deep mechanism optimization."""
    market = make_market(config)
    mechanism: Mechanism = market.mechanism
    learner = market.learner
    optimizer = optax.adam(config.learning_rate)
    M, n = config.markets, config.n_bidders

    def fresh_learners(key: PRNGKey) -> Any:
        return jax.vmap(learner.init)(jax.random.split(key, M))

    def init(key: PRNGKey) -> TrainState:
        k_params, k_learners, k_run = jax.random.split(key, 3)
        params = mechanism.init(k_params)
        return TrainState(params, optimizer.init(params), fresh_learners(k_learners), k_run, jnp.zeros((), jnp.int32))

    revenue_chunk = config.revenue_chunk or None
    update = make_update(mechanism, optimizer, revenue_chunk)

    def over_markets(fn: Callable, *xs: Any) -> Any:
        """``vmap`` over the markets axis, or ``lax.map`` in batches of ``market_chunk`` to bound memory."""
        if config.market_chunk:
            return jax.lax.map(lambda args: fn(*args), xs, batch_size=config.market_chunk)
        return jax.vmap(fn)(*xs)

    def step(state: TrainState) -> tuple[TrainState, RoundLog]:
        key, k_learners, k_round, k_data = jax.random.split(state.key, 4)
        learners = state.learner_state if config.warm_start else fresh_learners(k_learners)
        learners = constrain_markets(learners)  # data-parallel over markets under a mesh with a "batch" axis
        learners, metrics = over_markets(
            lambda s, k: run_round(market, config.auctions_per_round, config.window, state.params, s, k),
            learners,
            jax.random.split(k_round, M),
        )
        data = over_markets(
            lambda s, k: collect(market, config.dataset_size, state.params, s, k), learners, jax.random.split(k_data, M)
        )
        bids = data.bids.reshape(M * config.dataset_size, n)
        keys = data.keys.reshape(M * config.dataset_size)

        params, opt_state = state.params, state.opt_state
        if mechanism.trainable and config.updates_per_round > 0:

            def one_update(carry: tuple[Params, Any], _: None) -> tuple[tuple[Params, Any], Array]:
                new_params, new_opt_state, loss = update(*carry, bids, keys)
                return (new_params, new_opt_state), loss

            (params, opt_state), losses = jax.lax.scan(
                one_update, (params, opt_state), None, length=config.updates_per_round
            )
            loss = losses[0]
        else:
            loss = -revenue(mechanism, params, bids, keys, revenue_chunk)

        if learner.greedy_bids is not None:
            greedy = jnp.mean(jax.vmap(learner.greedy_bids)(learners), axis=0)
        else:
            greedy = jnp.full((n, config.n_values), jnp.nan, jnp.float32)
        log = RoundLog(
            platform_reward=jnp.mean(metrics.platform_reward),
            revenue=jnp.mean(metrics.revenue, axis=0),
            utility=jnp.mean(metrics.utility, axis=0),
            efficiency=jnp.mean(metrics.efficiency, axis=0),
            loss=loss,
            greedy_bids=greedy,
        )
        return TrainState(params, opt_state, learners, key, state.round + 1), log

    return DMO(config, market, optimizer, init, step)


def make_update(
    mechanism: Mechanism, optimizer: optax.GradientTransformation, revenue_chunk: int | None = None
) -> Callable[[Params, Any, Array, Array], tuple[Params, Any, Array]]:
    """One optimizer step of gradient ascent on mean revenue over a dataset, bids held constant.

    ``update(params, opt_state, bids [D, n], keys [D]) -> (params, opt_state, loss)``
    with ``loss = -revenue`` before the step; ``revenue_chunk`` bounds memory
    (see ``market.revenue``).
    """

    def loss_fn(params: Params, bids: Array, keys: Array) -> Array:
        return -revenue(mechanism, params, bids, keys, revenue_chunk)

    def update(params: Params, opt_state: Any, bids: Array, keys: Array) -> tuple[Params, Any, Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, bids, keys)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return update


def make_train(config: DMOConfig) -> Callable[[PRNGKey], tuple[TrainState, RoundLog]]:
    """``train(key) -> (final TrainState, RoundLog stacked over rounds)``: pure, jit- and vmap-able."""
    dmo = make_dmo(config)

    def train(key: PRNGKey) -> tuple[TrainState, RoundLog]:
        return jax.lax.scan(lambda s, _: dmo.step(s), dmo.init(key), None, length=config.rounds)

    return train
