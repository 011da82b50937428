"""jaxauction against the public PyTorch reimplementation of RegretFormer and EquivariantNet (dimonenka/optimaler):
one training iteration at the same configuration, on the same CPU core, interleaved.

    git clone https://github.com/dimonenka/optimaler /tmp/optimaler
    pip install --target /tmp/torchsite torch easydict tensorboard       # not jaxauction dependencies
    PYTHONPATH=/tmp/torchsite taskset -c 0 python -m benchmarks.pytorch_reference --repo /tmp/optimaler \\
        --out benchmarks/results/pytorch_reference_cpu.json

The repository's own ``Trainer`` is built from its run configuration (``run_configs/<arch>_<n>x<m>.py``) and its
``train_epoch`` timed as is (nothing of it is copied here): a batch of 512 of its fixed training profiles, 50
projected gradient steps on their cached misreports, one Adam step on ``-revenue + gamma * regret`` and the
budget dual. jaxauction's iteration is ``make_regretnet``'s step at the same configuration: the same batch,
misreport steps, budget dual, gradient clip and network sizes (RegretFormer's are read from that code;
EquivariantNet's are set to its ``n_exch_layers`` x ``hid_exch``). Each figure is the median over ``--repeats``
rounds of ``--iterations`` iterations, the two implementations taking turns within each round (after a warm-up
round), with torch limited to one thread and the process pinned to one core by ``taskset``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax

from benchmarks.common import device_info, str_list
from jaxauction import io
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet

ARCHITECTURES = {"regretformer": "RegretFormer", "equivariantnet": "EquivariantNet"}


def reference_trainer(repo: Path, model: str, n: int, m: int, save: str):
    """The repository's Trainer for ``model`` on additive n x m U[0,1], its data generator attached."""
    sys.path.insert(0, str(repo))
    from core import run_train  # noqa: F401 - imports the repository's package
    from core.nets.additive_net_attention import AdditiveNetAttention
    from core.nets.additive_net_exchangeable import AdditiveNetExchangeable
    from core.trainer.trainer import Trainer
    from core.utils import get_objects

    cfg, clip_op, generator, _ = get_objects(f"run_configs/{model}_{n}x{m}")
    cfg.save_data = save
    net_class = AdditiveNetAttention if model == "regretformer" else AdditiveNetExchangeable
    trainer = Trainer(cfg, net_class(cfg, "cpu").to("cpu"), clip_op, "cpu")
    trainer.train_gen = generator(cfg, "train")
    return trainer, cfg


def ours(model: str, cfg, iterations: int):
    """jaxauction's step (``iterations`` iterations in one call) at the reference configuration ``cfg``."""
    sizes = {}
    if model == "equivariantnet":
        sizes = {"hidden_layers": cfg.net.n_exch_layers, "hidden_units": cfg.net.hid_exch}
    config = RegretNetConfig(setting=f"additive_{cfg.num_agents}x{cfg.num_items}", model=model,
                             iterations=iterations, log_every=iterations, batch=cfg.train.batch_size,
                             train_size=cfg.train.num_instances, misreport_steps=cfg.train.gd_iter, dual="budget",
                             clip_norm=1.0, **sizes)  # fmt: skip
    trainer = make_regretnet(config)
    state = jax.jit(trainer.init)(jax.random.key(0))
    step = jax.jit(trainer.step)
    jax.block_until_ready(step(state))  # compile

    def run() -> None:
        jax.block_until_ready(step(state))

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="a checkout of dimonenka/optimaler")
    parser.add_argument("--models", type=str_list, default=list(ARCHITECTURES))
    parser.add_argument("--size", default="2x2", help="n x m: additive U[0,1] with a run configuration there")
    parser.add_argument("--iterations", type=int, default=5, help="iterations per timed call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    for model in args.models:
        if model not in ARCHITECTURES:
            raise SystemExit(f"error: unknown model {model!r}; known: {', '.join(ARCHITECTURES)}")
    if not (args.repo / "core" / "trainer" / "trainer.py").is_file():
        raise SystemExit(f"error: {args.repo} is not a checkout of dimonenka/optimaler (no core/trainer/trainer.py)")
    torch = importlib.import_module("torch")
    torch.set_num_threads(1)
    n, m = (int(x) for x in args.size.split("x"))
    result = {"benchmark": "pytorch_reference", **device_info(), "torch_version": torch.__version__,
              "size": args.size, "rows": []}  # fmt: skip
    for model in args.models:
        with tempfile.TemporaryDirectory() as save:
            trainer, cfg = reference_trainer(args.repo, model, n, m, save)
            jax_call = ours(model, cfg, args.iterations)

            def torch_call(trainer=trainer) -> None:
                for i in range(args.iterations):
                    trainer.train_epoch(i + 1)  # not a multiple of print_iter: no logging

            torch_call()  # warm-up round
            jax_call()
            times = {"torch": [], "jax": []}
            for _ in range(args.repeats):  # interleaved
                for name, call in (("torch", torch_call), ("jax", jax_call)):
                    t0 = time.perf_counter()
                    call()
                    times[name].append((time.perf_counter() - t0) / args.iterations)
            trainer.writer.close()
        row = {"model": model, "batch": cfg.train.batch_size, "misreport_steps": cfg.train.gd_iter,
               "torch_ms_per_iteration": statistics.median(times["torch"]) * 1e3,
               "jax_ms_per_iteration": statistics.median(times["jax"]) * 1e3}  # fmt: skip
        row["speedup"] = row["torch_ms_per_iteration"] / row["jax_ms_per_iteration"]
        result["rows"].append(row)
        print(f"{model} {args.size}: PyTorch reference {row['torch_ms_per_iteration']:.1f} ms/iteration, jaxauction "
              f"{row['jax_ms_per_iteration']:.1f} ms/iteration: {row['speedup']:.2f}x")  # fmt: skip
        if args.out:
            io.write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
