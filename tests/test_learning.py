"""Learning oracles: what the epsilon-greedy bandit learns in the seed market (3 bidders, values and bids 0..9).

Slow (1,000,000 auctions in 8 markets each, about 25 s per test on 2 CPU cores): ``pytest -m slow``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja

pytestmark = pytest.mark.slow

# The first-price equilibrium of this discrete game (3 bidders, values and bids 0..9, no overbidding):
# mean bid per value, from the equilibrium solver of the market issue (best-response dynamics).
FIRST_PRICE_EQUILIBRIUM = np.array([0, 0, 1, 1.94, 2.30, 3, 3.66, 4.68, 5, 5.94])


def learned_bids(mechanism: str, auctions: int = 1_000_000, markets: int = 8) -> np.ndarray:
    """Greedy bid per value level after ``auctions`` learning auctions: ``[markets, bidders, 10]``."""
    market = ja.market_of(ja.DMOConfig.of(mechanism=mechanism))
    params = ja.init_params(market, jax.random.key(0))
    keys = jax.random.split(ja.key(0), markets)
    states = jax.vmap(market.population.init, in_axes=(0, None))(keys, params.learners)
    states, _ = jax.jit(jax.vmap(lambda s, k: ja.run_round(market, auctions, 10_000, params, s, k)))(states, keys)
    grid = jnp.arange(10.0)[:, None]
    return np.asarray(jax.vmap(lambda s: market.population.policy(s, grid, params.learners))(states))[..., 0]


def test_epsilon_greedy_learns_truthful_bidding_under_second_price():
    """Truthful bidding is weakly dominant: at least 90% of greedy bids equal the value (measured: 91%)."""
    bids = learned_bids("second_price")
    assert (bids == np.arange(10)).mean() >= 0.9


def test_epsilon_greedy_shades_towards_the_first_price_equilibrium():
    """Under first price the bandits shade: their mean greedy bid per value lies within 0.75 of the discrete
    equilibrium's at every value and within 0.15 on average (measured: 0.69 at value 9, 0.08 on average)."""
    mean_bid = learned_bids("first_price").mean((0, 1))
    gap = np.abs(mean_bid - FIRST_PRICE_EQUILIBRIUM)
    assert gap.max() <= 0.75 and gap.mean() <= 0.15
    assert np.all(mean_bid[2:] < np.arange(2, 10))  # strictly below truthful
