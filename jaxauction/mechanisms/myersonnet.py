"""MyersonNet (Dütting et al., "Optimal auctions through deep learning", 2019, section 3): a learned single-item
auction that is exactly DSIC and IR for every params.

Each bidder ``i`` has a strictly increasing piecewise-linear *virtual value*
network, a min over ``groups`` maxima of ``lines`` increasing lines,

    phi_i(b) = min_k max_j ( w_ikj b + beta_ikj ),   w_ikj = exp(alpha_ikj) > 0,

and the item goes to the highest transformed bid if it is positive (a second
price auction with reserve 0 on ``phi(b)``; ties go to the lower index), at
the winner's threshold bid

    p_i = phi_i^{-1}( max(0, max_{j != i} phi_j(b_j)) ),
    phi_i^{-1}(y) = max_k min_j ( (y - beta_ikj) / w_ikj ).

Because ``phi_i`` is increasing, the allocation is monotone in each bid and
the winner pays the least bid that would still win: truthful bidding is a
dominant strategy and a winner never pays above its bid (Myerson's lemma).
With ``phi_i`` the (ironed) virtual value of bidder ``i``'s prior this is
Myerson's optimal auction, so MyersonNet can reach the optimum of every
single-item setting, regular or not (for an irregular prior, a strictly
increasing ``phi`` approximates the ironed flat with a small slope), and of
asymmetric bidders: each bidder has its own network, as in the reference
code, or (``shared=True``, for i.i.d. bidders) all bidders share one, which
makes the rule anonymous (permuting the bids permutes the outcome, up to
ties) and leaves one function to learn.

Each network works in units of its bidder's ``bid_scale`` ``s_i`` (the top
of that bidder's support): ``phi_i(b) = s_i f_i(b / s_i)``, so one
initialisation serves every setting and bidder, ``alpha ~ N(0, 1)`` and
``beta ~ -U[0, 1)`` (the reference code draws the same ``alpha`` and ``beta``
from ``-U[0, 1)`` or ``-U[0, 10)`` in value units, by setting). For
asymmetric uniform bidders ``U[0, s_i]`` the optimal ``f_i`` is then the same
for all, ``2x - 1``; with one scale for all, the weakest bidder's network
starts (and, measured on ``single5_asym``, stays) below zero on its whole
support, excluded by a reserve above its values.

Training (``myersonnet_soft``) replaces the argmax with a softmax over
``softness * (phi_1, ..., phi_n, 0)`` (the reference code's 1,000), keeping the
threshold payments (capped at the bid, unlike the reference code: see
``myersonnet_soft``); the argmax rule is what is evaluated. The regret audit
enumerates each bidder's two-entry menu (nothing, or the item at its
threshold), ``Mechanism.bidder_menu``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_bids, check_finite, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.types import Array, Outcome, PRNGKey


def _select(x: Array, axis: int, pick) -> Array:
    """``x``'s max or min along ``axis`` (``pick``: ``jnp.argmax`` or ``jnp.argmin``), read through a one-hot mask of
    its index: its gradient goes to that one entry. (``jnp.max``'s gradient finds the entry by comparing ``x``
    with the result, which fails when XLA rounds the two computations differently: measured on CPU under
    ``--xla_backend_optimization_level=0``, MyersonNet's gradient lost 9% of its mass and training diverged.)"""
    chosen = jax.nn.one_hot(pick(x, axis=axis), x.shape[axis], axis=axis, dtype=x.dtype)
    return jnp.sum(jnp.where(chosen > 0, x, 0.0), axis=axis)


def virtual_values(params: Any, bids: Array, bid_scale: Array) -> Array:
    """``[n]`` every bidder's ``phi_i(b_i) = s_i f_i(b_i / s_i)`` (bids ``[n, 1]``, scales ``s`` ``[n]``), in value
    units."""
    slopes, intercepts = jnp.exp(params["log_slopes"]), params["intercepts"]  # [n or 1, K, J]
    lines = slopes * (bids[:, :1, None] / bid_scale[:, None, None]) + intercepts
    return _select(_select(lines, 2, jnp.argmax), 1, jnp.argmin) * bid_scale


def inverse_virtual_values(params: Any, y: Array, bid_scale: Array) -> Array:
    """``[n]`` every bidder's ``phi_i^{-1}(y_i)``: the bid whose virtual value is ``y_i`` (``y`` ``[n]``)."""
    slopes, intercepts = jnp.exp(params["log_slopes"]), params["intercepts"]
    bids = ((y / bid_scale)[:, None, None] - intercepts) / slopes
    return _select(_select(bids, 2, jnp.argmin), 1, jnp.argmax) * bid_scale


def _scales(bid_scale: float | Any, n: int) -> Array:
    """``[n]`` per-bidder scales from one number or one per bidder (positive and finite)."""
    scales = np.asarray(bid_scale, np.float64)
    if scales.shape not in ((), (n,)):
        raise ValueError(f"bid_scale must be one number or one per bidder ({n}), got {bid_scale!r}")
    scales = np.broadcast_to(scales, (n,))
    for s in scales:
        check_finite(float(s), "bid_scale", positive=True)
    return jnp.asarray(scales, jnp.float32)


def _thresholds(params: Any, phi: Array, bid_scale: Array) -> Array:
    """``[n]`` the least bid with which bidder ``i`` would win, the others' virtual values ``phi`` fixed (0 when
    ``phi_i(0)`` already beats them: bids are non-negative)."""
    n = phi.shape[0]
    others = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, phi[None, :])
    return jnp.maximum(0.0, inverse_virtual_values(params, jnp.maximum(0.0, _select(others, 1, jnp.argmax)), bid_scale))


def myersonnet(n_bidders: int, groups: int = 10, lines: int = 10, bid_scale: float | Any = 1.0,
               shared: bool = False) -> Mechanism:  # fmt: skip
    """MyersonNet for ``n_bidders`` bidders and one item (module docstring): exactly DSIC and IR for every
    params ``{"log_slopes": [G, groups, lines], "intercepts": [G, groups, lines]}``, ``G = n`` networks, or 1
    shared by every bidder (``shared``)."""
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(groups, "groups")
    check_positive_int(lines, "lines")
    n = n_bidders
    bid_scale = _scales(bid_scale, n)

    def init(key: PRNGKey) -> Any:
        k_slopes, k_intercepts = jax.random.split(key)
        shape = (1 if shared else n, groups, lines)
        return {
            "log_slopes": jax.random.normal(k_slopes, shape, jnp.float32),
            "intercepts": -jax.random.uniform(k_intercepts, shape, jnp.float32),
        }

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        del key  # deterministic
        check_bids(bids, n, 1)
        phi = virtual_values(params, bids, bid_scale)
        winner = jnp.argmax(phi)  # the lowest index wins ties
        sold = phi[winner] > 0
        allocation = (jnp.arange(n) == winner) & sold
        # The threshold is at most the bid in exact arithmetic; the minimum only guards float rounding of phi^-1(phi).
        price = jnp.minimum(_thresholds(params, phi, bid_scale), bids[:, 0])
        return Outcome(allocation=allocation[:, None].astype(bids.dtype), payments=jnp.where(allocation, price, 0.0))

    def bidder_menu(params: Any, bids: Array, i: int) -> tuple[Array, Array]:
        """Bidder ``i``'s two outcomes, the others' bids fixed: nothing for nothing, or the item at its threshold."""
        threshold = _thresholds(params, virtual_values(params, bids, bid_scale), bid_scale)[i]
        return jnp.array([[0.0], [1.0]], bids.dtype), jnp.stack([jnp.zeros((), bids.dtype), threshold])

    name = "myersonnet_shared" if shared else "myersonnet"
    return Mechanism(name, n, 1, init, apply, trainable=True, incentive_compatible=True, bidder_menu=bidder_menu)


def myersonnet_soft(n_bidders: int, softness: float, bid_scale: float | Any = 1.0):
    """MyersonNet's training relaxation: ``(params, bids [n, 1]) -> Outcome`` with the allocation a softmax over
    ``softness * (phi_1, ..., phi_n, 0)`` and each bidder paying its probability times ``min(threshold, bid)``.

    The minimum changes nothing where the allocation is hard (a winner's threshold is at most its bid), but a
    loser's threshold is above its bid, and without it (as in the reference code) the relaxation pays a loser's
    share of the item at more than its bid: flattening ``phi`` into near ties then earns more in the relaxation
    and less in the rule (a shared network trained that way collapses to an almost constant ``phi``)."""
    check_finite(softness, "softness", positive=True)
    bid_scale = _scales(bid_scale, n_bidders)

    def soft(params: Any, bids: Array) -> Outcome:
        phi = virtual_values(params, bids, bid_scale)
        probs = jax.nn.softmax(softness * jnp.append(phi, 0.0))[:-1]
        prices = jnp.minimum(_thresholds(params, phi, bid_scale), bids[:, 0])  # a winner's threshold is below its bid
        return Outcome(allocation=probs[:, None], payments=probs * prices)

    return soft
