"""The seed's deep payment rule: a flax MLP over the bids, softmax over bidders.

``payment_i = s_i(b) * b_i`` with ``s(b) = softmax(MLP(b))`` over the bidder
axis, charged to every bidder (the seed) or only to the winner
(``winner_only=True``). Allocation is the highest bid with uniform
tie-breaking. One item: bids are ``[n, 1]``.

Input range. The seed's network sees raw bids. Its logits grow with the bids,
so on large bids the softmax saturates and the gradient vanishes (bids of 1e6
give exactly 0). ``normalise=True`` feeds ``bids / bid_scale`` instead, and
the market builders set ``bid_scale`` to the market's highest possible bid,
so the network's inputs lie in ``[0, 1]`` whatever the value range.
Raw bids are valid up to ``RAW_BID_LIMIT`` (the builders refuse markets whose
bids can exceed it without ``normalise``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_bids, check_choice, check_finite, hidden_widths
from jaxauction.mechanisms.allocation import highest_bid_allocation
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.rules import require_two
from jaxauction.types import Array, Outcome, PRNGKey


def torch_linear_init(fan_in: int):
    """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Used for both kernels and biases so a fresh network matches the original
    platform's in distribution.
    """
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: PRNGKey, shape: Sequence[int], dtype: Any = jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


RAW_BID_LIMIT = 100.0  # raw (un-normalised) bids above this saturate the seed network's softmax
PRECISIONS = ("default", "high", "highest")
_accumulate_f32 = functools.partial(jax.lax.dot_general, preferred_element_type=jnp.float32)


class PaymentNet(nn.Module):
    """MLP ``n -> hidden... -> n`` with ReLU; returns the logits of the payment shares.

    ``dtype`` is the computation dtype. With ``jnp.bfloat16`` each layer
    rounds its input, weights and bias to bfloat16 and multiplies with float32
    accumulation (``preferred_element_type``); the sums, ReLUs and returned
    logits are float32 and the parameters (and so their gradients and the
    optimizer state) stay float32.

    ``precision`` is the matmul precision (``jax.lax.Precision`` or its name).
    The backend default (None) is exact float32 on CPU but TF32 tensor cores
    (10-bit mantissa operands) for float32 on recent NVIDIA GPUs, where
    payments then differ from CPU ones by about 1e-4 relative, and from one
    batch shape to another; ``"highest"`` gives float32 products there.
    """

    n_bidders: int
    hidden: tuple[int, ...] = (128, 64, 128)
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: Array) -> Array:
        widths = (*self.hidden, self.n_bidders)
        fan_ins = (self.n_bidders, *self.hidden)
        for layer, (width, fan_in) in enumerate(zip(widths, fan_ins, strict=True)):
            x = nn.Dense(
                width,
                dtype=self.dtype,
                param_dtype=jnp.float32,
                precision=self.precision,
                dot_general=_accumulate_f32,
                kernel_init=torch_linear_init(fan_in),
                bias_init=torch_linear_init(fan_in),
            )(x)
            if layer < len(self.hidden):
                x = nn.relu(x)
        return x.astype(jnp.float32)


def payment_shares(net: PaymentNet, params: Any, bids: Array, bid_scale: float = 1.0) -> Array:
    """``s(b)``: the softmax over bidders of the network's logits, ``[..., n]``."""
    return jax.nn.softmax(net.apply(params, bids / bid_scale), axis=-1)


def share_rule(
    name: str, n_bidders: int, net: nn.Module, shares: Callable[[Any, Array], Array], winner_only: bool
) -> Mechanism:
    """Highest-bid allocation (one item) and payments ``shares(params, b)_i * b_i``, charged to every bidder or
    (``winner_only``) to the winner; ``params`` are ``net``'s."""

    def init(key: PRNGKey) -> Any:
        return net.init(key, jnp.zeros((n_bidders,), jnp.float32))

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        check_bids(bids, n_bidders, 1)
        b = bids[:, 0]
        allocation = highest_bid_allocation(b, key)
        payments = shares(params, b) * b
        if winner_only:
            payments = allocation * payments
        return Outcome(allocation=allocation[:, None], payments=payments)

    return Mechanism(name=name, n_bidders=n_bidders, n_items=1, init=init, apply=apply, trainable=True)


def deep_payment(
    n_bidders: int,
    hidden: Sequence[int] = (128, 64, 128),
    winner_only: bool = False,
    normalise: bool = False,
    bid_scale: float = 9.0,
    dtype: Any = jnp.float32,
    precision: str | None = None,
) -> Mechanism:
    """The seed's deep mechanism: highest-bid allocation, payments ``s_i(b) * b_i``.

    Args:
      n_bidders: size of the bidder axis (>= 2).
      hidden: hidden layer widths (the seed's are 128, 64, 128).
      winner_only: charge only the winner (the seed charges every bidder).
      normalise: feed ``bids / bid_scale`` to the network (the seed feeds raw bids).
      bid_scale: the highest bid of the market, used by ``normalise``.
      dtype: computation dtype of the network (float32, or bfloat16).
      precision: matmul precision, None (the backend's default), "default", "high" or "highest".
    """
    require_two(n_bidders, "deep_payment")
    hidden = hidden_widths(hidden)
    if normalise:
        check_finite(bid_scale, "bid_scale", positive=True)
    if precision is not None:
        check_choice(precision, PRECISIONS, "precision")
    net = PaymentNet(n_bidders=n_bidders, hidden=hidden, dtype=dtype, precision=precision)
    scale = float(bid_scale) if normalise else 1.0

    return share_rule("deep", n_bidders, net, lambda params, b: payment_shares(net, params, b, scale), winner_only)


def own_and_others(bids: Array) -> Array:
    """``[..., n, n]``: row ``i`` is bidder ``i``'s bid followed by the others' bids sorted (a set, so the
    features of a bidder do not depend on the others' order)."""
    n = bids.shape[-1]
    rotate = (np.arange(n)[:, None] + np.arange(1, n)[None, :]) % n  # row i: every bidder but i
    return jnp.concatenate([bids[..., None], jnp.sort(bids[..., rotate], axis=-1)], axis=-1)


class AnonymousPaymentNet(nn.Module):
    """A permutation-equivariant payment network: one MLP, shared by the bidders, maps each bidder's
    ``(own bid, the others' bids sorted)`` to its logit. Permuting the bidders permutes the logits."""

    hidden: tuple[int, ...] = (64, 64)

    @nn.compact
    def __call__(self, bids: Array) -> Array:
        x = own_and_others(bids)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


def anonymous_payment(
    n_bidders: int, hidden: Sequence[int] = (64, 64), winner_only: bool = False, bid_scale: float = 9.0
) -> Mechanism:
    """Highest-bid allocation and payments ``s_i(b) * b_i`` with anonymous shares: ``s = softmax`` of
    ``AnonymousPaymentNet`` on ``bids / bid_scale`` (the market's highest bid), so that bidders in the same
    position pay the same whatever their index (the seed's network does not: its shares depend on the index)."""
    require_two(n_bidders, "anonymous_payment")
    hidden = hidden_widths(hidden)
    check_finite(bid_scale, "bid_scale", positive=True)
    net = AnonymousPaymentNet(hidden)
    scale = float(bid_scale)

    shares = lambda params, b: jax.nn.softmax(net.apply(params, b / scale))  # noqa: E731
    return share_rule("deep_anonymous", n_bidders, net, shares, winner_only)


class AllocationNet(nn.Module):
    """Anonymous networks for a learned allocation with a no-sale option.

    One MLP shared by the bidders maps each bidder's ``(own bid, the others' bids sorted)`` to its allocation
    score and payment logit; a second MLP maps the sorted bids to the score of keeping the item. Permuting the
    bidders permutes the scores and logits, and leaves the keep score unchanged."""

    hidden: tuple[int, ...] = (32, 32)

    @nn.compact
    def __call__(self, bids: Array) -> tuple[Array, Array, Array]:
        x = own_and_others(bids)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        out = nn.Dense(2)(x)
        keep = jnp.sort(bids, axis=-1)
        for width in self.hidden:
            keep = nn.relu(nn.Dense(width)(keep))
        return out[..., 0], out[..., 1], nn.Dense(1)(keep)[..., 0]


def learned_allocation(
    n_bidders: int, hidden: Sequence[int] = (32, 32), winner_only: bool = True, bid_scale: float = 9.0
) -> Mechanism:
    """A learned allocation with a no-sale option (one item), anonymous by construction.

    ``allocation = softmax([scores, keep])[:n]``: win probabilities over the
    bidders plus the auctioneer keeping the item (so a learned rule can set
    reserve-like no-sale regions). Payments ``sigmoid(z_i) * b_i``, times the
    win probability (``winner_only``: charged to winners only, so truthful
    bidders never pay more than the value they receive) or charged to every
    bidder (an all-pay family). Networks see ``bids / bid_scale``.
    """
    require_two(n_bidders, "learned_allocation")
    hidden = hidden_widths(hidden)
    check_finite(bid_scale, "bid_scale", positive=True)
    net = AllocationNet(hidden)
    scale = float(bid_scale)

    def init(key: PRNGKey) -> Any:
        return net.init(key, jnp.zeros((n_bidders,), jnp.float32))

    def apply(params: Any, bids: Array, key: PRNGKey) -> Outcome:
        del key
        check_bids(bids, n_bidders, 1)
        b = bids[:, 0]
        scores, pay_logits, keep = net.apply(params, b / scale)
        allocation = jax.nn.softmax(jnp.concatenate([scores, keep[None]]))[:n_bidders]
        payments = jax.nn.sigmoid(pay_logits) * b
        if winner_only:
            payments = allocation * payments
        return Outcome(allocation=allocation[:, None], payments=payments)

    return Mechanism(name="deep_allocation", n_bidders=n_bidders, n_items=1, init=init, apply=apply, trainable=True)
