"""Affine maximizer auctions (AMAs) with learned weights, boosts and menus: exactly DSIC for any params.

An AMA has a menu of allocations ``A_k`` (``k = 1..K``), a positive weight
``w_i`` per bidder and a boost ``lambda_k`` per menu entry. It picks the entry
with the largest affine welfare

    W_k(b) = sum_i w_i b_i(A_k) + lambda_k,   b_i(A) = sum_j A_ij b_ij

(ties go to the lower index) and charges each bidder its weighted Clarke
pivot payment

    p_i = ( max_k W^{-i}_k(b) - W^{-i}_{k*}(b) ) / w_i,   W^{-i}_k = W_k - w_i b_i(A_k).

A bidder's utility is then ``(W_{k*} - max_k W^{-i}_k) / w_i``, in which its
report moves only which entry is chosen, and the chosen entry maximises it:
truthful reporting is a dominant strategy, and the utility is never negative
because values are (individual rationality). Both hold for *every* params,
so training needs no regret terms: the shared trainer
(``train.lagrangian``) trains the revenue of a softmax relaxation
(``affine_maximizer_soft``) and the argmax rule is what is evaluated.

Two menus (``menu``):

* ``lottery`` (Curry, Sandholm and Dickerson, "Differentiable economics for
  randomized affine maximizer auctions", IJCAI 2023; AMenuNet, Duan et al.,
  NeurIPS 2023, generates such a menu from bidder and item representations,
  which reduces to a learned menu when there are none): ``menu_size``
  learned lotteries. Additive bidders: per item, a softmax over the bidders
  and a dummy (the item stays unsold with the dummy's probability).
  Unit-demand bidders: RegretNet's construction, the elementwise minimum of
  that and a softmax over items with a dummy item per bidder, so rows sum to
  at most 1 too and a bidder's value of an entry is ``sum_j A_ij v_ij``.
  Combinatorial bidders (two items and their bundle, bids ``[n, 3]``):
  RegretNet's 2x2 combinatorial head (``regretnet.combinatorial_allocation``).
* ``deterministic``: every deterministic allocation (``(n + 1) ** m`` of
  them, each item to one bidder or unsold; unit demand: at most one item per
  bidder; combinatorial: each bidder gets item 1, item 2, the bundle or
  nothing, each item once: 9 allocations for two bidders), with learned
  weights and boosts only: the classical lambda-auction / VVCA family
  (Sandholm and Likhodedov 2015). Capped at ``MAX_DETERMINISTIC`` entries.

The weights are ``exp(log_weights)``, starting at 1; the boosts start at 0
(so the deterministic AMA starts as VCG), or, with ``value_low``, where
the welfare of the values above the support's bottom is maximised; the
lotteries' logits start normal with standard deviation ``logit_scale``.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_bids, check_choice, check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.regretnet import DEMANDS, check_demand, combinatorial_allocation, combinatorial_width
from jaxauction.types import Array, Outcome, PRNGKey

MENUS = ("lottery", "deterministic")
MAX_DETERMINISTIC = 65_536  # the deterministic menu's largest size: (n + 1) ** m allocations


def _bundle_feasible(a: np.ndarray) -> bool:
    """Whether a combinatorial allocation ``[n, 3]`` gives each item out at most once, alone or in the bundle."""
    return bool(np.all(a[:, :2].sum(axis=0) + a[:, 2].sum() <= 1))


@functools.cache
def deterministic_menu(n_bidders: int, n_items: int, demand: str = "additive") -> np.ndarray:
    """``[K, n, m]`` every deterministic allocation: each item to one bidder or to nobody (unit demand: no bidder
    gets two items), the empty allocation first. Built once per size (read-only: the config check, the rule and
    its training relaxation share it)."""
    check_demand(demand, n_items, DEMANDS, "the affine maximizer")
    size = (n_bidders + 1) ** n_items
    if size > MAX_DETERMINISTIC:
        raise ValueError(f"the deterministic menu of {n_bidders} bidders and {n_items} items has {size:,} "
                         f"allocations, above {MAX_DETERMINISTIC:,}; use menu='lottery'")  # fmt: skip
    out = []
    for owners in itertools.product(range(n_bidders + 1), repeat=n_items):  # owner n: unsold
        a = np.zeros((n_bidders, n_items), np.float32)
        for j, i in enumerate(owners):
            if i < n_bidders:
                a[i, j] = 1.0
        if demand == "additive" or np.all(a.sum(axis=1) <= 1) and (demand == "unit" or _bundle_feasible(a)):
            out.append(a)
    out.sort(key=lambda a: a.sum())  # the empty allocation first (index 0 wins ties)
    menu = np.stack(out)
    menu.setflags(write=False)
    return menu


def lottery_allocations(logits: Array, n_bidders: int, demand: str = "additive") -> Array:
    """``[K, n, m]`` the lotteries of ``logits``: ``[K, n + 1, m]`` (additive), ``[K, combinatorial_width(n)]``
    (combinatorial) or, for unit demand, ``[K, n + 1, m]`` plus
    ``[K, n, m + 1]`` flattened into one ``[K, (n + 1) m + n (m + 1)]`` array (module docstring)."""
    if demand == "additive":
        return jax.nn.softmax(logits, axis=-2)[..., :n_bidders, :]
    if demand == "combinatorial":
        return combinatorial_allocation(logits, n_bidders)
    k = logits.shape[0]
    m = (logits.shape[-1] - n_bidders) // (2 * n_bidders + 1)
    over_bidders = jax.nn.softmax(logits[:, : (n_bidders + 1) * m].reshape(k, n_bidders + 1, m), axis=-2)
    over_items = jax.nn.softmax(logits[:, (n_bidders + 1) * m :].reshape(k, n_bidders, m + 1), axis=-1)
    return jnp.minimum(over_bidders[:, :n_bidders], over_items[..., :m])


def affine_maximizer_menu(params: Any, n_bidders: int, demand: str = "additive",
                          fixed: Array | None = None) -> tuple[Array, Array, Array]:  # fmt: skip
    """``(allocations [K, n, m], weights [n], boosts [K])`` of an AMA's params (``fixed``: the deterministic
    menu, else the lotteries of ``params["logits"]``)."""
    allocations = fixed if fixed is not None else lottery_allocations(params["logits"], n_bidders, demand)
    return allocations, jnp.exp(params["log_weights"]), params["boosts"]


def _welfare(allocations: Array, weights: Array, boosts: Array, bids: Array) -> tuple[Array, Array]:
    """``(W [K], W^{-i} [K, n])``: every entry's affine welfare, and without bidder ``i``'s term."""
    values = jnp.einsum("knm,nm->kn", allocations, bids)  # b_i(A_k)
    weighted = values * weights
    total = jnp.sum(weighted, axis=1) + boosts
    return total, total[:, None] - weighted


def _pivot_prices(without: Array, weights: Array) -> Array:
    """``[K, n]`` what bidder ``i`` pays when entry ``k`` is chosen: ``(max_k' W^{-i}_k' - W^{-i}_k) / w_i`` (one
    formula for the rule's payments and the bidders' menus, so the audit scores the rule's own prices)."""
    return (jnp.max(without, axis=0) - without) / weights


def affine_maximizer(
    n_bidders: int,
    n_items: int,
    menu: str = "lottery",
    menu_size: int = 256,
    demand: str = "additive",
    logit_scale: float = 1.0,
    value_low: Any = 0.0,
    value_scale: float = 1.0,
) -> Mechanism:
    """An affine maximizer auction (module docstring): exactly DSIC and IR for every params. ``params``:
    ``{"log_weights": [n], "boosts": [K]}`` and, for the lottery menu, ``"logits"``.

    ``value_low``: the bottom of the values' support (a number or ``[n, m]``). The boosts start at ``-sum_ij
    A_kij low_ij``, so the rule starts by maximising the welfare of the values above it, ``v - low`` (for
    additive bidders VCG's own outcome wherever no value is below it), and a boost's first moves shift
    reserves that bind; from boosts of 0, a support far from 0 (values in [1, 2]) leaves every small boost
    without effect and without gradient (the 2x2 combinatorial settings: 2.63 from boosts of 0, 2.77 from
    these, after 5,000 to 20,000 iterations).

    ``value_scale``: the values' scale (the support's top); a revived entry's boost starts ``0.02 *
    value_scale`` below its source's (module docstring). The lottery menu has ``revive``, the deterministic
    one none (its entries are fixed)."""
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_items, "n_items")
    check_choice(menu, MENUS, "menu")
    check_demand(demand, n_items, DEMANDS, "the affine maximizer")
    check_positive_int(menu_size, "menu_size")
    check_finite(logit_scale, "logit_scale", positive=True)
    check_finite(value_scale, "value_scale", positive=True)
    n, m = n_bidders, n_items
    fixed = jnp.asarray(deterministic_menu(n, m, demand)) if menu == "deterministic" else None
    size = menu_size if fixed is None else fixed.shape[0]
    logit_shape = {"additive": (size, n + 1, m), "unit": (size, (n + 1) * m + n * (m + 1)),
                   "combinatorial": (size, combinatorial_width(n))}[demand]  # fmt: skip

    low = np.broadcast_to(np.asarray(value_low, np.float32), (n, m))
    if not np.all(np.isfinite(low)) or np.any(low < 0):
        raise ValueError(f"value_low must be finite and non-negative, got {np.asarray(value_low).tolist()}")

    def init(key: PRNGKey) -> Any:
        params = {"log_weights": jnp.zeros((n,), jnp.float32), "boosts": jnp.zeros((size,), jnp.float32)}
        if fixed is None:
            params["logits"] = jax.random.normal(key, logit_shape, jnp.float32) * logit_scale
        if np.any(low > 0):
            allocations = affine_maximizer_menu(params, n, demand, fixed)[0]
            params["boosts"] = -jnp.einsum("knm,nm->k", allocations, jnp.asarray(low))
        return params

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        del key  # deterministic
        check_bids(bids, n, m)
        allocations, weights, boosts = affine_maximizer_menu(params, n, demand, fixed)
        total, without = _welfare(allocations, weights, boosts, bids)
        best = jnp.argmax(total)  # the lowest index wins ties
        return Outcome(allocation=allocations[best], payments=_pivot_prices(without, weights)[best])

    def bidder_menu(params: Any, bids: Array, i: int) -> tuple[Array, Array]:
        """Bidder ``i``'s menu, the others' bids fixed: entry ``k``'s allocation at the price
        ``(max W^{-i} - W^{-i}_k) / w_i``, what it pays when its report makes ``k`` the choice."""
        allocations, weights, boosts = affine_maximizer_menu(params, n, demand, fixed)
        _, without = _welfare(allocations, weights, boosts, bids)
        return allocations[:, i], _pivot_prices(without, weights)[:, i]

    def revive(params: Any, bids: Array, key: PRNGKey) -> Any:
        """``params`` with every entry that no profile of ``bids [B, n, m]`` chooses replaced by a perturbed
        copy of a chosen one (module docstring)."""
        allocations, weights, boosts = affine_maximizer_menu(params, n, demand)
        totals = jax.vmap(lambda b: _welfare(allocations, weights, boosts, b)[0])(bids)  # [B, K]
        counts = jnp.zeros((size,), jnp.float32).at[jnp.argmax(totals, axis=1)].add(1.0)
        k_source, k_noise = jax.random.split(key)
        source = jax.random.categorical(k_source, jnp.log(counts), shape=(size,))  # log 0: never drawn
        unused = counts == 0
        logits = params["logits"]
        copies = logits[source] + jax.random.normal(k_noise, logits.shape, logits.dtype)
        return dict(params, logits=jnp.where(unused.reshape((size,) + (1,) * (logits.ndim - 1)), copies, logits),
                    boosts=jnp.where(unused, boosts[source] - 0.02 * value_scale, boosts))  # fmt: skip

    name = "affine_maximizer" if menu == "lottery" else "affine_maximizer_deterministic"
    return Mechanism(name, n, m, init, apply, trainable=True, incentive_compatible=True, bidder_menu=bidder_menu,
                     revive=revive if fixed is None else None)  # fmt: skip


def affine_maximizer_soft(mechanism_menu: str, n_bidders: int, demand: str, softness: float,
                          fixed: Array | None = None):  # fmt: skip
    """The training relaxation of an AMA: ``(params, bids) -> Outcome`` with every argmax and max of the rule
    replaced by ``softmax(softness * W)``-weighted means (the entry chosen, and each bidder's pivot), as the
    lottery-AMA and AMenuNet papers train; ``fixed``: the deterministic menu (``deterministic_menu``)."""
    check_choice(mechanism_menu, MENUS, "menu")
    if mechanism_menu == "deterministic" and fixed is None:
        raise ValueError("the deterministic menu's relaxation needs its menu (fixed=deterministic_menu(n, m))")

    def soft(params: Any, bids: Array) -> Outcome:
        allocations, weights, boosts = affine_maximizer_menu(params, n_bidders, demand, fixed)
        total, without = _welfare(allocations, weights, boosts, bids)
        chosen = jax.nn.softmax(softness * total)  # [K]
        pivots = jax.nn.softmax(softness * without, axis=0)  # [K, n]
        payments = (jnp.sum(pivots * without, axis=0) - chosen @ without) / weights
        return Outcome(allocation=jnp.einsum("k,knm->nm", chosen, allocations), payments=payments)

    return soft
