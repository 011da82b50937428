"""RegretNet training: time per iteration against the machine's matmul throughput, measured in one run; and every
learned-auction architecture's training iteration and audit (``--zoo``).

    python -m benchmarks.regretnet --out benchmarks/results/regretnet_cpu.json
    python -m benchmarks.regretnet --zoo --out benchmarks/results/zoo_cpu.json

One iteration is the reference configuration's: 25 projected Adam steps on
the batch's cached misreports (each a forward and backward pass of both
networks for every bidder's deviation), then one Adam step on the augmented
Lagrangian. Each figure is the median of ``--repeats`` timed calls of
``--iterations`` iterations (one ``lax.scan``) after a warm-up call. Roofline
fraction = the iteration's network FLOPs (forward = 2 x multiply-adds of both
networks per profile; forward + backward = 3 x forward) / time / matmul FLOP/s.

``--zoo`` times, for each ``model:setting`` pair of ``--pairs``, one training
iteration at the architecture's default configuration (RegretNet batch 128
with its misreport refinement; the exactly DSIC ones batch 1,024 of fresh
profiles) and the strong audit per profile (``--audit-profiles`` profiles,
revenue on the same, no interim regret; median of ``--repeats`` calls after a
warm-up call, compile excluded).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import jax

from benchmarks.common import device_info, int_list, matmul_gflops, median_seconds, str_list
from experiments.zoo import parse_cell
from jaxauction import io
from jaxauction.regret import Protocol, evaluate
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet

ZOO = ["regretnet:additive_2x2", "equivariantnet:additive_2x2", "regretformer:additive_2x2",
       "rochetnet:additive_1x2", "affine_maximizer:additive_2x2", "affine_maximizer:additive_2x5",
       "myersonnet:single3", "myersonnet:single5_asym"]  # fmt: skip


def forward_flops(config: RegretNetConfig) -> int:
    """FLOPs of one forward pass of both networks for one profile (2 x multiply-adds)."""
    s = config.the_setting
    n, m = s.n_bidders, s.n_items
    hidden = (config.resolved("hidden_units"),) * config.resolved("hidden_layers")
    outputs = {"additive": (n + 1) * m, "unit": (n + 1) * m + n * (m + 1)}[s.demand]

    def mlp(out: int) -> int:
        widths = (n * m, *hidden, out)
        return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))

    return mlp(outputs) + mlp(n)


def network_flops(config: RegretNetConfig) -> int:
    """FLOPs of one training iteration's network passes (both networks, every deviation, backward included)."""
    n = config.the_setting.n_bidders
    passes = config.resolved("misreport_steps") * n + n + 1  # misreport refinement, the loss on deviations and truth
    return 3 * forward_flops(config) * config.resolved("batch") * passes


def zoo(args, peak: float) -> dict:
    """Every architecture's training iteration and audit, per ``model:setting`` pair (module docstring)."""
    result = {"benchmark": "zoo", **device_info(), "matmul_gflops": peak, "rows": []}
    for pair in args.pairs:
        model, name, mixture = parse_cell(pair)  # model:setting+other+...: a size-free network on a mixture of sizes
        config = RegretNetConfig(setting=name, model=model, iterations=args.iterations, log_every=args.iterations,
                                 train_size=4096, mixture=mixture,
                                 misreport_candidates=args.misreport_candidates,
                                 misreport_keep_best=args.misreport_keep_best)  # fmt: skip
        trainer = make_regretnet(config)
        state = jax.jit(trainer.init)(jax.random.key(0))
        step = jax.jit(trainer.step)
        seconds = median_seconds(lambda step=step, state=state: step(state), args.repeats) / args.iterations
        row = {"model": model, "setting": pair.partition(":")[2], "batch": config.resolved("batch"),
               "ms_per_iteration": seconds * 1e3, "audit_ms_per_profile": None,
               "misreport_candidates": args.misreport_candidates,
               "misreport_keep_best": args.misreport_keep_best}  # fmt: skip
        if args.audit_profiles:
            s = config.the_setting
            protocol = Protocol(profiles=args.audit_profiles, revenue_profiles=args.audit_profiles, interim=False,
                                profile_chunk=args.profile_chunk)  # fmt: skip
            audit = median_seconds(lambda t=trainer, st=state, s=s, p=protocol: evaluate(
                t.mechanism, st.params, s.prior, jax.random.key(1), p, utility=s.utility()).revenue, args.repeats)
            row["audit_ms_per_profile"] = audit / args.audit_profiles * 1e3
        audit_ms = row["audit_ms_per_profile"]
        audited = "not timed" if audit_ms is None else f"{audit_ms:.3f} ms/profile"
        result["rows"].append(row)
        print(f"{model:>17} {row['setting']:>14} batch {row['batch']:>5}: {row['ms_per_iteration']:8.2f} ms/iteration, "
              f"audit {audited}")  # fmt: skip
        if args.out:
            io.write_json(args.out, result)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=str_list, default=["single2", "additive_2x2", "additive_5x10"])
    parser.add_argument("--batches", type=int_list, default=[128])
    parser.add_argument("--unrolls", type=int_list, default=[1], help="misreport refinement steps per loop iteration")
    parser.add_argument("--iterations", type=int, default=20, help="iterations per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--zoo", action="store_true", help="time every architecture's iteration and audit instead")
    parser.add_argument("--pairs", type=str_list, default=ZOO,
                        help="--zoo: model:setting pairs (model:setting+other+...: trained on a mixture of sizes)")
    parser.add_argument("--audit-profiles", type=int, default=1_000,
                        help="--zoo: profiles per timed audit (0: no audit timed)")
    parser.add_argument("--misreport-candidates", type=int, default=0,
                        help="--zoo: the training search's random restarts (experiments.regretnet's flag)")
    parser.add_argument("--misreport-keep-best", action="store_true",
                        help="--zoo: the training search keeps its best reports (experiments.regretnet's flag)")
    parser.add_argument("--profile-chunk", type=int, default=Protocol.profile_chunk,
                        help="--zoo: the audit's profiles at once (a GPU wants thousands: one search step each)")
    args = parser.parse_args(argv)
    peak = matmul_gflops("float32")
    if args.zoo:
        print(f"{jax.devices()[0].platform}: matmul {peak:.0f} GFLOP/s")
        return zoo(args, peak)
    result = {"benchmark": "regretnet", **device_info(), "matmul_gflops": peak, "rows": []}
    print(f"{jax.devices()[0].platform}: matmul {peak:.0f} GFLOP/s")
    for name, batch, unroll in itertools.product(args.settings, args.batches, args.unrolls):
        config = RegretNetConfig(setting=name, iterations=args.iterations, log_every=args.iterations,
                                 train_size=max(batch, 4096), batch=batch, misreport_unroll=unroll)  # fmt: skip
        trainer = make_regretnet(config)
        state = jax.jit(trainer.init)(jax.random.key(0))
        step = jax.jit(trainer.step)
        seconds = median_seconds(lambda step=step, state=state: step(state), args.repeats) / args.iterations
        flops = network_flops(config)
        row = {"setting": name, "batch": batch, "unroll": unroll, "ms_per_iteration": seconds * 1e3,
               "flops_per_iteration": flops, "roofline_fraction": flops / seconds / (peak * 1e9),
               "hours_for_400k_iterations": seconds * 400_000 / 3600}  # fmt: skip
        result["rows"].append(row)
        print(f"{name:>14} batch {batch:>5} unroll {unroll:>2}: {row['ms_per_iteration']:8.2f} ms/iteration, "
              f"roofline fraction {row['roofline_fraction']:.3f}, 400k iterations in "
              f"{row['hours_for_400k_iterations']:.2f} h")  # fmt: skip
        if args.out:  # after every row: a run cut short keeps what it measured
            io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
