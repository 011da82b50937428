"""Equilibrium exploration: what learning bidders converge to under second and first price, against theory.

    python -m experiments.equilibrium                                    # FP and SP, 2..6 bidders, values 0..9
    python -m experiments.equilibrium --learner hedge --prior uniform --value-range 10 --bidders 2 4
    python -m experiments.equilibrium --mechanism first_price --bidders 3 --solver

For every setting (rule x number of bidders x value range), fresh bidders
learn for ``--auctions`` auctions, one market per seed (vmapped over seeds,
one compiled program per setting). The learned exploitation bid function is
compared with theory: truthful for second price, ``(n - 1) / n * v`` for
first price (symmetric uniform values from 0), or with ``--solver`` the
discrete equilibrium of fictitious play (``jaxauction.equilibrium``; integer
grids). ``metrics.json`` holds, per setting, ``mean_bid_to_value`` (learned
bid / value averaged over seeds, bidders and the upper half of the value
range), its standard error over seeds and ``theory_bid_to_value``; with one
setting both are also top-level keys. Results are written after every
setting, so an interrupted study keeps what it finished.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import jax
import numpy as np
import tyro

from jaxauction import cli, io, plots
from jaxauction._checks import check_choice, check_positive_int
from jaxauction.bidders import equilibrium_bids
from jaxauction.driver import Session
from jaxauction.equilibrium import DiscreteGame, solve
from jaxauction.market import init_params, policy_grid
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import bid_to_value, learn_policies, mean_se, upper_half

NAME = "equilibrium"
RULES = ("first_price", "second_price")


@dataclasses.dataclass(frozen=True)
class Learners(PopulationSpec):
    """The bidders (their number is the study's ``--bidders``)."""

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
    prior: Literal["uniform_int", "uniform"] = "uniform_int"
    """value distribution (i.i.d. across bidders)"""
    auctions: int = 200_000
    """auctions the bidders learn for"""
    window: int = 10_000
    """auctions per revenue window"""
    solver: bool = False
    """theory from the discrete equilibrium solver (fictitious play) instead of the closed form (uniform_int only)"""
    solver_iterations: int = 20_000
    """fictitious play iterations"""
    learners: Learners = Learners(learner="epsilon_greedy", explore_steps=20_000, half_life=10_000.0)

    def __post_init__(self) -> None:
        for rule in self.mechanism:
            check_choice(rule, RULES, "mechanism")
        for n in self.bidders:
            check_positive_int(n, "bidders", minimum=2)
        for r in self.value_range:
            if not r > 1:
                raise ValueError(f"value_range must be > 1, got {r}")
            if self.prior == "uniform_int" and r != int(r):
                raise ValueError(f"uniform_int values 0..R-1 need an integer value_range, got {r}")
        check_positive_int(self.auctions, "auctions")
        check_positive_int(self.window, "window")
        if self.auctions % self.window:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of window ({self.window})")
        if self.solver and self.prior != "uniform_int":
            raise ValueError("--solver computes the equilibrium of integer grids: use --prior uniform_int")
        if self.learners.learner in ("truthful", "shading"):
            raise ValueError(f"learner {self.learners.learner!r} does not learn; choose a learning bidder")
        for name in ("mechanism", "bidders", "value_range"):
            if not getattr(self, name):
                raise ValueError(f"{name} needs at least one entry")


def theory_bids(config: EquilibriumConfig, rule: str, n: int, high: float, values: np.ndarray) -> np.ndarray | None:
    """The reference bid function at ``values``: the solver's mean bids, or the symmetric closed form."""
    if config.solver:
        learners = config.learners
        game = DiscreteGame(rule, n, int(high) + 1, learners.n_bids, learners.overbid)
        eq = solve(game, config.solver_iterations)
        return eq.mean_bids[values.astype(int)]
    return np.asarray(equilibrium_bids(rule, n, values, high), np.float64)


def run_setting(config: EquilibriumConfig, rule: str, n: int, value_range: float, keys) -> dict[str, Any]:
    high = value_range - 1 if config.prior == "uniform_int" else value_range
    market = build_market(
        MechanismSpec(rule), dataclasses.replace(config.learners, n_bidders=n), PriorSpec(config.prior, 0, high)
    )
    params = init_params(market, jax.random.key(0))
    values = policy_grid(market, points=21)
    start = time.perf_counter()
    fn = jax.jit(lambda k: learn_policies(market, params, k, config.auctions, config.window, values))
    learned = jax.block_until_ready(fn(keys))
    seconds = time.perf_counter() - start
    bids = np.asarray(learned.bids, np.float64)  # [S, n, G]
    grid = values[:, 0].astype(np.float64)
    mask = upper_half(grid)
    per_seed = (bids[..., mask] / grid[mask]).mean(axis=(1, 2))
    mean, se = mean_se(per_seed)
    theory = theory_bids(config, rule, n, high, grid)
    revenue, revenue_se = mean_se(np.asarray(learned.revenue)[:, -1])
    return {
        "mechanism": rule,
        "n_bidders": n,
        "value_range": value_range,
        "prior": config.prior,
        "learner": config.learners.learner,
        "mean_bid_to_value": float(mean),
        "mean_bid_to_value_se": float(se),
        "mean_bid_to_value_per_seed": per_seed,
        "theory_bid_to_value": bid_to_value(grid, theory),
        "theory": "discrete equilibrium (fictitious play)" if config.solver else "symmetric closed form",
        "revenue": float(revenue),
        "revenue_se": float(revenue_se),
        "values": grid,
        "learned_bids": bids.mean(axis=(0, 1)),
        "theory_bids": theory,
        "seconds": seconds,
        "auctions_per_second": config.auctions * len(keys) / seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(EquilibriumConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    session = Session(NAME, config, spec)
    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    settings: list[dict[str, Any]] = []
    m: dict[str, Any] = {}
    start = time.perf_counter()
    for rule in config.mechanism:
        for n in config.bidders:
            for value_range in config.value_range:
                row = run_setting(config, rule, n, value_range, keys)
                settings.append(row)
                session.print(f"{rule:>12} n={n} R={value_range:g}: bid/value {row['mean_bid_to_value']:.3f} +- "
                              f"{row['mean_bid_to_value_se']:.3f} (theory {row['theory_bid_to_value']:.3f}), revenue "
                              f"{row['revenue']:.3f} +- {row['revenue_se']:.3f}; {row['seconds']:.1f} s")  # fmt: skip
                m = metrics(config, spec, settings, time.perf_counter() - start)
                if session.leader:  # after every setting: an interrupted study keeps what it finished
                    io.write_json(session.out / "metrics.json", m)
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
    name = f"bids_{row['mechanism']}_n{row['n_bidders']}_r{row['value_range']:g}.png"
    plots.bid_functions(
        out / name, row["values"], {f"learned ({row['learner']}, mean)": row["learned_bids"]},
        {row["theory"]: row["theory_bids"]},
        title=f"{row['mechanism']}, {row['n_bidders']} bidders, {row['prior']} range {row['value_range']:g}",
    )  # fmt: skip


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
            series[f"{rule} R={value_range:g} theory"] = (np.array([r["theory_bid_to_value"] for r in rows]), None)
    plots.curves(out / "bid_to_value.png", ns, series, "bidders", "bid / value (upper half of values)")


if __name__ == "__main__":
    main()
