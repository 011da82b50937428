"""The discrete equilibrium solver: exact win/cost formulas against brute force, and the known first-price point."""

import itertools

import numpy as np
import pytest

from jaxauction.equilibria import DiscreteGame, exploitability, solve, utilities


def brute_force_utility(game: DiscreteGame, strategy: np.ndarray, value: int, bid: int) -> float:
    """Expected utility of bidding ``bid`` with ``value`` by enumerating every opponents' (value, bid) profile."""
    V, B, k = game.n_values, game.n_bids, game.n_bidders - 1
    total = 0.0
    for profile in itertools.product(range(V), range(B), repeat=k):
        values, bids = profile[0::2], profile[1::2]
        prob = np.prod([strategy[v, b] / V for v, b in zip(values, bids, strict=True)])
        if prob == 0:
            continue
        top = max(bids)
        if bid > top:
            pay = {"first_price": bid, "second_price": top, "all_pay": bid}[game.rule]
            total += prob * (value - pay)
        elif bid == top:
            share = 1 / (1 + sum(b == top for b in bids))
            pay = {"first_price": bid * share, "second_price": bid * share, "all_pay": bid}[game.rule]
            total += prob * (value * share - pay)
        elif game.rule == "all_pay":
            total -= prob * bid
    return total


@pytest.mark.parametrize("rule", ["first_price", "second_price", "all_pay"])
def test_expected_utilities_match_brute_force(rule):
    game = DiscreteGame(rule, 3, n_values=4, n_bids=4)
    strategy = np.random.default_rng(0).dirichlet(np.ones(4), size=4) * game.allowed
    strategy /= strategy.sum(1, keepdims=True)
    u = utilities(game, strategy)
    for v, b in itertools.product(range(4), range(4)):
        assert u[v, b] == pytest.approx(brute_force_utility(game, strategy, v, b), abs=1e-12)


@pytest.mark.parametrize("rule", ["first_price", "second_price", "all_pay"])
def test_no_unilateral_grid_deviation_gains_checked_exhaustively(rule):
    game = DiscreteGame(rule, 3, n_values=4, n_bids=4)
    eq = solve(game, iterations=5_000)
    gains = [
        brute_force_utility(game, eq.strategy, v, b)
        - sum(eq.strategy[v, c] * brute_force_utility(game, eq.strategy, v, c) for c in range(4))
        for v in range(4) for b in range(v + 1)
    ]  # fmt: skip
    assert max(gains) <= 0.01
    assert eq.exploitability == pytest.approx(max(max(gains), 0.0), abs=1e-9)


def test_first_price_three_bidders_on_0_to_9_matches_the_known_equilibrium():
    eq = solve(DiscreteGame("first_price", 3, 10, 10), iterations=20_000)
    np.testing.assert_allclose(eq.mean_bids, [0, 0, 1, 1.94, 2.30, 3, 3.66, 4.68, 5, 5.94], atol=0.02)
    assert eq.revenue == pytest.approx(4.47, abs=0.01)
    assert eq.exploitability < 0.05


def test_second_price_is_solved_by_truthful_bidding():
    eq = solve(DiscreteGame("second_price", 4, 10, 10), iterations=200)
    np.testing.assert_allclose(eq.mean_bids, np.arange(10))
    assert exploitability(DiscreteGame("second_price", 4, 10, 10), eq.strategy) == 0.0
    # truthful second price earns E[second-highest of 4 values on 0..9]
    values = np.array(list(itertools.product(range(10), repeat=4)))
    assert eq.revenue == pytest.approx(np.sort(values, axis=1)[:, -2].mean())


def test_bad_games_are_refused():
    with pytest.raises(ValueError, match="unknown solver rule 'third_price'"):
        solve(DiscreteGame("third_price", 3))
    with pytest.raises(ValueError, match="n_bidders must be an integer >= 2"):
        solve(DiscreteGame("first_price", 1))
    with pytest.raises(ValueError, match=r"n_bids \(5\) must be >= n_values \(10\)"):
        solve(DiscreteGame("first_price", 3, 10, 5))


def test_closed_forms():
    from jaxauction.equilibria import asymmetric_first_price_bids, first_price_bids, wallet_second_price_bids

    grid = np.linspace(0, 10, 20_001)
    for n in (2, 3, 6):
        np.testing.assert_allclose(first_price_bids(grid, grid / 10, n), (n - 1) / n * grid, atol=1e-3)
    x = np.linspace(0, 10, 11)
    np.testing.assert_allclose(asymmetric_first_price_bids(x, 10, 10), x / 2)
    weak, strong = asymmetric_first_price_bids(x[1:], 10, 20), asymmetric_first_price_bids(x[1:], 20, 10)
    assert np.all(weak > x[1:] / 2) and np.all(strong < x[1:] / 2)  # the weak bidder bids more aggressively
    # both bidders' top bids coincide (w1 w2 / (w1 + w2) ... here 20/3): the strong one at 20, the weak one at 10
    assert asymmetric_first_price_bids(np.array([10.0]), 10, 20)[0] == pytest.approx(
        asymmetric_first_price_bids(np.array([20.0]), 20, 10)[0]
    )
    np.testing.assert_allclose(wallet_second_price_bids(x, 2), 2 * x)
    np.testing.assert_allclose(wallet_second_price_bids(x, 4), 3 * x)


def test_importing_the_solvers_leaves_the_equilibrium_bidder_in_place():
    """``ja.equilibrium`` is the bidder constructor; the solver module (``jaxauction.equilibria``) has another
    name, so importing it (as the README's tour does) no longer replaces the constructor with the module."""
    import jaxauction as ja
    from jaxauction.equilibria import solve  # noqa: F401

    assert callable(ja.equilibrium) and ja.equilibrium.__module__ == "jaxauction.bidders.fixed"
