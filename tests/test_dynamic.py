"""Dynamic mechanisms in the market: the clock runs over a round's horizon, equal phases change nothing, and a
reserve schedule earns each phase's theory against truthful bidders."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxauction as ja
from jaxauction.mechanisms import phase

UNIFORM = ja.PriorSpec("uniform", 0.0, 1.0)


def test_phase_of_a_point_of_the_horizon():
    taus = np.array([0.0, 0.1, 0.25, 0.2499999, 0.5, 0.75, 0.9999, 1.0])
    expected = [min(int(np.floor(np.float32(t) * 4)), 3) for t in taus]
    np.testing.assert_array_equal(phase(jnp.asarray(taus, jnp.float32), 4), expected)


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_equal_phases_play_exactly_the_static_rule():
    """A phased rule whose phases hold the same numbers is the static rule, auction for auction."""
    static = ja.build_market(ja.MechanismSpec("first_price", {"reserve": 2.0}), ja.PopulationSpec(), ja.PriorSpec())
    phased = ja.build_market(ja.MechanismSpec("first_price", {"reserve": 2.0, "phases": 3}), ja.PopulationSpec(),
                             ja.PriorSpec())  # fmt: skip
    assert phased.mechanism.name == "first_price+phases3"
    runs = []
    for market in (static, phased):
        params = ja.init_params(market, jax.random.key(0))
        states, metrics = jax.jit(lambda p, k, m=market: ja.fresh_round(m, p, k, k, 3_000, 1_000))(
            params, jax.random.key(1)
        )
        runs.append((states, metrics))
    jax.tree.map(np.testing.assert_array_equal, runs[0], runs[1])


@pytest.mark.slow  # 3-16 s: the default suite stays under 5 minutes on 2 cores
def test_a_reserve_schedule_earns_each_phases_theory():
    """Second price, two truthful bidders on U[0, 1]: no reserve earns E[min] = 1/3, the reserve 1/2 earns
    5/12 (Myerson's optimum). Four windows of 20,000 auctions; standard deviation about 0.24 per auction, so
    4 standard errors = 0.007."""
    market = ja.build_market(ja.MechanismSpec("second_price", {"phases": 2}), ja.PopulationSpec("truthful", 2),
                             UNIFORM)  # fmt: skip
    params = ja.init_params(market, jax.random.key(0))
    schedule = params.mechanism.schedule._replace(reserve=jnp.array([0.0, 0.5]))
    params = params._replace(mechanism=params.mechanism._replace(schedule=schedule))
    _, metrics = jax.jit(lambda k: ja.fresh_round(market, params, k, k, 80_000, 20_000))(jax.random.key(1))
    np.testing.assert_allclose(metrics.revenue, [1 / 3, 1 / 3, 5 / 12, 5 / 12], atol=0.007)
    assert float(ja.at_time(params, 0.75).mechanism.tau) == 0.75  # where the clock of a round stands


def test_phases_are_an_option_of_the_classical_rules():
    with pytest.raises(ValueError, match="phases must be an integer >= 1"):
        ja.MechanismSpec("second_price", {"phases": 0})
    with pytest.raises(ValueError, match="phases is an option of mechanism all_pay"):
        ja.DMOConfig.of(phases=2)  # the default rule, the seed's network, is not a classical rule
    config = ja.DMOConfig.of(mechanism="first_price", phases=4, learner="truthful", auctions_per_round=1_000,
                             window=250)  # fmt: skip
    assert ja.market_of(config).mechanism.name == "first_price+phases4"


@pytest.mark.slow
def test_dynamic_rules_earn_their_exact_horizon_revenue():
    """The validation table's dynamic rows: a phased and a stepped reserve over a horizon of 100,000 auctions,
    within 4 standard errors of the exact horizon revenue (the phases' enumerated revenues by their shares)."""
    from tests.validation_table import dynamic_rows

    for line in dynamic_rows():
        *_, value, estimate, se, gap = (c.strip() for c in line.strip("|").split("|"))
        assert float(gap) <= 4.0, line


def test_teaser_options_are_checked_and_the_rule_is_registered():
    with pytest.raises(ValueError, match="discount must be in"):
        ja.MechanismSpec("teaser_first_price", {"discount": 1.5})
    with pytest.raises(ValueError, match="takes no --phases"):
        ja.MechanismSpec("teaser_first_price", {"phases": 2})
    with pytest.raises(ValueError, match="teaser must be in"):
        ja.teaser_first_price(3, teaser=-0.1)
    mechanism = ja.make_mechanism("teaser_first_price", 3, discount=0.5, teaser=0.25)
    schedule = mechanism.init(jax.random.key(0)).schedule
    assert (float(schedule.discount), float(schedule.teaser)) == (0.5, 0.25)
    with pytest.raises(ValueError, match="must not increase"):
        ja.MechanismSpec("declining_reserve_first_price", {"reserves": (3.0, 4.0)})
    with pytest.raises(ValueError, match="its phases are --reserves"):
        ja.MechanismSpec("declining_reserve_first_price", {"phases": 2})
    with pytest.raises(ValueError, match="reserves must be"):
        ja.declining_reserve_first_price(3, (2.0, -1.0))
    with pytest.raises(ValueError, match="at least one reserve"):
        ja.declining_reserve_first_price(3, ())
    declining = ja.make_mechanism("declining_reserve_first_price", 3, reserves=(5.0, 2.0))
    np.testing.assert_array_equal(declining.init(jax.random.key(0)).schedule.reserve, [5.0, 2.0])


@pytest.mark.slow  # 6-10 s: the default suite stays under 5 minutes on 2 cores
def test_dynamic_mechanisms_table_against_truthful_bidders_and_its_resume(tmp_path):
    """Truthful bidders on the seed's values 0..9 (E[max v] = 6.975): first price collects the top value, the
    teaser 0.2 of it for 70% of the horizon and all of it after (0.44 x 6.975 = 3.069), second price with
    the best of the reserves 4.99 and 5.99 earns 5.075 (4.99 wins: E[max(v(2), 4.99); v(1) >= 5] is 0.0075
    below the integer reserve's 203/40), Myerson's auction 5.275. 2 seeds x 4,000 auctions: s.e. about 0.02;
    tolerance 0.1. A resume reads every finished cell back."""
    from experiments import dynamic_mechanisms

    args = ["--learners", "truthful", "--grids", "original", "--auctions", "4000", "--windows", "4",
            "--reserves", "4.99", "5.99", "--discounts", "0.2", "--teasers", "0.7", "--tuning-seeds", "2",
            "--horizons", "--seeds", "2", "--no-progress", "--no-plots"]  # fmt: skip
    m = dynamic_mechanisms.main([*args, "--out", str(tmp_path / "t")])
    cells = {c["mechanism"]: c for c in m["cells"]}
    assert cells["first_price"]["revenue"] == pytest.approx(6.975, abs=0.1)
    assert cells["teaser_first_price"]["revenue"] == pytest.approx(0.44 * 6.975, abs=0.1)
    assert cells["second_price_best_reserve"]["reserve"] == 4.99
    assert cells["second_price_best_reserve"]["revenue"] == pytest.approx(5.075 - 0.0075, abs=0.1)
    assert cells["discrete_myerson"]["revenue"] == pytest.approx(5.275, abs=0.1)  # Myerson's optimum
    for name, c in cells.items():  # truthful bidders: the top value is allocated (above the reserve: 6.575)
        assert c["welfare"] == pytest.approx(6.975 if name in ("first_price", "teaser_first_price") else 6.575, abs=0.1)
        assert c["welfare"] == pytest.approx(c["revenue"] + c["utility"], abs=1e-5)
    assert m["theory"]["full_welfare"] == pytest.approx(6.975)
    assert m["theory"]["myerson_optimum"] == pytest.approx(5.275)
    # epsilon-greedy is done exploring once its forced exploration (20,000) is over and 0.5 ** (t / 10,000)
    # <= 5%: t >= 43,220, so from the window starting at 45,000
    assert dynamic_mechanisms.settled_from(dynamic_mechanisms.DynamicConfig(), 100_000) == 45_000
    with pytest.raises(ValueError, match="leaves no auction to report"):
        dynamic_mechanisms.DynamicConfig(auctions=40_000, windows=4)
    resumed = dynamic_mechanisms.main(["--resume", str(tmp_path / "t"), "--no-progress"])
    assert [c["revenue"] for c in resumed["cells"]] == [c["revenue"] for c in m["cells"]]
    assert all(c["seconds"] == r["seconds"] for c, r in zip(m["cells"], resumed["cells"], strict=True))


@pytest.mark.slow
def test_the_teaser_earns_above_myerson_from_hedge_bidders_who_may_overbid():
    """Issue 18's construction: 3 Hedge bidders, values 0..9, bids 0..39, 100,000 auctions, 4 seeds. The teaser
    (a fifth of the bid for 70% of the horizon) earns about 6.50 over the whole horizon, above Myerson's
    5.275 for best-responding bidders and close to the full welfare 6.975; the bidders keep about 0.04."""
    hedge = ja.PopulationSpec("hedge", 3, {"n_bids": 40, "overbid": True})
    market = ja.build_market(ja.MechanismSpec("teaser_first_price"), hedge, ja.PriorSpec())
    params = ja.init_params(market, jax.random.key(0))
    one = lambda k: ja.fresh_round(market, params, *jax.random.split(k), 100_000, 5_000)[1]  # noqa: E731
    metrics = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), 4))
    revenue = np.asarray(metrics.revenue, np.float64).mean(axis=1)
    utility = np.asarray(metrics.utility, np.float64).sum(axis=-1).mean(axis=1)
    se = revenue.std(ddof=1) / 2
    assert revenue.mean() - 4 * se > 6.3 > 5.275
    assert revenue.mean() + utility.mean() < 6.975  # welfare: never above the full welfare
    assert abs(utility.mean()) < 0.2


@pytest.mark.slow
def test_design_of_the_teaser_by_gradient_and_by_es(tmp_path):
    """--design-seconds on a small market (values 0..4, bids 0..9, 4,000 auctions): both designers run and are
    measured on sampled markets; the gradient's design earns more in expectation than its start (0.5, 0.5). The
    declining reserves learned by gradient earn more in expectation than their start, never rise, and are run
    against the learners; so is the teaser learned against epsilon-greedy's relaxation."""
    from experiments import dynamic_mechanisms
    from jaxauction.train import expected_dynamics as ed

    m = dynamic_mechanisms.main(["--learners", "hedge", "epsilon_greedy", "--grids", "overbid", "--overbid-bids",
                                 "10", "--value-high", "4", "--mechanisms", "teaser_first_price", "--auctions",
                                 "4000", "--windows", "4", "--explore-steps", "500", "--half-life", "200",
                                 "--design-seconds", "6", "--seeds", "2", "--no-progress",
                                 "--out", str(tmp_path / "d")])  # fmt: skip
    designers = m["design"]["designers"]
    assert set(designers) == {"gradient (expected dynamics)", "ES (sampled markets)"}
    market = ed.hedge_mean_field(3, 4, 10, True)
    start = float(ed.expected_horizon(market, ed.teaser_schedule(market), jnp.array([0.5, 0.5]), 4000).revenue)
    gradient = designers["gradient (expected dynamics)"]
    assert gradient["steps"] >= 2 and gradient["final"]["expected_revenue"] > start + 0.01
    assert (tmp_path / "d" / "design_fitness.png").exists()
    learned = m["learned_declining"]
    assert learned["steps"] >= 2 and learned["expected_revenue"][-1] > learned["expected_revenue"][0] + 0.01
    assert np.all(np.diff(learned["reserves"]) <= 0) and learned["reserves"][0] <= 4.5
    cells = {c["learner"]: c for c in m["cells"] if c["mechanism"] == "learned_declining_reserve"}
    assert set(cells) == {"hedge", "epsilon_greedy"} and cells["hedge"]["reserves"] == learned["reserves"]
    network = m["learned_network"]  # the learned dynamic network, against Hedge's expected dynamics
    assert network["steps"] >= 1 and network["expected_revenue"][-1] > network["expected_revenue"][0]
    assert {c["learner"] for c in m["cells"] if c["mechanism"] == "learned_network"} == {"hedge", "epsilon_greedy"}
    static = m["learned_static_network"]  # the same network without its clock: the learned static rule
    assert static["steps"] >= 1 and static["expected_revenue"][-1] > static["expected_revenue"][0]
    assert {c["learner"] for c in m["cells"] if c["mechanism"] == "learned_static_network"} == {"hedge",
                                                                                               "epsilon_greedy"}
    greedy = m["learned_greedy_teaser"]  # against epsilon-greedy's relaxation, once done exploring
    assert greedy["steps"] >= 2 and greedy["expected_revenue"][-1] > greedy["expected_revenue"][0] + 0.01
    (cell,) = [c for c in m["cells"] if c["mechanism"] == "learned_teaser"]
    assert (cell["discount"], cell["teaser"]) == (greedy["discount"], greedy["teaser"])
    assert cell["after_exploration"]["from_auction"] == 1_000  # 0.5 ** (t / 200) <= 5% from t = 865: window 1
    assert (tmp_path / "d" / "declining_reserves.png").exists()
    single = {c["mechanism"]: c for c in m["single_buyer"]}  # one Hedge buyer, values 0..4, bids at most the value
    assert set(single) == {"posted_price", "natural_format_lp"} and single["posted_price"]["reserve"] == 2.0
    assert np.all(np.diff(single["natural_format_lp"]["reserves"]) <= 0)
    assert m["theory"]["single_buyer_posted_price"] == pytest.approx(1.2)  # 2 x P(v >= 2) = 2 x 3/5


def _one_hedge_buyer(mechanism) -> tuple[float, float]:
    """The horizon revenue (mean, standard error) of 2 auctions against one Hedge buyer (eps 0.5, rho 3), values
    uniform on {2, 3}, bids 0..3 never above the value, over 40,000 fresh markets."""
    market = ja.Market(mechanism, ja.population(ja.hedge(1, ja.absolute_grid(4, 4), learning_rate=0.5, scale=3.0)),
                       ja.UniformIntPrior(2, 3))  # fmt: skip
    params = ja.init_params(market, jax.random.key(0))
    one = lambda k: ja.fresh_round(market, params, *jax.random.split(k), 2, 2)[1].revenue[0]  # noqa: E731
    revenue = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 40_000)), np.float64)
    return revenue.mean(), revenue.std(ddof=1) / np.sqrt(revenue.size)


def _mean_bid(utilities: dict[int, float]) -> float:
    """A Hedge row's mean bid after one update from uniform: weights 1.5 ** (u_b / 3) over the bids b."""
    weights = {b: 1.5 ** (u / 3) for b, u in utilities.items()}
    return sum(b * w for b, w in weights.items()) / sum(weights.values())


def test_the_constructions_earn_a_hand_computed_revenue_from_one_hedge_buyer():
    """Issue 18's tiny instance: one Hedge buyer (its row of the value seen moves by 1.5 ** (u / 3) per bid b of
    utility u), values 2 or 3 (1/2 each), bids at most the value, a horizon of 2 auctions.

    Declining reserves (2, 0). Auction 1, reserve 2, uniform play: value 2 wins only with bid 2 and pays 2
    (rev 2/3); value 3 pays 2 or 3 with bids 2 and 3 (rev 5/4); only value 3's row moves (bid 2's utility 1).
    Auction 2, reserve 0: value 2 still plays uniformly (rev 1); value 3 does too (rev 3/2) unless it was
    value 3 in auction 1 (prob 1/2): then its mean bid is that of weights (1, 1, 1.5 ** (1/3), 1).

    Teaser (half price while tau < 1/2, reserve 0): auction 1 at half price, every bid wins: rev 1/2 and 3/4;
    the row of the value seen moves by the utilities v - b/2. Auction 2 at full price: the mean bid of the
    moved row with probability 1/2, else the uniform one (1 and 3/2)."""
    first = (2 / 3 + 5 / 4) / 2
    second = (1 + (_mean_bid({0: 0, 1: 0, 2: 1, 3: 0}) + 3 / 2) / 2) / 2
    declining = (first + second) / 2  # per auction over the horizon
    first = (1 / 2 + 3 / 4) / 2
    second = ((_mean_bid({b: 2 - b / 2 for b in range(3)}) + 1) / 2
              + (_mean_bid({b: 3 - b / 2 for b in range(4)}) + 3 / 2) / 2) / 2  # fmt: skip
    teaser = (first + second) / 2
    for mechanism, hand in ((ja.declining_reserve_first_price(1, (2.0, 0.0)), declining),
                            (ja.teaser_first_price(1, discount=0.5, teaser=0.5), teaser)):  # fmt: skip
        mean, se = _one_hedge_buyer(mechanism)
        assert abs(mean - hand) < 4 * se, (mechanism.name, mean, hand, se)
        assert se < 0.005


def test_the_seed_preset_is_the_seed_runs_horizon():
    """--preset seed: 1,000,000 auctions per market, the sweep 10^3..10^6 and 120 s designs (a GPU job:
    benchmarks/gpu_dynamic.sh); the run records the resolved numbers, so a --resume needs no preset."""
    from experiments.dynamic_mechanisms import DynamicConfig, resolved

    seed = resolved(DynamicConfig(preset="seed"))
    assert (seed.preset, seed.auctions, seed.horizons, seed.design_seconds) == (
        "cpu", 1_000_000, (1_000, 10_000, 100_000, 1_000_000), 120.0)
    assert resolved(DynamicConfig()) == DynamicConfig()
