"""Learning-aware mechanism optimization (the library half of ``experiments.learning_aware_dmo``).

Evolution strategies on a rule's reserve (``family="reserve"``) or on the
weights of a ``deep_allocation`` rule (``family="network"``); the fitness is
the platform reward of fresh learning bidders who adapt to the rule, so the
optimiser sees the revenue a rule earns after the bidders adapt.
``make_learning_aware(config)`` gives the market, ``init(key)``, ``step(state)``
and ``rule(base, theta)``, the market params holding the rule ``theta``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from jaxauction import evaluation
from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.market import Market, MarketParams, init_params
from jaxauction.mechanisms import RULES
from jaxauction.regret import check_scorable
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.train.es import ESLog, ESSpec, ESState, make_es


@dataclasses.dataclass(frozen=True)
class LearningAwareConfig:
    """What is optimised, against whom, and how."""

    rule: str = "second_price"
    """the classical rule whose reserve is learned: first_price, second_price, third_price or all_pay"""
    family: Literal["reserve", "network"] = "reserve"
    """what ES learns: reserve (the reserve of --rule) or network (a deep_allocation rule: an anonymous learned
    allocation with a no-sale option, winners paying a learned fraction of their bid; with the default ES
    settings, sigma 0.05 and learning rate 0.02 on its weights)"""
    network_hidden: tuple[int, ...] = (16, 16)
    """network: hidden widths of its per-bidder and keep networks"""
    preset: Literal["cpu", "seed"] = "cpu"
    """cpu: the reduced market below; seed: the seed market's sizes (overrides auctions, window, explore-steps,
    half-life)"""
    bidders: PopulationSpec = PopulationSpec(options={"explore_steps": 4_000, "half_life": 2_000.0})
    prior: PriorSpec = PriorSpec()
    auctions: int = 20_000
    """auctions per fitness evaluation (and per final evaluation)"""
    window: int = 5_000
    """the platform reward is the mean revenue of the last window"""
    markets: int = 4
    """fresh markets per fitness evaluation"""
    iterations: int = 60
    """ES iterations"""
    initial_reserve: float = 0.0
    """the reserve the search starts from"""
    es: ESSpec = ESSpec(es_learning_rate=0.3)
    reserves: int = 19
    """reserve prices evenly on the best-reserve grid, 0 .. the highest value; with integer bids the grid also
    holds a reserve just below every bid level (where the best reserves are)"""
    eval_seeds: int = 16
    """fresh-bidder evaluation seeds (at least --seeds); evaluation seed i uses the rule of search seed i mod seeds"""
    regret_profiles: int = 2_000
    """value profiles for the final rule's regret (4 random starts x 100 Adam steps each, and the grid)"""
    deploy: Path | None = None
    """skip the search: deploy the rule trained by this experiments.regretnet run (seed 0) and evaluate it"""

    def __post_init__(self) -> None:
        check_choice(self.rule, RULES, "rule")
        for name in ("auctions", "window", "markets", "iterations", "reserves", "eval_seeds", "regret_profiles"):
            check_positive_int(getattr(self, name), name)
        check_finite(self.initial_reserve, "initial_reserve", minimum=0.0)
        if self.auctions % self.window:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of window ({self.window})")
        if self.prior.n_items != 1:
            raise ValueError("learning-aware optimization of a reserve sells one item (--items 1)")
        check_scorable(self.prior.build(), None, "the learned rule's regret (reported beside its revenue)")
        c = self.resolved()
        c.bidders.check_horizon(c.auctions, "auctions")

    def resolved(self) -> LearningAwareConfig:
        """The configuration with the preset applied (and, for the network family, its ES defaults)."""
        c = self
        if c.family == "network" and c.es == LearningAwareConfig.es:
            c = dataclasses.replace(c, es=dataclasses.replace(c.es, sigma=0.05, es_learning_rate=0.02))
        if c.preset == "cpu":
            return c
        seed = {"explore_steps": 20_000, "half_life": 10_000.0}  # the seed's exploration, for learners that explore
        options = c.bidders.options
        options = dataclasses.replace(options, **{k: v for k, v in seed.items() if hasattr(options, k)})
        bidders = dataclasses.replace(c.bidders, options=options)
        return dataclasses.replace(c, bidders=bidders, auctions=100_000, window=10_000, preset="cpu")


def searched_market(config: LearningAwareConfig) -> Market:
    """The market the search runs in (the config's preset applied): the rule's, or a ``deep_allocation`` network
    charging winners only."""
    c = config.resolved()
    if c.family == "network":
        spec = MechanismSpec("deep_allocation", {"hidden": c.network_hidden, "winner_only": True})
        return build_market(spec, c.bidders, c.prior)
    return build_market(MechanismSpec(c.rule), c.bidders, c.prior)


class LearningAware(NamedTuple):
    market: Market
    init: Callable[[Any], ESState]
    step: Callable[[ESState], tuple[ESState, ESLog]]
    rule: Callable[[MarketParams, Any], MarketParams]  # (market params, theta) -> params holding the rule theta


def make_learning_aware(config: LearningAwareConfig) -> LearningAware:
    """The ES search of ``config`` (its preset applied): ``init(key)``, ``step(state)`` and ``rule``."""
    c = config.resolved()
    market = searched_market(c)
    base = init_params(market, jax.random.key(0))
    network = c.family == "network"

    def rule(params: MarketParams, theta: Any) -> MarketParams:
        return params._replace(mechanism=theta) if network else evaluation.with_reserve(params, theta)

    def fitness(theta, key):
        return jnp.mean(evaluation.fresh_rewards(market, rule(base, theta), key[None], c.auctions, c.window,
                                                 c.markets))  # fmt: skip

    def start(key):
        return market.mechanism.init(jax.random.fold_in(key, 1)) if network else jnp.float32(c.initial_reserve)

    es = make_es(fitness, start, c.es)
    return LearningAware(market, es.init, es.step, rule)


__all__ = ["LearningAware", "LearningAwareConfig", "make_learning_aware"]
