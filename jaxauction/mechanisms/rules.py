"""The classical auction rules behind the shared signature, and simultaneous per-item auctions.

Every single-item rule is a ``Mechanism`` with ``n_items = 1``: it takes
``bids [n, 1]`` and returns ``allocation [n, 1]``. ``simultaneous(rules)``
sells ``m`` items at once, item ``j`` by ``rules[j]``; a bidder pays the sum
of its payments.

Rules take ``RuleParams(reserve, temperature)``, both arrays, so populations
of rules vmap over reserves. The item goes to the highest bid (ties broken
uniformly) when it clears the reserve; otherwise it stays unsold.

* ``first_price``: the winner pays its bid.
* ``second_price``: the winner pays ``max(second-highest bid, reserve)``;
  tied top bids pay the tied bid.
* ``third_price``: the winner pays ``max(third-highest bid, reserve)``; with
  fewer than 3 bidders, the lowest bid (the original platform's fallback).
* ``all_pay``: every bid that clears the reserve is *entered* and pays
  itself; bids below the reserve are not entered and pay nothing.
* ``discrete_myerson``: Myerson's auction on a bid grid: the highest bid
  clearing the reserve pays its tie-adjusted threshold (dominant-strategy
  truthful on the grid).

``temperature > 0`` replaces the hard reserve by a smooth relaxation (see
``allocation.entry_probability``); it is 0 by default.

``prize_all_pay(n, prizes)`` is the all-pay contest with a prize vector
(params ``PrizeParams(prizes [n], reserve)``): every entered bid pays itself,
and the bidder ranked ``k`` (0 = highest) receives the share ``prizes[k]``
of the item (its allocation; shares sum to at most 1). Tied bidders split
the prizes of the ranks they occupy equally, so the rule needs no
randomness. ``(w, 1 - w, 0)`` is the original's all-pay example (Gemp et
al. 2022); ``(1, 0, ..., 0)`` is the standard all-pay auction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_bids, check_finite, check_positive_int, is_concrete
from jaxauction._ops import kth_largest
from jaxauction.mechanisms.allocation import entry_probability, highest_bid_allocation
from jaxauction.mechanisms.base import Mechanism
from jaxauction.types import Array, Outcome, Params, PRNGKey


class RuleParams(NamedTuple):
    """The classical rules' params: the reserve (the lowest bid that may win) and the temperature of its smooth
    relaxation (0: the hard reserve)."""

    reserve: Array  # scalar float32: the lowest bid that may win
    temperature: Array  # scalar float32: 0 for the hard reserve, > 0 for its smooth relaxation


def require_two(n: int, name: str) -> None:
    if n < 2:
        raise ValueError(f"{name} needs at least 2 bidders, got {n}")


# pay(bids [n], allocation [n], params) -> payments [n]
Payment = Callable[[Array, Array, RuleParams], Array]


def single_item_rule(name: str, n_bidders: int, reserve: float, temperature: float, pay: Payment,
                     fewest: int = 2) -> Mechanism:  # fmt: skip
    """A highest-bid rule with payment ``pay`` for one item, behind the shared signature, for at least ``fewest``
    bidders."""
    if n_bidders < fewest:
        raise ValueError(f"{name} needs at least {fewest} bidders, got {n_bidders}")
    check_finite(reserve, "reserve", minimum=0.0)
    check_finite(temperature, "temperature", minimum=0.0)

    def init(key: PRNGKey) -> RuleParams:
        del key
        return RuleParams(reserve=jnp.asarray(reserve, jnp.float32), temperature=jnp.asarray(temperature, jnp.float32))

    def apply(params: RuleParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        b = bids[:, 0]
        allocation = highest_bid_allocation(b, key, params.reserve, params.temperature)
        return Outcome(allocation=allocation[:, None], payments=pay(b, allocation, params))

    return Mechanism(name=name, n_bidders=n_bidders, n_items=1, init=init, apply=apply)


def _hard_reserve(params: RuleParams) -> Array:
    """The reserve as a price: differentiable only under the smooth relaxation (see ``entry_probability``)."""
    return jnp.where(params.temperature > 0, params.reserve, jax.lax.stop_gradient(params.reserve))


def first_price(n_bidders: int, reserve: float = 0.0, temperature: float = 0.0) -> Mechanism:
    """The winner pays its own bid (one bidder too: then a bid at or above the reserve buys at itself)."""
    check_positive_int(n_bidders, "n_bidders")
    return single_item_rule("first_price", n_bidders, reserve, temperature, lambda b, a, p: a * b, fewest=1)


def _kth_price(k: int) -> Payment:
    """The winner pays max(k-th highest bid, reserve)."""
    return lambda b, a, p: a * jnp.maximum(kth_largest(b, k), _hard_reserve(p))


def second_price(n_bidders: int, reserve: float = 0.0, temperature: float = 0.0) -> Mechanism:
    """The winner pays max(second-highest bid, reserve); tied top bids pay the tied bid."""
    return single_item_rule("second_price", n_bidders, reserve, temperature, _kth_price(2))


def third_price(n_bidders: int, reserve: float = 0.0, temperature: float = 0.0) -> Mechanism:
    """The winner pays max(third-highest bid, reserve); with n < 3, the lowest bid (the original's fallback)."""
    return single_item_rule("third_price", n_bidders, reserve, temperature, _kth_price(3))


def discrete_myerson(n_bidders: int, reserve: float = 0.0, step: float = 1.0) -> Mechanism:
    """Myerson's optimal auction for i.i.d. values on a grid of ``step`` with increasing virtual values (integer
    values uniform on 0..H: ``reserve = ceil(H / 2)``): the highest bid at or above the reserve wins (ties
    uniformly) and pays its threshold, tie-adjusted. A winner pays the reserve when no other bid clears it, its
    own bid when tied, and otherwise ``h + step k / (k + 1)``, ``h`` the highest other bid and ``k`` the other
    bids at ``h``: the payment identity on the grid, so bidding one's value is a dominant strategy there. A bid
    off the grid, less than a step above ``h``, pays at most itself.
    Truthful bidders with values uniform on 0..9 pay 5.275 (reserve 5), Myerson's optimum; second price with
    reserve 5 earns 5.075."""
    check_finite(step, "step", positive=True)

    def pay(b: Array, a: Array, p: RuleParams) -> Array:
        others = jnp.where(a > 0, -jnp.inf, b)  # the winner's rivals (a is one-hot, or all zero: no sale)
        h = jnp.max(others)
        k = jnp.sum(others == h)
        top = jnp.sum(a * b)
        price = jnp.where(h < p.reserve, p.reserve, jnp.where(top == h, top, h + step * k / (k + 1)))
        return a * jnp.minimum(price, top)  # never above the bid (a bid off the grid, within a step of h)

    return single_item_rule("discrete_myerson", n_bidders, reserve, 0.0, pay)


def all_pay(n_bidders: int, reserve: float = 0.0, temperature: float = 0.0) -> Mechanism:
    """Every entered bid (at or above the reserve) pays itself; the highest entered bid wins."""
    return single_item_rule(
        "all_pay", n_bidders, reserve, temperature, lambda b, a, p: b * entry_probability(b, p.reserve, p.temperature)
    )


class PrizeParams(NamedTuple):
    prizes: Array  # [n] float32: the share of the item for each rank (0 = the highest bid)
    reserve: Array  # scalar float32: bids below it are not entered (pay nothing, win nothing)


def check_prizes(prizes: Array, n_bidders: int) -> None:
    """Prize shares: one per rank (at most ``n_bidders``), non-negative, finite, summing to at most 1."""
    arr = np.asarray(prizes, np.float64)
    if arr.ndim != 1 or not 1 <= arr.shape[0] <= n_bidders:
        raise ValueError(f"prizes must be a vector of 1..{n_bidders} shares (one per rank), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"prizes must be finite and non-negative, got {arr.tolist()}")
    if arr.sum() > 1 + 1e-6:
        raise ValueError(
            f"prizes share one item, so they must sum to at most 1, got {arr.tolist()} (sum {arr.sum():g})"
        )


def prize_shares(bids: Array, prizes: Array, entered: Array) -> Array:
    """``[n]`` each bidder's share: the mean of the prizes of the ranks it occupies among the entered bids."""
    n = bids.shape[0]
    cumulative = jnp.concatenate([jnp.zeros(1, prizes.dtype), jnp.cumsum(prizes)])  # sum of the first k prizes
    live = jnp.where(entered, bids, -jnp.inf)
    above = jnp.sum(live[None, :] > live[:, None], axis=1)  # entered bids strictly higher
    tied = jnp.sum(live[None, :] == live[:, None], axis=1)  # including itself
    shares = (cumulative[jnp.minimum(above + tied, n)] - cumulative[jnp.minimum(above, n)]) / tied
    return jnp.where(entered, shares, 0.0)


def prize_all_pay(n_bidders: int, prizes: Sequence[float] = (1.0,), reserve: float = 0.0) -> Mechanism:
    """All-pay with prize shares by rank: every entered bid pays itself; rank ``k`` gets ``prizes[k]`` of the item."""
    require_two(n_bidders, "prize_all_pay")
    check_prizes(prizes, n_bidders)
    check_finite(reserve, "reserve", minimum=0.0)
    padded = np.zeros(n_bidders, np.float32)
    padded[: len(prizes)] = prizes

    def init(key: PRNGKey) -> PrizeParams:
        del key
        return PrizeParams(prizes=jnp.asarray(padded), reserve=jnp.asarray(reserve, jnp.float32))

    def apply(params: PrizeParams, bids: Array, key: PRNGKey) -> Outcome:
        del key
        check_bids(bids, n_bidders, 1)
        if is_concrete(params.prizes):
            check_prizes(params.prizes, n_bidders)
        b = bids[:, 0]
        entered = b >= params.reserve
        shares = prize_shares(b, params.prizes, entered)
        return Outcome(allocation=shares[:, None], payments=jnp.where(entered, b, 0.0))

    return Mechanism(name="prize_all_pay", n_bidders=n_bidders, n_items=1, init=init, apply=apply)


RULES: dict[str, Callable[..., Mechanism]] = {
    "first_price": first_price,
    "second_price": second_price,
    "third_price": third_price,
    "all_pay": all_pay,
}


def simultaneous(rules: Sequence[Mechanism], decay: float = 1.0) -> Mechanism:
    """Sell ``m = len(rules)`` items at once, item ``j`` by the single-item ``rules[j]``.

    Params are the tuple of the rules' params; item ``j`` uses the ``j``-th key
    of ``split(key, m)`` (one item uses ``key`` itself, so ``simultaneous([r])``
    is ``r``). A bidder pays the sum of its per-item payments, times
    ``decay^(k - 1)`` when it wins ``k >= 1`` items (the original's
    multi-item payment decay; the original multiplies by ``decay^k`` for
    ``k > 1``, which skips ``decay^1``: taken here as a bug, and the
    exponent is ``k - 1`` as in its VCG valuation).
    """
    check_finite(decay, "decay", positive=True)
    if decay > 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    rules = tuple(rules)
    if not rules:
        raise ValueError("simultaneous needs at least one rule")
    n = rules[0].n_bidders
    for rule in rules:
        if rule.n_items != 1:
            raise ValueError(f"simultaneous takes single-item rules; {rule.name!r} sells {rule.n_items} items")
        if rule.n_bidders != n:
            raise ValueError(f"every rule must be built for {n} bidders; {rule.name!r} is built for {rule.n_bidders}")
    if len({rule.units for rule in rules}) > 1:
        raise ValueError(f"simultaneous rules must sell as many units each, got {[r.units for r in rules]}")
    m = len(rules)
    names = [r.name for r in rules]
    name = f"simultaneous({names[0]} x {m})" if len(set(names)) == 1 else f"simultaneous({', '.join(names)})"
    name = name if decay == 1 else f"{name[:-1]}, decay {decay:g})"

    def item_keys(key: PRNGKey) -> Sequence[PRNGKey]:
        return [key] if m == 1 else list(jax.random.split(key, m))

    def init(key: PRNGKey) -> tuple[Params, ...]:
        return tuple(rule.init(k) for rule, k in zip(rules, item_keys(key), strict=True))

    def apply(params: tuple[Params, ...], bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n, m)
        outcomes = [
            rule.apply(p, bids[:, j : j + 1], k)
            for j, (rule, p, k) in enumerate(zip(rules, params, item_keys(key), strict=True))
        ]
        allocation = jnp.concatenate([o.allocation for o in outcomes], axis=-1)
        payments = sum(o.payments for o in outcomes)
        if decay != 1:
            won = jnp.sum(allocation, axis=-1)
            payments = payments * decay ** jnp.maximum(won - 1, 0)
        return Outcome(allocation=allocation, payments=payments)

    return Mechanism(
        name=name, n_bidders=n, n_items=m, init=init, apply=apply, trainable=any(r.trainable for r in rules),
        units=rules[0].units,
    )  # fmt: skip
