"""The market studies: equilibrium exploration, the reserve sweep and the all-pay prize design."""

import json

import jax
import numpy as np
import pytest

from experiments import all_pay_design, equilibrium, reserve_sweep
from jaxauction.market import init_params, policy_grid
from jaxauction.specs import MechanismSpec, PopulationSpec, PriorSpec, build_market
from jaxauction.studies import bid_to_value, learn_policies

QUIET = ["--no-progress", "--no-plots"]


def fails(main, args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*QUIET, *args])
    assert exc.value.code == 2
    return " ".join(capsys.readouterr().err.replace("│", " ").split())


def test_learned_policies_are_reproducible_and_keys_matter():
    market = build_market(MechanismSpec("first_price"), PopulationSpec("epsilon_greedy", 2, {"explore_steps": 200}),
                          PriorSpec())  # fmt: skip
    params = init_params(market, jax.random.key(0))
    values = policy_grid(market)
    fn = jax.jit(lambda k: learn_policies(market, params, k, 2_000, 1_000, values))
    keys = jax.random.split(jax.random.key(1), 2)
    a, b = fn(keys), fn(keys)
    np.testing.assert_array_equal(a.bids, b.bids)
    np.testing.assert_array_equal(a.revenue, b.revenue)
    assert not np.array_equal(a.revenue[0], a.revenue[1])  # two seeds, two markets
    assert a.bids.shape == (2, 2, 10)


def test_bid_to_value_averages_the_upper_half():
    values = np.arange(10.0)
    assert bid_to_value(values, 0.5 * values) == pytest.approx(0.5)
    assert bid_to_value(values, np.where(values < 5, 0.0, values)) == pytest.approx(1.0)  # lower half ignored


def test_equilibrium_study_writes_settings_and_top_level_keys(tmp_path):
    args = [*QUIET, "--mechanism", "first_price", "--bidders", "2", "--auctions", "2000", "--window", "1000",
            "--explore-steps", "200", "--seeds", "2", "--out", str(tmp_path / "a")]  # fmt: skip
    m = equilibrium.main(args)
    assert m["theory_bid_to_value"] == pytest.approx(0.5)
    assert 0 <= m["mean_bid_to_value"] <= 1
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["settings"][0]["mean_bid_to_value"] == pytest.approx(m["mean_bid_to_value"])
    assert (tmp_path / "a" / "settings.csv").read_text().count("\n") == 2
    m = equilibrium.main([*args[:-1], str(tmp_path / "b"), "--solver", "--solver-iterations", "200", "--bidders",
                          "2", "3"])  # fmt: skip
    assert len(m["settings"]) == 2 and "mean_bid_to_value" not in m
    assert m["settings"][1]["theory"] == "discrete equilibrium (fictitious play)"


def test_equilibrium_study_refuses_bad_settings(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x")]
    assert "unknown mechanism 'all_pay'" in fails(equilibrium.main, ["--mechanism", "all_pay", *out], capsys)
    assert "use --prior uniform_int" in fails(equilibrium.main, ["--solver", "--prior", "uniform", *out], capsys)
    assert "integer value_range" in fails(equilibrium.main, ["--value-range", "10.5", *out], capsys)
    assert "does not learn" in fails(equilibrium.main, ["--learner", "truthful", *out], capsys)
    assert "bidders must be an integer >= 2" in fails(equilibrium.main, ["--bidders", "1", *out], capsys)


@pytest.mark.slow
def test_reserve_sweep_with_truthful_bidders_finds_myersons_reserve(tmp_path):
    """Two truthful bidders, U[0, 1]: revenue peaks at reserve 1/2 with 5/12 (Myerson; done-when of the issue)."""
    m = reserve_sweep.main([*QUIET, "--seeds", "8", "--reserves", "101", "--out", str(tmp_path / "r")])
    assert m["best_reserve"] == pytest.approx(0.5, abs=0.03)
    assert m["best_revenue"] == pytest.approx(5 / 12, abs=0.005)
    assert m["pairs"] == 808 and m["theory"]["myerson_reserve"] == pytest.approx(0.5, abs=1e-4)
    curve = np.asarray(m["theory"]["truthful_second_price_curve"])
    assert curve[0] == pytest.approx(1 / 3, abs=1e-4) and curve.max() == pytest.approx(5 / 12, abs=1e-4)
    np.testing.assert_allclose(m["revenue"], curve, atol=0.004)  # the whole simulated curve on the closed form


def test_reserve_sweep_refuses_bad_settings(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x")]
    assert "must be a multiple of --window" in fails(reserve_sweep.main, ["--auctions", "1500", "--window", "1000",
                                                                      *out], capsys)  # fmt: skip
    assert "sells one item" in fails(reserve_sweep.main, ["--items", "2", *out], capsys)
    assert "must exceed low" in fails(reserve_sweep.main, ["--value-low", "2", "--value-high", "1", *out], capsys)


@pytest.mark.slow
def test_all_pay_design_runs_every_step(tmp_path):
    m = all_pay_design.main([*QUIET, "--points", "3", "--auctions", "1000", "--window", "500", "--seeds", "2",
                             "--surrogate-steps", "50", "--design-steps", "20", "--check-seeds", "2",
                             "--out", str(tmp_path / "a")])  # fmt: skip
    assert 0.5 <= m["best_w"] <= 1.0
    np.testing.assert_allclose(m["w"], [0.5, 0.75, 1.0])
    np.testing.assert_allclose(m["theory_revenue"], [0.25, 0.375, 0.5])
    assert len(m["surrogate_revenue"]) == 3 and np.isfinite(m["best_w_check_revenue"])


@pytest.mark.slow
def test_learning_bidders_reach_the_first_and_second_price_equilibria(tmp_path):
    """Hedge bidders on U[0, 10]: bid/value within 0.08 of (n-1)/n (first price) and of 1 (second price)."""
    m = equilibrium.main([*QUIET, "--learner", "hedge", "--prior", "uniform", "--value-range", "10", "--bidders",
                          "2", "4", "--auctions", "50000", "--window", "5000", "--seeds", "4",
                          "--out", str(tmp_path / "e")])  # fmt: skip
    for row in m["settings"]:
        assert abs(row["mean_bid_to_value"] - row["theory_bid_to_value"]) < 0.08, row["mechanism"]


@pytest.mark.slow
def test_all_pay_revenue_tracks_the_w_over_2_curve(tmp_path):
    m = all_pay_design.main([*QUIET, "--points", "6", "--seeds", "2", "--out", str(tmp_path / "a")])
    np.testing.assert_allclose(m["revenue"], m["theory_revenue"], atol=0.05)
    assert m["best_w"] > 0.9


def test_equilibrium_study_refuses_learners_that_cannot_reach_the_wallet_equilibrium(tmp_path, capsys):
    out = ["--out", str(tmp_path / "x")]
    wallet = ["--prior", "wallet", "--mechanism", "second_price", "--learner", "hedge", "--bidders", "2", *out]
    assert "pass --max-fraction >= 2" in fails(equilibrium.main, wallet, capsys)
    assert "pass --overbid and --n-bids >= 19" in fails(
        equilibrium.main, ["--prior", "wallet_int", "--mechanism", "second_price", "--bidders", "2", *out], capsys
    )


@pytest.mark.slow
def test_equilibrium_study_asymmetric_and_common_value_settings(tmp_path):
    short = ["--auctions", "1000", "--window", "500"]
    m = equilibrium.main([*QUIET, *short, "--prior", "uniform", "--value-highs", "1", "2", "--learner", "hedge",
                          "--mechanism", "first_price", "--out", str(tmp_path / "a")])  # fmt: skip
    assert m["settings"][0]["n_bidders"] == 2 and len(m["settings"][0]["theory_bid_to_value_per_bidder"]) == 2
    weak, strong = m["settings"][0]["theory_bid_to_value_per_bidder"]
    assert weak > 0.5 > strong
    m = equilibrium.main([*QUIET, *short, "--prior", "wallet", "--mechanism", "first_price", "--bidders", "2",
                          "--learner", "hedge", "--out", str(tmp_path / "w")])  # fmt: skip
    assert m["theory_bid_to_value"] is None  # no closed form is claimed where there is none


def test_equilibrium_plots_draw_each_bidder_on_its_own_range_and_whole_bidder_ticks(tmp_path, monkeypatch):
    from jaxauction import plots

    drawn = {}
    monkeypatch.setattr(plots, "bid_functions", lambda path, values, lines, refs, title="": drawn.update(lines))
    values = np.linspace(0.0, 2.0, 5)
    row = {"learned_bids": np.ones((2, 5)), "theory_bids": None, "value_highs": [1.0, 2.0], "values": values,
           "mechanism": "first_price", "n_bidders": 2, "value_range": 2.0, "prior": "uniform", "learner": "hedge",
           "theory": None}  # fmt: skip
    equilibrium.plot_setting(tmp_path, row)
    assert np.isnan(drawn["bidder 0 learned"][values > 1.0]).all()  # not drawn as bids outside its values
    assert not np.isnan(drawn["bidder 0 learned"][values <= 1.0]).any()
    assert not np.isnan(drawn["bidder 1 learned"]).any()
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    plots.curves(tmp_path / "r.png", np.array([2, 3]), {"a": (np.array([0.5, 0.6]), None)}, "bidders", "b",
                 integer_x=True)  # fmt: skip
    ticks = [t for t in figures[0].axes[0].get_xticks() if 2 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_a_named_setting_is_one_vocabulary_for_markets_and_regretnet(tmp_path, capsys):
    """``--setting single2`` (the RegretNet presets' name) gives the market the setting's prior: the reserve sweep
    equals the one spelled out (2 bidders, U[0, 1]), bit for bit, and its theory uses the setting's bounds."""
    small = [*QUIET, "--reserves", "5", "--auctions", "1000", "--window", "1000"]
    named = reserve_sweep.main([*small, "--setting", "single2", "--out", str(tmp_path / "a")])
    spelled = reserve_sweep.main([*small, "--prior", "uniform", "--value-low", "0", "--value-high", "1",
                                  "--out", str(tmp_path / "b")])  # fmt: skip
    np.testing.assert_array_equal(named["revenue"], spelled["revenue"])
    curve = np.asarray(named["theory"]["truthful_second_price_curve"])
    assert curve[0] == pytest.approx(1 / 3, abs=1e-4) and curve.max() == pytest.approx(5 / 12, abs=1e-4)
    assert PriorSpec(setting="seed3").build() == PriorSpec("uniform_int", 0, 9).build()
    assert PriorSpec(setting="additive_1x2").n_items == 2
    with pytest.raises(ValueError, match="unknown setting"):
        PriorSpec(setting="nope")
    assert PriorSpec("uniform", 0.0, 9.0, setting="single2").build() == PriorSpec(setting="single2").build()
    assert "drop --value-high" in fails(reserve_sweep.main, ["--setting", "single2", "--value-high", "2",
                                                             "--out", str(tmp_path / "d")], capsys)  # fmt: skip
    with pytest.raises(ValueError, match="has 3 bidders"):
        build_market(MechanismSpec("second_price"), PopulationSpec("truthful", n_bidders=2), PriorSpec(setting="seed3"))
    assert "has 2 bidders" in fails(reserve_sweep.main, ["--setting", "single2", "--bidders", "3",
                                                         "--out", str(tmp_path / "c")], capsys)  # fmt: skip
