"""The environments' cost: auctions per second stepped through ``BiddingEnv`` against ``run_round`` on one market.

    python -m benchmarks.envs                       # 1 RL bidder + 2 Hedge learners, first price, U[0, 1]
    python -m benchmarks.envs --markets 1 64 4096

The same market both ways: ``run_round`` with a truthful bidder in the agent's
place, and a ``lax.scan`` of ``BiddingEnv.step`` (gymnax's, with auto-reset)
whose agent bids its value, ``vmap``-ed over environments. Medians of
``--repeats`` timed calls after a warm-up. ``overhead`` is the round's rate
over the environment's: the price of stepping from outside (the observation's
extra draw of the types and gymnax's reset on every step).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from benchmarks.common import device_info, int_list, median_seconds
from benchmarks.throughput import rollout_rate
from jaxauction import io
from jaxauction.bidders import external, fraction_grid, hedge, population, truthful
from jaxauction.market import Market
from jaxauction.mechanisms import first_price
from jaxauction.priors import UniformPrior


def markets() -> tuple[Market, Market]:
    """``(the environment's market, the same market with a truthful bidder in the agent's place)``."""
    learners = hedge(2, fraction_grid(top=1.0))
    make = lambda agent: Market(first_price(3), population([agent, learners]), UniformPrior(0.0, 1.0))  # noqa: E731
    return make(external(1)), make(truthful(1))


def env_rate(market: Market, n_envs: int, auctions: int, repeats: int) -> float:
    """Auctions per second through ``BiddingEnv.step``, ``n_envs`` environments of ``auctions`` steps each."""
    from jaxauction.envs import BiddingEnv

    env = BiddingEnv(market, horizon=auctions)
    params = env.default_params

    def episode(key):
        obs, state = env.reset(key, params)

        def step(carry, k):
            obs, state = carry
            obs, state, reward, *_ = env.step(k, state, obs[:1], params)
            return (obs, state), reward

        return jax.lax.scan(step, (obs, state), jax.random.split(key, auctions))[1].sum()

    go = jax.jit(jax.vmap(episode))
    keys = jax.random.split(jax.random.key(0), n_envs)
    return n_envs * auctions / median_seconds(lambda: go(keys), repeats)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", type=int_list, default=[1, 64, 1024])
    parser.add_argument("--auctions", type=int, default=1_000, help="auctions per market (steps per episode)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    env_market, round_market = markets()
    result = {"benchmark": "envs", **device_info(), "auctions": args.auctions, "rows": []}
    for n in args.markets:
        env = env_rate(env_market, n, args.auctions, args.repeats)
        rnd = rollout_rate(round_market, n, args.auctions, args.repeats)
        row = {"markets": n, "env_auctions_per_s": env, "round_auctions_per_s": rnd, "overhead": rnd / env}
        result["rows"].append(row)
        print(f"{n:>6} markets: env {env:>13,.0f} auctions/s, run_round {rnd:>13,.0f} ({rnd / env:.2f}x)", flush=True)
        if args.out:
            io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
