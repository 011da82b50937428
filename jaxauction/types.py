"""The containers every part of jaxauction shares.

Conventions (one for every mechanism, prior, learner and market):

* a market has ``n`` bidders on one stacked *bidder axis* and ``m`` items on an
  *items axis*; a single-item auction is ``m = 1``;
* bids and values are ``[n, m]``; an outcome is ``allocation [n, m]`` (the
  probabilities of a randomised allocation: 0/1 for the classical rules) and
  ``payments [n]``;
* under ``vmap`` (markets, seeds, sweeps) extra axes lead: ``[..., n, m]``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # a pytree of array-valued parameters
State = Any  # a pytree of learner state

BANDIT = "bandit"
FULL_INFORMATION = "full_information"


class Outcome(NamedTuple):
    """The result of one auction.

    allocation: ``[n, m]`` float, the probability that bidder ``i`` receives
      item ``j`` (0/1 for deterministic rules); each column sums to at most 1,
      and to less than 1 when the item may stay unsold.
    payments: ``[n]`` float, what each bidder pays the auctioneer.
    """

    allocation: Array
    payments: Array


class Types(NamedTuple):
    """What a prior draws for the ``n`` bidders of one auction.

    values: ``[n, m]`` each bidder's value for each item (what utilities use).
    signals: ``[n, k]`` what each bidder observes when that is not its own
      values (common-value and signal settings); ``None`` for private values.
    common: a common-value component shared by all bidders, or ``None``.
    budgets: ``[n]`` per-auction budgets, or ``None``.
    """

    values: Array
    signals: Array | None = None
    common: Array | None = None
    budgets: Array | None = None

    def observation(self) -> Array:
        """What the bidders bid on: their signals when the prior has them, else their values (``[n, d]``)."""
        return self.values if self.signals is None else self.signals


class Feedback(NamedTuple):
    """What a group of ``k`` bidders learns from after one auction.

    observation: ``[k, d]`` what each bidder bid on.
    bids: ``[k, m]`` its bids.
    allocation: ``[k, m]`` and payments ``[k]``: its part of the outcome.
    utility: ``[k]`` its realised utility.
    counterfactual: ``[k, G]`` for learners with full-information feedback:
      the utility each bidder would have had with each bid of its learner's
      grid, the other bids and the mechanism's randomness held fixed; ``None``
      for bandit feedback.
    observed: ``[k, G]`` which of those counterfactuals the bidder actually
      observes under the market's information rule (``None``: all of them).
    """

    observation: Array
    bids: Array
    allocation: Array
    payments: Array
    utility: Array
    counterfactual: Array | None = None
    observed: Array | None = None
