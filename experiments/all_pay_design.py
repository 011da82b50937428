"""Prize design for an all-pay contest: sweep the top prize w, fit a surrogate w -> revenue, maximise through it.

    python -m experiments.all_pay_design --seeds 8                # 3 Hedge bidders, U[0, 1] values
    python -m experiments.all_pay_design --learner epsilon_greedy --prior uniform_int --value-high 9 --auctions 400000

The original platform's all-pay example (Gemp et al. 2022): 3 bidders, prizes
``(w, 1 - w, 0)`` (the highest bid gets share ``w`` of the item, the second
``1 - w``), every bidder pays its bid.

1. Sweep: ``--points`` values of ``w`` over ``[0.5, 1]`` x ``--seeds``
   markets of fresh learning bidders, one ``jit(vmap(vmap(...)))``; a
   pair's revenue is its last window's mean.
2. Surrogate: an MLP ``w -> revenue`` fitted to every (w, seed) revenue
   with optax (the original never built this step).
3. Design: gradient ascent on the surrogate over ``w`` in ``[0.5, 1]``
   (``w = 0.5 + 0.5 sigmoid(z)``), from several starts; ``best_w``.
4. Check: fresh markets (other seeds) at ``best_w``, and the private-value
   theory curve ``w / 2`` (``U[0, 1]`` values, the symmetric monotone
   equilibrium; highest at ``w = 1``).

``metrics.json``: ``best_w``, the surrogate's and the check's revenue at it,
the sweep's curve (mean, standard error), the fitted curve and the theory.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxauction import cli, io, plots
from jaxauction._checks import check_positive_int
from jaxauction.driver import Session
from jaxauction.evaluation import evaluation_keys
from jaxauction.market import init_params, tile_params
from jaxauction.priors import UniformPrior, default_support
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import mean_se, sweep_revenue

NAME = "all_pay_design"
LOW_W = 0.5


@dataclasses.dataclass(frozen=True)
class DesignConfig:
    """The sweep, the surrogate and the design step."""

    points: int = 21
    """values of w, evenly over [0.5, 1]"""
    auctions: int = 50_000
    """auctions per (w, seed) pair"""
    window: int = 10_000
    """auctions per revenue window; a pair's revenue is its last window's mean"""
    surrogate_hidden: tuple[int, ...] = (32, 32)
    """the surrogate MLP's hidden widths (tanh)"""
    surrogate_steps: int = 3_000
    """Adam steps fitting the surrogate"""
    design_steps: int = 300
    """Adam steps maximising the surrogate over w"""
    check_seeds: int = 8
    """fresh markets run at best_w (other keys than the sweep's)"""
    bidders: PopulationSpec = PopulationSpec("hedge", 3)
    values: PriorSpec = PriorSpec("uniform", 0.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("points", "auctions", "window", "surrogate_steps", "design_steps", "check_seeds"):
            check_positive_int(getattr(self, name), name, minimum=2 if name == "points" else 1)
        if self.auctions % self.window:
            raise ValueError(f"auctions ({self.auctions}) must be a multiple of window ({self.window})")
        self.bidders.check_horizon(self.auctions, "auctions")
        if self.values.n_items != 1:
            raise ValueError(f"the contest sells one item, got n_items = {self.values.n_items}")
        if not self.surrogate_hidden or min(self.surrogate_hidden) < 1:
            raise ValueError(f"surrogate_hidden must be positive widths, got {self.surrogate_hidden}")


class Surrogate(nn.Module):
    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, w: jax.Array) -> jax.Array:
        x = (w[..., None] - 0.75) * 4.0  # [0.5, 1] -> [-1, 1]
        for h in self.hidden:
            x = nn.tanh(nn.Dense(h)(x))
        return nn.Dense(1)(x)[..., 0]


def fit_surrogate(config: DesignConfig, w: np.ndarray, revenue: np.ndarray, key: jax.Array):
    """Fit the MLP to ``revenue [P, S]`` at ``w [P]`` (standardised targets); returns ``predict(w) -> revenue``."""
    x = jnp.asarray(np.repeat(w, revenue.shape[1]), jnp.float32)
    y = jnp.asarray(revenue.reshape(-1), jnp.float32)
    mu, sd = y.mean(), jnp.maximum(y.std(), 1e-6)
    model = Surrogate(config.surrogate_hidden)
    params = model.init(key, x)
    opt = optax.adam(1e-2)

    def loss(p):
        return jnp.mean((model.apply(p, x) - (y - mu) / sd) ** 2)

    def step(carry, _):
        p, s = carry
        value, grad = jax.value_and_grad(loss)(p)
        updates, s = opt.update(grad, s, p)
        return (optax.apply_updates(p, updates), s), value

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, config.surrogate_steps))(params)
    return (lambda w_: model.apply(params, jnp.asarray(w_, jnp.float32)) * sd + mu), float(losses[-1])


def maximise(config: DesignConfig, predict, starts: np.ndarray) -> tuple[float, float]:
    """Gradient ascent on the surrogate over ``w = 0.5 + 0.5 sigmoid(z)`` from each start; the best (w, revenue)."""
    opt = optax.adam(0.1)

    def to_w(z):
        return LOW_W + (1 - LOW_W) * jax.nn.sigmoid(z)

    def step(carry, _):
        z, s = carry
        grad = jax.grad(lambda z_: -jnp.sum(predict(to_w(z_))))(z)
        updates, s = opt.update(grad, s, z)
        return (optax.apply_updates(z, updates), s), None

    frac = np.clip((starts - LOW_W) / (1 - LOW_W), 1e-3, 1 - 1e-3)
    z0 = jnp.asarray(np.log(frac / (1 - frac)), jnp.float32)
    (z, _), _ = jax.jit(lambda z: jax.lax.scan(step, (z, opt.init(z)), None, config.design_steps))(z0)
    w = np.asarray(to_w(z))
    value = np.asarray(predict(w))
    best = int(np.argmax(value))
    return float(w[best]), float(value[best])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(DesignConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    market = build_market(MechanismSpec("prize_all_pay", {"prizes": (1.0, 0.0)}), config.bidders, config.values)
    session = Session(NAME, config, spec)
    n = market.n_bidders
    w = np.linspace(LOW_W, 1.0, config.points).astype(np.float32)

    def prizes(ws: np.ndarray) -> jax.Array:
        p = np.zeros((len(ws), n), np.float32)
        p[:, 0], p[:, 1] = ws, 1 - ws
        return jnp.asarray(p)

    base = init_params(market, jax.random.key(0))

    def swept(ws: np.ndarray):
        params = tile_params(base, len(ws))
        return params._replace(mechanism=params.mechanism._replace(prizes=prizes(ws)))

    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    program = jax.jit(lambda p, k: sweep_revenue(market, p, k, config.auctions, config.window))
    start = time.perf_counter()
    revenue = np.asarray(jax.block_until_ready(program(swept(w), keys)))  # [P, S]
    seconds = time.perf_counter() - start
    mean, se = mean_se(revenue, axis=1)
    predict, fit_loss = fit_surrogate(config, w, revenue, jax.random.fold_in(jax.random.key(spec.seed), 1))
    best_w, best_predicted = maximise(config, predict, w)
    check = np.asarray(program(swept(np.array([best_w], np.float32)), evaluation_keys(spec.seed, config.check_seeds)))
    check_mean, check_se = mean_se(check[0])
    fitted = np.asarray(predict(w))
    low, high = default_support(market.prior, n)  # the prior's own bounds (also for --setting)
    uniform_from_0 = isinstance(market.prior, UniformPrior) and not low.any() and np.ptp(high) == 0
    theory = w / 2 if uniform_from_0 and n == 3 else None
    scale = float(high.max()) if theory is not None else None
    m = {
        "config": config,
        "seeds": spec.seeds,
        "seed": spec.seed,
        "best_w": best_w,
        "best_w_surrogate_revenue": best_predicted,
        "best_w_check_revenue": float(check_mean),
        "best_w_check_revenue_se": float(check_se),
        "best_sweep_w": float(w[int(np.argmax(mean))]),
        "w": w,
        "revenue": mean,
        "revenue_se": se,
        "revenue_per_seed": revenue,
        "surrogate_revenue": fitted,
        "surrogate_fit_mse": fit_loss,
        "theory_revenue": None if theory is None else theory * scale,
        "theory": "w / 2 x the top value: U[0, top] values, 3 bidders, symmetric monotone equilibrium; best w = 1"
        if theory is not None else "the w / 2 curve holds for 3 bidders with U[0, top] values",
        "sweep_seconds": seconds,
        "pairs_per_second": revenue.size / seconds,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }  # fmt: skip
    if session.leader:
        session.write_metrics(m)
        io.write_csv(session.out / "curve.csv", ["w", "revenue", "revenue_se", "surrogate"],
                     zip(w, mean, se, fitted, strict=True))  # fmt: skip
        if spec.plots:
            series = {"learning bidders (sweep)": (mean, se), "surrogate fit": (fitted, None)}
            if theory is not None:
                series["theory w/2 (equilibrium)"] = (theory * scale, None)
            plots.curves(session.out / "revenue_vs_w.png", w, series, "top prize w", "revenue per auction",
                         title=f"all-pay, prizes (w, 1-w), {n} bidders", marks={"best w": best_w})  # fmt: skip
        session.print(
            f"best w {best_w:.3f}: surrogate {best_predicted:.4f}, fresh markets {check_mean:.4f} +- "
            f"{check_se:.4f}" + (f" (theory w/2: {best_w / 2 * scale:.4f})" if theory is not None else "")
        )
        session.print(f"sweep: {revenue.size} (w, seed) pairs in {seconds:.1f} s; results in {session.out}/")
    return m


if __name__ == "__main__":
    main()
