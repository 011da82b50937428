"""Honest evaluation of a rule against learning bidders: fresh bidders, classical baselines, theory, diagnostics.

* ``fresh_rewards``: fresh bidders learn against a *fixed* rule for a round's
  budget; the platform reward (mean revenue of the last window) per seed. The
  rule is never updated during the evaluation, so this is the reward of the
  rule itself, not of a rule in the middle of training.
* ``baselines``: the same evaluation, with the same learners, prior, seeds
  (keys: common random numbers) and budget, for second price, first price and
  second price with the best reserve on a grid (one vmapped sweep; with
  integer bids the grid includes a reserve just below every bid level, where
  the best reserves are: see ``reserve_grid``).
* ``theory``: references for bidders who *best-respond* (single item, i.i.d.
  uniform values): Myerson's optimal revenue ``E[max_i phi(v_i)^+]`` with the
  virtual value ``phi`` (``2v - high`` on a uniform range; for integers
  ``0..H``, the discrete virtual value ``2v - H``), and truthful second price
  ``E[second-highest value]``. No mechanism earns more than Myerson's optimum
  from bidders who best-respond; learning bidders need not best-respond.
* ``natural_format_lp``: the reference for one *mean-based* learner who never
  overbids: the most revenue pay-your-bid with declining reserves earns from
  it in the limit of a long horizon, by a linear program (Braverman, Mao,
  Schneider and Weinberg, EC 2018, whose optimal "natural" format it is).
* ``diagnostics``: for a rule's outcomes on the bids that learning bidders
  actually make, the share of revenue paid by bidders who win nothing, the
  rate of negative-utility outcomes, and anonymity (the largest change of any
  bidder's payment when the bidders are permuted).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction.io import plus_minus
from jaxauction.market import Dataset, Market, MarketParams, collect, fresh_round, init_params, tile_params
from jaxauction.mechanisms import make_mechanism
from jaxauction.priors import UniformIntPrior, UniformPrior, top_value
from jaxauction.types import Array, PRNGKey

EVALUATION_STREAM = 1_000_003  # final evaluations fold this into the run's seed: keys apart from training's


def evaluation_keys(seed: int, count: int) -> PRNGKey:
    """``count`` keys for a run's final evaluation, derived from its ``seed`` apart from the training keys."""
    return jax.random.split(jax.random.fold_in(jax.random.key(seed), EVALUATION_STREAM), count)


def with_reserve(params: MarketParams, reserve: Array) -> MarketParams:
    """``params`` with the classical rule's reserve replaced (any leading sweep or seed axes)."""
    return params._replace(mechanism=params.mechanism._replace(reserve=reserve))


def swept_reserves(params: MarketParams, reserves: np.ndarray) -> MarketParams:
    """``params`` tiled on a leading ``[len(reserves)]`` sweep axis with the classical rule's reserve swept."""
    return with_reserve(tile_params(params, len(reserves)), jnp.asarray(reserves))


def _stats(rewards: Array) -> dict[str, Any]:
    r = np.asarray(rewards, np.float64).reshape(-1)
    se = float(r.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else float("nan")
    return {"mean": float(r.mean()), "se": se, "per_seed": r.tolist()}


def fresh_rewards(
    market: Market, params: MarketParams, keys: PRNGKey, auctions: int, window: int, markets: int = 1,
    batched_params: bool = False,
) -> Array:  # fmt: skip
    """``[S]`` platform rewards (mean over ``markets``) of fresh bidders learning for ``auctions`` auctions against
    the fixed ``params`` (``batched_params``: one per seed), one seed per key. Run it under ``jax.jit``."""

    def one(p: MarketParams, key: PRNGKey) -> Array:
        k_init, k_round = jax.random.split(key)
        play = lambda ki, kr: fresh_round(market, p, ki, kr, auctions, window)[1]  # noqa: E731
        metrics = jax.vmap(play)(jax.random.split(k_init, markets), jax.random.split(k_round, markets))
        return jnp.mean(metrics.platform_reward)

    return jax.vmap(one, in_axes=(0 if batched_params else None, 0))(params, keys)


def with_rule(market: Market, name: str) -> Market:
    """``market`` with its mechanism replaced by the classical rule ``name`` (item by item for several items)."""
    return dataclasses.replace(market, mechanism=make_mechanism(name, market.n_bidders, market.n_items))


JUST_BELOW = 0.01  # integer bids: the candidate reserves k - 0.01 sit just below each bid level k


def integer_bids(market: Market) -> bool:
    """Whether every bid in ``market`` is an integer: an integer prior and bidders on integer bid grids (or
    truthful)."""
    return market.prior.integer and all(
        g.name == "truthful" or (g.max_bid is not None and not g.relative_grid) for g in market.population.groups
    )


def reserve_grid(market: Market, points: int) -> np.ndarray:
    """``points`` reserves from 0 to the prior's highest value; with integer bids, also ``k - 0.01`` below
    every level ``k``.

    With integer bids a reserve in ``(k - 1, k]`` clears the same bids, and
    the winner pays ``max(second bid, reserve)``, so revenue rises with the
    reserve inside each interval and drops where it crosses a bid level:
    the best reserves sit just below the levels, which an even grid misses
    (measured: 3 epsilon-greedy bidders on 0..9, reserve 4.5 earns 4.74,
    4.95 earns 4.94 and 5.0 earns 4.56).
    """
    top = top_value(market.prior, market.n_bidders)
    grid = np.linspace(0.0, top, points)
    if integer_bids(market):
        grid = np.union1d(grid, np.arange(1, int(top) + 1) - JUST_BELOW)
    return grid.astype(np.float32)


def baselines(
    market: Market, params: MarketParams, keys: PRNGKey, auctions: int, window: int, markets: int = 1,
    reserves: int = 19,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Second price, first price and (one item) second price with the best of ``reserves`` reserves, with the
    learners, prior and utility numbers of ``params`` and the same ``keys``; ``{name: {mean, se, per_seed, ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("second_price", "first_price"):
        rule_market = with_rule(market, name)
        rule_params = params._replace(mechanism=init_params(rule_market, jax.random.key(0)).mechanism)
        fn = jax.jit(lambda p, k, m=rule_market: fresh_rewards(m, p, k, auctions, window, markets))
        out[name] = _stats(fn(rule_params, keys))
    if market.n_items == 1 and reserves > 1:
        sp = with_rule(market, "second_price")
        grid = reserve_grid(market, reserves)
        swept = swept_reserves(params._replace(mechanism=init_params(sp, jax.random.key(0)).mechanism), grid)
        sweep = jax.jit(jax.vmap(lambda p, k: fresh_rewards(sp, p, k, auctions, window, markets), in_axes=(0, None)))
        rewards = np.asarray(sweep(swept, keys))  # [reserves, seeds]
        best = int(np.argmax(rewards.mean(axis=1)))
        out["second_price_best_reserve"] = {
            **_stats(rewards[best]),
            "reserve": float(grid[best]),
            "sweep": {"reserves": grid.tolist(), "mean": rewards.mean(axis=1).tolist()},
        }
    return out


def theory(market: Market) -> dict[str, Any]:
    """Revenue references for bidders who best-respond, where the prior allows (one item, i.i.d. uniform values,
    quasi-linear utility); ``{}`` otherwise, with the reason under ``"note"``."""
    prior, n = market.prior, market.n_bidders
    if market.n_items != 1 or market.utility.name != "quasi_linear" or not isinstance(prior, (UniformIntPrior,
                                                                                            UniformPrior)):  # fmt: skip
        return {"note": "references are computed for one item, i.i.d. uniform values and quasi-linear utility"}
    params = prior.init_params(n, 1)
    low, high = np.asarray(params.low, np.float64), np.asarray(params.high, np.float64)
    if not (np.all(low == low[0, 0]) and np.all(high == high[0, 0])):
        return {"note": "references are computed for identically distributed bidders"}
    lo, hi = float(low[0, 0]), float(high[0, 0])
    if isinstance(prior, UniformIntPrior):
        levels = np.arange(lo, hi + 1)
        cdf = (levels - lo + 1) / len(levels)  # P(V <= v)
        prev = np.concatenate([[0.0], cdf[:-1]])
        # the discrete virtual value: v - (next level - v) P(V > v) / P(V = v) = 2v - hi for unit steps
        phi = levels - (1 - cdf) / (cdf - prev)
    else:
        levels = np.linspace(lo, hi, 200_001)
        cdf = (levels - lo) / (hi - lo)
        prev = np.concatenate([[0.0], cdf[:-1]])
        phi = 2 * levels - hi
    p_max = cdf**n - prev**n  # P(max = level): the top virtual value is the top value's (phi increasing)
    myerson = float(np.sum(p_max * np.maximum(phi, 0.0)))
    # E[second highest] = sum over levels of P(second highest = level) * level
    below = lambda c: c**n + n * c ** (n - 1) * (1 - c)  # noqa: E731 - P(second highest <= level)
    second = float(np.sum((below(cdf) - below(prev)) * levels))
    reserve = float(levels[np.argmax(phi >= 0)])
    # truthful second price with that reserve: r P(v(1) >= r >= v(2)) + E[v(2); v(2) > r]
    at = levels >= reserve
    first_at = int(np.argmax(at))
    sold_at_reserve = below(cdf[first_at]) - prev[first_at] ** n
    above = levels > reserve
    second_reserve = float(reserve * sold_at_reserve + np.sum(((below(cdf) - below(prev)) * levels)[above]))
    return {
        "myerson_optimum": myerson,
        "myerson_reserve": reserve,
        "full_welfare": float(np.sum(p_max * levels)),  # E[max v]: what any rule can at most allocate
        "truthful_second_price": second,
        "second_price_at_myerson_reserve": second_reserve,
        "note": "for bidders who best-respond; no mechanism earns more than the Myerson optimum from them. "
        "Myerson's mechanism sells to the highest non-negative virtual value at its threshold price; for "
        "continuous i.i.d. regular values that is second price with the Myerson reserve. With integer values "
        "its threshold payments are tie-adjusted, and second price with the Myerson reserve earns less "
        "(second_price_at_myerson_reserve)",
    }


class NaturalFormat(NamedTuple):
    """``natural_format_lp``'s solution: the limit revenue per auction, the share of the horizon each bid of the
    grid may win (``available [A]``, rising with the bid), and the references beside it."""

    revenue: float  # the LP's optimum: pay-your-bid with declining reserves against a mean-based buyer
    available: np.ndarray  # [A] x_b: bid b may win in the last x_b of the horizon
    myerson: float  # the best posted price's revenue (Myerson's optimum for one buyer who best-responds)
    posted_price: float  # that price (the lowest of the best)
    welfare: float  # E[v]: the full welfare


def natural_format_lp(values: np.ndarray, pmf: np.ndarray) -> NaturalFormat:
    """The most revenue per auction pay-your-bid with declining reserves earns from one mean-based buyer who
    never bids above its value, in the limit of a long horizon: values (and the bid grid) ``values [A]``,
    increasing, with probabilities ``pmf [A]``.

    Over the horizon ``[0, 1]`` the reserve falls, so bid ``b`` may win from ``1 - x_b`` on, ``x_b`` rising with
    ``b``, and pays itself. A mean-based buyer of value ``v`` plays, at every point, the bid whose cumulative
    utility ``(v - b) (tau - 1 + x_b)`` is highest; the utility it ends with is ``U_v = max_{b <= v} (v - b) x_b``
    and, since the slope of that running maximum is ``v`` minus the bid played, it pays ``v x_v - U_v`` over the
    horizon (it wins from the moment its own value is allowed: ties go the seller's way, as in the limit of
    reserves a little below the grid's levels). The seller's problem is then the linear program

        max  sum_v pmf_v (v x_v - U_v)   s.t.  U_v >= (v - b) x_b  (b <= v),  0 <= x_b <= x_{b+1} <= 1.

    For values 0..9 uniform it earns 169/60 = 2.817, above the best posted price's 2.5 (and below the welfare
    4.5): ``tests/test_natural_format.py`` checks it by hand and against a direct simulation of the limit."""
    from scipy.optimize import linprog  # scipy comes with jax; imported here, where it is needed

    values, pmf = np.asarray(values, np.float64), np.asarray(pmf, np.float64)
    if values.ndim != 1 or values.shape != pmf.shape or len(values) < 1:
        raise ValueError(f"values and pmf must be 1-D arrays of one length, got {values.shape} and {pmf.shape}")
    if not (np.all(np.isfinite(values)) and np.all(np.diff(values) > 0) and values[0] >= 0):
        raise ValueError(f"values must be finite, >= 0 and increasing, got {values.tolist()}")
    if np.any(pmf < 0) or not np.isclose(pmf.sum(), 1.0):
        raise ValueError(f"pmf must be >= 0 and sum to 1, got {pmf.tolist()}")
    A = len(values)
    rows, bounds = [], []  # variables: x [A], then U [A]
    for v, b in itertools.product(range(A), range(A)):
        if b <= v:  # (v - b) x_b - U_v <= 0
            row = np.zeros(2 * A)
            row[b], row[A + v] = values[v] - values[b], -1.0
            rows.append(row)
    for b in range(A - 1):  # x_b - x_{b+1} <= 0
        row = np.zeros(2 * A)
        row[b], row[b + 1] = 1.0, -1.0
        rows.append(row)
    bounds = [(0.0, 1.0)] * A + [(0.0, None)] * A
    solved = linprog(np.concatenate([-pmf * values, pmf]), A_ub=np.asarray(rows), b_ub=np.zeros(len(rows)),
                     bounds=bounds, method="highs")  # fmt: skip
    if not solved.success:
        raise RuntimeError(f"the natural format's LP failed: {solved.message}")
    tail = np.cumsum(pmf[::-1])[::-1]  # P(V >= v)
    posted = values * tail
    return NaturalFormat(float(-solved.fun), np.clip(solved.x[:A], 0.0, 1.0), float(np.max(posted)),
                         float(values[np.argmax(posted)]), float(pmf @ values))  # fmt: skip


def lp_reserves(available: np.ndarray, bids: np.ndarray, phases: int) -> tuple[float, ...]:
    """``natural_format_lp``'s solution as ``declining_reserve_first_price``'s ``phases`` reserves: in each phase
    the lowest bid that may win at its midpoint (bid ``b`` from ``1 - x_b`` on), or above every bid when none
    may."""
    available, bids = np.asarray(available, np.float64), np.asarray(bids, np.float64)
    out = []
    for k in range(phases):
        open_ = (1.0 - available) <= (k + 0.5) / phases + 1e-9
        out.append(float(bids[np.argmax(open_)]) if open_.any() else float(bids[-1] + 1.0))
    return tuple(out)


def diagnostics(
    market: Market, mechanism_params: Any, data: Dataset, max_permutations: int = 120, utility_params: Any = ()
) -> dict[str, float]:
    """On the auctions ``data`` (types, bids, keys ``[D, ...]``) under the rule: losers' share of revenue,
    negative-utility rate, and anonymity (the largest change of a bidder's payment when the bidders are permuted,
    over at most ``max_permutations`` permutations and the profiles without tied bids: random tie-breaking
    is anonymous only in distribution)."""
    mech, n = market.mechanism, market.n_bidders
    apply = jax.jit(jax.vmap(mech.apply, in_axes=(None, 0, 0)))  # one program for the profiles and permutations
    outcomes = apply(mechanism_params, data.bids, data.keys)
    utility = jax.vmap(lambda t, o: market.utility.apply(t, o, utility_params))(data.types, outcomes)
    won = jnp.sum(outcomes.allocation, axis=-1) > 0  # [D, n]
    total = jnp.sum(outcomes.payments)
    losers = jnp.sum(jnp.where(won, 0.0, outcomes.payments))
    perms = list(itertools.permutations(range(n)))[1 : max_permutations + 1]
    flat = data.bids.reshape(data.bids.shape[0], n, -1)
    # Random tie-breaking is anonymous only in distribution: compare payments on profiles without tied bids.
    distinct = jnp.all(jnp.sum(jnp.all(flat[:, :, None] == flat[:, None], axis=-1), axis=-1) == 1, axis=-1)
    worst = 0.0
    for perm in perms:
        p = np.asarray(perm)
        moved = apply(mechanism_params, data.bids[:, p], data.keys)
        change = jnp.max(jnp.abs(moved.payments - outcomes.payments[:, p]), axis=-1)
        worst = max(worst, float(jnp.max(jnp.where(distinct, change, 0.0))))
    return {
        "losers_share": float(losers / total) if float(total) > 0 else 0.0,
        "ir_violation_rate": float(jnp.mean(utility < -1e-6)),
        "anonymity": worst,
    }


def final_dataset(market: Market, params: MarketParams, key: PRNGKey, auctions: int, window: int, size: int):
    """Fresh bidders learn against ``params`` for ``auctions`` auctions, then play ``size`` auctions frozen."""
    k_init, k_round, k_data = jax.random.split(key, 3)
    states, _ = fresh_round(market, params, k_init, k_round, auctions, window)
    return collect(market, size, params, states, k_data)


def report_rule(
    market: Market, params: MarketParams, keys: PRNGKey, auctions: int, window: int, markets: int = 1,
    reserves: int = 19, dataset: int = 1024, diagnose: bool | None = None, progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The honest evaluation of a trained rule (``params`` batched over seeds, one key per seed): ``final_eval``
    (fresh bidders against the final rule), ``baselines`` (same learners, seeds and budget), ``theory``, and
    ``diagnostics`` (means over seeds, on ``dataset`` auctions of the fresh bidders' play; by default for
    trainable rules)."""
    learned = jax.jit(lambda p, k: fresh_rewards(market, p, k, auctions, window, markets, batched_params=True))
    one_seed = jax.tree.map(lambda x: x[0], params)
    diagnose = market.mechanism.trainable if diagnose is None else diagnose
    bar = None
    if progress:  # stages: the learned rule, the baselines, the diagnostics
        from tqdm.auto import tqdm

        bar = tqdm(total=2 + int(diagnose), unit="stage", desc="final evaluation", file=sys.stderr)
    final = _stats(learned(params, keys))
    if bar is not None:
        bar.update(1)
    report: dict[str, Any] = {
        "final_eval": final,
        "baselines": baselines(market, one_seed, keys, auctions, window, markets, reserves),
        "theory": theory(market),
    }
    if bar is not None:
        bar.update(1)
    if diagnose:
        play = jax.jit(lambda p, k: final_dataset(market, p, k, auctions, window, dataset))
        rows = []
        for s in range(keys.shape[0]):
            p = jax.tree.map(lambda x, s=s: x[s], params)
            data = play(p, jax.random.fold_in(keys[s], 1))
            rows.append(diagnostics(market, p.mechanism, data, utility_params=p.utility))
        report["diagnostics"] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return report


def comparison_lines(report: dict[str, Any], learned_name: str) -> list[str]:
    """Human-readable lines: the learned rule and the baselines side by side, and which earns the most."""
    entries = [(learned_name, report["final_eval"])] + [
        (name if "reserve" not in v else f"{name} (reserve {v['reserve']:g})", v)
        for name, v in report["baselines"].items()
    ]
    lines = [f"{name:>40}: {plus_minus(v['mean'], v['se'])}" for name, v in entries]
    best_name, best = max(entries, key=lambda e: e[1]["mean"])
    lines.append(f"{'most revenue':>40}: {best_name}")
    t = report["theory"]
    if "myerson_optimum" in t:
        lines.append(f"{'theory (best-responding bidders)':>40}: Myerson optimum {t['myerson_optimum']:.4f} "
                     f"(reserve {t['myerson_reserve']:g}), truthful second price "
                     f"{t['truthful_second_price']:.4f}")  # fmt: skip
    if "diagnostics" in report:
        d = report["diagnostics"]
        lines.append(f"{'learned rule':>40}: losers pay {d['losers_share']:.1%} of revenue, "
                     f"{d['ir_violation_rate']:.1%} of outcomes have negative utility, "
                     f"anonymity {d['anonymity']:.3g}")  # fmt: skip
    return lines


def rule_curve(market: Market, mechanism_params: Any, others: Array, points: int = 101, draws: int = 64):
    """Bidder 0's allocation probability and payment ``[points]`` as its bid goes from 0 to the highest value,
    the other bidders' bids fixed at ``others [n-1]`` (one item; averaged over ``draws`` tie-breaking keys)."""
    top = top_value(market.prior, market.n_bidders)
    bids = jnp.linspace(0.0, top, points)
    keys = jax.random.split(jax.random.key(0), draws)

    def at(b: Array) -> tuple[Array, Array]:
        profile = jnp.concatenate([b[None], jnp.asarray(others, jnp.float32)])[:, None]
        out = jax.vmap(lambda k: market.mechanism.apply(mechanism_params, profile, k))(keys)
        return jnp.mean(out.allocation[:, 0, 0]), jnp.mean(out.payments[:, 0])

    allocation, payment = jax.jit(jax.vmap(at))(bids)
    return np.asarray(bids), np.asarray(allocation), np.asarray(payment)
