"""Dynamic mechanisms against learning bidders: horizon revenue, welfare and the bidders' utility, every cell on
the same keys.

    python -m experiments.dynamic_mechanisms                          # the seed market's table (~8 min on CPU)
    python -m experiments.dynamic_mechanisms --preset seed            # 10^6 auctions, sweep, designs: a GPU job
    python -m experiments.dynamic_mechanisms --learners hedge --grids overbid --horizons 1000 1000000
    python -m experiments.dynamic_mechanisms --resume results/dynamic_mechanisms/<run>

The seed market (3 bidders, integer values uniform on 0..9) under every
mechanism x learner x bid grid. Each cell runs ``--seeds`` fresh markets
(16 by default, the same keys in every cell) for a horizon of ``--auctions``
auctions and reports, over the whole horizon, the mean revenue per auction
(+- its standard error over seeds), the welfare (revenue + the bidders'
utility, quasi-linear) and the bidders' total utility, beside the last
window's revenue. For epsilon-greedy learners the figures are also given
for the auctions once they are done exploring (past the forced exploration
of ``--explore-steps`` auctions, and their rate ``0.5 ** (t / half_life)`` at
most ``--settled``: from auction 45,000 by default): while they explore, any
pay-your-bid rule collects random bids.

Mechanisms:

* ``second_price_best_reserve``: second price with the reserve of
  ``--reserves`` that earns most over the horizon on ``--tuning-seeds``
  other keys (per learner and grid), then run on the evaluation keys;
* ``discrete_myerson``: Myerson's optimal auction on the integer grid, at
  Myerson's reserve (5): the static benchmark, 5.275 from bidders who
  best-respond;
* ``first_price``: static pay-your-bid;
* ``teaser_first_price``: pay ``--discount`` x the bid for the first
  ``--teaser`` share of the horizon, then the bid (dynamic);
* ``declining_reserve_first_price``: pay-your-bid with a reserve falling
  linearly from one of ``--decline-starts`` to one of ``--decline-ends`` over
  ``--decline-phases`` equal phases (dynamic; the natural format of
  Braverman et al. 2018), the pair chosen like the reserves.

Bid grids: ``overbid`` (bids 0..``--overbid-bids`` - 1 whatever the value:
learners may bid above their values) and ``original`` (the original
platform's grid, bids 0..9 never above the value). Theory for comparison
(bidders who best-respond): Myerson's optimum 5.275, the full welfare
E[max v] = 6.975. ``--horizons`` runs the teaser against each learner of the
first grid at every horizon (its numbers are chosen again at each).
``--single-buyer`` (on by default) also runs one buyer of each learner on
the original grid against the natural format's LP path
(``evaluation.natural_format_lp``, the theory's limit for one mean-based
buyer) and the best posted price.
``--design-seconds S`` designs the teaser's two numbers against Hedge on the
first grid twice, for ``S`` seconds of wall time each: by gradient ascent
through Hedge's expected dynamics (``train.expected_dynamics``) and by ES on
sampled markets, and measures both designs' paths and results on sampled
markets (``design_fitness.png``: fitness against wall time). It also learns
two rules by gradient and runs them against the sampled learners: declining
reserves against Hedge's expected dynamics, and the teaser against
epsilon-greedy's softmax relaxation (once done exploring). Every cell is
written when it finishes (``evaluation/<cell>.json``); ``--resume`` reads
finished cells back and runs the rest.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxauction import checkpoint, cli, io, plots
from jaxauction._checks import check_choice, check_positive_int
from jaxauction.bidders import population as make_population
from jaxauction.driver import Session, run_meta
from jaxauction.evaluation import lp_reserves, natural_format_lp, theory
from jaxauction.market import Market, fresh_round, init_params
from jaxauction.mechanisms import declining_reserve_first_price, first_price
from jaxauction.mechanisms.builders import LearnedDynamicOptions
from jaxauction.mechanisms.dynamic import check_declining, check_teaser
from jaxauction.priors import top_value
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, ValueScale, build_market
from jaxauction.studies import mean_se, regret_round
from jaxauction.train import expected_dynamics as ed
from jaxauction.train.es import ESSpec, make_es

NAME = "dynamic_mechanisms"
MECHANISMS = ("second_price_best_reserve", "discrete_myerson", "first_price", "teaser_first_price",
              "declining_reserve_first_price")  # fmt: skip
GRIDS = ("overbid", "original")
EXPLORING = ("epsilon_greedy",)  # learners with a forced-exploration phase
STATIC_NETWORK = "learned_static_first_price"  # the experiment's name for learned_dynamic_first_price --static


@dataclasses.dataclass(frozen=True)
class DynamicConfig:
    """The table: mechanisms x learners x bid grids, and the horizon sweep."""

    preset: Literal["cpu", "seed"] = "cpu"
    """cpu: the fields below; seed: the seed run's horizon, a GPU job (benchmarks/gpu_dynamic.sh): 1,000,000
    auctions per market, the horizon sweep 10^3..10^6 and 120 s designs (overrides auctions, horizons and
    design_seconds)"""
    mechanisms: tuple[str, ...] = MECHANISMS
    """rows: second_price_best_reserve, discrete_myerson, first_price, teaser_first_price,
    declining_reserve_first_price"""
    learners: tuple[str, ...] = ("epsilon_greedy", "hedge", "exp3", "truthful")
    """columns: any registered learner (no_swap_regret is slow on the 40-bid grid: about 1 ms an auction)"""
    grids: tuple[Literal["overbid", "original"], ...] = GRIDS
    """bid grids: overbid (0..overbid_bids-1, above the value allowed) and original (0..9, at most the value)"""
    overbid_bids: int = 40
    """bids on the overbid grid"""
    auctions: int = 100_000
    """the horizon T: auctions per market"""
    windows: int = 20
    """equal windows the horizon is reported in"""
    explore_steps: int = 20_000
    """epsilon-greedy's forced exploration (the original's 20,000)"""
    half_life: float = 10_000.0
    """epsilon-greedy's exploration rate after it: 0.5 ** (t / half_life) (the original's)"""
    settled: float = 0.05
    """epsilon-greedy's figures count the auctions from the first window after the forced exploration where its
    exploration rate is at most this (from auction 45,000 by default), reported beside the horizon's"""
    reserves: tuple[float, ...] = (3.99, 4.99, 5.99)
    """second-price reserves tried for the best static reserve (just below an integer: a tie at the reserve wins)"""
    tuning_seeds: int = 2
    """markets (other keys than the evaluation's) that choose the best reserve"""
    discounts: tuple[float, ...] = (0.2, 0.5)
    """teaser_first_price: shares of its bid a winner pays during the teaser, tried like the reserves"""
    teasers: tuple[float, ...] = (0.3, 0.5, 0.7)
    """teaser_first_price: the teaser's shares of the horizon, tried like the reserves"""
    decline_phases: int = 12
    """declining_reserve_first_price: equal phases of the horizon (the reserve falls linearly over them, or follows
    the single-buyer LP's path: natural_format_lp; 12 phases hold its path for values 0..9 exactly)"""
    decline_starts: tuple[float, ...] = (6.99, 8.99)
    """declining_reserve_first_price: its first phase's reserves tried (with every end), like the reserves"""
    decline_ends: tuple[float, ...] = (0.0,)
    """declining_reserve_first_price: its last phase's reserves tried"""
    single_buyer: bool = True
    """also run one buyer of each learner on the original grid against the natural format's LP path and the best
    posted price (the LP's theory is for one buyer; needs integer values uniform on 0..H)"""
    horizons: tuple[int, ...] = ()
    """a horizon sweep of the teaser, e.g. 1000 10000 100000 1000000 (none by default: the table alone takes
    about 9.7 minutes on 2 CPU cores)"""
    design_seconds: float = 0.0
    """learning-aware design against Hedge, this many seconds of wall time for each (0: none): the teaser's two
    numbers on the first grid by gradient ascent through the expected dynamics (train.expected_dynamics) and by
    ES on sampled markets, from the same start; and declining_reserve_first_price's decline_phases reserves on
    the original grid by gradient (the learned dynamic rule, run against every learner)"""
    design_learning_rate: float = 0.1
    network_learning_rate: float = 0.03
    """Adam's learning rate for the learned dynamic network's weights (--design-seconds)"""
    """Adam's learning rate for both designers, on the logits of (discount, teaser)"""
    es_population: int = 4
    """ES's antithetic pairs per iteration (one sampled market each)"""
    regret_seeds: int = 1
    """markets per cell (the first evaluation keys, the same play) in which each learner's realised external and
    swap regret per auction are measured (0: none)"""
    bidders: int = 3
    """bidders per market"""
    values: PriorSpec = PriorSpec()

    def __post_init__(self) -> None:
        for name in self.mechanisms:
            check_choice(name, MECHANISMS, "mechanism")
        for name in self.grids:
            check_choice(name, GRIDS, "grid")
        for d, t in itertools.product(self.discounts, self.teasers):
            check_teaser(d, t)
        if not (self.reserves and self.discounts and self.teasers and self.decline_starts and self.decline_ends):
            raise ValueError("give at least one reserve, discount, teaser, decline start and decline end")
        check_positive_int(self.decline_phases, "decline_phases")
        for start, end in itertools.product(self.decline_starts, self.decline_ends):
            check_declining(declining(start, end, self.decline_phases))
        if self.design_seconds < 0 or self.design_learning_rate <= 0:
            raise ValueError("design_seconds must be >= 0 and design_learning_rate > 0")
        check_positive_int(self.es_population, "es_population")
        uniform_0h = (self.values.prior == "uniform_int" and self.values.value_low == 0
                      and isinstance(self.values.value_high, (int, float)))  # fmt: skip
        if self.design_seconds and not uniform_0h:
            raise ValueError("--design-seconds: the expected dynamics are built for values uniform on 0..H")
        if self.single_buyer and not uniform_0h:
            raise ValueError("--single-buyer: the natural format's LP is computed for values uniform on 0..H "
                             "(--no-single-buyer skips it)")  # fmt: skip
        if not 0 <= self.regret_seeds:
            raise ValueError(f"regret_seeds must be >= 0, got {self.regret_seeds}")
        for name in ("bidders", "overbid_bids", "auctions", "windows", "tuning_seeds", "explore_steps"):
            check_positive_int(getattr(self, name), name)
        if self.auctions % self.windows:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of windows ({self.windows})")
        if not 0 < self.settled < 1 or self.half_life <= 0:
            raise ValueError(f"settled must be in (0, 1) and half_life > 0, got {self.settled}, {self.half_life}")
        if any(lr in EXPLORING for lr in self.learners) and settled_from(self, self.auctions) >= self.auctions:
            raise ValueError(f"epsilon-greedy explores until auction {settled_from(self, self.auctions):,} "
                             f"(--explore-steps, --half-life, --settled): a horizon of {self.auctions:,} leaves "
                             "no auction to report after it")  # fmt: skip
        for h in self.horizons:
            check_positive_int(h, "horizons", minimum=self.windows)
            if h % self.windows:
                raise ValueError(f"every horizon must be a multiple of windows ({self.windows}), got {h}")
        if not self.learners or not self.mechanisms or not self.grids:
            raise ValueError("give at least one learner, mechanism and grid")
        if self.values.n_items != 1:
            raise ValueError("dynamic mechanisms sell one item")


def resolved(config: DynamicConfig) -> DynamicConfig:
    """The configuration with its preset applied (what the run records, so that --resume needs no preset)."""
    if config.preset == "cpu":
        return config
    return dataclasses.replace(config, preset="cpu", auctions=1_000_000, horizons=(1_000, 10_000, 100_000, 1_000_000),
                               design_seconds=max(config.design_seconds, 120.0))  # fmt: skip


def declining(start: float, end: float, phases: int) -> tuple[float, ...]:
    """``phases`` reserves falling linearly from ``start`` to ``end``."""
    return tuple(float(r) for r in np.linspace(start, end, phases)) if phases > 1 else (float(start),)


def population(config: DynamicConfig, learner: str, grid: str, horizon: int) -> PopulationSpec:
    options: dict[str, Any] = {}
    if learner != "truthful":
        options = {"n_bids": config.overbid_bids, "overbid": True} if grid == "overbid" else {}
    if learner in EXPLORING:
        options.update(explore_steps=min(config.explore_steps, horizon), half_life=config.half_life)
    return PopulationSpec(learner, config.bidders, options)


def market_for(config: DynamicConfig, mechanism: str, learner: str, grid: str, horizon: int):
    bidders = population(config, learner, grid, horizon)
    if mechanism == STATIC_NETWORK:  # the learned network without its clock
        return build_market(MechanismSpec("learned_dynamic_first_price", {"static": True}), bidders, config.values)
    spec = MechanismSpec(mechanism.removesuffix("_best_reserve"))
    if mechanism == "discrete_myerson":  # at Myerson's reserve for the prior
        plain = build_market(MechanismSpec("first_price"), bidders, config.values)
        reserve = theory(plain).get("myerson_reserve")
        if reserve is None or not plain.prior.integer:
            raise ValueError("discrete_myerson is Myerson's auction for i.i.d. uniform integer values")
        spec = MechanismSpec(mechanism, {"reserve": reserve})
    if mechanism == "declining_reserve_first_price":  # the reserves are set per candidate (with_numbers)
        spec = MechanismSpec(mechanism, {"reserves": (0.0,) * config.decline_phases})
    return build_market(spec, bidders, config.values)


def check(config: DynamicConfig) -> None:
    """Build every cell's market before anything runs (unknown learners, grids that miss the values)."""
    for grid in config.grids:
        for learner in config.learners:
            for mechanism in config.mechanisms:
                market_for(config, mechanism, learner, grid, config.auctions)


def horizon_run(market, params, keys, auctions: int, windows: int):
    """``[S, W]`` revenue, bidders' total utility and mean bid per window, one fresh market per key."""
    one = lambda k: fresh_round(market, params, *jax.random.split(k), auctions, auctions // windows)[1]  # noqa: E731
    metrics = jax.vmap(one)(keys)
    return metrics.revenue, jnp.sum(metrics.utility, axis=-1), jnp.mean(metrics.bid, axis=-1)


def learner_regret(market, params, key, auctions: int):
    """``[n]`` realised external and swap regret per auction of the market ``horizon_run`` plays with ``key``."""
    init_key, round_key = jax.random.split(key)
    states = market.population.init(init_key, params.learners)
    _, ledger = regret_round(market, params, states, round_key, auctions)
    return ledger.external(), ledger.swap()


def summarise(revenue: np.ndarray, utility: np.ndarray, first: int = 0) -> dict[str, Any]:
    """Horizon figures over windows ``first..`` (means over seeds, standard errors over seeds)."""
    revenue, utility = np.asarray(revenue, np.float64)[:, first:], np.asarray(utility, np.float64)[:, first:]
    out = {}
    for name, per_seed in (("revenue", revenue.mean(1)), ("welfare", (revenue + utility).mean(1)),
                           ("utility", utility.mean(1)), ("last_window_revenue", revenue[:, -1])):  # fmt: skip
        out[name], out[f"{name}_se"] = (float(x) for x in mean_se(per_seed))
    return out


def single_buyer_lp(config: DynamicConfig):
    """``natural_format_lp`` for one buyer of the prior (integer values uniform on 0..H), or None."""
    v = config.values
    if v.prior != "uniform_int" or v.value_low != 0 or not isinstance(v.value_high, (int, float)):
        return None
    values = np.arange(int(v.value_high) + 1, dtype=np.float64)
    return natural_format_lp(values, np.full(len(values), 1.0 / len(values)))


def candidates(config: DynamicConfig, mechanism: str) -> list[dict[str, Any]]:
    """The numbers a cell chooses from on its tuning keys: reserves, (discount, teaser) pairs, declining reserves
    (linear falls, and the single-buyer LP's path); none: static."""
    if mechanism == "second_price_best_reserve":
        return [{"reserve": r} for r in config.reserves]
    if mechanism == "teaser_first_price":
        return [{"discount": d, "teaser": t} for d in config.discounts for t in config.teasers]
    if mechanism == "declining_reserve_first_price":
        out: list[dict[str, Any]] = [{"start": s, "end": e} for s in config.decline_starts for e in config.decline_ends]
        lp = single_buyer_lp(config)
        if lp is not None:
            bids = np.arange(len(lp.available), dtype=np.float64)
            out.append({"reserves": list(lp_reserves(lp.available, bids, config.decline_phases))})
        return out
    return []


def with_numbers(params, numbers: dict[str, float]):
    """The market's params with a candidate's numbers in the mechanism's params."""
    mech = params.mechanism
    if "reserve" in numbers:
        mech = mech._replace(reserve=jnp.float32(numbers["reserve"]))
    elif "network" in numbers:  # the learned dynamic network's weights, as leaves of its params
        leaves, tree = jax.tree.flatten(mech.schedule)
        weights = [jnp.reshape(jnp.asarray(w, jnp.float32), x.shape)
                   for w, x in zip(numbers["network"], leaves, strict=True)]  # fmt: skip
        mech = mech._replace(schedule=jax.tree.unflatten(tree, weights))
    elif "start" in numbers or "reserves" in numbers:
        phases = mech.schedule.reserve.shape[0]
        reserves = numbers.get("reserves") or declining(numbers["start"], numbers["end"], phases)
        mech = mech._replace(schedule=mech.schedule._replace(reserve=jnp.asarray(reserves, jnp.float32)))
    else:
        mech = mech._replace(schedule=mech.schedule._replace(discount=jnp.float32(numbers["discount"]),
                                                             teaser=jnp.float32(numbers["teaser"])))  # fmt: skip
    return params._replace(mechanism=mech)


def settled_from(config: DynamicConfig, horizon: int) -> int:
    """The first auction of the first window where epsilon-greedy is done exploring: past its forced exploration,
    and its rate ``0.5 ** (t / half_life)`` at most ``settled``."""
    window = horizon // config.windows
    t = max(config.explore_steps, math.ceil(config.half_life * math.log2(1 / config.settled)))
    return -(-t // window) * window


def first_reported(config: DynamicConfig, learner: str, horizon: int) -> int:
    """The first window a cell's figure counts: once epsilon-greedy is done exploring, else 0."""
    return settled_from(config, horizon) // (horizon // config.windows) if learner in EXPLORING else 0


def run_cell(config: DynamicConfig, mechanism: str, learner: str, grid: str, keys, tuning_keys,
             horizon: int, numbers: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """One mechanism x learner x grid: its numbers chosen on the tuning keys by the figure reported (the horizon
    revenue; once done exploring, for epsilon-greedy), or ``numbers`` given, then run on the evaluation keys."""
    market = market_for(config, mechanism, learner, grid, horizon)
    params = init_params(market, jax.random.key(0))
    start = time.perf_counter()
    cell: dict[str, Any] = {"mechanism": mechanism, "learner": learner, "grid": grid, "auctions": horizon}
    first = first_reported(config, learner, horizon)
    options = [numbers] if numbers is not None else candidates(config, mechanism)
    if numbers is not None:
        cell.update(numbers)
        params = with_numbers(params, numbers)
    elif options:
        swept = jax.tree.map(lambda *x: jnp.stack(x), *[with_numbers(params, o) for o in options])
        tuned = jax.jit(jax.vmap(lambda p: horizon_run(market, p, tuning_keys, horizon, config.windows)[0]))(swept)
        best = int(np.argmax(np.asarray(tuned)[..., first:].mean(axis=(1, 2))))
        cell.update(options[best])
        params = with_numbers(params, options[best])
    revenue, utility, bid = (np.asarray(x) for x in jax.jit(
        lambda p: horizon_run(market, p, keys, horizon, config.windows))(params))  # fmt: skip
    cell.update(summarise(revenue, utility))
    if first:  # epsilon-greedy: the part after it is done exploring (the config keeps that inside the horizon)
        cell["after_exploration"] = {"from_auction": first * horizon // config.windows,
                                     **summarise(revenue, utility, first)}  # fmt: skip
    if learner != "truthful" and config.regret_seeds:
        external, swap = jax.jit(lambda p, k: jax.vmap(lambda k: learner_regret(market, p, k, horizon))(k))(
            params, keys[: config.regret_seeds])  # fmt: skip
        cell["external_regret"], cell["swap_regret"] = float(np.mean(external)), float(np.mean(swap))
    cell["revenue_per_window"], cell["bid_per_window"] = revenue.mean(axis=0), bid.mean(axis=0)
    cell["seconds"] = time.perf_counter() - start
    return cell


def single_buyer_cell(config: DynamicConfig, rule: str, learner: str, keys) -> dict[str, Any]:
    """One buyer of ``learner`` on the original grid against the natural format's LP path (``rule =
    "natural_format_lp"``) or the best posted price (``"posted_price"``, first price at that reserve), on the
    evaluation keys."""
    lp = single_buyer_lp(config)
    prior = config.values.build()
    values = ValueScale(top_value(prior, 1, 1), prior.integer)
    group = population(config, learner, "original", config.auctions).groups(1, values, n_bidders=1)
    bids = np.arange(len(lp.available), dtype=np.float64)
    reserves = lp_reserves(lp.available, bids, config.decline_phases)
    mechanism = (declining_reserve_first_price(1, reserves) if rule == "natural_format_lp"
                 else first_price(1, reserve=lp.posted_price))  # fmt: skip
    market = Market(mechanism, make_population(group), prior)
    params = init_params(market, jax.random.key(0))
    start = time.perf_counter()
    revenue, utility, bid = (np.asarray(x) for x in jax.jit(
        lambda p: horizon_run(market, p, keys, config.auctions, config.windows))(params))  # fmt: skip
    cell: dict[str, Any] = {"mechanism": rule, "learner": learner, "grid": "original", "bidders": 1,
                            "auctions": config.auctions, **summarise(revenue, utility)}  # fmt: skip
    cell.update({"reserves": list(reserves)} if rule == "natural_format_lp" else {"reserve": lp.posted_price})
    first = first_reported(config, learner, config.auctions)
    if first:
        cell["after_exploration"] = {"from_auction": first * config.auctions // config.windows,
                                     **summarise(revenue, utility, first)}  # fmt: skip
    cell["revenue_per_window"], cell["bid_per_window"] = revenue.mean(axis=0), bid.mean(axis=0)
    cell["seconds"] = time.perf_counter() - start
    return cell


def mean_field_grid(config: DynamicConfig, grid: str) -> tuple[int, bool]:
    """``(n_bids, overbid)`` of the learners' bid grid, as ``population`` builds them: ``--overbid-bids`` on the
    overbid grid, the learners' default 0..9 on the original one."""
    return (config.overbid_bids, True) if grid == "overbid" else (10, False)


def spaced(path: list, points: int) -> list:
    """At most ``points`` entries of ``path``, evenly spaced, the first and the last included."""
    return [path[i] for i in sorted(set(np.linspace(0, len(path) - 1, min(len(path), points)).astype(int)))]


def gradient_design(config: DynamicConfig, grid: str, objective, z, learning_rate: float | None = None):
    """``ascend`` on ``objective`` from ``z``: the final ``z`` and the record of the design (its grid, steps, and
    the expected objective at 12 evenly spaced points of its wall time)."""
    lr = config.design_learning_rate if learning_rate is None else learning_rate
    path, expected = ascend(objective, z, dataclasses.replace(config, design_learning_rate=lr)), jax.jit(objective)
    picked = spaced(path, 12)
    return path[-1][1], {"grid": grid, "steps": len(path) - 1, "seconds": [t for t, _ in picked],
                         "expected_revenue": [float(expected(z)) for _, z in picked]}  # fmt: skip


def ascend(objective, z, config: DynamicConfig) -> list[tuple[float, Any]]:
    """Adam (``design_learning_rate``) up ``objective(z)`` for ``design_seconds`` of wall time, compilation
    included: ``[(seconds, z)]`` at every step, the last one final."""
    gradient = jax.jit(jax.grad(lambda z: -objective(z)))
    optimizer = optax.adam(config.design_learning_rate)
    state, began, path = optimizer.init(z), time.perf_counter(), []
    while (elapsed := time.perf_counter() - began) < config.design_seconds:
        path.append((elapsed, z))
        updates, state = optimizer.update(gradient(z), state)
        z = optax.apply_updates(z, updates)
    return [*path, (time.perf_counter() - began, z)]


def design(config: DynamicConfig, keys, tuning_keys) -> dict[str, Any]:
    """The teaser's (discount, teaser) against Hedge on the first grid, from (0.5, 0.5), by gradient ascent
    through the expected dynamics and by ES on sampled markets, each for ``design_seconds`` of wall time
    (compilation included). Every recorded point is then measured on sampled markets (the tuning keys), and
    each designer's last point on the evaluation keys."""
    grid, T = config.grids[0], config.auctions
    market = market_for(config, "teaser_first_price", "hedge", grid, T)
    params = init_params(market, jax.random.key(0))
    mf = ed.hedge_mean_field(config.bidders, int(config.values.value_high), *mean_field_grid(config, grid))
    numbers = lambda th: {"discount": th[0], "teaser": th[1]}  # noqa: E731
    start = jnp.zeros(2)  # logits of (0.5, 0.5)
    paths: dict[str, list[tuple[float, np.ndarray]]] = {}

    expected_revenue = lambda th: ed.expected_horizon(mf, ed.teaser_schedule(mf), th, T).revenue  # noqa: E731
    expected = jax.jit(expected_revenue)
    path = ascend(lambda z: expected_revenue(jax.nn.sigmoid(z)), start, config)
    paths["gradient (expected dynamics)"] = [(t, np.asarray(jax.nn.sigmoid(z))) for t, z in path]

    def fitness(z, key):
        revenue, _, _ = horizon_run(market, with_numbers(params, numbers(jax.nn.sigmoid(z))), key[None], T,
                                 config.windows)  # fmt: skip
        return jnp.mean(revenue)

    es = make_es(fitness, lambda key: start, ESSpec(population=config.es_population, sigma=0.5,
                                                    es_learning_rate=config.design_learning_rate))  # fmt: skip
    step = jax.jit(es.step)
    state, began, path = es.init(jax.random.fold_in(jax.random.key(0), 2)), time.perf_counter(), []
    while (elapsed := time.perf_counter() - began) < config.design_seconds:
        path.append((elapsed, np.asarray(jax.nn.sigmoid(state.theta))))
        state, _ = step(state)
    paths["ES (sampled markets)"] = [*path, (time.perf_counter() - began, np.asarray(jax.nn.sigmoid(state.theta)))]

    measure = jax.jit(lambda th, k: horizon_run(market, with_numbers(params, numbers(th)), k, T, config.windows))
    out: dict[str, Any] = {"design_seconds": config.design_seconds, "designers": {}}
    for name, path in paths.items():
        picked = spaced(path, 8)
        final = path[-1][1]
        revenue, utility, _ = measure(jnp.asarray(final), keys)
        out["designers"][name] = {
            "steps": len(path) - 1,
            "seconds": [t for t, _ in picked],
            "numbers": [th.tolist() for _, th in picked],
            "fitness": [float(np.mean(measure(jnp.asarray(th), tuning_keys)[0])) for _, th in picked],
            "final": {"discount": float(final[0]), "teaser": float(final[1]),
                      "expected_revenue": float(expected(jnp.asarray(final))),
                      **summarise(revenue, utility)},  # fmt: skip
        }
    return out


def design_declining(config: DynamicConfig) -> dict[str, Any]:
    """A learned dynamic rule: ``declining_reserve_first_price``'s ``decline_phases`` reserves designed by gradient
    ascent through Hedge's expected dynamics (``train.expected_dynamics.declining_reserve_schedule``) on the
    original grid (the first grid without it) for ``design_seconds``, from the linear fall top value - 0.01 ->
    0 (8.99 -> 0 for values 0..9). The
    reserves are ``(top value + 0.5) x`` the cumulative product of sigmoids, so that they never rise."""
    grid = "original" if "original" in config.grids else config.grids[0]
    top = int(config.values.value_high)
    mf = ed.hedge_mean_field(config.bidders, top, *mean_field_grid(config, grid))
    K, T, ceiling = config.decline_phases, config.auctions, top + 0.5
    schedule = ed.declining_reserve_schedule(mf, K)
    reserves = lambda z: ceiling * jnp.cumprod(jax.nn.sigmoid(z))  # noqa: E731
    start = np.asarray(declining(top - 0.01, 0.0, K), np.float64) + 1e-3
    ratios = np.concatenate([[start[0] / ceiling], start[1:] / start[:-1]])
    z = jnp.asarray(np.log(ratios / (1 - ratios)), jnp.float32)
    objective = lambda z: ed.expected_horizon(mf, schedule, reserves(z), T).revenue  # noqa: E731
    z, record = gradient_design(config, grid, objective, z)
    return {**record, "reserves": [float(r) for r in reserves(z)]}


def design_network(config: DynamicConfig, static: bool = False) -> dict[str, Any]:
    """A learned dynamic network (``learned_dynamic_first_price``: a reserve of ``tau``, a share of the bid of the
    bid and ``tau``) against Hedge's expected dynamics on the first grid, by gradient ascent for
    ``design_seconds`` from its initial weights (share 1/2, reserve near 0). ``static``: the same network
    without its clock (it sees ``tau = 0``), the learned static rule."""
    grid, top, T = config.grids[0], int(config.values.value_high), config.auctions
    n_bids, overbid = mean_field_grid(config, grid)
    mf = ed.hedge_mean_field(config.bidders, top, n_bids, overbid)
    market = market_for(config, STATIC_NETWORK if static else "learned_dynamic_first_price", "hedge", grid, T)
    schedule = ed.learned_dynamic_schedule(mf, LearnedDynamicOptions().hidden, float(n_bids - 1), static=static)
    objective = lambda th: ed.expected_horizon(mf, schedule, th, T).revenue  # noqa: E731
    start = init_params(market, jax.random.key(0)).mechanism.schedule
    weights, record = gradient_design(config, grid, objective, start, config.network_learning_rate)
    return {**record, "network": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(weights)]}


def design_greedy_teaser(config: DynamicConfig) -> dict[str, Any]:
    """The teaser's (discount, teaser) against epsilon-greedy bidders on the original grid (the first grid without
    it), by gradient ascent through their softmax relaxation (``train.expected_dynamics.greedy_mean_field``) on
    the revenue once they are done exploring (the figure reported), from (0.5, 0.5), for ``design_seconds``."""
    grid, T = "original" if "original" in config.grids else config.grids[0], config.auctions
    mf = ed.greedy_mean_field(config.bidders, int(config.values.value_high), *mean_field_grid(config, grid),
                              min(config.explore_steps, T), config.half_life, temperature=0.05)  # fmt: skip
    settled = settled_from(config, T)
    objective = lambda z: ed.expected_horizon(mf, ed.teaser_schedule(mf), jax.nn.sigmoid(z), T,  # noqa: E731
                                              report_from=settled).revenue  # fmt: skip
    z, record = gradient_design(config, grid, objective, jnp.zeros(2))
    final = np.asarray(jax.nn.sigmoid(z))
    return {**record, "discount": float(final[0]), "teaser": float(final[1])}


def fmt(cell: dict[str, Any]) -> str:
    text = (f"revenue {io.plus_minus(cell['revenue'], cell['revenue_se'])}, welfare {cell['welfare']:.3f}, "
            f"bidders {cell['utility']:.3f}, last window {cell['last_window_revenue']:.3f}")  # fmt: skip
    if "reserve" in cell:
        text += f" (reserve {cell['reserve']:g})"
    if "teaser" in cell:
        text += f" (discount {cell['discount']:g}, teaser {cell['teaser']:g})"
    if "start" in cell:
        text += f" (reserve {cell['start']:g} falling to {cell['end']:g})"
    if "reserves" in cell:
        text += f" (reserves {' '.join(f'{r:.2f}' for r in cell['reserves'])})"
    if "swap_regret" in cell:
        text += f"; regret {cell['external_regret']:.3f}, swap {cell['swap_regret']:.3f}"
    if "after_exploration" in cell:
        a = cell["after_exploration"]
        text += (f"; done exploring (auction {a['from_auction']:,}+): revenue "
                 f"{io.plus_minus(a['revenue'], a['revenue_se'])}, welfare {a['welfare']:.3f}")  # fmt: skip
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--seeds" not in argv and "--resume" not in argv:
        argv = ["--seeds", "16", *argv]  # the table's default: 16 evaluation markets
    config, spec = cli.parse(DynamicConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0],
                             check=check)  # fmt: skip
    config = resolved(config)
    session = Session(NAME, config, spec)
    if session.leader and spec.resume is None:  # a run of cached cells: the checkpoint only names it for --resume
        checkpoint.save(session.out, {}, {**run_meta(NAME, config, spec), "steps_done": 0})
    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    tuning_keys = jax.random.split(jax.random.fold_in(jax.random.key(spec.seed), 1), config.tuning_seeds)
    ref = theory(market_for(config, config.mechanisms[0], config.learners[0], config.grids[0], config.auctions))
    lp = single_buyer_lp(config)
    if lp is not None:  # one mean-based buyer who never overbids, in the limit of a long horizon
        ref.update(single_buyer_natural_format=lp.revenue, single_buyer_posted_price=lp.myerson,
                   single_buyer_welfare=lp.welfare)  # fmt: skip
    cells = []
    for grid in config.grids:
        for learner in config.learners:
            if learner == "truthful" and grid != config.grids[0]:
                continue  # truthful bidders bid their values on every grid
            for mechanism in config.mechanisms:
                name = f"{grid}-{learner}-{mechanism}"
                cell = session.cached(name, lambda m=mechanism, lr=learner, g=grid: run_cell(
                    config, m, lr, g, keys, tuning_keys, config.auctions))  # fmt: skip
                cells.append(cell)
                session.print(f"{grid:>8} {learner:>15} {mechanism:>26}: {fmt(cell)}")
    single = []
    if config.single_buyer:
        for learner in config.learners:
            for rule in ("posted_price", "natural_format_lp"):
                if learner == "truthful":
                    continue
                cell = session.cached(f"single-{learner}-{rule}", lambda r=rule, lr=learner: single_buyer_cell(
                    config, r, lr, keys))  # fmt: skip
                single.append(cell)
                session.print(f"one buyer {learner:>15} {rule:>18}: {fmt(cell)}")
    sweep = []
    for learner in config.learners:
        for horizon in config.horizons:
            if learner == "truthful" or (learner in EXPLORING and settled_from(config, horizon) >= horizon):
                continue
            name = f"{config.grids[0]}-{learner}-teaser_first_price"  # the table's cell at the table's horizon
            if horizon != config.auctions or "teaser_first_price" not in config.mechanisms:
                name = f"horizon{horizon}-{learner}"
            cell = session.cached(name, lambda h=horizon, lr=learner: run_cell(
                config, "teaser_first_price", lr, config.grids[0], keys, tuning_keys, h))  # fmt: skip
            sweep.append(cell)
            session.print(f"teaser, {config.grids[0]} grid, {learner}, horizon {horizon:,}: {fmt(cell)}")
    designed = learned = greedy = network = static = None
    if config.design_seconds:
        designed = session.cached("design", lambda: design(config, keys, tuning_keys))
        for name, d in designed["designers"].items():
            f = d["final"]
            session.print(f"designed by {name}, {d['steps']} steps in {config.design_seconds:g} s: discount "
                          f"{f['discount']:.3f}, teaser {f['teaser']:.3f}: revenue "
                          f"{io.plus_minus(f['revenue'], f['revenue_se'])} against sampled Hedge bidders "
                          f"(expected dynamics: {f['expected_revenue']:.3f})")  # fmt: skip
        learned = session.cached("design_declining", lambda: design_declining(config))
        network = session.cached("design_network", lambda: design_network(config))
        static = session.cached("design_static_network", lambda: design_network(config, static=True))
        for label, d, rule, numbers, suffix in (
            ("learned_declining_reserve", learned, "declining_reserve_first_price", {"reserves": learned["reserves"]},
             ""),
            ("learned_network", network, "learned_dynamic_first_price", {"network": network["network"]}, "-network"),
            ("learned_static_network", static, STATIC_NETWORK, {"network": static["network"]}, "-static-network"),
        ):  # fmt: skip
            for learner in config.learners:
                if learner == "truthful":
                    continue
                run = lambda r=rule, lr=learner, g=d["grid"], n=numbers: run_cell(  # noqa: E731
                    config, r, lr, g, keys, tuning_keys, config.auctions, n)  # fmt: skip
                cell = session.cached(f"learned-{d['grid']}-{learner}{suffix}", run)
                cells.append({**cell, "mechanism": label})
                session.print(f"{d['grid']:>8} {learner:>15} {label:>26}: {fmt(cell)} (expected dynamics, Hedge: "
                              f"{d['expected_revenue'][-1]:.3f})")  # fmt: skip
        if "epsilon_greedy" in config.learners:
            greedy = session.cached("design_greedy_teaser", lambda: design_greedy_teaser(config))
            cell = session.cached(f"learned-{greedy['grid']}-epsilon_greedy-teaser", lambda: run_cell(
                config, "teaser_first_price", "epsilon_greedy", greedy["grid"], keys, tuning_keys, config.auctions,
                {"discount": greedy["discount"], "teaser": greedy["teaser"]}))  # fmt: skip
            cells.append({**cell, "mechanism": "learned_teaser"})
            session.print(f"{greedy['grid']:>8} {'epsilon_greedy':>15} {'learned_teaser':>26}: {fmt(cell)} "
                          f"(relaxation: {greedy['expected_revenue'][-1]:.3f} once done exploring)")  # fmt: skip
    m = {
        "config": config,
        "seeds": spec.seeds,
        "seed": spec.seed,
        "theory": ref,
        "cells": cells,
        "single_buyer": single,
        "horizon_sweep": sweep,
        "design": designed,
        "learned_declining": learned,
        "learned_greedy_teaser": greedy,
        **{f"learned_{name}": None if d is None else {k: v for k, v in d.items() if k != "network"}
           for name, d in (("network", network), ("static_network", static))},
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }
    if session.leader:
        session.write_metrics(m)
        if spec.plots:
            write_plots(session, config, cells, sweep, ref, designed, learned)
        session.print(f"theory: Myerson {ref.get('myerson_optimum', float('nan')):.3f}, full welfare "
                      f"{ref.get('full_welfare', float('nan')):.3f}; one buyer: natural format (LP) "
                      f"{ref.get('single_buyer_natural_format', float('nan')):.3f}, best posted price "
                      f"{ref.get('single_buyer_posted_price', float('nan')):.3f}; results in "
                      f"{session.out}/")  # fmt: skip
    return m


def write_plots(session: Session, config: DynamicConfig, cells, sweep, ref, designed, learned) -> None:
    schedules = {f"{c['learner']}, {c['grid']} grid": c for c in cells
                 if c["mechanism"] == "declining_reserve_first_price"}  # fmt: skip
    if learned:
        schedules["learned against Hedge's expected dynamics"] = learned
    if schedules:  # the mechanism's numbers over the horizon
        K = config.decline_phases
        series = {n: (np.asarray(c.get("reserves") or declining(c["start"], c["end"], K)), None)
                  for n, c in schedules.items()}  # fmt: skip
        plots.curves(session.out / "declining_reserves.png", (np.arange(K) + 0.5) / K, series, "point of the horizon",
                     "reserve", title="declining_reserve_first_price: the reserve over the horizon")  # fmt: skip
    if learned:
        plots.curves(session.out / "learned_declining_fitness.png", np.asarray(learned["seconds"]),
                     {"expected dynamics": (np.asarray(learned["expected_revenue"]), None)}, "wall time (s)",
                     "expected horizon revenue", title="declining reserves by gradient")  # fmt: skip
    if designed:
        series = {n: (np.asarray(d["fitness"]), None) for n, d in designed["designers"].items()}
        xs = {n: np.asarray(d["seconds"]) for n, d in designed["designers"].items()}
        plots.curves(session.out / "design_fitness.png", np.zeros(0), series, "wall time (s)",
                     "horizon revenue, sampled markets", title="teaser design: gradient vs ES", xs=xs)  # fmt: skip
    for grid in config.grids:
        for learner in config.learners:
            series = {c["mechanism"]: (np.asarray(c["revenue_per_window"]), None) for c in cells
                      if c["grid"] == grid and c["learner"] == learner}  # fmt: skip
            if not series:
                continue
            x = (np.arange(config.windows) + 0.5) * config.auctions / config.windows
            plots.curves(session.out / f"revenue_{grid}_{learner}.png", x, series, "auction",
                         "revenue per auction (window mean)", title=f"{learner}, {grid} grid")  # fmt: skip
            bids = {c["mechanism"]: (np.asarray(c["bid_per_window"]), None) for c in cells
                    if c["grid"] == grid and c["learner"] == learner and "bid_per_window" in c}  # fmt: skip
            if bids:
                plots.curves(session.out / f"bids_{grid}_{learner}.png", x, bids, "auction", "mean bid (window mean)",
                             title=f"bids over the horizon: {learner}, {grid} grid")  # fmt: skip
    for learner in {c["learner"] for c in sweep}:
        points = [c for c in sweep if c["learner"] == learner]
        x = np.asarray([c["auctions"] for c in points], np.float64)
        series = {"teaser_first_price": (np.asarray([c["revenue"] for c in points]),
                                         np.asarray([c["revenue_se"] for c in points]))}  # fmt: skip
        for name, value in (("Myerson optimum", ref.get("myerson_optimum")), ("full welfare",
                                                                               ref.get("full_welfare"))):
            if value is not None:
                series[name] = (np.full(len(x), value), None)
        plots.curves(session.out / f"horizon_{learner}.png", np.log10(x), series, "log10 horizon (auctions)",
                     "horizon-average revenue", title=f"teaser first price, {learner}")  # fmt: skip


if __name__ == "__main__":
    main()
