"""Learned direct mechanisms: RegretNet (Dütting et al. 2019) and RochetNet, behind the shared signature.

**RegretNet** has two fully connected networks over the flattened bids
``[n * m]`` (the reference configuration: tanh, Glorot-uniform weights, 100
units per hidden layer, 2 hidden layers for small settings, 5 for 3x10 and
5x10):

* allocation, **additive** bidders: per item, a softmax over the ``n`` bidders
  and a dummy bidder (the item stays unsold with the dummy's probability), so
  each item's column sums to at most 1;
* allocation, **unit-demand** bidders: the elementwise minimum of a softmax
  over bidders (with a dummy bidder, per item) and a softmax over items (with
  a dummy item, per bidder), so columns and rows both sum to at most 1;
* allocation, **combinatorial** bidders (two items and their bundle, bids ``[n, 3]``: item 1, item 2, the
  bundle; RegretNet's 2x2 combinatorial head): ``combinatorial_allocation``;
* payment: ``p_i = sigmoid(z_i) * sum_j a_ij * b_ij``, a fraction of the
  reported value of the bidder's allocation, so a truthful bidder's utility is
  never negative: individually rational by construction.

The networks see ``bids / bid_scale`` (the top of the value support), so
their inputs lie in [0, 1] whatever the setting's units.

**RochetNet** (one bidder, Dütting et al. 2019 section 4): a menu of
``menu_size`` lotteries and prices ``p_k``, and the null lottery (nothing,
price 0). Additive bidders: item probabilities ``sigmoid(theta_k)``, one per
item. Unit-demand bidders: a lottery over single items,
``softmax([theta_k, 0])`` without its last entry (the chance of no item), so
the probabilities sum to at most 1 and the bidder's value of lottery ``k`` is
``sum_j a_kj v_j`` (it gets at most one item). The bidder gets the
lottery that maximises its reported utility: ``apply`` takes the argmax, so
the mechanism is exactly incentive compatible and individually rational.
Training uses ``rochetnet_soft``, a softmax over the menu's utilities with
inverse temperature ``softness``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxauction._checks import check_bids, check_choice, check_finite, check_positive_int, hidden_widths
from jaxauction.mechanisms.base import Mechanism
from jaxauction.types import Array, Outcome, PRNGKey

DEMANDS = ("additive", "unit", "combinatorial")
ITEM_DEMANDS = ("additive", "unit")  # the architectures without a head for the combinatorial 2x2 setting
# Unit-demand menus start with logits of this scale, so that the first lotteries spread over the simplex (single
# items, even splits, mostly nothing): on unit_1x2_23 (4,000 iterations) 2.120 against 2.111 with scale 1.
UNIT_LOGIT_SCALE = 3.0


class _MLP(nn.Module):
    """tanh MLP with Glorot-uniform weights and zero biases; a linear output of ``outputs`` units."""

    hidden: tuple[int, ...]
    outputs: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        dense = lambda width: nn.Dense(width, kernel_init=nn.initializers.glorot_uniform())  # noqa: E731
        for width in self.hidden:
            x = jnp.tanh(dense(width)(x))
        return dense(self.outputs)(x)


def combinatorial_width(n_bidders: int) -> int:
    """The logits ``combinatorial_allocation`` reads: ``2 (2n + 1)`` for the items, ``3n`` for the bidders."""
    return 2 * (2 * n_bidders + 1) + 3 * n_bidders


def combinatorial_allocation(logits: Array, n_bidders: int) -> Array:
    """``[..., n, 3]``: a feasible allocation of two items and their bundle (columns: item 1, item 2, the bundle)
    from ``[..., combinatorial_width(n)]`` logits, RegretNet's 2x2 combinatorial head. Per item ``k``, a softmax
    over bidder ``i`` getting ``k`` alone (``n`` entries), bidder ``i`` getting the bundle (``n``) and nobody;
    per bidder, a softmax over item 1, item 2 and the bundle. ``a_ik = min(item_k[i], bidder_i[k])`` and
    ``a_i,bundle = min(item_1[n + i], item_2[n + i], bidder_i[bundle])``, so each item goes out at most once,
    alone or in the bundle, and each bidder gets at most one of the three."""
    n, lead = n_bidders, logits.shape[:-1]
    items = jax.nn.softmax(logits[..., : 2 * (2 * n + 1)].reshape(*lead, 2, 2 * n + 1), axis=-1)
    bidders = jax.nn.softmax(logits[..., 2 * (2 * n + 1) :].reshape(*lead, n, 3), axis=-1)
    alone = jnp.swapaxes(items[..., :n], -1, -2)  # [..., n, 2]
    bundle = jnp.min(items[..., n : 2 * n], axis=-2)[..., None]  # [..., n, 1]
    return jnp.minimum(jnp.concatenate([alone, bundle], axis=-1), bidders)


class RegretNetModule(nn.Module):
    """The allocation and payment networks of RegretNet: ``bids [n, m] -> (allocation [n, m], fractions [n])``."""

    n_bidders: int
    n_items: int
    demand: str = "additive"
    hidden: tuple[int, ...] = (100, 100)

    @nn.compact
    def __call__(self, bids: Array) -> tuple[Array, Array]:
        n, m = self.n_bidders, self.n_items
        x = bids.reshape(-1)
        if self.demand == "additive":
            logits = _MLP(self.hidden, (n + 1) * m, name="allocation")(x).reshape(n + 1, m)
            allocation = jax.nn.softmax(logits, axis=0)[:n]
        elif self.demand == "combinatorial":
            allocation = combinatorial_allocation(_MLP(self.hidden, combinatorial_width(n), name="allocation")(x), n)
        else:
            logits = _MLP(self.hidden, (n + 1) * m + n * (m + 1), name="allocation")(x)
            over_bidders = jax.nn.softmax(logits[: (n + 1) * m].reshape(n + 1, m), axis=0)[:n]
            over_items = jax.nn.softmax(logits[(n + 1) * m :].reshape(n, m + 1), axis=1)[:, :m]
            allocation = jnp.minimum(over_bidders, over_items)
        fractions = jax.nn.sigmoid(_MLP(self.hidden, n, name="payment")(x))
        return allocation, fractions


def regretnet(
    n_bidders: int,
    n_items: int,
    demand: str = "additive",
    hidden: Sequence[int] = (100, 100),
    bid_scale: float = 1.0,
) -> Mechanism:
    """A RegretNet mechanism (module docstring); ``params`` are the Flax params of both networks."""
    module = RegretNetModule(n_bidders, n_items, demand, hidden_widths(hidden))
    return fraction_mechanism("regretnet", n_bidders, n_items, demand, module, bid_scale)


def check_demand(demand: str, n_items: int, allowed: tuple[str, ...], family: str) -> None:
    """Refuse a demand ``family`` has no head for, and a combinatorial setting that is not two items and the
    bundle (``n_items`` 3)."""
    check_choice(demand, DEMANDS, "demand")
    if demand not in allowed:
        raise ValueError(f"{family} has no allocation for {demand} bidders; it takes {', '.join(allowed)}")
    if demand == "combinatorial" and n_items != 3:
        raise ValueError(f"combinatorial bids are [n, 3] (item 1, item 2, the bundle), got {n_items} columns")


def fraction_mechanism(family: str, n_bidders: int, n_items: int, demand: str, module: nn.Module,
                       bid_scale: float) -> Mechanism:  # fmt: skip
    """The mechanism ``{family}_{demand}`` of a Flax ``module``, ``bids / bid_scale [n, m] -> (allocation [n, m],
    fractions [n])``: bidder ``i`` pays ``fractions_i * sum_j a_ij b_ij`` (RegretNet's payment; individually
    rational). RegretNet and EquivariantNet are two such modules."""
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_items, "n_items")
    check_demand(demand, n_items, DEMANDS if family == "regretnet" else ITEM_DEMANDS, family)
    check_finite(bid_scale, "bid_scale", positive=True)
    scale = float(bid_scale)

    def init(key: PRNGKey) -> Any:
        return module.init(key, jnp.zeros((n_bidders, n_items), jnp.float32))

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        del key  # deterministic
        check_bids(bids, n_bidders, n_items)
        allocation, fractions = module.apply(params, bids / scale)
        return Outcome(allocation=allocation, payments=fractions * jnp.sum(allocation * bids, axis=-1))

    return Mechanism(f"{family}_{demand}", n_bidders, n_items, init, apply, trainable=True)


def _menu(params: Any, demand: str = "additive") -> tuple[Array, Array]:
    """The menu with the null lottery first: allocations ``[K+1, m]`` and prices ``[K+1]``."""
    logits = params["logits"]
    if demand == "unit":  # a lottery over single items: the last softmax entry is "no item"
        zero = jnp.zeros((*logits.shape[:-1], 1), logits.dtype)
        allocations = jax.nn.softmax(jnp.concatenate([logits, zero], axis=-1), axis=-1)[..., :-1]
    else:
        allocations = jax.nn.sigmoid(logits)
    m = allocations.shape[-1]
    return (
        jnp.concatenate([jnp.zeros((1, m), allocations.dtype), allocations]),
        jnp.concatenate([jnp.zeros((1,), params["prices"].dtype), params["prices"]]),
    )


def rochetnet(n_items: int, menu_size: int = 1000, price_scale: float = 1.0, demand: str = "additive") -> Mechanism:
    """RochetNet for one bidder: the menu lottery that maximises the reported utility (exactly IC and IR).

    ``price_scale`` sets the initial prices' range (uniform on ``[0, price_scale * n_items]``; unit demand:
    ``[0, price_scale]``). ``demand``: ``additive`` or ``unit`` (lotteries over single items, see the module).
    """
    check_positive_int(n_items, "n_items")
    check_positive_int(menu_size, "menu_size")
    check_finite(price_scale, "price_scale", positive=True)
    check_demand(demand, n_items, ITEM_DEMANDS, "rochetnet")
    top_price = price_scale * (n_items if demand == "additive" else 1)

    def init(key: PRNGKey) -> Any:
        k1, k2 = jax.random.split(key)
        return {
            "logits": jax.random.normal(k1, (menu_size, n_items)) * (UNIT_LOGIT_SCALE if demand == "unit" else 1.0),
            "prices": jax.random.uniform(k2, (menu_size,)) * top_price,
        }

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        del key
        check_bids(bids, 1, n_items)
        allocations, prices = _menu(params, demand)
        best = jnp.argmax(allocations @ bids[0] - prices)  # the null lottery (index 0) wins ties
        return Outcome(allocation=allocations[best][None], payments=prices[best][None])

    name = "rochetnet" if demand == "additive" else "rochetnet_unit"
    return Mechanism(name, 1, n_items, init, apply, trainable=True, menu=lambda params: _menu(params, demand),
                     incentive_compatible=True)  # fmt: skip


def rochetnet_soft(params: Any, bids: Array, softness: float, demand: str = "additive") -> Outcome:
    """RochetNet's training relaxation: the menu weighted by ``softmax(softness * utility)``."""
    allocations, prices = _menu(params, demand)
    weights = jax.nn.softmax(softness * (allocations @ bids[0] - prices))
    return Outcome(allocation=(weights @ allocations)[None], payments=(weights @ prices)[None])
