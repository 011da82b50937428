"""The repeated auction: one auction step, a round as ``lax.scan``, and dataset collection.

All functions are pure and act on a single market; independent markets run
under ``jax.vmap`` (see ``dmo.py``). Per-auction histories are never stacked:
metrics are reduced inside the scan to one row per revenue window.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.bidders.base import Learner, LearnerState
from jaxauction.mechanisms.rules import Mechanism
from jaxauction.priors import Prior
from jaxauction.types import Array, Outcome, Params, PRNGKey, Transition


def utility(values: Array, outcome: Outcome) -> Array:
    """Quasi-linear utility ``value * allocation - payment``, per bidder."""
    return values * outcome.allocation - outcome.payments


def efficiency(values: Array, allocation: Array) -> Array:
    """1.0 when the item goes to a bidder with the highest value, else 0.0 (also when unsold)."""
    return jnp.sum(allocation * (values == jnp.max(values)))


class Market(NamedTuple):
    """A market: a mechanism, ``n`` bidders (one learner over the stacked axis) and a value prior."""

    mechanism: Mechanism
    learner: Learner
    prior: Prior


def check_market(market: Market) -> None:
    n = market.mechanism.n_bidders
    if market.learner.n_bidders != n:
        raise ValueError(f"the mechanism is built for {n} bidders but the learner for {market.learner.n_bidders}")
    market.prior.bounds(n)  # raises if per-bidder ranges do not match n


def play(market: Market, params: Params, learner_state: LearnerState, key: PRNGKey) -> tuple[Transition, PRNGKey]:
    """One auction with frozen bidders: values -> bids -> outcome. Also returns the outcome's key."""
    n = market.mechanism.n_bidders
    k_values, k_bids, k_outcome = jax.random.split(key, 3)
    values = market.prior.sample(k_values, n)
    bids = market.learner.act(k_bids, learner_state, values)
    outcome = market.mechanism.apply(params, bids, k_outcome)
    transition = Transition(values, bids, outcome.allocation, outcome.payments, utility(values, outcome))
    return transition, k_outcome


def auction(
    market: Market, params: Params, learner_state: LearnerState, key: PRNGKey
) -> tuple[LearnerState, Transition]:
    """One learning auction: values -> bids -> outcome -> bidder updates, for all bidders at once."""
    transition, _ = play(market, params, learner_state, key)
    return market.learner.update(learner_state, transition), transition


class RoundMetrics(NamedTuple):
    """Per-window means over one round of one market (``W`` windows)."""

    revenue: Array  # [W] mean revenue (sum of payments) per auction
    utility: Array  # [W, n] mean utility per bidder
    efficiency: Array  # [W] share of auctions won by a highest-value bidder

    @property
    def platform_reward(self) -> Array:
        """The seed's platform reward: mean revenue over the last window."""
        return self.revenue[..., -1]


class _Sums(NamedTuple):
    revenue: Array
    utility: Array
    efficiency: Array


def run_round(
    market: Market,
    n_auctions: int,
    window: int,
    params: Params,
    learner_state: LearnerState,
    key: PRNGKey,
    unroll: int = 1,
) -> tuple[LearnerState, RoundMetrics]:
    """``n_auctions`` learning auctions against the frozen mechanism ``params``.

    A ``lax.scan`` over ``n_auctions // window`` windows of a ``lax.scan`` over
    ``window`` auctions (``unroll`` auctions per loop iteration). Auction ``t``
    uses ``fold_in(key, t)``.
    """
    check_positive_int(n_auctions, "n_auctions")
    check_positive_int(window, "window")
    if n_auctions % window:
        raise ValueError(f"n_auctions ({n_auctions}) must be a multiple of the revenue window ({window})")
    n = market.mechanism.n_bidders

    def one_auction(carry, t):
        state, sums = carry
        state, tr = auction(market, params, state, jax.random.fold_in(key, t))
        sums = _Sums(
            sums.revenue + jnp.sum(tr.payments),
            sums.utility + tr.utilities,
            sums.efficiency + efficiency(tr.values, tr.allocation),
        )
        return (state, sums), None

    def one_window(state, first):
        zeros = _Sums(jnp.zeros((), jnp.float32), jnp.zeros((n,), jnp.float32), jnp.zeros((), jnp.float32))
        (state, sums), _ = jax.lax.scan(one_auction, (state, zeros), first + jnp.arange(window), unroll=unroll)
        return state, jax.tree.map(lambda s: s / window, sums)

    starts = jnp.arange(0, n_auctions, window)
    learner_state, means = jax.lax.scan(one_window, learner_state, starts)
    return learner_state, RoundMetrics(means.revenue, means.utility, means.efficiency)


class Dataset(NamedTuple):
    """Auctions played by frozen bidders: ``values``/``bids`` ``[D, n]``, the outcome keys ``[D]``."""

    values: Array
    bids: Array
    keys: Array


def collect(market: Market, size: int, params: Params, learner_state: LearnerState, key: PRNGKey) -> Dataset:
    """``size`` independent auctions with frozen bidders (they act, exploration included, but do not learn)."""
    check_positive_int(size, "size")
    transitions, keys = jax.vmap(lambda k: play(market, params, learner_state, k))(jax.random.split(key, size))
    return Dataset(transitions.values, transitions.bids, keys)


def revenue(mechanism: Mechanism, params: Params, bids: Array, keys: Array, chunk: int | None = None) -> Array:
    """Mean revenue (sum of payments) over a batch of bid profiles ``[D, n]`` with keys ``[D]``.

    ``chunk`` bounds memory for large ``D``: profiles are evaluated ``chunk`` at
    a time in a ``lax.scan`` whose body is rematerialised (``jax.checkpoint``),
    so neither the value nor its gradient holds more than one chunk's
    activations. The remainder ``D % chunk`` is one more, smaller batch.
    Chunking changes the float summation order, not the result beyond rounding.
    """

    def payments(b: Array, k: Array) -> Array:
        return jnp.sum(jax.vmap(mechanism.apply, in_axes=(None, 0, 0))(params, b, k).payments, axis=-1)

    size = bids.shape[0]
    if chunk is None or chunk >= size:
        return jnp.mean(payments(bids, keys))
    check_positive_int(chunk, "chunk")
    full = size - size % chunk
    chunk_total = jax.checkpoint(lambda b, k: jnp.sum(payments(b, k)))

    def add(total: Array, xs: tuple[Array, Array]) -> tuple[Array, None]:
        return total + chunk_total(*xs), None

    batches = (bids[:full].reshape(-1, chunk, bids.shape[-1]), keys[:full].reshape(-1, chunk))
    total, _ = jax.lax.scan(add, jnp.zeros((), jnp.float32), batches)
    if full < size:
        total = total + jnp.sum(payments(bids[full:], keys[full:]))
    return total / size
