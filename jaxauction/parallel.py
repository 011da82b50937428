"""Spreading runs over devices with ``jax.sharding``: seeds (and sweep points) and a data-parallel ``batch`` axis.

A 2-D mesh ``("seeds", "batch")`` over the visible devices (all processes'
devices after ``initialize_distributed``):

* ``seeds``: independent runs. A batched state's leading axis is split with
  ``NamedSharding`` and every device runs its share.
* ``batch``: data parallelism inside one run. The markets of a DMO state
  (``learner_state``, shape ``[seeds, markets, ...]``) are split over it, so
  each device rolls out its markets and collects its part of the dataset,
  while the parameters and optimizer state are replicated; the revenue mean
  and its gradient become a cross-device reduction. ``dmo.step`` marks its
  markets with ``constrain_markets``, which acts only under a mesh with a
  ``batch`` axis (``with jax.set_mesh(mesh):``).

Seeds run either vectorised (``over_seeds(step, "vmap")``, the fastest on
accelerators) or one after another on each device (``"map"``, through
``shard_map``). With ``"map"`` a sharded run (8 fake CPU devices, or two
processes) is bit-identical to the single-device run in its whole state and
rewards; only the logged loss may round differently in its last bit (tested).
With ``"vmap"`` pulls, keys and first-round outcomes are identical, but XLA:CPU picks
other kernels for the batched weight-gradient matmuls at another local batch
size, so parameters differ by about 1e-8 per round (tested). A data-parallel
``batch`` axis changes the order of the cross-device sums: equal up to float
rounding.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

SEEDS, BATCH = "seeds", "batch"
SEED_LOOPS = ("vmap", "map")


def make_mesh(seeds: int, batch: int = 1, devices: Any = None) -> jax.sharding.Mesh:
    """A ``(seeds, batch)`` mesh (automatic axis types) over ``seeds * batch`` devices."""
    devices = jax.devices() if devices is None else list(devices)
    if seeds < 1 or batch < 1 or seeds * batch > len(devices):
        raise ValueError(f"a {seeds} x {batch} mesh needs {seeds * batch} devices; {len(devices)} are visible")
    auto = (jax.sharding.AxisType.Auto,) * 2
    return jax.make_mesh((seeds, batch), (SEEDS, BATCH), auto, devices=devices[: seeds * batch])


def plan_mesh(n_seeds: int, n_markets: int = 1, seed_loop: str = "vmap", devices: Any = None):
    """The mesh that spreads ``n_seeds`` runs of ``n_markets`` markets over the devices, or None for one device.

    Seeds take as many devices as divide them; the devices left over split the
    markets (``batch`` axis), again as many as divide them. ``seed_loop="map"``
    uses the seeds axis only.
    """
    devices = jax.devices() if devices is None else list(devices)
    seeds = math.gcd(n_seeds, len(devices))
    batch = math.gcd(n_markets, len(devices) // seeds) if seed_loop == "vmap" else 1
    if seeds * batch < len(devices):
        warnings.warn(
            f"{n_seeds} seeds x {n_markets} markets use {seeds * batch} of the {len(devices)} devices "
            f"({seeds} x {batch}); choose counts that divide evenly to use them all",
            stacklevel=2,
        )
    return None if seeds * batch == 1 else make_mesh(seeds, batch, devices)


def shard_state(state: Any, mesh: jax.sharding.Mesh, batch_leaves: Callable[[Any], Any] | None = None) -> Any:
    """Place a seeds-batched state: leading axis over ``seeds``; the subtrees ``batch_leaves(state)`` also
    split their second axis (markets) over ``batch``.

    Raises a ``ValueError`` naming the sizes when an axis does not divide evenly.
    """
    batch_ids = {id(x) for x in jax.tree.leaves(batch_leaves(state))} if batch_leaves else set()

    def place(leaf: Any) -> Any:
        spec = P(SEEDS, BATCH) if id(leaf) in batch_ids else P(SEEDS)
        for axis, name in enumerate(spec):
            if leaf.shape[axis] % mesh.shape[name]:
                raise ValueError(
                    f"axis {axis} of a {list(leaf.shape)} leaf does not divide over the {mesh.shape[name]} "
                    f"devices of mesh axis {name!r}"
                )
        # From a host copy, so that every process supplies its own shards of a global array.
        key = is_prng_key(leaf)
        host = np.asarray(jax.random.key_data(leaf) if key else leaf)
        placed = jax.make_array_from_callback(host.shape, NamedSharding(mesh, spec), lambda index: host[index])
        return jax.random.wrap_key_data(placed, impl=jax.random.key_impl(leaf)) if key else placed

    return jax.tree.map(place, state)


def is_prng_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_host(tree: Any) -> Any:
    """NumPy copies of every leaf, gathered from all processes when an array spans several (PRNG keys as key data).

    A collective in multi-process runs: every process must call it.
    """

    def gather(x: Any) -> np.ndarray:
        if is_prng_key(x):
            x = jax.random.key_data(x)
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(gather, tree)


def constrain_markets(tree: Any) -> Any:
    """Split the leading (markets) axis of ``tree`` over the ``batch`` mesh axis, when one is set; else no-op."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or BATCH not in mesh.axis_names or mesh.shape[BATCH] == 1:
        return tree
    return jax.lax.with_sharding_constraint(tree, P(BATCH))


@functools.lru_cache(maxsize=64)
def over_seeds(step: Callable, seed_loop: str = "vmap", mesh: jax.sharding.Mesh | None = None) -> Callable:
    """``step`` over a leading seeds axis: vectorised (``"vmap"``) or one seed after another (``"map"``).

    With a mesh, ``"vmap"`` names the ``seeds`` axis for the sharding constraints
    inside ``step`` and ``"map"`` runs each device's seeds in a ``shard_map``. Memoised, so that the
    programs compiled from the result are reused for the same step.
    """
    if seed_loop not in SEED_LOOPS:
        raise ValueError(f"unknown seed_loop {seed_loop!r}; choose one of {list(SEED_LOOPS)}")
    if seed_loop == "vmap":
        vmapped = jax.vmap(step, spmd_axis_name=SEEDS if mesh is not None else None)
        return vmapped if mesh is not None else _one_seed_plain(step, vmapped)

    def mapped(state: Any) -> Any:
        return jax.lax.map(step, state)

    if mesh is None:
        return _one_seed_plain(step, mapped)
    if mesh.shape[BATCH] != 1:
        raise ValueError("seed_loop 'map' shards seeds only: use a mesh with batch axis 1")
    # check_vma=False: the step's scans carry values that do not vary over the mesh.
    return jax.shard_map(mapped, mesh=mesh, in_specs=P(SEEDS), out_specs=P(SEEDS), check_vma=False)


def _one_seed_plain(step: Callable, over: Callable) -> Callable:
    """``over`` (the step over a seeds axis), except that one seed runs ``step`` itself: a batch axis of one
    makes XLA batch every matmul and turn the step's dynamic slices into gathers and scatters (RegretNet's
    640,000-profile cache: 115 against 84 ms per 5x10 iteration on one core of a Xeon; no change for 2x2)."""

    def step_over_seeds(state: Any) -> Any:
        if jax.tree.leaves(state)[0].shape[0] != 1:
            return over(state)
        out = step(jax.tree.map(lambda x: x[0], state))
        return jax.tree.map(lambda x: x[None] if hasattr(x, "shape") else jnp.asarray(x)[None], out)  # logs: numbers

    return step_over_seeds


def initialize_distributed(coordinator_address: str | None, num_processes: int | None, process_id: int | None) -> bool:
    """Call ``jax.distributed.initialize`` when a coordinator is given (once). Returns whether it is initialised.

    On GPU/TPU clusters the arguments can also come from the environment (SLURM,
    TPU pods) by passing ``coordinator_address="auto"``. Cross-process
    collectives on CPU use gloo (GPUs and TPUs use their own).
    """
    if coordinator_address is None or jax.distributed.is_initialized():
        return coordinator_address is not None
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
    return True
