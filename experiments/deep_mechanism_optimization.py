"""Deep mechanism optimization, the seed experiment: learn -> collect -> one gradient step on revenue, per round.

    python -m experiments.deep_mechanism_optimization            # the seed's configuration, 1 seed
    python -m experiments.deep_mechanism_optimization --seeds 64 --mechanism second_price
    python -m experiments.deep_mechanism_optimization --resume results/deep_mechanism_optimization/<run> --rounds 20

Every ``DMOConfig`` setting is a flag (``--help``). Writes, in the run's own
folder, ``metrics.json``, ``rounds.csv``/``rounds.jsonl`` (one row per round,
appended as the run goes), ``checkpoint.npz``, ``logs/`` and PNG plots.
"""

from __future__ import annotations

import sys
from typing import Any

import jax
import numpy as np

from jaxauction import cli, evaluation
from jaxauction.driver import Session, SessionResult
from jaxauction.specs import market_of
from jaxauction.train.dmo import DMOConfig, RoundLog, deep_shares, make_dmo

NAME = "deep_mechanism_optimization"


def summarize(logs: RoundLog, first: int) -> list[dict[str, Any]]:
    """One row per round from logs ``[rounds, seeds, ...]``: means (and the reward's std) over seeds."""
    reward = np.asarray(logs.platform_reward)
    return [
        {
            "round": first + r + 1,
            "platform_reward_mean": float(reward[r].mean()),
            "platform_reward_std": float(reward[r].std()),
            "loss_mean": float(np.asarray(logs.loss)[r].mean()),
            "efficiency_mean": float(np.asarray(logs.efficiency)[r, :, -1].mean()),
        }
        for r in range(reward.shape[0])
    ]


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'round':>5}  {'platform reward (mean +- std)':>30}  {'loss':>9}  {'efficiency':>10}")
    for row in rows:
        pr = f"{row['platform_reward_mean']:.4f} +- {row['platform_reward_std']:.4f}"
        print(f"{row['round']:>5}  {pr:>30}  {row['loss_mean']:>9.4f}  {row['efficiency_mean']:>10.4f}")


def metrics(config: DMOConfig, session: Session, result: SessionResult, grid: np.ndarray) -> dict[str, Any]:
    logs = jax.tree.map(lambda x: np.swapaxes(x, 0, 1), result.logs)  # [seeds, rounds, ...]
    reward, loss = np.asarray(logs.platform_reward), np.asarray(logs.loss)
    policy = np.asarray(logs.policy)[:, -1].mean(0)  # [n, G, m], last round, mean over seeds
    auctions = result.steps_run * config.rollout.auctions_per_round * config.rollout.markets * session.spec.seeds
    return {
        "config": config,
        "learners": list(config.bidders.learners),
        "seeds": session.spec.seeds,
        "seed": session.spec.seed,
        "jax_version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "mesh": result.mesh,
        "seed_loop": session.spec.seed_loop,
        "platform_reward": reward.mean(0),
        "platform_reward_std": reward.std(0),
        "platform_reward_per_seed": reward.T,  # rounds x seeds
        "loss": loss.mean(0),
        "loss_per_seed": loss.T,
        "efficiency": np.asarray(logs.efficiency)[..., -1].mean(0),
        "utility": np.asarray(logs.utility)[..., -1, :].mean(0),  # rounds x bidders, last window
        "policy_grid": grid[:, 0],
        "greedy_bids": policy[..., 0],  # bidders x grid values, item 0: the learned bid function
        **({"penalty_regret": np.asarray(logs.regret).mean(0)} if config.optimiser.regret_weight > 0 else {}),
        "resumed_from_round": result.done_before,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "auctions_per_second": auctions / result.run_seconds if result.run_seconds else None,
    }


def share_profiles(top: float, n: int) -> np.ndarray:
    """Bid profiles to show the payment network on, on the market's bid range: equal, one high, a ramp, random."""
    rng = np.random.default_rng(0)
    profiles = [
        np.full(n, top / 2),
        np.r_[top, np.zeros(n - 1)],
        np.linspace(top, 0, n),
        np.r_[top, np.full(n - 1, top * 0.9)],
    ]
    profiles += [np.sort(rng.uniform(0, top, n))[::-1] for _ in range(4)]
    return np.round(np.asarray(profiles, np.float32), 2)


def write_plots(config: DMOConfig, mechanism_params: Any, m: dict[str, Any], session: Session) -> None:
    try:
        from jaxauction import plots
    except ImportError as err:
        print(f"plots skipped: {err} (pip install matplotlib)", file=sys.stderr)
        return
    out = session.out
    title = f"{config.mechanism.mechanism}, {config.bidders.n_bidders} bidders ({config.bidders.learner})"
    references = {} if "final_eval" not in m else {
        "learned rule, fresh bidders": m["final_eval"]["mean"],
        **{name.replace("_", " "): v["mean"] for name, v in m["baselines"].items()},
    }  # fmt: skip
    plots.platform_reward(out / "platform_reward.png", m["platform_reward_per_seed"], title, references)
    plots.bid_value(out / "bid_value.png", m["policy_grid"], m["greedy_bids"], f"{title}, last round")
    if config.mechanism.mechanism == "deep" and config.prior.n_items == 1:
        dmo_market = market_of(config)
        top = float(np.max(np.asarray(dmo_market.prior.init_params(dmo_market.n_bidders).high)))
        profiles = share_profiles(top, config.bidders.n_bidders)
        shares = np.asarray(deep_shares(config, jax.tree.map(lambda x: x[0], mechanism_params), profiles))
        plots.payment_shares(out / "payment_shares.png", profiles, shares, f"{title}, seed 0 after training")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the experiment; returns its metrics (None when a resumed run was already complete: trained and
    evaluated; a trained run whose final evaluation was interrupted is evaluated)."""
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any] | None:
    config, spec = cli.parse(DMOConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0], check=make_dmo)
    session = Session(NAME, config, spec)
    dmo = make_dmo(config, checked=spec.checked)
    result = session.run(
        dmo.init,
        dmo.step,
        config.rollout.rounds,
        summarize=summarize,
        markets=config.rollout.markets,
        batch_leaves=lambda state: state.learner_state,
        describe=lambda logs: {
            "reward": float(np.mean(logs.platform_reward[-1])),
            "loss": float(np.mean(logs.loss[-1])),
        },
    )
    if result.steps_run == 0 and session.finished:
        session.print(f"the run in {session.out} has done all {config.rollout.rounds} rounds already; "
                      "pass a larger --rounds to extend it")  # fmt: skip
        return None
    if result.steps_run == 0:
        session.print(f"the run in {session.out} is trained; its final evaluation was interrupted: evaluating")
    m = metrics(config, session, result, np.asarray(dmo.grid))
    timing = ("resumed_from_round", "compile_seconds", "run_seconds", "auctions_per_second")
    m.update(session.cached("training_time", lambda: {k: m[k] for k in timing}))  # the training call's, on resume
    if config.evaluation.final_eval and session.leader:  # on process 0's host copy of the final state
        rollout = config.rollout
        keys = evaluation.evaluation_keys(spec.seed, spec.seeds)
        m.update(session.cached("final_evaluation", lambda: evaluation.report_rule(
            dmo.market, result.state.params, keys, rollout.auctions_per_round, rollout.window, rollout.markets,
            config.evaluation.reserves, progress=spec.progress)))  # fmt: skip
    if not session.leader:
        return m
    print_table(result.rows)
    if config.evaluation.final_eval:
        print(f"final evaluation: fresh bidders, {config.rollout.auctions_per_round:,} auctions, mean +- s.e. over "
              f"{spec.seeds} seed(s); every rule fixed, the same learners and keys")  # fmt: skip
        print("\n".join(evaluation.comparison_lines(m, f"learned rule ({config.mechanism.mechanism})")))
    mesh = "" if result.mesh is None else f", mesh {result.mesh} over {jax.process_count()} process(es)"
    rate = m["auctions_per_second"] or 0.0
    print(f"compile {m['compile_seconds']:.2f}s, run {m['run_seconds']:.2f}s, {rate:,.0f} auctions/s "
          f"on {jax.device_count()} x {jax.devices()[0].device_kind}{mesh}")  # fmt: skip
    session.write_metrics(m)
    if spec.plots:
        write_plots(config, result.state.params.mechanism, m, session)
    print(f"results in {session.out}/")
    return m


if __name__ == "__main__":
    main()
