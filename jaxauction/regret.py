"""Regret: what a bidder gains by misreporting, for any mechanism with the shared signature.

Definitions (those of RegretNet, Dütting et al. 2019), for a direct mechanism
whose bids are reports of values ``v [n, m]``, and utility ``u_i``
(quasi-linear by default):

* **ex post regret** of bidder ``i`` at the profile ``v``: its best gain from
  a misreport while every other bidder reports truthfully,
  ``rgt_i(v) = max_{r} u_i(r, v_-i; v_i) - u_i(v; v_i)``, which is ``>= 0``
  (the truthful report is one of the reports searched). **Regret** is its
  mean over profiles, ``regret_i = E_v[rgt_i(v)]``, reported per bidder and
  as the mean over bidders (``regret_mean``). Under first price with two
  truthful U[0,1] bidders the best misreport of the high bidder is a bid just
  above the other's value, so ``regret_i = E[(v_1 - v_2)^+] = 1/6`` exactly.
* **interim regret** (a second, weaker figure, never to be confused with the
  first): the gain maximised after averaging over the others' values,
  ``E_{v_i}[max_r E_{v_-i}[u_i(r, v_-i; v_i) - u_i(v; v_i)]]``. It is 0 for
  every Bayesian incentive-compatible mechanism; ex post regret is 0 only for
  dominant-strategy incentive-compatible ones.

The mechanism's randomness (tie-breaking) uses one key per profile, the same
for the truthful and every misreported bid: common random numbers, so a
random tie-break is never mistaken for a profitable deviation.

**The protocol** (``Protocol``; its defaults are the strong one the README
documents): the searches below per profile and bidder, and the largest gain
counts.

* *gradient*: projected Adam on the misreport (clipped to the value support,
  step size ``step_size`` times the support's width), from the truthful
  report and ``random_starts`` uniform random starts, for ``steps`` steps in a
  static-length ``lax.scan``; the best gain seen along each trajectory is kept,
  not only the last. Classical rules have hard allocations: the gradient of
  utility in a misreport is 0 almost everywhere and points the wrong way at a
  jump, so this search alone underestimates their regret.
* *grid* (``m <= 2``): every point of a ``grid``-point lattice of each item's
  support, plus the breakpoints of highest-bid rules: the other bidders'
  values, and just above them (by ``1e-6`` of the width). ``RegretReport.searches``
  says which searches ran.
* *coordinate* (``m > 2``, where the grid stops): from the truthful report,
  ``sweeps`` passes over the items, each moving one item's report to the best
  point of that item's line (a ``coordinate``-point grid of its support and
  the same breakpoints), the other items held; the best utility seen counts.
  Per bidder it costs ``sweeps x m x (coordinate + 2(n - 1))`` evaluations
  (2 x 10 x 69 = 1,380 on 3x10, against the strong gradient search's 20,400),
  needs no gradient, so it sees the jumps of hard allocations, and is exact
  for rules that sell the items separately (the best report is the best per
  item, which one sweep finds on the line).

* *menu* (mechanisms with a ``menu``: RochetNet's argmax menu, one bidder):
  the bidder's best misreport gets it the best menu entry it can be
  assigned, so enumerating the menu (every entry's utility under the
  evaluator's utility) finds the best deviation exactly. Such a mechanism is
  exactly incentive compatible when it chooses by the evaluator's utility
  (then this search finds 0), and its gradient is 0 almost everywhere, so the
  gradient search and the stronger attack are skipped for it, and the report
  says so (``skipped``). The enumeration counts every entry, also one that no
  report inside the support would be assigned: for such a menu it is an upper
  bound. The grid still runs (1-2 items), cheaply: with one bidder its
  reports are the same for every profile and a menu mechanism is
  deterministic, so each report's outcome is computed once and every profile
  enumerates those outcomes like a menu.
* *bidder menu* (mechanisms with a ``bidder_menu``: the affine maximizers,
  any number of bidders and items): with the others' reports fixed, every
  report of bidder ``i`` gets it one entry of a menu at a price that does
  not depend on its report (an AMA's entries at their pivot prices), so
  enumerating that menu per profile and bidder bounds its best deviation
  from above, exactly when every entry is reachable; as for a menu, the
  gradient search and the stronger attack are skipped, and the grid runs
  for 1-2 items as a second, independent search.

Profiles are processed in memory-bounded chunks (``lax.map`` with
``batch_size``), in host calls of ``host_chunk`` profiles to one compiled
program, so a long audit shows progress and an ETA (``progress=True``) and
prints its cost before it starts: profiles x bidders x (starts x steps)
gradient evaluations, the grid's reports, the convergence check, and the
time expected on this device, measured on the first chunk.

**The convergence check** repeats the searches on the first
``check_profiles`` profiles under a ``stronger`` attack (random starts, steps,
grid reports, coordinate points and sweeps multiplied) and reports both estimates on that subsample
(``regret_mean_check`` against ``regret_mean_stronger``), so they compare like
for like at a fraction of the cost of repeating the whole audit.
``convergence_curve`` goes further: the whole audit under the protocol
strengthened 1, 2, 4, ... times on the same profiles, the regret estimate
against the evaluations spent.

**Presets** (``Protocol(audit=...)``, ``--audit``; a field set explicitly
overrides its preset): ``quick`` (1,000 profiles, 4 starts x 100 steps, x2
check), ``standard`` (10,000 profiles, 8 x 200, x2 check on 1,000) for CPU
users, and ``strong`` (10,000 profiles, 16 x 400, x4 check on 1,000), the
default and the protocol of published tables. Every report states its preset
and protocol.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.memory import check_fits
from jaxauction.metrics import revenue as revenue_of
from jaxauction.types import Array, Outcome, Params, PRNGKey, Types
from jaxauction.utilities import Utility, quasi_linear

SCORED_UTILITIES = ("quasi_linear", "unit_demand")  # the utilities regret is defined for here
IR_TOLERANCE = 1e-5  # a truthful utility below -IR_TOLERANCE counts as an individual-rationality violation
BREAKPOINT_STEP = 1e-6  # "just above" another bid, as a fraction of the support's width


AUDITS: dict[str, dict[str, int]] = {  # the presets' sizes; every other field has one default
    "quick": {"profiles": 1_000, "random_starts": 4, "steps": 100, "stronger": 2, "check_profiles": 1_000,
              "revenue_profiles": 20_000},
    "standard": {"profiles": 10_000, "random_starts": 8, "steps": 200, "stronger": 2, "check_profiles": 1_000,
                 "revenue_profiles": 100_000},
    "strong": {"profiles": 10_000, "random_starts": 16, "steps": 400, "stronger": 4, "check_profiles": 1_000,
               "revenue_profiles": 100_000},
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How hard the misreport search tries: a preset (--audit) whose sizes any field set here overrides."""

    audit: Literal["quick", "standard", "strong"] = "strong"
    """preset: quick (1,000 profiles, 4 starts x 100 steps, x2 check), standard (10,000 profiles, 8 x 200, x2
    check on 1,000: for CPUs), strong (10,000 profiles, 16 x 400, x4 check on 1,000: published tables)"""
    profiles: int | None = None
    """value profiles drawn from the prior (unset: the preset's)"""
    random_starts: int | None = None
    """random starting misreports per profile and bidder, besides the truthful one (unset: the preset's)"""
    steps: int | None = None
    """projected Adam steps per start (unset: the preset's)"""
    step_size: float = 0.01
    """the search's Adam step size, as a fraction of each value's support width"""
    grid: int = -1
    """grid points per item: -1 automatic (1,001 for one item, 65 per item for two, none above), 0 none"""
    coordinate: int = -1
    """the coordinate search's grid points per item: -1 automatic (65 above two items, where the grid stops;
    none up to two), 0 none"""
    sweeps: int = 2
    """the coordinate search's sweeps over the items"""
    profile_chunk: int = 256
    """profiles evaluated at once by a search, at most (each search also keeps to 65,536 rows: bounds memory)"""
    stronger: int | None = None
    """the convergence check multiplies random starts, steps and grid points by this; 1 skips it (unset: the
    preset's)"""
    check_profiles: int | None = None
    """the convergence check runs on this many of the profiles (the first ones; unset: the preset's 1,000)"""
    revenue_profiles: int | None = None
    """revenue and IR are measured on this many profiles (at least --profiles; the search's come first; unset:
    the preset's)"""
    interim: bool = True
    """also estimate the interim regret (one item only)"""

    def __post_init__(self) -> None:
        check_choice(self.audit, AUDITS, "audit")
        p = self.resolved()
        check_positive_int(p.profiles, "profiles")
        check_positive_int(p.random_starts, "random_starts", minimum=0)
        check_positive_int(p.steps, "steps", minimum=0)
        check_positive_int(self.profile_chunk, "profile_chunk")
        check_positive_int(p.stronger, "stronger")
        check_positive_int(p.check_profiles, "check_profiles")
        check_positive_int(p.revenue_profiles, "revenue_profiles", minimum=0)
        for name in ("grid", "coordinate"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < -1 or value == 1:
                raise ValueError(f"{name} must be -1 (automatic), 0 (none) or >= 2 points, got {value!r}")
        check_positive_int(self.sweeps, "sweeps")
        check_finite(self.step_size, "step_size", positive=True)

    def resolved(self) -> Protocol:
        """The protocol with every unset size taken from its preset."""
        unset = {k: v for k, v in AUDITS[self.audit].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **unset) if unset else self

    def grid_points(self, n_items: int) -> int:
        """Grid points per item for ``n_items`` items (0: no grid search)."""
        if self.grid >= 0:
            if self.grid and n_items > 2:
                raise ValueError(f"the grid search covers at most 2 items, the mechanism has {n_items}")
            return self.grid
        return {1: 1001, 2: 65}.get(n_items, 0)

    def coordinate_points(self, n_items: int) -> int:
        """The coordinate search's grid points per item for ``n_items`` items (0: no coordinate search)."""
        if self.coordinate >= 0:
            return self.coordinate
        return 65 if n_items > 2 else 0

    def strengthened(self, n_items: int) -> Protocol:
        """The same protocol with ``stronger`` times the random starts, steps, coordinate points and sweeps, and
        grid points (``stronger`` times as many reports in all)."""
        p = self.resolved()
        k = p.stronger
        grid = p.grid_points(n_items)
        per_item = 0 if grid == 0 else int(round((grid - 1) * k ** (1 / n_items))) + 1
        line = p.coordinate_points(n_items)
        return dataclasses.replace(p, random_starts=p.random_starts * k, steps=p.steps * k, grid=per_item,
                                   coordinate=0 if line == 0 else (line - 1) * k + 1, sweeps=p.sweeps * k)  # fmt: skip

    def searches(self, n_items: int, enumerated: bool = False) -> dict[str, int]:
        """The searches run on ``n_items`` items, with their sizes (0: not run): gradient steps, grid and line
        points per item, and whether a menu is enumerated. A mechanism whose menu is ``enumerated`` (``menu``
        or ``bidder_menu``) gets no gradient search (its gradient is 0 almost everywhere) and no coordinate
        search (the enumeration is exact, or an upper bound); the grid still runs for 1-2 items."""
        p = self.resolved()
        return {"gradient": 0 if enumerated else p.steps, "grid": p.grid_points(n_items),
                "coordinate": 0 if enumerated else p.coordinate_points(n_items), "menu": int(enumerated)}  # fmt: skip

    def grid_reports(self, n_bidders: int, n_items: int) -> int:
        """Reports the grid search tries per bidder: each item's grid and the others' breakpoints, combined."""
        points = self.resolved().grid_points(n_items)
        return (points + 2 * (n_bidders - 1)) ** n_items if points else 0

    def coordinate_reports(self, n_bidders: int, n_items: int) -> int:
        """Reports the coordinate search tries per bidder: per sweep and item, its line's grid and breakpoints."""
        p = self.resolved()
        points = p.coordinate_points(n_items)
        return p.sweeps * n_items * (points + 2 * (n_bidders - 1)) if points else 0

    def work(self, n_bidders: int, n_items: int, menu: int = 0, per_bidder: bool = False) -> int:
        """The cost model: mechanism evaluations per profile (a gradient step counts 3: forward and backward).

        For a ``menu``-entry menu mechanism: entries scored per profile (the truthful choice and the
        enumeration score the menu, the grid the outcomes of its reports, computed once for all profiles).
        ``per_bidder``: a bidder menu (``Mechanism.bidder_menu``), which costs about one evaluation per bidder,
        replaces the gradient search."""
        p = self.resolved()
        if per_bidder:
            return n_bidders * (1 + p.grid_reports(n_bidders, n_items)) + 1
        if menu:
            return 2 * menu + p.grid_reports(n_bidders, n_items)
        gradient = 3 * (p.random_starts + 1) * p.steps
        searches = p.grid_reports(n_bidders, n_items) + p.coordinate_reports(n_bidders, n_items)
        return n_bidders * (gradient + searches) + 1


def check_scorable(prior: Any, utility: Utility | None, what: str = "regret") -> None:
    """Refuse what ex post regret is not defined for here: a prior whose bidders do not observe their values
    (common values: a report is a signal, not a value) or a utility that is not quasi-linear (risk-shaped
    utilities, sellers' costs)."""
    if not getattr(prior, "private_values", True):
        raise ValueError(f"{what} assumes private values: a bidder reports the value it observes, but prior "
                         f"{prior.name!r} has common values (bidders observe signals)")  # fmt: skip
    if utility is not None and utility.name not in SCORED_UTILITIES:
        raise ValueError(f"{what} assumes quasi-linear utility ({' or '.join(SCORED_UTILITIES)}), got "
                         f"{utility.name!r}")  # fmt: skip


class ProfileRegret(NamedTuple):
    """Per profile (leading axis) and bidder: what the searches found."""

    truthful_utility: Array  # [P, n]
    revenue: Array  # [P]
    gradient_gain: Array  # [P, n]: the best gain of the gradient search (-inf when it did not run)
    grid_gain: Array  # [P, n]: the best gain of the grid search (-inf when it did not run)
    menu_gain: Array  # [P, n]: the best gain over the menu's entries (-inf when the mechanism has no menu)
    coordinate_gain: Array  # [P, n]: the best gain of the coordinate search (-inf when it did not run)

    @property
    def regret(self) -> Array:
        """``[P, n]``: ``rgt_i(v)``, the best gain of any search, and at least 0 (truthful is a report)."""
        best = jnp.maximum(jnp.maximum(self.gradient_gain, self.grid_gain), jnp.maximum(self.menu_gain,
                                                                                      self.coordinate_gain))
        return jnp.maximum(0.0, best)


def _utilities(mechanism: Mechanism, params: Params, utility: Utility, utility_params: Params):
    def utilities(values: Array, bids: Array, key: PRNGKey) -> Array:
        return utility.apply(Types(values=values), mechanism.apply(params, bids, key), utility_params)

    return utilities


def _gradient_search(utilities, values, key, base, low, high, starts, steps, learning_rate):
    """Best gain per bidder ``[n]`` of projected Adam from ``starts [S, n, m]`` (the truthful report among them)."""
    width = high - low
    scale = optax.scale_by_adam()

    def one(i: Array, start: Array) -> Array:
        def gain(report: Array) -> Array:
            return utilities(values, values.at[i].set(report), key)[i] - base[i]

        def step(carry, _):
            report, opt_state, best = carry
            value, grad = jax.value_and_grad(gain)(report)
            direction, opt_state = scale.update(grad, opt_state)
            report = jnp.clip(report + learning_rate * width[i] * direction, low[i], high[i])
            return (report, opt_state, jnp.maximum(best, value)), None

        init = (start, scale.init(start), jnp.float32(-jnp.inf))
        (report, _, best), _ = jax.lax.scan(step, init, None, length=steps)
        return jnp.maximum(best, gain(report))

    bidders = jnp.arange(values.shape[0])
    gains = jax.vmap(lambda s: jax.vmap(one)(bidders, s))(starts)  # [S, n]
    return jnp.max(gains, axis=0)


def _candidates(values: Array, i: int, low: Array, high: Array, points: int) -> Array:
    """``[C, m]`` misreports of bidder ``i``: each item's grid and breakpoints, all combinations (m <= 2)."""
    n, m = values.shape
    others = jnp.concatenate([values[:i], values[i + 1 :]], axis=0)  # [n-1, m]
    step = BREAKPOINT_STEP * (high[i] - low[i])
    lattice = jnp.linspace(0.0, 1.0, points)[:, None] * (high[i] - low[i]) + low[i]  # [G, m]
    axis = jnp.concatenate([lattice, others, jnp.minimum(others + step, high[i])], axis=0)  # [C1, m]
    if m == 1:
        return axis
    a, b = jnp.meshgrid(axis[:, 0], axis[:, 1], indexing="ij")
    return jnp.stack([a.ravel(), b.ravel()], axis=-1)


def _line(values: Array, i: int, j: int, low: Array, high: Array, points: int) -> Array:
    """``[C]`` reports of bidder ``i`` for item ``j``: the item's grid, the others' bids on it and just above."""
    others = jnp.delete(values[:, j], i, assume_unique_indices=True)  # [n-1]
    width = high[i, j] - low[i, j]
    lattice = jnp.linspace(0.0, 1.0, points) * width + low[i, j]
    return jnp.concatenate([lattice, others, jnp.minimum(others + BREAKPOINT_STEP * width, high[i, j])])


def _coordinate_search(utilities, values, key, base, low, high, points, sweeps):
    """Best gain per bidder ``[n]`` of a coordinate search: from the truthful report, ``sweeps`` passes over the
    items, each moving one item's report to the best point of its line (grid and breakpoints, ``_line``), the
    others held, when it beats the current report's utility (carried, from the truthful ``base``): no pass
    loses utility. Beyond two items, where the grid stops."""
    n, m = values.shape
    low, high = jnp.asarray(low), jnp.asarray(high)  # indexed by a traced item

    def bidder(i: int) -> Array:
        def move(carry: tuple[Array, Array], j: Array) -> tuple[tuple[Array, Array], None]:
            report, here = carry
            line = _line(values, i, j, low, high, points)
            tried = jax.vmap(lambda r: report.at[j].set(r))(line)  # [C, m]
            utils = jax.vmap(lambda r: utilities(values, values.at[i].set(r), key)[i])(tried)
            better = jnp.max(utils) > here
            return (jnp.where(better, tried[jnp.argmax(utils)], report), jnp.maximum(jnp.max(utils), here)), None

        (_, best), _ = jax.lax.scan(move, (values[i], base[i]), jnp.tile(jnp.arange(m), sweeps))
        return best - base[i]

    return jnp.stack([bidder(i) for i in range(n)])


def _grid_search(utilities, values, key, base, low, high, points):
    """Best gain per bidder ``[n]`` over the grid and breakpoints of each bidder's support."""

    def bidder(i: int) -> Array:
        reports = _candidates(values, i, low, high, points)
        gains = jax.vmap(lambda r: utilities(values, values.at[i].set(r), key)[i])(reports)
        return jnp.max(gains) - base[i]

    return jnp.stack([bidder(i) for i in range(values.shape[0])])


def _entries_gain(allocations: Array, prices: Array, utility: Utility, values: Array, own: Outcome,
                  i: int = 0) -> Array:  # fmt: skip
    """Best gain ``[1]`` of bidder ``i`` over outcome entries ``allocations [K, m]``, ``prices [K]`` (a menu, or
    the outcomes of the grid's reports) against its truthful outcome ``own``, scored with the evaluator's
    utility (additive or unit demand: ``check_scorable`` admits no other).

    Each entry's received value is a matmul with the bidder's values (unit demand: of the probability each
    item is the one kept, items taken in decreasing value), and the truthful outcome is scored as one more row
    of the same matmul, so an entry equal to it gains exactly 0 (an exactly IC menu reports regret 0, not
    rounding). Not ``utility.apply`` per entry: under ``jit``, XLA:CPU (JAX 0.10.2) miscompiles
    ``sum(allocations * values, -1)`` over a broadcast row of values for two or more items, by up to the
    largest utility (``tests/test_audit.py`` checks this search against numpy on a 1,001-entry menu, under
    ``jit`` and ``lax.map``)."""
    v = values[i]  # [m]
    allocations = jnp.concatenate([own.allocation[i : i + 1], allocations])
    prices = jnp.concatenate([own.payments[i : i + 1], prices])
    if utility.name == "unit_demand":
        order = jnp.argsort(-v)
        v, a = v[order], allocations[:, order]
        allocations = jnp.clip(jnp.minimum(a, 1.0 - (jnp.cumsum(a, axis=-1) - a)), 0.0, None)
    elif utility.name != "quasi_linear":
        raise ValueError(f"menu enumeration scores additive or unit-demand utility, not {utility.name!r}")
    scores = allocations @ v - prices
    return (jnp.max(scores) - scores[0])[None]


def profile_regret(
    mechanism: Mechanism,
    params: Params,
    values: Array,
    keys: PRNGKey,
    low: Array,
    high: Array,
    protocol: Protocol = Protocol(),  # noqa: B008 - frozen
    search_key: PRNGKey | None = None,
    utility: Utility | None = None,
    utility_params: Params = (),
) -> ProfileRegret:
    """The searches' results for every profile of ``values [P, n, m]`` (mechanism keys ``[P]``).

    ``low``/``high`` ``[n, m]`` bound the misreports (the prior's support).
    Pure and jit-compatible (the protocol is static); ``evaluate`` wraps it.
    """
    search_key = jax.random.key(0) if search_key is None else search_key
    profile_keys = jax.random.split(search_key, values.shape[0])
    return _profiles(mechanism, params, values, keys, low, high, protocol, profile_keys, utility, utility_params)


def _per_bidder(mechanism: Mechanism) -> bool:
    """Whether the mechanism's misreports are enumerated per bidder (``bidder_menu``; a one-bidder ``menu`` is
    enumerated whole instead)."""
    return mechanism.bidder_menu is not None and mechanism.menu is None


def _profiles(mechanism, params, values, keys, low, high, protocol, profile_keys, utility, utility_params):
    """``profile_regret`` with one search key per profile (so a chunk of profiles is searched as in the whole)."""
    utility = utility or quasi_linear()
    protocol = protocol.resolved()
    n, m = mechanism.n_bidders, mechanism.n_items
    if values.shape[1:] != (n, m):
        raise ValueError(f"values must be [profiles, {n}, {m}] for {mechanism.name}, got {list(values.shape)}")
    utilities = _utilities(mechanism, params, utility, utility_params)
    menu = mechanism.menu is not None
    per_bidder = _per_bidder(mechanism)
    plan = protocol.searches(m, enumerated=menu or per_bidder)
    use_gradient, points, lines = plan["gradient"] > 0, plan["grid"], plan["coordinate"]

    none = jnp.full((values.shape[0], n), -jnp.inf, jnp.float32)

    def truthful(v: Array, k: PRNGKey) -> tuple[Array, Array]:
        outcome = mechanism.apply(params, v, k)
        return utility.apply(Types(values=v), outcome, utility_params), revenue_of(outcome)

    base, revenue = jax.vmap(truthful)(values, keys)  # [P, n], [P]

    def gradient(args):
        v, k, b, sk = args
        random = jax.random.uniform(sk, (protocol.random_starts, n, m)) * (high - low) + low
        starts = jnp.concatenate([v[None], random], axis=0)
        return _gradient_search(utilities, v, k, b, low, high, starts, protocol.steps, protocol.step_size)

    def grid(args):
        v, k, b = args
        return _grid_search(utilities, v, k, b, low, high, points)

    def coordinate(args):
        v, k, b = args
        return _coordinate_search(utilities, v, k, b, low, high, lines, protocol.sweeps)

    # Each search batches as many profiles as its own rows allow (2**16 rows: starts x bidders for the gradient
    # search, reports for the grid), so the gradient steps run on large matmuls rather than the grid's few profiles.
    def batch(rows_per_profile: int) -> int:
        return max(1, min(protocol.profile_chunk, 2**16 // rows_per_profile))

    grad_gain, grid_gain, menu_gain, coordinate_gain = none, none, none, none
    if lines:
        coordinate_gain = jax.lax.map(coordinate, (values, keys, base), batch_size=batch(n * (lines + 2 * n)))
    if use_gradient:
        grad_gain = jax.lax.map(gradient, (values, keys, base, profile_keys),
                                batch_size=batch(n * (protocol.random_starts + 1)))  # fmt: skip
    if points and not menu:
        grid_gain = jax.lax.map(grid, (values, keys, base), batch_size=batch(n * protocol.grid_reports(n, m)))
    if menu:

        def enumerate_entries(allocations: Array, prices: Array) -> Array:
            def gain(args):
                v, k = args
                return _entries_gain(allocations, prices, utility, v, mechanism.apply(params, v, k))

            return jax.lax.map(gain, (values, keys), batch_size=protocol.profile_chunk)

        menu_gain = enumerate_entries(*mechanism.menu(params))
        if points:
            # One bidder: the grid's reports are the same for every profile, and a menu mechanism is
            # deterministic, so each report's outcome is computed once and the profiles enumerate those outcomes
            # (the generic grid search would evaluate the whole menu once per report and profile).
            reports = _candidates(values[0], 0, low, high, points)  # [R, m]
            outcomes = jax.vmap(lambda r: mechanism.apply(params, r[None], keys[0]))(reports)
            grid_gain = enumerate_entries(outcomes.allocation[:, 0], outcomes.payments[:, 0])
    if per_bidder:

        def bidder_entries(args):
            v, k = args
            own = mechanism.apply(params, v, k)
            return jnp.concatenate([_entries_gain(*mechanism.bidder_menu(params, v, i), utility, v, own, i)
                                    for i in range(n)])  # fmt: skip

        menu_gain = jax.lax.map(bidder_entries, (values, keys), batch_size=protocol.profile_chunk)
    return ProfileRegret(base, revenue, grad_gain, grid_gain, menu_gain, coordinate_gain)


def interim_regret(
    mechanism: Mechanism,
    params: Params,
    prior: Any,
    key: PRNGKey,
    own: int = 256,
    others: int = 256,
    grid: int = 201,
    prior_params: Params | None = None,
    utility: Utility | None = None,
    utility_params: Params = (),
) -> Array:
    """``[n]``: each bidder's *interim* regret, ``E_{v_i}[max_r E_{v_-i}[u_i(r, v_-i; v_i) - u_i(v; v_i)]]``.

    Single item only. For ``own`` values of bidder ``i`` it averages the gain of
    each of ``grid`` reports (a dense grid, no breakpoints: the breakpoints move
    with ``v_-i``; the truthful report is one of them, with gain 0) over draws of
    the other bidders' values, and keeps the best report's gain. The maximum of
    sample means is biased upwards (it picks the report whose sample was lucky:
    +0.008 on 1/12 with 256 draws), so the estimate is *cross-fitted*: the
    ``others`` draws are split in two halves, the best report is chosen on one
    half and its gain measured on the other, both ways round, and averaged. A
    chosen report's measured gain is unbiased for that report, and a little
    below the best report's (it may pick a slightly worse one). Under first
    price with 2 truthful U[0,1] bidders it is ``E[v^2 / 4] = 1/12`` (ex post:
    1/6); the default sizes measure 0.0830 (``tests/test_exact.py``).
    """
    n, m = mechanism.n_bidders, mechanism.n_items
    if m != 1:
        raise ValueError(f"interim_regret covers one item; {mechanism.name} sells {m}")
    utility = utility or quasi_linear()
    prior_params = prior.init_params(n, m) if prior_params is None else prior_params
    low, high = prior.support(prior_params)
    k_own, k_others, k_mech = jax.random.split(key, 3)
    draw = jax.vmap(lambda k: prior.sample(k, prior_params).values)
    own_values, other_values = draw(jax.random.split(k_own, own)), draw(jax.random.split(k_others, others))
    mech_keys = jax.random.split(k_mech, others)

    utilities = _utilities(mechanism, params, utility, utility_params)

    if others < 2:
        raise ValueError(f"interim_regret cross-fits over two halves of the others' draws: others >= 2, got {others}")
    half = others // 2

    def gains(i: int, v_i: Array, report: Array) -> Array:
        """``[others]``: the gain of ``report`` against each draw of the others."""

        def one(v: Array, k: PRNGKey) -> Array:
            values = v.at[i].set(v_i)
            return utilities(values, values.at[i].set(report), k)[i] - utilities(values, values, k)[i]

        return jax.vmap(one)(other_values, mech_keys)

    def cross_fitted(i: int, reports: Array, v_i: Array) -> Array:
        table = jax.vmap(lambda r: gains(i, v_i, r))(reports)  # [G + 1, others]: the truthful report last
        first, second = jnp.mean(table[:, :half], axis=1), jnp.mean(table[:, half : 2 * half], axis=1)
        return (second[jnp.argmax(first)] + first[jnp.argmax(second)]) / 2

    def bidder(i: int) -> Array:
        reports = jnp.linspace(0.0, 1.0, grid)[:, None] * (high[i] - low[i]) + low[i]  # [G, 1]
        best = jax.lax.map(lambda v_i: cross_fitted(i, jnp.concatenate([reports, v_i[None]]), v_i), own_values[:, i])
        return jnp.maximum(jnp.mean(best), 0.0)

    return jnp.stack([bidder(i) for i in range(n)])


def deviation_utilities(
    mechanism: Mechanism,
    params: Params,
    values: Array,
    misreports: Array,
    key: PRNGKey,
    utility: Utility | None = None,
    utility_params: Params = (),
) -> Array:
    """``[n]``: bidder ``i``'s utility when it alone reports row ``i`` of ``misreports [n, m]``, the others truthful."""
    utilities = _utilities(mechanism, params, utility or quasi_linear(), utility_params)
    return jax.vmap(lambda i: utilities(values, values.at[i].set(misreports[i]), key)[i])(jnp.arange(values.shape[0]))


def refine_misreports(
    mechanism: Mechanism,
    params: Params,
    values: Array,
    misreports: Array,
    keys: PRNGKey,
    low: Array,
    high: Array,
    steps: int,
    step_size: float,
    unroll: int = 1,
    keep_best: bool = False,
) -> Array:
    """``steps`` projected Adam steps (a fresh Adam state, step ``step_size`` x the support's width) that raise
    every bidder's deviation utility from its misreport, for a batch ``values, misreports [D, n, m]``, keys ``[D]``.
    The mechanism's params are constants here. This is RegretNet's training-time search (one start per profile,
    cached between calls by the caller), which returns the last step's reports; ``keep_best``: the best report
    each bidder met on the way instead (the start included), as the audit keeps its best, so that a fixed step
    size circling a narrow peak does not hand back a worse report than it started from. ``evaluate`` runs the
    stronger protocol. ``unroll``: steps per iteration of the compiled loop (the same computation, equal up to
    float rounding; on a GPU, unrolling saves a loop round trip per step)."""
    params = jax.lax.stop_gradient(params)
    optimizer = optax.adam(step_size)
    batch = jax.vmap(deviation_utilities, (None, None, 0, 0, 0))

    def utilities(reports: Array) -> Array:
        return batch(mechanism, params, values, reports, keys)  # [D, n]

    def total(reports: Array) -> tuple[Array, Array]:
        u = utilities(reports)
        return jnp.sum(u), u

    utility_and_grad = jax.value_and_grad(total, has_aux=True)

    def step(carry, _):
        reports, opt_state, best, best_utility = carry
        if keep_best:
            (_, utility), grad = utility_and_grad(reports)
            wins = utility > best_utility
            best, best_utility = jnp.where(wins[..., None], reports, best), jnp.where(wins, utility, best_utility)
        else:  # the reference's step, exactly as before the option existed
            grad = jax.grad(lambda r: total(r)[0])(reports)
        updates, opt_state = optimizer.update(-grad, opt_state)
        return (jnp.clip(reports + updates * (high - low), low, high), opt_state, best, best_utility), None

    best_utility = jnp.full(misreports.shape[:2], -jnp.inf)
    init = (misreports, optimizer.init(misreports), misreports, best_utility)
    (reports, _, best, best_utility), _ = jax.lax.scan(step, init, None, length=steps, unroll=unroll)
    if not keep_best:
        return reports
    last = utilities(reports)
    return jnp.where((last > best_utility)[..., None], reports, best)


def best_misreports(
    mechanism: Mechanism,
    params: Params,
    values: Array,
    misreports: Array,
    keys: PRNGKey,
    low: Array,
    high: Array,
    key: PRNGKey,
    candidates: int,
    chunk: int = 64,
) -> Array:
    """``[D, n, m]``: per profile and bidder, the best of its misreport and ``candidates`` fresh uniform reports
    on the support (one draw per key of ``split(key, candidates)``), by that bidder's deviation utility (the
    first best wins: the misreport on a tie). Forward passes only, ``chunk`` candidates at a time. The
    training-time search's random restarts: a gradient search from one cached start misses deviations across a
    jump of the allocation, which a random report can land beyond (``--misreport-candidates``)."""
    params = jax.lax.stop_gradient(params)
    utilities = jax.vmap(deviation_utilities, (None, None, 0, 0, 0))
    fresh = jax.vmap(lambda k: jax.random.uniform(k, values.shape) * (high - low) + low)(
        jax.random.split(key, candidates))  # [C, D, n, m]
    tried = jnp.concatenate([misreports[None], fresh])
    scores = jax.lax.map(lambda r: utilities(mechanism, params, values, r, keys), tried, batch_size=chunk)
    best = jnp.argmax(scores, axis=0)  # [D, n]
    return jnp.take_along_axis(tried, best[None, :, :, None], axis=0)[0]


def batch_regret(mechanism: Mechanism, params: Params, values: Array, misreports: Array, keys: PRNGKey):
    """``(regret [n], revenue)``: each bidder's mean gain ``max(0, u_i(misreport) - u_i(truthful))`` over the batch
    ``[D, n, m]`` (differentiable in ``params``: RegretNet's ``rgt_i``), and the mean truthful revenue."""
    utility = quasi_linear()
    outcomes = jax.vmap(mechanism.apply, (None, 0, 0))(params, values, keys)
    truthful = jax.vmap(lambda v, o: utility.apply(Types(values=v), o, ()))(values, outcomes)
    deviate = jax.vmap(deviation_utilities, (None, None, 0, 0, 0))(mechanism, params, values, misreports, keys)
    return jnp.mean(jax.nn.relu(deviate - truthful), axis=0), jnp.mean(jnp.sum(outcomes.payments, axis=-1))


class RegretReport(NamedTuple):
    """What ``evaluate`` measured (means over ``profiles`` profiles; ``_se``: standard errors)."""

    revenue: float
    revenue_se: float
    regret_mean: float  # the mean over bidders of each bidder's mean ex post regret
    regret_se: float
    regret_per_bidder: tuple[float, ...]
    regret_over_revenue: float  # total regret (summed over bidders) / revenue
    regret_max: float  # the worst single-profile regret of any bidder
    ir_violation_rate: float  # share of (profile, bidder) pairs with truthful utility below -1e-5
    revenue_profiles: int  # profiles behind revenue, revenue_se and ir_violation_rate
    searches: tuple[str, ...]  # which searches ran: "gradient", "grid", "coordinate", "menu"
    skipped: tuple[str, ...]  # searches not run, and why (an exactly IC menu's gradient search)
    interim_regret_mean: float | None  # the interim (Bayesian) regret, mean over bidders (one item; else None)
    check_profiles: int | None  # the convergence check's subsample: the first check_profiles profiles
    regret_mean_check: float | None  # regret_mean of the protocol's search on that subsample
    regret_mean_stronger: float | None  # regret_mean of the stronger attack on that subsample (None: not run)
    regret_change: float | None  # regret_mean_stronger - regret_mean_check (like for like)
    profiles: int
    audit: str  # the preset
    protocol: dict[str, Any]  # the protocol as run (the preset's sizes filled in)
    audit_seconds: float  # the searches' time, compilation included
    work_per_profile: int  # the protocol's mechanism evaluations (a menu's scored entries) per profile

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._asdict().items()}


def check_words(report: dict[str, Any]) -> str:
    """The convergence check of a report (``RegretReport.as_dict()``, or pooled reports) in words."""
    if report.get("regret_mean_stronger") is None:
        skipped = report.get("skipped") or ()
        return "no convergence check" + (f" ({'; '.join(skipped)})" if skipped else "")
    return (f"x{report['protocol']['stronger']} check on {report['check_profiles']:,} profiles: "
            f"{report['regret_mean_check']:.3g} -> {report['regret_mean_stronger']:.3g}")  # fmt: skip


def summarize(found: ProfileRegret, revenue: Array | None = None, truthful: Array | None = None) -> dict[str, Any]:
    """Means, standard errors and extremes of ``profile_regret``'s results; revenue and IR from ``revenue [R]``
    and ``truthful [R, n]`` utilities when given (more profiles than the search's)."""
    regret = np.asarray(found.regret, np.float64)  # [P, n]
    rev = np.asarray(found.revenue if revenue is None else revenue, np.float64)
    truthful = found.truthful_utility if truthful is None else truthful
    P, R = regret.shape[0], rev.shape[0]
    per_profile_mean = regret.mean(axis=1)
    revenue_mean = float(rev.mean())
    return {
        "revenue": revenue_mean,
        "revenue_se": float(rev.std(ddof=1) / math.sqrt(R)) if R > 1 else float("nan"),
        "regret_mean": float(regret.mean()),
        "regret_se": float(per_profile_mean.std(ddof=1) / math.sqrt(P)) if P > 1 else float("nan"),
        "regret_per_bidder": tuple(float(x) for x in regret.mean(axis=0)),
        "regret_over_revenue": float(regret.mean(axis=0).sum() / revenue_mean) if revenue_mean > 0 else float("inf"),
        "regret_max": float(regret.max()),
        "ir_violation_rate": float(np.mean(np.asarray(truthful) < -IR_TOLERANCE)),
        "revenue_profiles": R,
    }


def evaluate(
    mechanism: Mechanism,
    params: Params,
    prior: Any,
    key: PRNGKey,
    protocol: Protocol = Protocol(),  # noqa: B008 - frozen
    prior_params: Params | None = None,
    utility: Utility | None = None,
    utility_params: Params = (),
    progress: bool = False,
) -> RegretReport:
    """Revenue, regret and IR of ``mechanism`` with truthful reports of values drawn from ``prior``.

    Runs ``protocol`` on ``protocol.profiles`` profiles, then (``stronger > 1``)
    the convergence check on the first ``check_profiles`` of them, and reports
    both. ``progress``: print the audit's cost (and the time expected, measured
    on the first chunk) to stderr before it runs, and a progress bar with an
    ETA. Every matmul runs at full float32 precision: on NVIDIA GPUs JAX's
    default lets float32 matmuls round through TF32 (10-bit mantissa), errors
    of about 1e-3 of a payoff that the search would report as regret.
    """
    with jax.default_matmul_precision("highest"):
        return _evaluate(mechanism, params, prior, key, protocol, prior_params, utility, utility_params, progress)


def describe(protocol: Protocol, n_bidders: int, n_items: int, menu: int = 0, per_bidder: bool = False) -> str:
    """The searches a protocol runs per profile, in words."""
    p = protocol.resolved()
    plan = p.searches(n_items, enumerated=menu > 0)
    parts = []
    if per_bidder:
        parts.append(f"bidder menu: {menu:,} entries")
    elif menu:
        parts.append(f"menu: {menu:,} entries")
    if plan["gradient"]:
        parts.append(f"gradient: {p.random_starts + 1} starts x {p.steps} steps")
    reports = p.grid_reports(n_bidders, n_items)
    if reports:
        parts.append(f"grid: {reports:,} reports" + (" (outcomes computed once)" if menu and not per_bidder else ""))
    if plan["coordinate"]:
        parts.append(f"coordinate: {p.sweeps} sweeps x {n_items} items x "
                     f"{plan['coordinate'] + 2 * (n_bidders - 1)} points")  # fmt: skip
    return f"{n_bidders} bidder(s) x ({', '.join(parts) or 'no search'}) per profile"


def _search(fn: Callable, arrays: tuple, count: int, label: str, progress: bool, on_first=None):
    """``fn`` (one compiled program) over the first ``count`` profiles of ``arrays``, in host chunks of equal
    size (the last one padded), with a progress bar; ``on_first(seconds, size, done)`` after the first chunk, or
    after the second when the first took under a second (then a warm-up, not the rate, dominates its time)."""
    size = min(count, max(256, -(-count // 20)))
    arrays = tuple(a[:count] for a in arrays)
    chunks = -(-count // size)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*(a[:size] for a in arrays)).compile()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, unit="profile", desc=label, file=sys.stderr, dynamic_ncols=True)
    parts = []
    for c in range(chunks):
        index = np.minimum(np.arange(c * size, (c + 1) * size), count - 1)  # the last chunk repeats a profile
        t0 = time.perf_counter()
        parts.append(jax.device_get(compiled(*(a[index] for a in arrays))))
        seconds = time.perf_counter() - t0
        if on_first is not None and (c == 1 or (c == 0 and (seconds >= 1.0 or chunks == 1))):
            on_first(seconds, size, min(count, (c + 1) * size))
            on_first = None
        if bar is not None:
            bar.update(min(size, count - c * size))
    if bar is not None:
        bar.close()
    found = jax.tree.map(lambda *xs: np.concatenate(xs)[:count], *parts)
    return found, time.perf_counter() - start


def _evaluate(mechanism, params, prior, key, protocol, prior_params, utility, utility_params,
              progress=False) -> RegretReport:  # fmt: skip
    check_scorable(prior, utility, "the regret evaluator")
    protocol = protocol.resolved()
    n, m = mechanism.n_bidders, mechanism.n_items
    menu = 0
    if mechanism.menu is not None:
        if n != 1:
            raise ValueError(f"{mechanism.name}: a menu mechanism sells to one bidder, this one has {n}")
        menu = int(jax.eval_shape(mechanism.menu, params)[1].shape[0])
    per_bidder = _per_bidder(mechanism)
    if per_bidder:
        zeros = jax.ShapeDtypeStruct((n, m), jnp.float32)
        menu = int(jax.eval_shape(lambda p, b: mechanism.bidder_menu(p, b, 0), params, zeros)[1].shape[0])
    searched = 4 * n * m + 8 + 4 * (5 * n + 1)  # values, key, results (utilities, revenue, four searches' gains)
    extra = max(protocol.revenue_profiles - protocol.profiles, 0)
    check_fits(2 * (protocol.profiles * searched + extra * (4 * n * m + 8 + 4 * (n + 1))),
               f"the regret audit of {protocol.profiles:,} profiles ({n} bidders x {m} items)",
               f"{searched} bytes per searched profile, x2 for the check's copy and temporaries")  # fmt: skip
    prior_params = prior.init_params(n, m) if prior_params is None else prior_params
    prior.check_params(prior_params)
    low, high = prior.support(prior_params)
    value_key, mech_key, search_key = jax.random.split(key, 3)
    values = jax.vmap(lambda k: prior.sample(k, prior_params).values)(jax.random.split(value_key, protocol.profiles))
    keys = jax.random.split(mech_key, protocol.profiles)
    search_keys = jax.random.split(search_key, protocol.profiles)
    skipped = []
    if menu and protocol.steps:
        skipped.append("gradient: an exactly IC menu has zero gradient almost everywhere; its menu is enumerated"
                       + (" per profile and bidder" if per_bidder else ""))  # fmt: skip
    check_on = protocol.stronger > 1 and not menu
    if menu and protocol.stronger > 1:
        skipped.append("stronger attack: enumerating the menu is exact (an upper bound on the regret)"
                       if per_bidder else "stronger attack: enumerating the menu is exact")  # fmt: skip
    check = min(protocol.check_profiles, protocol.profiles)
    strong = protocol.strengthened(m)
    say = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)  # noqa: E731
    main_work, check_work = protocol.work(n, m, menu, per_bidder), strong.work(n, m, menu) if check_on else 0
    say(f"regret audit ({protocol.audit}): {protocol.profiles:,} profiles, "
        f"{describe(protocol, n, m, menu, per_bidder)}"
        + (f"; convergence check x{protocol.stronger} on {check:,} profiles ({describe(strong, n, m, menu)})"
           if check_on else "; no convergence check")
        + f": {protocol.profiles * main_work + check * check_work:,} "
        + ("scored menu entries" if menu and not per_bidder else "mechanism evaluations"))  # fmt: skip

    def estimate(seconds: float, size: int, done: int) -> None:
        per = seconds / size
        rest = per * (protocol.profiles - done) + per * check * check_work / main_work
        say(f"{done:,} profiles done, the last {size:,} in {seconds:.2f} s: about {rest:.0f} s more on this device "
            f"({jax.devices()[0].device_kind})")  # fmt: skip

    def program(p: Protocol) -> Callable:
        return lambda v, k, sk: _profiles(mechanism, params, v, k, low, high, p, sk, utility, utility_params)

    found, seconds = _search(program(protocol), (values, keys, search_keys), protocol.profiles, "regret search",
                             progress, estimate)  # fmt: skip
    found = ProfileRegret(*(jnp.asarray(x) for x in found))
    revenue, truthful = found.revenue, found.truthful_utility
    extra = protocol.revenue_profiles - protocol.profiles
    if extra > 0:  # revenue and IR on more profiles: cheap, no search
        run = _truthful_outcomes(mechanism, prior, prior_params, jax.random.fold_in(value_key, 1),
                                 jax.random.fold_in(mech_key, 1), extra, utility, utility_params)  # fmt: skip
        rev_more, util_more = run(params)
        revenue = jnp.concatenate([revenue, rev_more])
        truthful = jnp.concatenate([truthful, util_more])
    stats = summarize(found, revenue, truthful)
    on_check = stronger = change = None
    if check_on:
        strong_found, strong_seconds = _search(program(strong), (values, keys, search_keys), check,
                                               "convergence check", progress)  # fmt: skip
        seconds += strong_seconds
        on_check = float(np.asarray(found.regret[:check], np.float64).mean())
        stronger = float(np.asarray(ProfileRegret(*strong_found).regret, np.float64).mean())
        change = stronger - on_check
    interim = None
    if m == 1 and protocol.interim:
        fn = jax.jit(lambda p, k: interim_regret(mechanism, p, prior, k, prior_params=prior_params, utility=utility,
                                                 utility_params=utility_params))  # fmt: skip
        interim = float(jnp.mean(fn(params, jax.random.fold_in(search_key, 1))))
    return RegretReport(
        **stats,
        searches=tuple(name for name, size in protocol.searches(m, enumerated=menu > 0).items() if size),
        skipped=tuple(skipped),
        interim_regret_mean=interim,
        check_profiles=check if check_on else None,
        regret_mean_check=on_check,
        regret_mean_stronger=stronger,
        regret_change=change,
        profiles=protocol.profiles,
        audit=protocol.audit,
        protocol=dataclasses.asdict(protocol),
        audit_seconds=seconds,
        work_per_profile=main_work,
    )


def _truthful_outcomes(mechanism: Mechanism, prior: Any, prior_params: Any, value_key: PRNGKey, mech_key: PRNGKey,
                       count: int, utility: Utility | None = None, utility_params: Params = ()) -> Callable:
    """A compiled ``params -> (revenue [count], truthful utility [count, n])`` on ``count`` value profiles drawn
    with ``value_key`` (the mechanism's randomness from ``mech_key``), 4,096 profiles at a time: the revenue of
    truthful reports without any search, shared by the audit's extra revenue profiles and ``sampled_revenue``."""
    utility = utility or quasi_linear()

    @jax.jit
    def run(params: Params) -> tuple[Array, Array]:
        values = jax.vmap(lambda k: prior.sample(k, prior_params).values)(jax.random.split(value_key, count))
        keys = jax.random.split(mech_key, count)

        def outcome(a: tuple[Array, PRNGKey]) -> tuple[Array, Array]:
            out = mechanism.apply(params, *a)
            return revenue_of(out), utility.apply(Types(values=a[0]), out, utility_params)

        return jax.lax.map(outcome, (values, keys), batch_size=4096)

    return run


def sampled_revenue(mechanism: Mechanism, params: Params, prior: Any, key: PRNGKey, profiles: int,
                    prior_params: Any = None, stacked: bool = False) -> np.ndarray:  # fmt: skip
    """``[profiles]`` the revenue of truthful reports on ``profiles`` fresh value profiles drawn with ``key`` (no
    search: what choosing among trained starts by revenue needs; compiled, 4,096 profiles at a time).
    ``stacked``: ``params`` carry a leading axis of ``R`` trained starts (as ``init`` under ``vmap`` makes
    them), all scored on the same profiles in one compiled call; the result is ``[R, profiles]``."""
    check_positive_int(profiles, "profiles")
    n, m = mechanism.n_bidders, mechanism.n_items
    prior_params = prior.init_params(n, m) if prior_params is None else prior_params
    prior.check_params(prior_params)
    value_key, mech_key = jax.random.split(key)
    run = _truthful_outcomes(mechanism, prior, prior_params, value_key, mech_key, profiles)
    revenue = jax.jit(jax.vmap(lambda p: run(p)[0]))(params) if stacked else run(params)[0]
    return np.asarray(revenue, np.float64)


def convergence_curve(
    mechanism: Mechanism,
    params: Params,
    prior: Any,
    key: PRNGKey,
    protocol: Protocol = Protocol(audit="quick"),  # noqa: B008 - frozen
    factors: tuple[int, ...] = (1, 2, 4, 8),
    prior_params: Params | None = None,
    utility: Utility | None = None,
    utility_params: Params = (),
) -> list[dict[str, Any]]:
    """The regret estimate against search effort: ``protocol`` strengthened ``k`` times (``Protocol.strengthened``:
    random starts, steps, sweeps and grid and line points multiplied) for each ``k`` of ``factors``, on the same
    profiles (the same ``key``), without the convergence check or extra revenue profiles. One row per ``k``:
    mechanism evaluations per profile, regret mean (+- s.e.) and max, and the audit's seconds (compile
    included). A curve that is still rising at the largest ``k`` says the estimate has not converged."""
    if not factors or any(int(k) != k or k < 1 for k in factors):
        raise ValueError(f"factors must be positive integers, got {factors!r}")
    base = dataclasses.replace(protocol.resolved(), interim=False, revenue_profiles=0)
    rows = []
    for k in factors:
        stronger = dataclasses.replace(base, stronger=int(k)).strengthened(mechanism.n_items)
        report = evaluate(mechanism, params, prior, key, dataclasses.replace(stronger, stronger=1), prior_params,
                          utility, utility_params)  # fmt: skip
        rows.append({"factor": int(k), "work_per_profile": report.work_per_profile, "regret_mean": report.regret_mean,
                     "regret_se": report.regret_se, "regret_max": report.regret_max,
                     "seconds": report.audit_seconds})  # fmt: skip
    return rows
