"""Spreading independent runs over devices with ``jax.sharding``.

Seeds (and markets, and sweep points) are independent, so the leading axis of
a batched state is split across a 1-D device mesh with ``NamedSharding``;
``jit`` propagates the sharding through the program, and every device runs
its share of the seeds. On 8 fake CPU devices the discrete state and outcomes
equal the single-device run exactly, and floats agree to float32 rounding:
XLA compiles the partitioned program with other CPU kernels (tested).
Multi-host runs call ``initialize_distributed`` first, after which
``jax.devices()`` lists the devices of every process.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def seeds_mesh(axis_name: str = "seeds", devices: Any = None) -> jax.sharding.Mesh:
    """A 1-D mesh over all (or the given) devices."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.sharding.Mesh(devices, (axis_name,))


def shard_leading_axis(tree: Any, mesh: jax.sharding.Mesh | None = None, axis_name: str = "seeds") -> Any:
    """Place ``tree`` with its leading axis split over ``mesh`` (all devices by default).

    The leading axis must be divisible by the number of devices; otherwise a
    ``ValueError`` names both numbers.
    """
    mesh = seeds_mesh(axis_name) if mesh is None else mesh
    size = mesh.shape[axis_name]
    for leaf in jax.tree.leaves(tree):
        if leaf.shape[0] % size:
            raise ValueError(f"the leading axis ({leaf.shape[0]}) is not divisible by the {size} devices")
    return jax.device_put(tree, NamedSharding(mesh, P(axis_name)))


def maybe_shard(tree: Any, enabled: bool = True) -> Any:
    """Shard the leading axis over all devices when there are several and it divides evenly; else leave it."""
    n = jax.device_count()
    if not enabled or n == 1:
        return tree
    lead = jax.tree.leaves(tree)[0].shape[0]
    if lead % n:
        warnings.warn(f"{lead} runs do not divide over {n} devices: running unsharded", stacklevel=2)
        return tree
    return shard_leading_axis(tree)


def initialize_distributed(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None, cpu_collectives: bool = False
) -> bool:
    """Call ``jax.distributed.initialize`` when a coordinator is given. Returns whether it did.

    On GPU/TPU clusters the arguments can also come from the environment (SLURM,
    TPU pods) by passing ``coordinator_address="auto"``.
    """
    if coordinator_address is None:
        return False
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
    return True
