"""Equilibrium references: a numerical solver for discrete auctions, and closed forms for continuous ones.

Closed forms (continuous values; the original's equilibrium documentation):

* ``first_price_bids(grid, cdf, n)``: the symmetric first-price equilibrium
  for i.i.d. values with CDF ``F`` from the bottom of the support ``s_0``,
  ``b(v) = v - int_{s_0}^v F(x)^(n-1) dx / F(v)^(n-1)``, by quadrature
  (``(n - 1) / n * v`` for ``U[0, H]``);
* ``asymmetric_first_price_bids(values, w_own, w_other)``: two bidders with
  ``U[0, w_1]`` and ``U[0, w_2]`` values: ``b_i(x) = (1 - sqrt(1 - k_i
  x^2)) / (k_i x)`` with ``k_i = 1 / w_i^2 - 1 / w_j^2`` (``x / 2`` when the
  ranges are equal);
* ``wallet_second_price_bids(signals, n)``: the common-value wallet game
  (``V = sum_i s_i``, signals ``U[0, H]``) under second price:
  ``b(s) = E[V | s_i = s, highest other signal = s] = 2s + (n - 2) s / 2``
  (``2s`` for two bidders).

The solver:

For ``n`` bidders with i.i.d. values uniform on ``0..V-1`` and bids
``0..B-1`` (without overbid, bids up to the value), a symmetric strategy is
``sigma[v, b]``, the probability of bidding ``b`` with value ``v``. Against
``n - 1`` opponents playing ``sigma``, bidding ``b`` wins with probability
``P(b)`` and costs ``Q(b)`` in expectation (ties broken uniformly), both
computed exactly from the opponents' bid distribution ``q[b] = mean_v
sigma[v, b]``, so a bidder's expected utility is ``v P(b) - Q(b)``:

* first price: the winner pays its bid;
* second price: the winner pays the highest other bid;
* all-pay: everyone pays its bid.

Fictitious play (``solve``) starts from truthful bidding and replaces
``sigma`` by the running average of the best responses to it, ``sigma_{t+1}
= sigma_t + (BR(sigma_t) - sigma_t) / (t + 2)``. Its average strategy is an
approximate equilibrium whose quality ``exploitability`` measures: the
largest gain, over values, of a unilateral best response. It gives the
reference that learners are compared with where no closed form exists (for
first price with 3 bidders on 0..9 its mean bids are close to
``[0 0 1 1.94 2.30 3 3.66 4.68 5 5.94]`` and its revenue about 4.47).
Host-side NumPy in float64: the grids are small.
"""

from __future__ import annotations

from math import comb
from typing import NamedTuple

import numpy as np

from jaxauction._checks import check_choice, check_positive_int

SOLVER_RULES = ("first_price", "second_price", "all_pay")


def first_price_bids(grid: np.ndarray, cdf: np.ndarray, n: int) -> np.ndarray:
    """The symmetric first-price equilibrium bid at each point of ``grid`` (increasing, from the bottom of the
    support) for i.i.d. values with CDF ``cdf`` on that grid (use a fine grid: trapezoidal quadrature)."""
    grid, cdf = np.asarray(grid, np.float64), np.asarray(cdf, np.float64)
    power = cdf ** (n - 1)
    integral = np.concatenate([[0.0], np.cumsum((power[1:] + power[:-1]) / 2 * np.diff(grid))])
    with np.errstate(divide="ignore", invalid="ignore"):
        shade = np.where(power > 0, integral / power, 0.0)
    return grid - shade


def asymmetric_first_price_bids(values: np.ndarray, w_own: float, w_other: float) -> np.ndarray:
    """Bidder ``i``'s first-price equilibrium bid with values ``U[0, w_own]`` against one ``U[0, w_other]``."""
    x = np.asarray(values, np.float64)
    k = 1 / w_own**2 - 1 / w_other**2
    if abs(k) < 1e-12:
        return x / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, (1 - np.sqrt(1 - k * x**2)) / (k * x), 0.0)


def wallet_second_price_bids(signals: np.ndarray, n: int) -> np.ndarray:
    """The wallet game's symmetric second-price equilibrium, signals ``U[0, H]``: ``(n + 2) / 2 * s``."""
    return (n + 2) / 2 * np.asarray(signals, np.float64)


class DiscreteGame(NamedTuple):
    """A symmetric auction on integer grids (static)."""

    rule: str
    n_bidders: int
    n_values: int = 10
    n_bids: int = 10
    overbid: bool = False

    def check(self) -> None:
        check_choice(self.rule, SOLVER_RULES, "solver rule")
        check_positive_int(self.n_bidders, "n_bidders", minimum=2)
        check_positive_int(self.n_values, "n_values")
        check_positive_int(self.n_bids, "n_bids", minimum=2)
        if not self.overbid and self.n_values > self.n_bids:
            raise ValueError(f"without overbid n_bids ({self.n_bids}) must be >= n_values ({self.n_values})")

    @property
    def allowed(self) -> np.ndarray:
        """``[V, B]`` the bids each value may make."""
        b, v = np.arange(self.n_bids), np.arange(self.n_values)[:, None]
        return np.ones((self.n_values, self.n_bids), bool) if self.overbid else b <= v


class Equilibrium(NamedTuple):
    strategy: np.ndarray  # [V, B] probabilities
    mean_bids: np.ndarray  # [V]
    revenue: float  # expected revenue per auction
    exploitability: float  # the largest gain of a unilateral deviation, over values
    iterations: int


def win_and_cost(game: DiscreteGame, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P [B], Q [B])``: the win probability and expected payment of each bid against ``n - 1`` opponents
    whose bids are distributed ``q [B]``."""
    k = game.n_bidders - 1
    below = np.concatenate([[0.0], np.cumsum(q)[:-1]])  # P(an opponent bids < b)
    at_most = below + q
    # P(win at b) = sum_j C(k, j) q_b^j below_b^(k-j) / (j + 1): j opponents tie at b, the rest bid lower.
    win = sum(comb(k, j) * q**j * below ** (k - j) / (j + 1) for j in range(k + 1))
    if game.rule == "first_price":
        return win, win * np.arange(game.n_bids)
    if game.rule == "all_pay":
        return win, np.arange(game.n_bids, dtype=np.float64)
    # second price: with no tie the winner pays the highest other bid m < b; a tie at b pays b.
    p_max = at_most**k - below**k  # P(the highest other bid = m)
    lower = np.concatenate([[0.0], np.cumsum(p_max * np.arange(game.n_bids))[:-1]])  # sum_{m<b} m P(max = m)
    tie = win - below**k  # the part of P(win) with a tie at b
    return win, lower + tie * np.arange(game.n_bids)


def utilities(game: DiscreteGame, strategy: np.ndarray) -> np.ndarray:
    """``[V, B]`` a bidder's expected utility for each (value, bid) when the others play ``strategy``."""
    win, cost = win_and_cost(game, strategy.mean(axis=0))
    return np.arange(game.n_values)[:, None] * win[None, :] - cost[None, :]


def exploitability(game: DiscreteGame, strategy: np.ndarray) -> float:
    """The largest gain, over values, of a best response to ``strategy`` over playing it."""
    u = utilities(game, strategy)
    best = np.where(game.allowed, u, -np.inf).max(axis=1)
    return float(np.max(best - np.sum(strategy * u, axis=1)))


def revenue(game: DiscreteGame, strategy: np.ndarray) -> float:
    """Expected revenue per auction when every bidder plays ``strategy``."""
    _, cost = win_and_cost(game, strategy.mean(axis=0))
    return float(game.n_bidders * np.mean(np.sum(strategy * cost, axis=1)))


def solve(game: DiscreteGame, iterations: int = 20_000) -> Equilibrium:
    """Symmetric fictitious play from truthful bidding (bids capped at the grid's top)."""
    game.check()
    check_positive_int(iterations, "iterations")
    allowed = game.allowed
    values = np.arange(game.n_values)
    strategy = np.zeros((game.n_values, game.n_bids))
    strategy[values, np.minimum(values, game.n_bids - 1)] = 1.0
    for t in range(iterations):
        u = np.where(allowed, utilities(game, strategy), -np.inf)
        best = np.zeros_like(strategy)
        best[values, np.argmax(u, axis=1)] = 1.0  # ties: the lowest bid
        strategy += (best - strategy) / (t + 2)
    return Equilibrium(
        strategy=strategy,
        mean_bids=strategy @ np.arange(game.n_bids),
        revenue=revenue(game, strategy),
        exploitability=exploitability(game, strategy),
        iterations=iterations,
    )
