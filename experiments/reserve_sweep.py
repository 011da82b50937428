"""Second price with a reserve: revenue over thousands of (reserve, seed) pairs in one compiled program.

    python -m experiments.reserve_sweep                                  # 2 truthful bidders, U[0, 1]
    python -m experiments.reserve_sweep --learner hedge --bidders 3
    python -m experiments.reserve_sweep --learner epsilon_greedy --prior uniform_int --value-high 9

Every reserve on the grid (``--reserves`` points over ``[0, top value]``)
runs one market per seed (``--seeds``), all in one ``jit(vmap(vmap(...)))``
with the same keys at every reserve (common random numbers). Bidders learn
(or, truthful, just bid) for ``--auctions`` auctions; a pair's revenue is
the mean of its last window. The curve is compared with truthful second
price's closed form and with Myerson's optimum (reserve ``high / 2`` for
i.i.d. ``U[0, high]``). ``metrics.json`` has ``best_reserve``,
``best_revenue`` (with its standard error over seeds), the curve, the
theory and the pairs run per second.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

import jax
import numpy as np
import tyro

from jaxauction import cli, evaluation, io, plots
from jaxauction._checks import check_positive_int
from jaxauction.driver import Session
from jaxauction.evaluation import reserve_grid, swept_reserves
from jaxauction.market import init_params
from jaxauction.memory import check_fits, compiled_bytes
from jaxauction.priors import UniformPrior, default_support
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import mean_se, sweep_revenue

NAME = "reserve_sweep"


@dataclasses.dataclass(frozen=True)
class Bidders(PopulationSpec):
    """The bidders."""

    learner: str = "truthful"
    """one learner for every bidder, or a comma list with one per bidder; learners: epsilon_greedy, hedge,
    hedge_linear, policy_gradient, shading, truthful"""
    n_bidders: Annotated[int, tyro.conf.arg(aliases=("--bidders",))] = 2
    """number of bidders"""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The sweep."""

    reserves: int = 201
    """reserve prices, evenly over [0, the prior's top value]"""
    auctions: int = 20_000
    """auctions per (reserve, seed) pair"""
    window: int = 20_000
    """auctions per revenue window; a pair's revenue is its last window's mean"""
    bidders: Bidders = Bidders()
    values: PriorSpec = PriorSpec("uniform", 0.0, 1.0)

    def __post_init__(self) -> None:
        check_positive_int(self.reserves, "reserves", minimum=2)
        check_positive_int(self.auctions, "auctions")
        check_positive_int(self.window, "window")
        if self.auctions % self.window:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of window ({self.window})")
        self.bidders.check_horizon(self.auctions, "auctions")
        if self.values.n_items != 1:
            raise ValueError(f"the reserve sweep sells one item, got n_items = {self.values.n_items}")


PROBE = 256  # reserves in the small sweep whose compiled memory is scaled to estimate a large one
# Host memory per (reserve, seed) pair besides the compiled sweep: the grid and the results as float64 arrays,
# then as Python floats and JSON text in metrics.json and curve.csv (four numbers a pair, about 60 bytes each).
HOST_BYTES_PER_PAIR = 256


def truthful_curve(n: int, low: float, high: float, reserves: np.ndarray) -> np.ndarray | None:
    """Truthful second price's revenue at each reserve for i.i.d. ``U[low, high]`` values:
    ``r P(max >= r) + integral_r^high P(second > t) dt``."""
    t = np.linspace(low, high, 20_001)
    f = np.clip((t - low) / (high - low), 0, 1)
    tail = 1 - f**n - n * f ** (n - 1) * (1 - f)  # P(second highest > t)
    cum = np.concatenate([[0.0], np.cumsum((tail[1:] + tail[:-1]) / 2 * np.diff(t))])
    integral = cum[-1] - np.interp(np.maximum(reserves, low), t, cum)
    above = 1 - np.clip((reserves - low) / (high - low), 0, 1) ** n
    return np.maximum(reserves, low) * above + integral


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(SweepConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    market = build_market(MechanismSpec("second_price"), config.bidders, config.values)
    params = init_params(market, jax.random.key(0))
    sweep = jax.jit(lambda p, k: sweep_revenue(market, p, k, config.auctions, config.window))
    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    if config.reserves > PROBE:  # XLA's memory analysis of a small sweep, scaled to the asked one
        probe = sweep.lower(swept_reserves(params, reserve_grid(market, PROBE)), keys).compile()
        per_pair = compiled_bytes(probe) / (PROBE * spec.seeds)
        check_fits((per_pair + HOST_BYTES_PER_PAIR) * config.reserves * spec.seeds,
                   f"{config.reserves:,} reserves x {spec.seeds} seeds",
                   f"{per_pair:,.0f} bytes per (reserve, seed) pair by XLA's analysis of a {PROBE}-reserve sweep, "
                   f"and {HOST_BYTES_PER_PAIR} on the host for its results")  # fmt: skip
    session = Session(NAME, config, spec)
    grid = reserve_grid(market, config.reserves)
    swept = swept_reserves(params, grid)
    start = time.perf_counter()
    program = sweep.lower(swept, keys).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rewards = np.asarray(jax.block_until_ready(program(swept, keys)))  # [reserves, seeds]
    seconds = time.perf_counter() - start
    mean, se = mean_se(rewards, axis=1)
    best = int(np.argmax(mean))
    pairs = rewards.size
    ref = evaluation.theory(market)
    truthful = None
    low, high = default_support(market.prior, market.n_bidders)  # the prior's own bounds (also for --setting)
    if isinstance(market.prior, UniformPrior) and "myerson_optimum" in ref and np.ptp(low) == np.ptp(high) == 0:
        truthful = truthful_curve(market.n_bidders, float(low.flat[0]), float(high.flat[0]), grid.astype(np.float64))
    m = {
        "config": config,
        "learners": list(config.bidders.learners),
        "seeds": spec.seeds,
        "seed": spec.seed,
        "best_reserve": float(grid[best]),
        "best_revenue": float(mean[best]),
        "best_revenue_se": float(se[best]),
        "reserves": grid,
        "revenue": mean,
        "revenue_se": se,
        "revenue_per_seed": rewards,
        "theory": {**ref, **({"truthful_second_price_curve": truthful} if truthful is not None else {})},
        "pairs": pairs,
        "compile_seconds": compile_seconds,
        "run_seconds": seconds,
        "pairs_per_second": pairs / seconds,
        "auctions_per_second": pairs * config.auctions / seconds,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }
    if session.leader:
        session.write_metrics(m)
        io.write_csv(session.out / "curve.csv", ["reserve", "revenue", "revenue_se"], zip(grid, mean, se, strict=True))
        if spec.plots:
            series = {f"learned ({', '.join(dict.fromkeys(config.bidders.learners))})": (mean, se)}
            if truthful is not None:
                series["truthful second price (closed form)"] = (truthful, None)
            marks = {"Myerson reserve": ref["myerson_reserve"]} if "myerson_reserve" in ref else {}
            plots.curves(session.out / "revenue_vs_reserve.png", grid, series, "reserve", "revenue per auction",
                         title=f"second price, {market.n_bidders} bidders", marks=marks)  # fmt: skip
        myerson = f"; Myerson optimum {ref['myerson_optimum']:.4f} at reserve {ref['myerson_reserve']:g}" if (
            "myerson_optimum" in ref) else ""  # fmt: skip
        session.print(f"best reserve {m['best_reserve']:.3f}: revenue "
                      f"{io.plus_minus(m['best_revenue'], m['best_revenue_se'])}{myerson}")  # fmt: skip
        session.print(f"{pairs} (reserve, seed) pairs x {config.auctions} auctions in {seconds:.2f} s "
                      f"({m['pairs_per_second']:.0f} pairs/s; compile {compile_seconds:.1f} s); "
                      f"results in {session.out}/")  # fmt: skip
    return m


if __name__ == "__main__":
    main()
