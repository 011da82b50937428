"""The learner interface: a group of ``k`` bidders with one learning rule, as pure functions.

A market holds a *population*: groups of bidders, each with one learner (for
example 1 truthful + 2 epsilon-greedy). A group's arrays stack its bidders on
a leading axis. A learner is written either for the stacked group directly
(``epsilon_greedy``, ``truthful``) or for one bidder and lifted to a group
with ``per_bidder``, which vmaps it over the group with one key per bidder.

Feedback. A learner declares what it needs after each auction:

* ``"bandit"``: its own outcome (``Feedback`` without ``counterfactual``);
* ``"full_information"``: also its utility for every bid of its ``bid_grid``,
  the others' bids and the mechanism's randomness held fixed
  (``Feedback.counterfactual [k, G]``), which the market computes only for
  groups that ask for it. With ``relative_grid`` the grid holds fractions of
  the bidder's value: bid ``g`` is ``bid_grid[g] * value``; with
  ``capped_grid`` it holds bid levels capped at the value: ``min(bid_grid[g],
  value)`` (``grid.grid_bids``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxauction._checks import check_choice
from jaxauction.types import BANDIT, FULL_INFORMATION, Array, Feedback, Params, PRNGKey, State

FEEDBACKS = (BANDIT, FULL_INFORMATION)


@dataclasses.dataclass(frozen=True)
class Learner:
    """``k = n_bidders`` bidders learning with one rule, optax style.

    init(key, params) -> state                         leading axis k
    act(key, state, observations [k, d], params) -> bids [k, m]
    update(key, state, feedback, params) -> state       one learning step after an auction
    policy(state, observations [k, G, d], params) -> bids [k, G, m]
        the exploitation bid for each observation (no exploration): the
        learned bid function, for continuous and discrete values alike
    init_params() -> params                             every number of the rule (an array pytree)

    ``observation_levels``: when set, observations must be integers in
    ``0..observation_levels-1`` (tabular learners); markets refuse priors
    that can draw anything else. ``max_bid``: the largest bid the learner
    can make (a bid grid's top), or ``None`` when it bids up to its values.
    ``check_params`` validates concrete params.
    """

    name: str
    n_bidders: int
    init: Callable[[PRNGKey, Params], State]
    act: Callable[[PRNGKey, State, Array, Params], Array]
    update: Callable[[PRNGKey, State, Feedback, Params], State]
    init_params: Callable[[], Params]
    policy: Callable[[State, Array, Params], Array]
    feedback: str = BANDIT
    bid_grid: np.ndarray | None = None
    relative_grid: bool = False
    capped_grid: bool = False
    observation_levels: int | None = None
    max_bid: float | None = None
    check_params: Callable[[Params], None] = lambda params: None


def per_bidder(
    name: str,
    n_bidders: int,
    init: Callable[[PRNGKey, Params], State],
    act: Callable[[PRNGKey, State, Array, Params], Array],
    update: Callable[[PRNGKey, State, Feedback, Params], State],
    init_params: Callable[[], Params],
    policy: Callable[[State, Array, Params], Array],
    **fields: Any,
) -> Learner:
    """Lift a learner written for one bidder to a group of ``n_bidders``.

    The functions take one bidder's arrays (``observation [d]``, ``bids [m]``,
    a ``Feedback`` of one bidder, ``observations [G, d]`` for ``policy``) and
    the group's shared params; each bidder gets its own key from ``split``.
    ``fields`` set the other ``Learner`` fields (``feedback``, ``bid_grid``, ...).
    """
    check_choice(fields.get("feedback", BANDIT), FEEDBACKS, "feedback")

    def group_init(key: PRNGKey, params: Params) -> State:
        return jax.vmap(init, in_axes=(0, None))(jax.random.split(key, n_bidders), params)

    def group_act(key: PRNGKey, state: State, observations: Array, params: Params) -> Array:
        return jax.vmap(act, in_axes=(0, 0, 0, None))(jax.random.split(key, n_bidders), state, observations, params)

    def group_update(key: PRNGKey, state: State, feedback: Feedback, params: Params) -> State:
        return jax.vmap(update, in_axes=(0, 0, 0, None))(jax.random.split(key, n_bidders), state, feedback, params)

    def group_policy(state: State, observations: Array, params: Params) -> Array:
        return jax.vmap(policy, in_axes=(0, 0, None))(state, observations, params)

    return Learner(
        name=name,
        n_bidders=n_bidders,
        init=group_init,
        act=group_act,
        update=group_update,
        init_params=init_params,
        policy=group_policy,
        **fields,
    )
