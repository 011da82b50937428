"""A population: the market's bidders as groups, each group with one learner.

Bidders keep their order: group 0 holds bidders ``0..k0-1``, group 1 the next
``k1``, and so on. The population's state and params are tuples with one
entry per group. One key serves a single group as is; several groups split it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxauction.bidders.base import Learner
from jaxauction.types import Array, Params, PRNGKey, State


@dataclasses.dataclass(frozen=True)
class Population:
    """Learner groups on one stacked bidder axis, in order: group ``g`` holds the bidders of ``slices[g]``. Build it
    with ``population``."""

    groups: tuple[Learner, ...]

    @property
    def n_bidders(self) -> int:
        return sum(group.n_bidders for group in self.groups)

    @property
    def slices(self) -> tuple[slice, ...]:
        """The bidder-axis slice of each group."""
        starts = [0]
        for group in self.groups:
            starts.append(starts[-1] + group.n_bidders)
        return tuple(slice(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True))

    @property
    def names(self) -> tuple[str, ...]:
        """The learner of each bidder, in bidder order."""
        return tuple(group.name for group in self.groups for _ in range(group.n_bidders))

    def keys(self, key: PRNGKey) -> Sequence[PRNGKey]:
        return [key] if len(self.groups) == 1 else list(jax.random.split(key, len(self.groups)))

    def init_params(self) -> tuple[Params, ...]:
        return tuple(group.init_params() for group in self.groups)

    def init(self, key: PRNGKey, params: tuple[Params, ...]) -> tuple[State, ...]:
        return tuple(g.init(k, p) for g, k, p in zip(self.groups, self.keys(key), params, strict=True))

    def act(self, key: PRNGKey, states: tuple[State, ...], observations: Array, params: tuple[Params, ...]) -> Array:
        """``bids [n, m]`` for ``observations [n, d]``."""
        bids = [
            g.act(k, s, observations[sl], p)
            for g, k, s, sl, p in zip(self.groups, self.keys(key), states, self.slices, params, strict=True)
        ]
        return bids[0] if len(bids) == 1 else jnp.concatenate(bids, axis=0)

    def policy(self, states: tuple[State, ...], observations: Array, params: tuple[Params, ...]) -> Array:
        """``[n, G, m]``: every bidder's exploitation bid for each of the observations ``[G, d]``."""
        bids = [
            g.policy(s, jnp.broadcast_to(observations, (g.n_bidders, *observations.shape)), p)
            for g, s, p in zip(self.groups, states, params, strict=True)
        ]
        return jnp.concatenate(bids, axis=0)


def population(groups: Learner | Sequence[Learner]) -> Population:
    """A population from one learner (every bidder) or a sequence of groups."""
    groups = (groups,) if isinstance(groups, Learner) else tuple(groups)
    if not groups:
        raise ValueError("a population needs at least one group of bidders")
    return Population(groups)
