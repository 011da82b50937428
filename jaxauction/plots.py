"""Matplotlib figures for the experiments (imported by drivers only; never inside jitted code)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def _pyplot():
    return plt


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def platform_reward(
    path: str | os.PathLike,
    per_seed: np.ndarray,
    title: str = "",
    references: dict[str, float] | None = None,
    xlabel: str = "round",
) -> None:
    """Platform reward per round: mean over seeds with a +-1 std band and the individual seeds; ``references``
    (name -> revenue: the final evaluation, the baselines) as horizontal lines."""
    plt = _pyplot()
    per_seed = np.asarray(per_seed)  # [rounds, seeds]
    rounds = np.arange(1, per_seed.shape[0] + 1)
    mean, std = per_seed.mean(1), per_seed.std(1)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if per_seed.shape[1] > 1:
        ax.plot(rounds, per_seed, color="0.8", lw=0.6, zorder=1)
        ax.fill_between(rounds, mean - std, mean + std, alpha=0.3, label="mean +- std")
    ax.plot(rounds, mean, marker="o", label="mean over seeds")
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, ls="--", lw=1, color=f"C{i + 1}", label=f"{name} ({value:.3f})")
    ax.set(xlabel=xlabel, ylabel="platform reward (mean revenue, last window)", title=title)
    ax.legend()
    _save(fig, Path(path))
    plt.close(fig)


def bid_value(path: str | os.PathLike, values: np.ndarray, bids: np.ndarray, title: str = "") -> None:
    """Each bidder's learned exploitation bid against its value (``bids [n, G]`` at ``values [G]``), and truthful."""
    plt = _pyplot()
    values, bids = np.asarray(values), np.asarray(bids)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(values, values, "k--", lw=1, label="truthful")
    for i, row in enumerate(bids):
        ax.plot(values, row, marker="o", label=f"bidder {i}")
    ax.set(xlabel="value", ylabel="learned bid", title=title)
    ax.legend()
    _save(fig, Path(path))
    plt.close(fig)


def payment_shares(path: str | os.PathLike, profiles: np.ndarray, shares: np.ndarray, title: str = "") -> None:
    """Stacked bars of the payment network's shares s(b) for a few bid profiles."""
    plt = _pyplot()
    profiles, shares = np.asarray(profiles), np.asarray(shares)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(profiles))
    bottom = np.zeros(len(profiles))
    for i in range(shares.shape[1]):
        ax.bar(x, shares[:, i], bottom=bottom, label=f"s_{i}")
        bottom += shares[:, i]
    ax.set_xticks(x, [str(tuple(int(b) if float(b).is_integer() else float(f"{b:.3g}") for b in p)) for p in profiles])
    ax.tick_params(axis="x", rotation=30)
    ax.set(xlabel="bid profile", ylabel="payment share s_i(b)", ylim=(0, 1), title=title)
    ax.legend(fontsize="small")
    _save(fig, Path(path))
    plt.close(fig)


def training_curves(
    path: str | os.PathLike, iterations: np.ndarray, curves: dict[str, np.ndarray], title: str = ""
) -> None:
    """One panel per curve (``[steps]`` or ``[steps, seeds]``: mean and seeds) against the iteration."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items(), strict=True):
        values = np.asarray(values).reshape(len(iterations), -1)
        if values.shape[1] > 1:
            ax.plot(iterations, values, color="0.8", lw=0.6)
        ax.plot(iterations, values.mean(1))
        ax.set(xlabel="iteration", title=name)
        if name.startswith("regret") and np.all(values > 0):
            ax.set_yscale("log")
    fig.suptitle(title)
    _save(fig, Path(path))
    plt.close(fig)


def allocation_maps(path: str | os.PathLike, extent: tuple[float, float, float, float], maps: np.ndarray,
                    title: str = "") -> None:  # fmt: skip
    """Bidder 0's probability of getting each item over its values ``(v1, v2)`` in ``extent``: ``maps [m, G, G]``."""
    plt = _pyplot()
    maps = np.asarray(maps)
    fig, axes = plt.subplots(1, maps.shape[0], figsize=(4.2 * maps.shape[0], 3.6), squeeze=False)
    for j, ax in enumerate(axes[0]):
        image = ax.imshow(maps[j].T, origin="lower", extent=extent, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(xlabel="value for item 1", ylabel="value for item 2", title=f"P(item {j + 1})")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    _save(fig, Path(path))
    plt.close(fig)


def rule_curve(path: str | os.PathLike, bids: np.ndarray, allocation: np.ndarray, payment: np.ndarray,
               title: str = "") -> None:  # fmt: skip
    """A bidder's win probability and payment against its own bid, the others' bids fixed."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(bids, allocation)
    a.set(xlabel="own bid", ylabel="probability of winning")
    b.plot(bids, payment)
    b.set(xlabel="own bid", ylabel="expected payment")
    fig.suptitle(title)
    _save(fig, Path(path))
    plt.close(fig)


def bid_functions(path: str | os.PathLike, values: np.ndarray, learned: dict[str, np.ndarray],
                  theory: dict[str, np.ndarray], title: str = "") -> None:  # fmt: skip
    """Learned bid functions (``name -> bids [G]`` at ``values [G]``) against theory lines (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, bids in learned.items():
        ax.plot(values, bids, marker="o", ms=3, label=name)
    for name, bids in theory.items():
        ax.plot(values, bids, "--", lw=1.2, label=name)
    ax.set(xlabel="value", ylabel="bid", title=title)
    ax.legend(fontsize=7)
    _save(fig, Path(path))
    plt.close(fig)


def curves(path: str | os.PathLike, x: np.ndarray, series: dict[str, tuple[np.ndarray, np.ndarray | None]],
           xlabel: str, ylabel: str, title: str = "", marks: dict[str, float] | None = None,
           integer_x: bool = False, xs: dict[str, np.ndarray] | None = None) -> None:  # fmt: skip
    """Lines ``name -> (mean [X], se [X] or None)`` over ``x`` (or their own ``xs[name]``) with +-2 se bands;
    ``marks``: vertical lines; ``integer_x``: whole-number ticks only (counts such as bidders)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, (mean, se) in series.items():
        at = (xs or {}).get(name, x)
        line = ax.plot(at, mean, label=name, marker="." if xs else None)[0]
        if se is not None:
            ax.fill_between(at, mean - 2 * se, mean + 2 * se, color=line.get_color(), alpha=0.2)
    for name, at in (marks or {}).items():
        ax.axvline(at, color="0.4", ls=":", lw=1)
        ax.annotate(name, (at, ax.get_ylim()[0]), fontsize=7, rotation=90, va="bottom")
    if integer_x:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    _save(fig, Path(path))
    plt.close(fig)
