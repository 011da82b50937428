"""The mechanism interface: ``init(key) -> params`` and ``apply(params, bids [n, m], key) -> Outcome``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
from jax.experimental import checkify

from jaxauction.types import Array, Outcome, Params, PRNGKey


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """A mechanism for ``n_bidders`` bidders and ``n_items`` items.

    ``apply(params, bids, key) -> Outcome`` is pure: ``bids`` is ``[n, m]``,
    ``key`` drives any randomness (tie-breaking), and every number of the
    rule (reserves, network weights) is in ``params``, so a population of
    mechanisms is a ``vmap`` over params. ``units > 1``: each item column
    holds that many identical units (``multi_unit``). ``trainable`` says whether deep
    mechanism optimization updates ``params`` by gradient steps.

    Under ``jit`` the arguments are not inspected: NaN bids give a NaN or
    empty outcome (second price sells to nobody). Eager calls raise a
    ``ValueError`` for bad shapes, NaN or negative bids; ``checked`` adds
    the value checks to compiled code through ``checkify``.
    """

    name: str
    n_bidders: int
    n_items: int
    init: Callable[[PRNGKey], Params]
    apply: Callable[[Params, Array, PRNGKey], Outcome]
    trainable: bool = False
    units: int = 1  # identical units per item column (multi-unit auctions): a column sums to at most this
    # One-bidder menu mechanisms (RochetNet): ``params -> (allocations [K, m], prices [K])``, every entry the
    # bidder can be assigned; the mechanism must be deterministic (``apply`` ignores its key). The regret audit
    # enumerates the menu instead of searching by gradient.
    menu: Callable[[Params], tuple[Array, Array]] | None = None
    # Any number of bidders: ``(params, bids [n, m], i) -> (allocations [K, m], prices [K])``, every outcome bidder
    # ``i`` could get by some report, the others' bids fixed (an affine maximizer's entries at their pivot prices;
    # entries no report reaches may be listed: the audit's maximum is then an upper bound). The regret audit
    # enumerates it per profile and bidder instead of searching by gradient. Deterministic mechanisms only.
    bidder_menu: Callable[[Params, Array, int], tuple[Array, Array]] | None = None
    # Exactly dominant-strategy incentive compatible for every params (RochetNet, affine maximizers): the shared
    # trainer (``train.lagrangian``) trains its revenue alone, with no regret terms.
    incentive_compatible: bool = False
    # Learned menus (the lottery affine maximizer): ``(params, bids [B, n, m], key) -> params`` with the menu
    # entries that no profile of ``bids`` chooses replaced by perturbed copies of chosen ones; the shared trainer
    # calls it every ``Schedule.revive_every`` iterations. It must keep the mechanism's guarantees.
    revive: Callable[[Params, Array, PRNGKey], Params] | None = None


def checked(mechanism: Mechanism) -> Mechanism:
    """``mechanism`` with ``checkify`` checks: finite, non-negative bids in; finite allocation and payments out.

    Run it under ``jax.experimental.checkify.checkify`` (``err, out =
    checkify.checkify(fn)(...)``, then ``err.throw()``); the market's checked
    mode (``Market(checked=True)``) and the experiments' ``--checked`` flag do that.
    """

    def apply(params: Params, bids: Array, key: PRNGKey) -> Outcome:
        checkify.check(jnp.all(jnp.isfinite(bids)), f"{mechanism.name}: bids contain NaN or infinite entries")
        checkify.check(jnp.all(bids >= 0), f"{mechanism.name}: bids must be non-negative")
        outcome = mechanism.apply(params, bids, key)
        finite = jnp.all(jnp.isfinite(outcome.allocation)) & jnp.all(jnp.isfinite(outcome.payments))
        checkify.check(finite, f"{mechanism.name}: the outcome holds NaN or infinite entries")
        return outcome

    return dataclasses.replace(mechanism, apply=apply)
