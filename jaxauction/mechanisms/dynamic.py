"""Dynamic mechanisms: a rule whose params change over the horizon of repeated auctions.

A dynamic mechanism keeps the one signature. Its params are ``DynamicParams(schedule, tau)``: the numbers of
the schedule (what is designed or trained) and ``tau`` in ``[0, 1)``, the auction's place in the horizon. The
market sets ``tau = t / T`` before auction ``t`` of a round of ``T`` (``set_time``: every ``DynamicParams`` in a
params tree, so a dynamic rule inside ``simultaneous``, an entry fee or budgets keeps its clock); ``apply``
plays the base rule with the params ``resolve(schedule, tau)``. Static rules have no ``DynamicParams`` and
``set_time`` leaves them alone.

Against learning bidders a rule that changes over time can earn more than any static one: Braverman, Mao,
Schneider and Weinberg, "Selling to a No-Regret Buyer" (EC 2018, arXiv:1711.09176), and Cai, Weinberg,
Wildenhain and Zhang, "Selling to Multiple No-Regret Buyers" (arXiv:2307.04175).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxauction._checks import check_bids, check_finite, check_positive_int, hidden_widths
from jaxauction.mechanisms.allocation import highest_bid_allocation
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.rules import first_price
from jaxauction.types import Array, Outcome, Params, PRNGKey


class DynamicParams(NamedTuple):
    """A dynamic rule's params: its ``schedule`` and the auction's place in the horizon, ``tau`` in ``[0, 1)``."""

    schedule: Params
    tau: Array  # float32 scalar, set by the market (``set_time``)


def _is_dynamic(x: object) -> bool:
    return isinstance(x, DynamicParams)


def set_time(params: Params, tau: Array | float) -> Params:
    """``params`` with every dynamic rule's clock at ``tau`` (the fraction of the horizon played so far)."""
    tau = jnp.asarray(tau, jnp.float32)
    return jax.tree.map(lambda p: p._replace(tau=tau) if _is_dynamic(p) else p, params, is_leaf=_is_dynamic)


def dynamic(
    mechanism: Mechanism,
    resolve: Callable[[Params, Array], Params],
    init_schedule: Callable[[PRNGKey], Params],
    name: str | None = None,
) -> Mechanism:
    """``mechanism`` played with the params ``resolve(schedule, tau)`` at the point ``tau`` of the horizon;
    ``init_schedule(key)`` gives the schedule's initial numbers (a network of ``tau``, phases, ...)."""

    def init(key: PRNGKey) -> DynamicParams:
        return DynamicParams(init_schedule(key), jnp.zeros((), jnp.float32))

    def apply(params: DynamicParams, bids: Array, key: PRNGKey) -> Outcome:
        return mechanism.apply(resolve(params.schedule, params.tau), bids, key)

    return Mechanism(
        name=name or f"dynamic({mechanism.name})",
        n_bidders=mechanism.n_bidders,
        n_items=mechanism.n_items,
        init=init,
        apply=apply,
        trainable=mechanism.trainable,
        units=mechanism.units,
    )


def phase(tau: Array, phases: int) -> Array:
    """The phase ``min(floor(tau * phases), phases - 1)`` of the point ``tau`` of the horizon (int32)."""
    return jnp.clip(jnp.floor(tau * phases), 0, phases - 1).astype(jnp.int32)


def phased(mechanism: Mechanism, phases: int) -> Mechanism:
    """``mechanism`` with its own params in each of ``phases`` equal parts of the horizon: the schedule stacks
    ``phases`` copies of its params (``[phases, ...]`` leaves, each phase's numbers set or trained apart).
    Piecewise-constant rules over time: pay-your-bid with decreasing reserves, for example."""
    check_positive_int(phases, "phases")

    def init_schedule(key: PRNGKey) -> Params:
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (phases, *jnp.shape(x))), mechanism.init(key))

    def resolve(schedule: Params, tau: Array) -> Params:
        return jax.tree.map(lambda x: x[phase(tau, phases)], schedule)

    return dynamic(mechanism, resolve, init_schedule, f"{mechanism.name}+phases{phases}")


class TeaserParams(NamedTuple):
    """``teaser_first_price``'s schedule: the pay-your-bid rule's params, the share of its bid a winner pays
    during the teaser, and the share of the horizon the teaser lasts."""

    rule: Params  # first price's RuleParams (reserve, temperature)
    discount: Array  # float32 in [0, 1]: a winner pays discount x its bid while tau < teaser
    teaser: Array  # float32 in [0, 1]: the teaser's share of the horizon


def check_teaser(discount: float, teaser: float) -> None:
    """The teaser's discount and its share of the horizon are numbers in [0, 1]."""
    for name, x in (("discount", discount), ("teaser", teaser)):
        check_finite(x, name)
        if not 0 <= x <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {x}")


def teaser_share(discount: Array, teaser: Array, tau: Array, width: float = 0.0) -> Array:
    """The share of its bid a winner pays at the point ``tau`` of the horizon: ``discount`` while ``tau < teaser``,
    1 after. ``width > 0`` smooths the step over about ``width`` of the horizon (``1 - (1 - discount)
    sigmoid((teaser - tau) / width)``), so that the teaser's length has a gradient (``train.expected_dynamics``)."""
    if width == 0:
        return jnp.where(tau < teaser, discount, 1.0)
    return 1.0 - (1.0 - discount) * jax.nn.sigmoid((teaser - tau) / width)


def teaser_first_price(n_bidders: int, discount: float = 0.2, teaser: float = 0.7, reserve: float = 0.0) -> Mechanism:
    """Pay-your-bid at a discount for the first ``teaser`` share of the horizon, then full pay-your-bid.

    The highest bid at or above the reserve wins (ties uniformly); the winner pays ``discount`` x its bid while
    ``tau < teaser``, its bid afterwards. It follows the idea of Braverman, Mao, Schneider and Weinberg's
    (EC 2018) full-welfare auction, cheap at first and dear later, for several bidders; it is not the papers'
    exact mechanism (see ``docs/dynamic.md``). A mean-based learner
    whose bid grid reaches above its value learns to bid about ``1 / discount`` times what it would bid in
    first price; the allocation is efficient because bids rise with values; after the teaser it keeps
    overbidding, and paying above its value, until the utility those bids banked during the teaser is spent.
    Against bidders who cannot bid above their values it charges their values (bids at the cap) until shading
    catches up. Both parameters are numbers of the params (ES or a sweep can tune them)."""
    check_teaser(discount, teaser)
    rule = first_price(n_bidders, reserve)

    def init(key: PRNGKey) -> DynamicParams:
        schedule = TeaserParams(rule.init(key), jnp.asarray(discount, jnp.float32), jnp.asarray(teaser, jnp.float32))
        return DynamicParams(schedule, jnp.zeros((), jnp.float32))

    def apply(params: DynamicParams, bids: Array, key: PRNGKey) -> Outcome:
        s = params.schedule
        outcome = rule.apply(s.rule, bids, key)
        return outcome._replace(payments=outcome.payments * teaser_share(s.discount, s.teaser, params.tau))

    return Mechanism(name="teaser_first_price", n_bidders=n_bidders, n_items=1, init=init, apply=apply)


def check_declining(reserves: Sequence[float]) -> None:
    """At least one reserve, each finite and >= 0, none above the one before."""
    if not len(reserves):
        raise ValueError("give at least one reserve")
    for r in reserves:
        check_finite(r, "reserves", minimum=0.0)
    if any(b > a for a, b in zip(reserves[:-1], reserves[1:], strict=True)):
        raise ValueError(f"the reserves must not increase over the horizon, got {tuple(reserves)}")


def declining_reserve_first_price(n_bidders: int, reserves: Sequence[float] = (5.0, 4.0, 3.0)) -> Mechanism:
    """Pay-your-bid with reserves that fall over the horizon: ``K = len(reserves)`` equal phases, the highest bid
    at or above phase ``k``'s reserve ``reserves[k]`` wins (ties uniformly) and pays its bid.

    The format Braverman, Mao, Schneider and Weinberg (EC 2018) show optimal among the "natural" auctions, where
    overbidding is dominated, against a mean-based buyer: the buyer learns to bid high while only high bids win
    and keeps bidding high, on the utility it banked, after the reserve has fallen. The schedule is first
    price's ``RuleParams`` with a ``[K]`` reserve (params: ES or a sweep can tune them)."""
    check_declining(reserves)
    rule = first_price(n_bidders)
    phases = len(reserves)

    def init_schedule(key: PRNGKey) -> Params:
        return rule.init(key)._replace(reserve=jnp.asarray(reserves, jnp.float32))

    def resolve(schedule: Params, tau: Array) -> Params:
        return schedule._replace(reserve=schedule.reserve[phase(tau, phases)])

    return dynamic(rule, resolve, init_schedule, "declining_reserve_first_price")


class ScheduleNet(nn.Module):
    """``learned_dynamic_first_price``'s network: ``(bid / bid_scale, tau) -> `` the logit of the share of its
    bid a winner pays, and ``tau ->`` the logit of the reserve (a share of ``bid_scale``), each through its own
    tanh layers of widths ``hidden``. The reserve head starts near 0 (bias -4), the share head at one half."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, x: Array, tau: Array) -> tuple[Array, Array]:
        h = jnp.stack([x, jnp.broadcast_to(tau, x.shape)], axis=-1)
        for i, width in enumerate(self.hidden):
            h = jnp.tanh(nn.Dense(width, name=f"share_{i}")(h))
        share = nn.Dense(1, name="share_out")(h)[..., 0]
        g = jnp.reshape(tau, (1,))
        for i, width in enumerate(self.hidden):
            g = jnp.tanh(nn.Dense(width, name=f"reserve_{i}")(g))
        reserve = nn.Dense(1, name="reserve_out", bias_init=nn.initializers.constant(-4.0))(g)[0]
        return share, reserve


def learned_schedule(hidden: Sequence[int], bid_scale: float,
                     static: bool = False) -> Callable[[Params, Array, Array], tuple[Array, Array]]:  # fmt: skip
    """``(params, bids, tau) -> (share [..], reserve)``: ``ScheduleNet``'s share of each bid a winner pays and the
    reserve at ``tau``, ``bid_scale x sigmoid``; one definition for the rule and its expected dynamics.
    ``static``: the network sees ``tau = 0`` at every point of the horizon (a learned static rule)."""
    net = ScheduleNet(hidden_widths(hidden))

    def outputs(params: Params, bids: Array, tau: Array) -> tuple[Array, Array]:
        tau = jnp.zeros((), jnp.float32) if static else jnp.asarray(tau, jnp.float32)
        share, reserve = net.apply(params, bids / bid_scale, tau)
        return jax.nn.sigmoid(share), bid_scale * jax.nn.sigmoid(reserve)

    return outputs


def learned_dynamic_first_price(n_bidders: int, hidden: Sequence[int] = (16, 16), bid_scale: float = 9.0,
                                static: bool = False) -> Mechanism:  # fmt: skip
    """A learned dynamic rule: the highest bid at or above a reserve that a network sets from ``tau = t / T`` wins
    (ties uniformly) and pays a share, from a network of its bid and ``tau``, of its bid (``ScheduleNet``).

    It holds the teaser (a share below 1 early, 1 late) and declining reserves (a reserve falling in ``tau``) as
    special cases; its weights are what gradient ascent through the expected dynamics learns
    (``train.expected_dynamics.learned_dynamic_schedule``). A winner never pays above its bid. ``static``: the
    networks see ``tau = 0`` in every auction, so the rule is the same over the horizon (a learned static rule,
    the dynamic one's baseline)."""
    check_positive_int(n_bidders, "n_bidders")
    check_finite(bid_scale, "bid_scale", positive=True)
    hidden = hidden_widths(hidden)
    outputs = learned_schedule(hidden, float(bid_scale), static)

    def init(key: PRNGKey) -> DynamicParams:
        params = ScheduleNet(hidden).init(key, jnp.zeros((n_bidders,), jnp.float32), jnp.zeros((), jnp.float32))
        return DynamicParams(params, jnp.zeros((), jnp.float32))

    def apply(params: DynamicParams, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        b = bids[:, 0]
        share, reserve = outputs(params.schedule, b, params.tau)
        allocation = highest_bid_allocation(b, key, reserve)
        return Outcome(allocation=allocation[:, None], payments=allocation * share * b)

    return Mechanism(name="learned_dynamic_first_price", n_bidders=n_bidders, n_items=1, init=init, apply=apply,
                     trainable=True)  # fmt: skip
