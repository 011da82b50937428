"""The regret audit: profiles per second and its FLOP rate against the machine's matmul throughput, in one run.

    python -m benchmarks.audit --out benchmarks/results/audit_cpu.json

For each setting and preset, a RegretNet rule (fresh weights: the cost does
not depend on them) is audited on ``--profiles`` profiles by the compiled
per-chunk program ``regret.evaluate`` runs; the figure is the median of
``--repeats`` timed calls after a warm-up. FLOPs come from the cost model
``Protocol.work`` (mechanism evaluations per profile; a gradient step counts
3, forward and backward) times the networks' forward FLOPs, as in
``benchmarks.regretnet``; the roofline fraction is that rate over the matmul
throughput measured in the same run. Beside it, the time of one training
iteration of the same setting, and the preset's whole audit (search and
convergence check) in training iterations: the issue's yardstick is 20,000.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from benchmarks.common import device_info, matmul_gflops, median_seconds, str_list
from benchmarks.regretnet import forward_flops
from jaxauction import io
from jaxauction.regret import AUDITS, Protocol, _profiles
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet


def setting_rows(name: str, audits: list[str], profiles: int, repeats: int, peak: float) -> list[dict]:
    config = RegretNetConfig(setting=name, iterations=20, log_every=20, train_size=4096)
    trainer = make_regretnet(config)
    state = jax.jit(trainer.init)(jax.random.key(0))
    step = jax.jit(trainer.step)
    train_seconds = median_seconds(lambda: step(state), repeats) / 20
    s = config.the_setting
    n, m = s.n_bidders, s.n_items
    low, high = trainer.support
    prior_params = s.prior.init_params(n, m)
    values = jax.vmap(lambda k: s.prior.sample(k, prior_params).values)(jax.random.split(jax.random.key(1), profiles))
    keys = jax.random.split(jax.random.key(2), profiles)
    rows = []
    for audit in audits:
        protocol = Protocol(audit=audit).resolved()
        program = jax.jit(lambda v, k, sk, p=protocol: _profiles(trainer.mechanism, state.params, v, k, low, high, p,
                                                                  sk, None, ()))  # fmt: skip
        with jax.default_matmul_precision("highest"):
            seconds = median_seconds(lambda program=program: program(values, keys, keys), repeats) / profiles
        work = protocol.work(n, m)
        flops = work * forward_flops(config)
        check = min(protocol.check_profiles, protocol.profiles) * protocol.strengthened(m).work(n, m) / work
        whole = seconds * (protocol.profiles + check)  # the check's cost scaled by the cost model
        rows.append({"setting": name, "audit": audit, "profiles_per_second": 1 / seconds,
                     "evaluations_per_profile": work, "flops_per_profile": flops,
                     "roofline_fraction": flops / seconds / (peak * 1e9),
                     "ms_per_training_iteration": train_seconds * 1e3, "audit_seconds": whole,
                     "audit_in_training_iterations": whole / train_seconds, **AUDITS[audit]})  # fmt: skip
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=str_list, default=["single2", "additive_1x2"])
    parser.add_argument("--audits", type=str_list, default=["standard", "strong"])
    parser.add_argument("--profiles", type=int, default=512, help="profiles per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    peak = matmul_gflops("float32")
    result = {"benchmark": "audit", **device_info(), "matmul_gflops": peak, "rows": []}
    print(f"{jax.devices()[0].platform}: matmul {peak:.0f} GFLOP/s")
    for name in args.settings:
        for row in setting_rows(name, args.audits, args.profiles, args.repeats, peak):
            result["rows"].append(row)
            print(f"{name:>13} {row['audit']:>8}: {row['profiles_per_second']:8.1f} profiles/s, roofline fraction "
                  f"{row['roofline_fraction']:.4f}; audit about {row['audit_seconds']:.0f} s = "
                  f"{row['audit_in_training_iterations']:,.0f} training iterations "
                  f"({row['ms_per_training_iteration']:.2f} ms each)")  # fmt: skip
        if args.out:  # after every setting: a run cut short keeps what it measured
            io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
