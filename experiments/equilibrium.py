"""Equilibrium exploration: what learning bidders converge to under second and first price, against theory.

    python -m experiments.equilibrium                                    # FP and SP, 2..6 bidders, values 0..9
    python -m experiments.equilibrium --learner hedge --prior uniform --value-range 10 --bidders 2 4
    python -m experiments.equilibrium --mechanism first_price --bidders 3 --solver

    python -m experiments.equilibrium --prior gaussian --value-range 100 --bidders 4 --learner hedge
    python -m experiments.equilibrium --prior uniform --value-highs 10 20 --learner hedge     # asymmetric
    python -m experiments.equilibrium --prior wallet --mechanism second_price --learner hedge --max-fraction 2.5

For every setting (rule x number of bidders x value range), fresh bidders
learn for ``--auctions`` auctions, one market per seed (vmapped over seeds,
one compiled program per setting). The learned exploitation bid function is
compared with theory (``jaxauction.equilibria``):

* second price: truthful (private values);
* first price, i.i.d. values from 0: ``b(v) = v - int_0^v F^(n-1) / F(v)^(n-1)``,
  ``(n - 1) / n * v`` for uniform values (integer values: the continuous
  uniform form), by quadrature for the truncated Gaussian;
* ``--value-highs W1 W2``: two bidders with ``U[0, W1]``, ``U[0, W2]``: the
  asymmetric first-price closed form per bidder;
* ``--prior wallet``: the common-value wallet game (``V`` = the sum of the
  signals), second price: ``b(s) = (n + 2) / 2 * s`` (``2s`` for 2 bidders);
* ``--solver`` (integer uniform values): the discrete equilibrium of
  fictitious play.

``metrics.json`` holds, per setting, ``mean_bid_to_value`` (learned bid /
observation, averaged over seeds, bidders and the upper half of each
bidder's range), its standard error over seeds, ``theory_bid_to_value`` (the
same average of the theory's bids; ``null`` where no theory applies) and
both per bidder; with one setting both are also top-level keys. Results are
written after every setting, so an interrupted study keeps what it finished.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Literal

import jax
import numpy as np
import tyro

from jaxauction import cli, io, plots
from jaxauction._checks import check_choice, check_positive_int
from jaxauction.bidders import IntegerGridOptions
from jaxauction.driver import RunError, Session
from jaxauction.equilibria import (
    DiscreteGame,
    asymmetric_first_price_bids,
    first_price_bids,
    solve,
    wallet_second_price_bids,
)
from jaxauction.market import init_params, policy_grid
from jaxauction.priors import default_support
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import learn_policies, mean_se

NAME = "equilibrium"
RULES = ("first_price", "second_price")


@dataclasses.dataclass(frozen=True)
class Learners(PopulationSpec):
    """The bidders (their number is the study's --bidders)."""

    n_bidders: tyro.conf.Suppress[int] = 2


@dataclasses.dataclass(frozen=True)
class EquilibriumConfig:
    """The settings studied and how long bidders learn."""

    mechanism: tuple[str, ...] = RULES
    """the rules: first_price and/or second_price"""
    bidders: tuple[int, ...] = (2, 3, 4, 5, 6)
    """numbers of bidders"""
    value_range: tuple[float, ...] = (10,)
    """value ranges R: uniform_int values 0..R-1 (the original's valuation_range), uniform values U[0, R]"""
    prior: Literal["uniform_int", "uniform", "gaussian", "gaussian_int", "wallet", "wallet_int"] = "uniform_int"
    """value distribution (i.i.d. across bidders; wallet: common value, bidders see their own signal)"""
    value_highs: tuple[float, ...] = ()
    """asymmetric values: each bidder's value range R_i, read as --value-range is; replaces --bidders and
    --value-range"""
    auctions: int = 200_000
    """auctions the bidders learn for"""
    window: int = 10_000
    """auctions per revenue window"""
    solver: bool = False
    """theory from the discrete equilibrium solver (fictitious play) instead of the closed form (uniform_int only)"""
    solver_iterations: int = 20_000
    """fictitious play iterations"""
    learners: Learners = Learners(learner="epsilon_greedy")

    def __post_init__(self) -> None:
        for rule in self.mechanism:
            check_choice(rule, RULES, "mechanism")
        for n in self.bidders:
            check_positive_int(n, "bidders", minimum=2)
        for r in self.value_range:
            if not r > 1:
                raise ValueError(f"value_range must be > 1, got {r}")
            if self.prior.endswith("_int") and r != int(r):
                raise ValueError(f"{self.prior} values 0..R-1 need an integer value_range, got {r}")
        if self.value_highs:
            if len(self.value_highs) < 2 or min(self.value_highs) <= 0:
                raise ValueError(
                    f"value_highs needs a positive top value per bidder (2 or more), got {self.value_highs}"
                )
            if self.prior not in ("uniform", "uniform_int"):
                raise ValueError(f"value_highs sets uniform ranges per bidder, not {self.prior!r} ones")
        check_positive_int(self.auctions, "auctions")
        check_positive_int(self.window, "window")
        check_positive_int(self.solver_iterations, "solver_iterations")
        self.learners.check_horizon(self.auctions, "auctions")
        if self.auctions % self.window:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of window ({self.window})")
        if self.solver and (self.prior != "uniform_int" or self.value_highs):
            raise ValueError("--solver computes the symmetric equilibrium of integer grids: use --prior uniform_int "
                             "without --value-highs")  # fmt: skip
        if self.learners.learner in ("truthful", "shading"):
            raise ValueError(f"learner {self.learners.learner!r} does not learn; choose a learning bidder")
        for name in ("mechanism", "bidders", "value_range"):
            if not getattr(self, name):
                raise ValueError(f"{name} needs at least one entry")


def integer(prior: str) -> bool:
    return prior.endswith("_int")


def setting_prior(config: EquilibriumConfig, value_range: float) -> PriorSpec:
    """Values from 0: ``0..R-1`` for integer priors, ``[0, R]`` otherwise; or each bidder's own top."""
    if config.value_highs:
        tops = tuple(h - 1 if integer(config.prior) else h for h in config.value_highs)
        return PriorSpec(config.prior, 0, tops)
    return PriorSpec(config.prior, 0, value_range - 1 if integer(config.prior) else value_range)


def theory_bids(config: EquilibriumConfig, rule: str, market, tops: np.ndarray, grid: np.ndarray):
    """``([n, G] reference bids, its name)`` at the observations ``grid``, or ``(None, reason)``."""
    n = market.n_bidders
    if config.prior.startswith("wallet"):
        if rule != "second_price":
            return None, "no closed form here for first price with common values"
        return np.tile(wallet_second_price_bids(grid, n), (n, 1)), "wallet game, second price: (n + 2) / 2 x signal"
    if rule == "second_price":
        return np.tile(grid, (n, 1)), "truthful (weakly dominant)"
    if config.value_highs:
        if n != 2:
            return None, "the asymmetric closed form is for two bidders"
        rows = [asymmetric_first_price_bids(grid, tops[i], tops[1 - i]) for i in range(2)]
        return np.stack(rows), "asymmetric first price, closed form"
    if config.solver:
        opts = config.learners.options  # the learners' integer grid (its defaults for learners without one)
        n_bids, overbid = getattr(opts, "n_bids", IntegerGridOptions.n_bids), getattr(opts, "overbid", False)
        eq = solve(DiscreteGame(rule, n, int(tops[0]) + 1, n_bids, overbid), config.solver_iterations)
        return np.tile(eq.mean_bids[grid.astype(int)], (n, 1)), "discrete equilibrium (fictitious play)"
    fine = np.linspace(0.0, float(tops[0]), 20_001)
    if config.prior.startswith("gaussian"):
        params = market.prior.init_params(n, 1)
        cdf = np.asarray(market.prior.cdf(jax.tree.map(lambda x: x[0, 0], params), fine))
    else:
        cdf = fine / tops[0]
    bids = np.interp(grid, fine, first_price_bids(fine, cdf, n))
    return np.tile(bids, (n, 1)), "symmetric first price: v - int F^(n-1) / F(v)^(n-1)"


def ratios(grid: np.ndarray, bids: np.ndarray, tops: np.ndarray) -> np.ndarray:
    """``[..., n]`` bid / observation averaged over the upper half of each bidder's own range."""
    out = []
    for i, top in enumerate(tops):
        mask = (grid >= top / 2) & (grid <= top) & (grid > 0)
        out.append((bids[..., i, :][..., mask] / grid[mask]).mean(axis=-1))
    return np.stack(out, axis=-1)


def setting_market(config: EquilibriumConfig, rule: str, n: int, value_range: float):
    """The setting's market and each bidder's top observation, validated (``RunError`` names the problem)."""
    try:
        prior = setting_prior(config, value_range)
        market = build_market(MechanismSpec(rule), dataclasses.replace(config.learners, n_bidders=n), prior)
        tops = default_support(market.prior, n)[1][:, 0]
        check_reach(config, rule, market, float(tops.max()))
    except ValueError as err:
        raise RunError(f"{rule}, {n} bidders, value range {value_range:g}: {err}") from None
    return market, tops


def run_setting(config: EquilibriumConfig, rule: str, n: int, value_range: float, keys) -> dict[str, Any]:
    market, tops = setting_market(config, rule, n, value_range)
    params = init_params(market, jax.random.key(0))
    values = policy_grid(market, points=21)
    start = time.perf_counter()
    fn = jax.jit(lambda k: learn_policies(market, params, k, config.auctions, config.window, values))
    learned = jax.block_until_ready(fn(keys))
    seconds = time.perf_counter() - start
    bids = np.asarray(learned.bids, np.float64)  # [S, n, G]
    grid = values[:, 0].astype(np.float64)
    per_seed = ratios(grid, bids, tops)  # [S, n]
    mean, se = mean_se(per_seed.mean(axis=1))
    theory, theory_name = theory_bids(config, rule, market, tops, grid)
    theory_ratio = None if theory is None else ratios(grid, theory, tops)
    revenue, revenue_se = mean_se(np.asarray(learned.revenue)[:, -1])
    return {
        "mechanism": rule,
        "n_bidders": n,
        "value_range": value_range,
        "value_highs": list(config.value_highs) or None,
        "prior": config.prior,
        "learner": config.learners.learner,
        "mean_bid_to_value": float(mean),
        "mean_bid_to_value_se": float(se),
        "mean_bid_to_value_per_bidder": per_seed.mean(axis=0),
        "mean_bid_to_value_per_seed": per_seed.mean(axis=1),
        "theory_bid_to_value": None if theory_ratio is None else float(theory_ratio.mean()),
        "theory_bid_to_value_per_bidder": theory_ratio,
        "theory": theory_name,
        "revenue": float(revenue),
        "revenue_se": float(revenue_se),
        "values": grid,
        "learned_bids": bids.mean(axis=0),
        "theory_bids": theory,
        "seconds": seconds,
        "auctions_per_second": config.auctions * len(keys) / seconds,
    }


def check_reach(config: EquilibriumConfig, rule: str, market, top: float) -> None:
    """Common values: the theory bids above the signal; refuse learners whose bid grid cannot get there."""
    if not (config.prior.startswith("wallet") and rule == "second_price"):
        return
    need = (market.n_bidders + 2) / 2
    learners = config.learners.options  # grids: every learner with a relative grid or a top bid has one
    for group in market.population.groups:
        if group.relative_grid and learners.max_fraction < need:
            raise ValueError(
                f"wallet game: equilibrium bids are {need:g} x the signal; pass --max-fraction >= {need:g}"
            )
        if group.max_bid is not None and (not learners.overbid or group.max_bid < need * top):
            raise ValueError(f"wallet game: equilibrium bids reach {need * top:g}; pass --overbid and "
                             f"--n-bids >= {int(np.ceil(need * top)) + 1}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(EquilibriumConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    counts = (len(config.value_highs),) if config.value_highs else config.bidders
    ranges = (max(config.value_highs),) if config.value_highs else config.value_range
    for rule, n, value_range in itertools.product(config.mechanism, counts, ranges):
        setting_market(config, rule, n, value_range)  # every setting is checked before anything runs
    session = Session(NAME, config, spec)
    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    settings: list[dict[str, Any]] = []
    m: dict[str, Any] = {}
    start = time.perf_counter()
    for rule in config.mechanism:
        for n in counts:
            for value_range in ranges:
                row = run_setting(config, rule, n, value_range, keys)
                settings.append(row)
                theory = "none" if row["theory_bid_to_value"] is None else f"{row['theory_bid_to_value']:.3f}"
                ratio = io.plus_minus(row["mean_bid_to_value"], row["mean_bid_to_value_se"], 3)
                revenue = io.plus_minus(row["revenue"], row["revenue_se"], 3)
                session.print(f"{rule:>12} n={n} R={value_range:g}: bid/value {ratio} (theory {theory}), revenue "
                              f"{revenue}; {row['seconds']:.1f} s")  # fmt: skip
                m = metrics(config, spec, settings, time.perf_counter() - start)
                if session.leader:  # after every setting: an interrupted study keeps what it finished
                    session.write_metrics(m)
                    io.write_csv(
                        session.out / "settings.csv", list(CSV_KEYS), [[r[k] for k in CSV_KEYS] for r in settings]
                    )
                    if spec.plots:
                        plot_setting(session.out, row)
    if session.leader:
        if spec.plots:
            plot_ratios(session.out, settings)
        session.print(
            f"{len(settings)} settings x {spec.seeds} seeds in {m['seconds']:.1f} s; results in {session.out}/"
        )
    return m


CSV_KEYS = ("mechanism", "n_bidders", "value_range", "prior", "learner", "mean_bid_to_value", "mean_bid_to_value_se",
            "theory_bid_to_value", "revenue", "revenue_se", "seconds")  # fmt: skip


def metrics(config: EquilibriumConfig, spec, settings: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    m: dict[str, Any] = {
        "config": config,
        "seeds": spec.seeds,
        "seed": spec.seed,
        "settings": settings,
        "seconds": seconds,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }
    if len(settings) == 1:
        m["mean_bid_to_value"] = settings[0]["mean_bid_to_value"]
        m["theory_bid_to_value"] = settings[0]["theory_bid_to_value"]
    return m


def plot_setting(out, row: dict[str, Any]) -> None:
    learned, theory = np.asarray(row["learned_bids"]), row["theory_bids"]
    if row["value_highs"]:  # asymmetric: every bidder's own line, drawn over its own values only
        values = np.asarray(row["values"])
        own = lambda bids, i: np.where(values <= row["value_highs"][i] + 1e-9, bids, np.nan)  # noqa: E731
        lines = {f"bidder {i} learned": own(b, i) for i, b in enumerate(learned)}
        refs = {} if theory is None else {f"bidder {i} theory": own(t, i) for i, t in enumerate(np.asarray(theory))}
    else:
        lines = {f"learned ({row['learner']}, mean of bidders)": learned.mean(0)}
        refs = {} if theory is None else {row["theory"]: np.asarray(theory)[0]}
    name = f"bids_{row['mechanism']}_n{row['n_bidders']}_r{row['value_range']:g}.png"
    title = f"{row['mechanism']}, {row['n_bidders']} bidders, {row['prior']} range {row['value_range']:g}"
    plots.bid_functions(out / name, row["values"], lines, refs, title=title)


def plot_ratios(out, settings: list[dict[str, Any]]) -> None:
    series = {}
    for rule in dict.fromkeys(r["mechanism"] for r in settings):
        for value_range in dict.fromkeys(r["value_range"] for r in settings):
            rows = [r for r in settings if r["mechanism"] == rule and r["value_range"] == value_range]
            if len(rows) < 2:
                return
            ns = np.array([r["n_bidders"] for r in rows])
            series[f"{rule} R={value_range:g} learned"] = (
                np.array([r["mean_bid_to_value"] for r in rows]), np.array([r["mean_bid_to_value_se"] for r in rows]),
            )  # fmt: skip
            if all(r["theory_bid_to_value"] is not None for r in rows):
                series[f"{rule} R={value_range:g} theory"] = (np.array([r["theory_bid_to_value"] for r in rows]), None)
    plots.curves(out / "bid_to_value.png", ns, series, "bidders", "bid / value (upper half of values)",
                 integer_x=True)


if __name__ == "__main__":
    main()
