"""RegretFormer (Ivanov, Safiulin, Filippov and Balabaeva, "Optimal-er auctions through attention", NeurIPS
2022): RegretNet's outputs from self-attention over bidder x item tokens.

The bids ``[n, m]`` become ``n x m`` tokens of ``channels`` features (an
exchangeable layer, ``jaxauction.mechanisms.equivariant``, then tanh); each of
``layers`` blocks then runs

* multi-head self-attention over the items of each bidder (its row), and over
  the bidders of each item (its column), each pre-normalised (LayerNorm) with
  a residual connection (``heads`` heads of ``attention`` features);
* ``tanh`` of the two concatenated, a dense layer back to ``channels``, the
  block's residual, and ``tanh``.

The head normalises the tokens, pools a bidder embedding (mean over its items
of a linear map) and an item embedding (mean over bidders of another), and
reads

* allocation: logits ``<bidder_i, item_j> / sqrt(channels)``; per item, a
  softmax over the ``n`` bidders and a dummy whose logit is minus the sum of
  the bidders' (the item stays unsold with the dummy's probability); for
  **unit-demand** bidders, the elementwise minimum of that and the same
  construction per bidder over its items (rows sum to at most 1 too: the
  paper covers additive bidders only, this is EquivariantNet's unit-demand
  head);
* payment: ``p_i = sigmoid(w . bidder_i + c) * sum_j a_ij b_ij``, a fraction
  of the reported value of the allocation (individually rational by
  construction, as RegretNet).

No layer's size depends on ``n`` or ``m``, so one set of weights serves every
size (the paper trains on a mixture of sizes), and nothing depends on the
order of bidders or items: the rule is anonymous and item-neutral (tested).
The network sees ``bids / bid_scale``. Initialisation: Flax's defaults
(LeCun-normal kernels, zero biases; the exchangeable input layer
Glorot-uniform), where the reference code uses PyTorch's defaults.

Reference sizes (the public code, dimonenka/optimaler): one bidder and two
items, 32 channels, 16 attention features, 2 heads, 1 block; up to 3 items,
64, 32, 2 heads, 1 block; 5 or more items, 128, 32, 4 heads, 2 blocks. It
trains with the regret-budget dual (``train.lagrangian``, ``dual="budget"``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxauction._checks import check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.equivariant import Exchangeable
from jaxauction.mechanisms.regretnet import fraction_mechanism
from jaxauction.types import Array


class _Attention(nn.Module):
    """Pre-normalised multi-head self-attention over the second-to-last axis, with a residual connection."""

    heads: int
    features: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        attend = nn.MultiHeadDotProductAttention(self.heads, qkv_features=self.heads * self.features,
                                                 out_features=x.shape[-1], use_bias=False)  # fmt: skip
        return x + attend(nn.LayerNorm(epsilon=1e-6)(x))


class _Block(nn.Module):
    """Attention within each bidder's row and within each item's column, merged by a dense layer (residual)."""

    heads: int
    features: int

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [n, m, C]
        over_items = _Attention(self.heads, self.features, name="items")(x)
        over_bidders = _Attention(self.heads, self.features, name="bidders")(x.swapaxes(0, 1)).swapaxes(0, 1)
        merged = nn.Dense(x.shape[-1], name="merge")(jnp.tanh(jnp.concatenate([over_items, over_bidders], -1)))
        return merged + x


def _with_dummy(logits: Array, axis: int) -> Array:
    """Softmax along ``axis`` with a dummy entry whose logit is minus the sum of the others; the dummy dropped."""
    dummy = -jnp.sum(logits, axis=axis, keepdims=True)
    weights = jax.nn.softmax(jnp.concatenate([logits, dummy], axis=axis), axis=axis)
    return jax.lax.slice_in_dim(weights, 0, logits.shape[axis], axis=axis)


class RegretFormerModule(nn.Module):
    """``bids [n, m] -> (allocation [n, m], fractions [n])`` through attention over tokens (module docstring)."""

    demand: str = "additive"
    channels: int = 64
    attention: int = 32
    heads: int = 2
    layers: int = 1

    @nn.compact
    def __call__(self, bids: Array) -> tuple[Array, Array]:
        x = jnp.tanh(Exchangeable(self.channels, name="embed")(bids[..., None]))
        for _ in range(self.layers):
            x = jnp.tanh(_Block(self.heads, self.attention)(x))
        x = nn.LayerNorm(epsilon=1e-6)(x)
        bidders = jnp.mean(nn.Dense(self.channels, use_bias=False, name="bidder")(x), axis=1)  # [n, C]
        items = jnp.mean(nn.Dense(self.channels, use_bias=False, name="item")(x), axis=0)  # [m, C]
        logits = bidders @ items.T / jnp.sqrt(float(self.channels))
        allocation = _with_dummy(logits, axis=0)
        if self.demand == "unit":
            allocation = jnp.minimum(allocation, _with_dummy(logits, axis=1))
        return allocation, jax.nn.sigmoid(nn.Dense(1, name="payment")(bidders)[:, 0])


def reference_size(n_bidders: int, n_items: int) -> tuple[int, int, int, int]:
    """``(channels, attention, heads, layers)`` of the reference code for a size (module docstring)."""
    if n_bidders == 1 and n_items <= 2:
        return 32, 16, 2, 1
    return (64, 32, 2, 1) if n_items <= 3 else (128, 32, 4, 2)


def regretformer(
    n_bidders: int,
    n_items: int,
    demand: str = "additive",
    channels: int | None = None,
    attention: int | None = None,
    heads: int | None = None,
    layers: int | None = None,
    bid_scale: float = 1.0,
) -> Mechanism:
    """RegretFormer (module docstring); an unset size takes the reference code's value for ``n x m``;
    ``params`` are the Flax params of the whole network."""
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_items, "n_items")
    given = (channels, attention, heads, layers)
    sizes = [d if size is None else size for size, d in zip(given, reference_size(n_bidders, n_items), strict=True)]
    for size, name in zip(sizes, ("channels", "attention", "heads", "layers"), strict=True):
        check_positive_int(size, name)
    module = RegretFormerModule(demand, *sizes)
    return fraction_mechanism("regretformer", n_bidders, n_items, demand, module, bid_scale)
