"""EquivariantNet (Rahme, Jelassi, Bruna and Weinberg, "A permutation-equivariant neural network architecture for
auction design", AAAI 2021): RegretNet's outputs from a network that commutes with permuting bidders and items.

The bids ``[n, m]`` pass through *exchangeable matrix layers* (Hartford et
al., ICML 2018): with ``X`` of shape ``[n, m, C]``,

    Y_ij = tanh( X_ij W1 + mean_i' X_i'j W2 + mean_j' X_ij' W3 + mean_i'j' X_i'j' W4 + b ),

so relabelling the bidders or the items relabels the output the same way
(``activation="relu"``: ReLU for tanh, as the public reimplementation's
configuration, dimonenka/optimaler). A
last exchangeable layer (linear) gives four channels per bidder and item:

* allocation, **additive** bidders: per item, a softmax over the ``n``
  bidders' logits (channel 0) and a dummy whose logit is the item's mean of
  channel 1 over bidders (the item stays unsold with the dummy's
  probability), so each column sums to at most 1;
* allocation, **unit-demand** bidders: the elementwise minimum of that and a
  per-bidder softmax over items (channel 0) and a dummy item (the bidder's
  mean of channel 2 over items), so rows sum to at most 1 too;
* payment: ``p_i = sigmoid(mean_j z_ij) * sum_j a_ij b_ij`` (channel 3): a
  fraction of the reported value of the bidder's allocation, so a truthful
  bidder's utility is never negative (individually rational by
  construction), as in RegretNet.

The mechanism is anonymous in bidders and neutral in items (tested): an
optimal auction for i.i.d. bidders and items can be taken symmetric, so the
network searches a smaller space, and the same weights serve any ``n`` and
``m`` (the layers' sizes do not depend on them). It trains on RegretNet's
augmented Lagrangian, with regret, on the shared trainer
(``train.lagrangian``). The networks see ``bids / bid_scale``. Weights are
Glorot-uniform, biases zero; ``hidden``: the channels of each hidden layer
(the experiment's ``--hidden-layers`` and ``--hidden-units``).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxauction._checks import check_choice, hidden_widths
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.regretnet import fraction_mechanism
from jaxauction.types import Array

ACTIVATIONS = ("tanh", "relu")  # the hidden layers' choices (``equivariantnet``'s ``activation``)


class Exchangeable(nn.Module):
    """One exchangeable matrix layer ``[n, m, C] -> [n, m, features]`` (linear; the caller adds the activation)."""

    features: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        pooled = {"cell": x, "item": jnp.mean(x, axis=0, keepdims=True), "bidder": jnp.mean(x, axis=1, keepdims=True),
                  "all": jnp.mean(x, axis=(0, 1), keepdims=True)}  # fmt: skip
        init = nn.initializers.glorot_uniform()
        terms = [nn.Dense(self.features, use_bias=name == "cell", kernel_init=init, name=name)(v)
                 for name, v in pooled.items()]  # fmt: skip
        return 0.5 * sum(terms)  # halved: four Glorot terms add up to twice one dense layer's scale


class EquivariantModule(nn.Module):
    """``bids [n, m] -> (allocation [n, m], fractions [n])`` through exchangeable layers (module docstring)."""

    demand: str = "additive"
    hidden: tuple[int, ...] = (100, 100)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, bids: Array) -> tuple[Array, Array]:
        x = bids[..., None]
        act = jnp.tanh if self.activation == "tanh" else jax.nn.relu
        for width in self.hidden:
            x = act(Exchangeable(width)(x))
        z = Exchangeable(4, name="out")(x)  # [n, m, 4]
        n = bids.shape[0]
        dummy_item = jnp.mean(z[..., 1], axis=0, keepdims=True)  # [1, m]: the "unsold" logit of each item
        allocation = jax.nn.softmax(jnp.concatenate([z[..., 0], dummy_item], axis=0), axis=0)[:n]
        if self.demand == "unit":
            dummy_bidder = jnp.mean(z[..., 2], axis=1, keepdims=True)  # [n, 1]: "no item" for each bidder
            over_items = jax.nn.softmax(jnp.concatenate([z[..., 0], dummy_bidder], axis=1), axis=1)[:, :-1]
            allocation = jnp.minimum(allocation, over_items)
        return allocation, jax.nn.sigmoid(jnp.mean(z[..., 3], axis=1))


def equivariantnet(
    n_bidders: int,
    n_items: int,
    demand: str = "additive",
    hidden: Sequence[int] = (100, 100),
    bid_scale: float = 1.0,
    activation: str = "tanh",
) -> Mechanism:
    """EquivariantNet (module docstring); ``params`` are the Flax params of the exchangeable layers;
    ``activation``: the hidden layers' (``tanh``, or ``relu`` as the public reimplementation's configuration)."""
    check_choice(activation, ACTIVATIONS, "activation")
    module = EquivariantModule(demand, hidden_widths(hidden), activation)
    return fraction_mechanism("equivariantnet", n_bidders, n_items, demand, module, bid_scale)
