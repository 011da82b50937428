"""More rules of the original platform behind the shared signature: random allocation, procurement, entry fees,
multi-unit auctions and VCG for several items.

* ``random_allocation(n, reserve)``: the item goes to a uniformly random
  bidder among those bidding at least the reserve, who pays the reserve (a
  posted-price lottery). The original documents a random allocation mode
  but never built it (it crashes).
* ``procurement(n, rule, ceiling)``: a reverse auction. Bids are asks; the
  lowest ask at or below ``ceiling`` wins (ties uniformly) and is *paid*
  its ask (``first_price``) or ``min(second-lowest ask, ceiling)``
  (``second_price``): its payment is negative. Bidders' values are their
  costs; use the ``seller`` utility (``-payment - cost * allocation``).
* ``with_entry_fee(mechanism, fee)``: every participant (a bidder with a
  positive bid on some item) pays ``fee``; a bidder who bids 0 everywhere
  stays out and can win nothing. The original documents an entrance fee but
  never built it.
* ``multi_unit(n, units, pricing, reserve)``: ``units`` identical units, one
  per bidder at most; the ``units`` highest bids at or above the reserve win
  (ties uniformly). ``pay_as_bid``: winners pay their bids;
  ``uniform``: every winner pays ``max(highest losing bid, reserve)``. The
  allocation column sums to at most ``units`` (``Mechanism.units``, which
  the efficiency metric uses). The original's unwired
  ``uniform_multi_payment`` charges every bidder, winners or not: a bug,
  not reproduced.
* ``with_budgets(mechanism, budgets, penalties)``: per-auction budgets (the
  original's ``budget_with_punish``): a bidder who wins something and is
  charged more than its budget loses what it won (the items go unsold) and
  pays its penalty instead. Budgets and penalties are per-bidder params
  (``[n]``, sweepable); budgets are caps per auction, not depleting.
* ``vcg(n, m, decay)``: the welfare-maximising assignment of ``m`` items
  over every way of giving each item to a bidder or leaving it unsold
  (``(n + 1)^m`` assignments, enumerated), where a bidder winning the set
  ``S`` is worth ``sum_{j in S} b_j * decay^(|S| - 1)`` (the original's
  multi-item valuation; ``decay = 1``: additive, and VCG is per-item second
  price), with Clarke payments ``p_i = W*_{-i} - (W* - w_i)``. Ties go to
  the first assignment in enumeration order. The original enumerates only
  assignments that sell every item (``n^m``), which is not welfare
  maximising when ``decay < 1``: fixed here.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_bids, check_choice, check_finite, check_positive_int
from jaxauction._ops import kth_largest, prefix_sum
from jaxauction.mechanisms.allocation import highest_bid_allocation
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.rules import RuleParams, require_two
from jaxauction.types import Array, Outcome, Params, PRNGKey

PROCUREMENT_RULES = ("first_price", "second_price")
MULTI_UNIT_PRICING = ("pay_as_bid", "uniform")
VCG_ASSIGNMENT_LIMIT = 100_000


def _reserve_params(reserve: float) -> RuleParams:
    check_finite(reserve, "reserve", minimum=0.0)
    return RuleParams(reserve=jnp.asarray(reserve, jnp.float32), temperature=jnp.zeros((), jnp.float32))


def _uniform_pick(eligible: Array, key: PRNGKey) -> Array:
    """``[n]`` one-hot: a uniformly random eligible bidder (all zeros when none is)."""
    count = jnp.sum(eligible)
    pick = jnp.minimum(jnp.floor(jax.random.uniform(key, ()) * count), count - 1)
    return eligible & (prefix_sum(eligible.astype(jnp.int32)) - 1 == pick)


def random_allocation(n_bidders: int, reserve: float = 0.0) -> Mechanism:
    """A uniformly random bidder among those bidding at least ``reserve`` wins and pays ``reserve``."""
    require_two(n_bidders, "random_allocation")
    default = _reserve_params(reserve)

    def apply(params: RuleParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        won = _uniform_pick(bids[:, 0] >= params.reserve, key).astype(bids.dtype)
        return Outcome(allocation=won[:, None], payments=won * params.reserve)

    return Mechanism("random_allocation", n_bidders, 1, lambda key: default, apply)


def procurement(n_bidders: int, rule: str = "first_price", ceiling: float = 1e9) -> Mechanism:
    """A reverse auction: the lowest ask at or below ``ceiling`` wins and is paid (a negative payment)."""
    require_two(n_bidders, "procurement")
    check_choice(rule, PROCUREMENT_RULES, "procurement rule")
    check_finite(ceiling, "ceiling", positive=True)
    default = _reserve_params(ceiling)

    def apply(params: RuleParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        asks = bids[:, 0]
        # the lowest ask is the highest negated ask; it must clear -ceiling
        won = highest_bid_allocation(-asks, key, -params.reserve)
        if rule == "first_price":
            price = asks
        else:
            price = jnp.minimum(-kth_largest(-asks, 2), params.reserve)
        return Outcome(allocation=won[:, None], payments=-won * price)

    return Mechanism(f"procurement_{rule}", n_bidders, 1, lambda key: default, apply)


def with_entry_fee(mechanism: Mechanism, fee: float) -> Mechanism:
    """``mechanism`` where every participant (a positive bid on some item) pays ``fee`` and only they can win.

    Params: ``(inner params, fee)``, the fee an array (a sweep is a ``vmap``).
    """
    check_finite(fee, "entry fee", minimum=0.0)
    n, m = mechanism.n_bidders, mechanism.n_items

    def init(key: PRNGKey) -> tuple[Params, Array]:
        return mechanism.init(key), jnp.asarray(fee, jnp.float32)

    def apply(params: tuple[Params, Array], bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n, m)
        inner, entry = params
        participates = jnp.any(bids > 0, axis=-1)
        out = mechanism.apply(inner, bids, key)
        allocation = out.allocation * participates[:, None]
        payments = jnp.where(participates, out.payments + entry, 0.0)
        return Outcome(allocation=allocation, payments=payments)

    return dataclasses.replace(mechanism, name=f"{mechanism.name}+entry_fee", init=init, apply=apply)


class BudgetParams(NamedTuple):
    """``with_budgets``'s params: the inner rule's params, each bidder's per-auction budget, and what a bidder over its
    budget pays instead."""

    inner: Params
    budgets: Array  # [n] float32 per-auction budgets
    penalties: Array  # [n] float32 what a bidder over its budget pays instead


def _per_bidder(value: float | tuple[float, ...], n: int, name: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, np.float64), (n,)) if np.ndim(value) == 0 else np.asarray(value, np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} needs one number or one per bidder ({n}), got {value!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {arr.tolist()}")
    return arr.astype(np.float32)


def with_budgets(mechanism: Mechanism, budgets: float | tuple[float, ...], penalties: float | tuple[float, ...] = 0.0
                 ) -> Mechanism:  # fmt: skip
    """``mechanism`` under per-auction budgets: a winner charged above its budget loses its items, pays its penalty."""
    n = mechanism.n_bidders
    b, p = _per_bidder(budgets, n, "budgets"), _per_bidder(penalties, n, "penalties")

    def init(key: PRNGKey) -> BudgetParams:
        return BudgetParams(mechanism.init(key), jnp.asarray(b), jnp.asarray(p))

    def apply(params: BudgetParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n, mechanism.n_items)
        out = mechanism.apply(params.inner, bids, key)
        over = (jnp.sum(out.allocation, axis=-1) > 0) & (out.payments > params.budgets)
        return Outcome(
            allocation=jnp.where(over[:, None], 0.0, out.allocation),
            payments=jnp.where(over, params.penalties, out.payments),
        )

    return dataclasses.replace(mechanism, name=f"{mechanism.name}+budgets", init=init, apply=apply)


def multi_unit(n_bidders: int, units: int, pricing: str = "uniform", reserve: float = 0.0) -> Mechanism:
    """``units`` identical units to the highest bids (one each); pay-as-bid or a uniform price."""
    require_two(n_bidders, "multi_unit")
    check_positive_int(units, "units")
    if units >= n_bidders:
        raise ValueError(f"multi_unit sells units ({units}) to fewer than n_bidders ({n_bidders}) bidders; "
                         "with as many units as bidders every bid at the reserve wins")  # fmt: skip
    check_choice(pricing, MULTI_UNIT_PRICING, "multi-unit pricing")
    default = _reserve_params(reserve)

    def apply(params: RuleParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        b = bids[:, 0]
        # a random priority breaks ties: sort by (bid, priority), both descending
        priority = jax.random.uniform(key, (n_bidders,))
        above = (b[None, :] > b[:, None]) | ((b[None, :] == b[:, None]) & (priority[None, :] > priority[:, None]))
        rank = jnp.sum(above, axis=1)  # 0 = the highest bid
        won = (rank < units) & (b >= params.reserve)
        if pricing == "pay_as_bid":
            price = b
        else:
            highest_losing = jnp.max(jnp.where(rank == units, b, -jnp.inf))
            price = jnp.maximum(highest_losing, params.reserve)
        w = won.astype(b.dtype)
        return Outcome(allocation=w[:, None], payments=w * price)

    return Mechanism(f"multi_unit_{pricing}", n_bidders, 1, lambda key: default, apply, units=units)


def assignments(n_bidders: int, n_items: int) -> np.ndarray:
    """``[(n + 1)^m, m]`` every assignment of items to bidders ``0..n-1`` or to nobody (``n``)."""
    return np.array(list(itertools.product(range(n_bidders + 1), repeat=n_items)), np.int32)


def vcg(n_bidders: int, n_items: int, decay: float = 1.0) -> Mechanism:
    """VCG over ``n_items`` items with the original's decayed multi-item valuation (``decay = 1``: additive)."""
    require_two(n_bidders, "vcg")
    check_positive_int(n_items, "n_items")
    check_finite(decay, "decay", positive=True)
    if decay > 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    if (n_bidders + 1) ** n_items > VCG_ASSIGNMENT_LIMIT:
        raise ValueError(f"vcg enumerates (n + 1)^m = {(n_bidders + 1) ** n_items} assignments, more than "
                         f"{VCG_ASSIGNMENT_LIMIT}: use fewer bidders or items")  # fmt: skip
    table = jnp.asarray(assignments(n_bidders, n_items))
    owner = jax.nn.one_hot(table, n_bidders + 1)[..., :n_bidders]  # [A, m, n]: item j of assignment a to bidder i

    def apply(params: Params, bids: Array, key: PRNGKey) -> Outcome:
        del params, key
        check_bids(bids, n_bidders, n_items)
        won = jnp.sum(owner, axis=1)  # [A, n] items each bidder wins
        total = jnp.einsum("amn,nm->an", owner, bids)  # [A, n] the sum of its winning bids
        worth = total * jnp.where(won > 0, decay ** jnp.maximum(won - 1, 0), 0.0)
        welfare = jnp.sum(worth, axis=1)  # [A]
        best = jnp.argmax(welfare)
        others = welfare[:, None] - worth  # [A, n] the welfare of everyone but i
        without = jnp.max(jnp.where(won == 0, others, -jnp.inf), axis=0)  # W*_{-i}: assignments giving i nothing
        payments = without - (welfare[best] - worth[best])
        return Outcome(allocation=jnp.swapaxes(owner[best], 0, 1), payments=payments)

    name = "vcg" if decay == 1 else f"vcg(decay {decay:g})"
    return Mechanism(name, n_bidders, n_items, lambda key: (), apply)
