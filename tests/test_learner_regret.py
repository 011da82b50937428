"""Realised regret of learners in a market: regret_round plays run_round's auctions, and its ledger's regrets
match a loop over the same auctions with the reference regret."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.market import counterfactual_utilities
from jaxauction.studies import RegretLedger, regret_round
from tests import reference as ref


def small_market(learner: str = "hedge") -> ja.Market:
    values = ja.PriorSpec(value_high=3)
    return ja.build_market(ja.MechanismSpec("first_price"), ja.PopulationSpec(learner, 2, {"n_bids": 4}), values)


def test_regret_round_plays_the_same_auctions_as_run_round():
    market = small_market()
    params = ja.init_params(market, jax.random.key(0))
    states = market.population.init(jax.random.key(1), params.learners)
    played, _ = jax.jit(lambda s: ja.run_round(market, 256, 256, params, s, jax.random.key(2)))(states)
    ledgered, ledger = jax.jit(lambda s: regret_round(market, params, s, jax.random.key(2), 256))(states)
    jax.tree.map(np.testing.assert_array_equal, played, ledgered)
    assert ledger.gains.shape == (2, 4, 4, 4) and ledger.auctions == 256


def test_the_ledgers_regrets_match_the_reference_over_the_same_auctions():
    """Replay 48 auctions one by one (the library's auction and counterfactual utilities), and score every
    bidder's play value by value with the reference's regrets of one-hot mixed strategies."""
    market, T = small_market(), 48
    params = ja.init_params(market, jax.random.key(0))
    states = market.population.init(jax.random.key(1), params.learners)
    _, ledger = jax.jit(lambda s: regret_round(market, params, s, jax.random.key(3), T))(states)
    rows = []  # (contexts [n], bids [n], counterfactual [n, A])
    step = jax.jit(lambda s, k: ja.auction(market, params, s, k))
    cf = jax.jit(lambda r: counterfactual_utilities(market, params, r, slice(0, 2), np.arange(4.0)))
    for t in range(T):
        states, record = step(states, jax.random.fold_in(jax.random.key(3), t))
        rows.append((np.asarray(record.types.values[:, 0], int), np.asarray(record.bids[:, 0], int),
                     np.asarray(cf(record), np.float64)))  # fmt: skip
    for i in range(2):
        external = swap = 0.0
        for c in range(4):
            ts = [t for t in range(T) if rows[t][0][i] == c]
            if not ts:
                continue
            probs = np.eye(4)[[rows[t][1][i] for t in ts]]
            rewards = np.stack([rows[t][2][i] for t in ts])
            external += ref.external_regret(probs, rewards)
            swap += ref.swap_regret(probs, rewards)
        assert float(ledger.external()[i]) == pytest.approx(external / T, abs=1e-5)
        assert float(ledger.swap()[i]) == pytest.approx(swap / T, abs=1e-5)


def test_regret_needs_integer_grids():
    market = ja.build_market(ja.MechanismSpec("first_price"), ja.PopulationSpec("hedge", 2), ja.PriorSpec("uniform",
                             0.0, 1.0))  # fmt: skip
    with pytest.raises(ValueError, match="realised regret is measured on integer bid grids; hedge"):
        regret_round(market, ja.init_params(market, jax.random.key(0)), None, jax.random.key(0), 10)
    ledger = RegretLedger(np.zeros((1, 1, 2, 2)), 1)
    assert float(ledger.external()[0]) == 0.0 and float(ledger.swap()[0]) == 0.0
