"""Type distributions (priors): ``sample(key, params) -> Types``.

A prior is a frozen dataclass holding the *default* numbers of its family
(static, hashable); the numbers a program uses live in its params pytree,
``init_params(n_bidders, n_items)``, so sweeping a prior's bounds is a
``vmap`` over params with no recompilation. Bounds are one number for every
bidder and item, a tuple with one entry per bidder, or nested ``[n][m]`` /
``[1][m]`` tuples (per item); params hold them broadcast to ``[n, m]``.

``UniformIntPrior(0, 9)`` is the original platform's prior: integer values
uniform on ``{0..9}`` for every bidder.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_positive_int, is_concrete
from jaxauction.types import Array, PRNGKey, Types

Bound = float | int | tuple


class RangeParams(NamedTuple):
    """Per bidder and item bounds, ``[n, m]`` float32 (``high`` inclusive for integer priors)."""

    low: Array
    high: Array


def broadcast_bound(bound: Bound, n: int, m: int, name: str) -> np.ndarray:
    """A bound as a ``[n, m]`` float64 array: a number, ``[n]`` (per bidder), ``[n, m]`` or ``[1, m]`` (per item)."""
    arr = np.asarray(bound, dtype=np.float64)
    if arr.ndim == 1:
        if arr.shape[0] != n:
            raise ValueError(
                f"prior {name} has {arr.shape[0]} per-bidder entries but the market has {n} bidders "
                "(per-item bounds are nested: ((a, b),))"
            )
        arr = arr[:, None]
    if arr.ndim > 2:
        raise ValueError(f"prior {name} must be a number, a per-bidder tuple or [bidders][items] tuples, got {bound!r}")
    try:
        return np.broadcast_to(arr, (n, m)).copy()
    except ValueError:
        raise ValueError(f"prior {name} of shape {list(arr.shape)} does not fit {n} bidders x {m} items") from None


def _as_tuple(b: Bound) -> Bound:
    """Lists and arrays to nested tuples, so that a prior stays hashable (a static jit argument)."""
    if isinstance(b, (list, tuple, np.ndarray)):
        return tuple(_as_tuple(x) for x in b)
    return float(b) if isinstance(b, (np.floating, float)) else b


def check_range(low: np.ndarray, high: np.ndarray, integer: bool, where: str = "prior") -> None:
    """Raise ``ValueError`` for a range that is not finite, negative, empty, or (integer priors) not integer."""
    for name, arr in (("low", low), ("high", high)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where} {name} must be finite, got {arr.tolist()}")
        if np.any(arr < 0):
            raise ValueError(f"{where} {name} must be non-negative (values are non-negative), got {arr.tolist()}")
        if integer and not np.all(arr == np.round(arr)):
            raise ValueError(f"{where} {name} of an integer prior must hold integers, got {arr.tolist()}")
    if integer and np.any(high < low):
        raise ValueError(f"empty integer {where}: high {high.tolist()} < low {low.tolist()}")
    if not integer and np.any(high <= low):
        raise ValueError(f"empty uniform {where}: high {high.tolist()} must exceed low {low.tolist()}")


def uniform(key: PRNGKey, shape: tuple[int, ...]) -> Array:
    """``jax.random.uniform(key, shape)``, drawn flat and reshaped: the same numbers, cheaper inside
    vmapped scans than a multi-dimensional draw."""
    return jax.random.uniform(key, (int(np.prod(shape)),), dtype=jnp.float32).reshape(shape)


@dataclasses.dataclass(frozen=True)
class _RangePrior:
    """Shared bounds, params and validation of the uniform priors."""

    low: Bound
    high: Bound
    name = "range"  # class attributes, not fields
    integer = False
    private_values = True  # a bidder's value is what it observes (the regret evaluator needs this)

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _as_tuple(self.low))
        object.__setattr__(self, "high", _as_tuple(self.high))
        for bound, label in ((self.low, "low"), (self.high, "high")):
            arr = np.asarray(bound, dtype=np.float64)
            if arr.size == 0 or arr.ndim > 2:
                raise ValueError(f"prior {label} must be a number or (nested) tuples of numbers, got {bound!r}")
        lo, hi = np.asarray(self.low, dtype=np.float64), np.asarray(self.high, dtype=np.float64)
        if lo.ndim == hi.ndim == 1 and lo.shape != hi.shape:
            raise ValueError(f"prior low {self.low!r} and high {self.high!r} have different lengths")
        try:
            lo, hi = np.broadcast_arrays(lo, hi)
        except ValueError:
            raise ValueError(f"prior low {self.low!r} and high {self.high!r} have different shapes") from None
        check_range(lo, hi, self.integer)

    def init_params(self, n_bidders: int, n_items: int = 1) -> RangeParams:
        """The default bounds as ``[n, m]`` float32 arrays."""
        check_positive_int(n_bidders, "n_bidders")
        check_positive_int(n_items, "n_items")
        low = broadcast_bound(self.low, n_bidders, n_items, "low")
        high = broadcast_bound(self.high, n_bidders, n_items, "high")
        return RangeParams(jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32))

    def check_params(self, params: RangeParams) -> None:
        """Validate concrete params (any leading sweep axes); tracers are skipped."""
        if is_concrete(params.low) and is_concrete(params.high):
            check_range(np.asarray(params.low, np.float64), np.asarray(params.high, np.float64), self.integer)

    def support(self, params: RangeParams) -> tuple[Array, Array]:
        """The smallest and largest value each bidder can draw for each item, ``[n, m]`` (both inclusive)."""
        return params.low, params.high


@dataclasses.dataclass(frozen=True)
class UniformIntPrior(_RangePrior):
    """Integer values uniform on ``{low, ..., high}`` (both inclusive), per bidder and item."""

    low: Bound = 0
    high: Bound = 9
    name = "uniform_int"
    integer = True

    def sample(self, key: PRNGKey, params: RangeParams) -> Types:
        u = uniform(key, params.low.shape)
        width = params.high - params.low + 1
        # floor(u * width) is in {0..width-1}; the minimum guards the u -> 1 rounding edge.
        return Types(values=jnp.minimum(jnp.floor(u * width), width - 1) + params.low)


@dataclasses.dataclass(frozen=True)
class UniformPrior(_RangePrior):
    """Continuous values uniform on ``[low, high)``, per bidder and item."""

    low: Bound = 0.0
    high: Bound = 1.0
    name = "uniform"

    def sample(self, key: PRNGKey, params: RangeParams) -> Types:
        return Types(values=params.low + uniform(key, params.low.shape) * (params.high - params.low))


class ExponentialParams(NamedTuple):
    """Per bidder and item means, ``[n, m]`` float32."""

    mean: Array


EXPONENTIAL_TAIL = 1e-4  # the support used for misreports ends where P(value > x) = 1e-4 (x = mean * ln 1e4)


@dataclasses.dataclass(frozen=True)
class ExponentialPrior:
    """Values exponential with the given mean (one number, per bidder, or per bidder and item).

    Its support is unbounded; ``support`` gives ``[0, mean * ln(1e4)]``, the
    range a misreport search covers (values beyond it have probability 1e-4).
    """

    mean: Bound = 1.0
    name = "exponential"
    integer = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _as_tuple(self.mean))
        arr = np.asarray(self.mean, dtype=np.float64)
        if arr.size == 0 or arr.ndim > 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"exponential prior mean must be positive finite numbers, got {self.mean!r}")

    def init_params(self, n_bidders: int, n_items: int = 1) -> ExponentialParams:
        check_positive_int(n_bidders, "n_bidders")
        check_positive_int(n_items, "n_items")
        return ExponentialParams(jnp.asarray(broadcast_bound(self.mean, n_bidders, n_items, "mean"), jnp.float32))

    def check_params(self, params: ExponentialParams) -> None:
        if is_concrete(params.mean):
            mean = np.asarray(params.mean, np.float64)
            if not np.all(np.isfinite(mean)) or np.any(mean <= 0):
                raise ValueError(f"exponential prior mean must be positive and finite, got {mean.tolist()}")

    def support(self, params: ExponentialParams) -> tuple[Array, Array]:
        return jnp.zeros_like(params.mean), params.mean * np.float32(-np.log(EXPONENTIAL_TAIL))

    def sample(self, key: PRNGKey, params: ExponentialParams) -> Types:
        return Types(values=-params.mean * jnp.log1p(-uniform(key, params.mean.shape)))


class GaussianParams(NamedTuple):
    """Per bidder and item truncation bounds, means and standard deviations, ``[n, m]`` float32."""

    low: Array
    high: Array
    mean: Array
    sd: Array


@dataclasses.dataclass(frozen=True)
class TruncatedGaussianPrior(_RangePrior):
    """Values ``N(mean, sd)`` truncated to ``[low, high]``; by default ``mean = (low + high) / 2`` and
    ``sd = (high - low) / 6`` (the original docs' Gaussian setting: ``N(50, 16)`` on a range of 100).

    Drawn by inverting the CDF on the truncated interval (exact, no rejection).
    ``integer=True`` rounds to the nearest integer (``gaussian_int``).
    """

    low: Bound = 0.0
    high: Bound = 1.0
    mean: Bound | None = None
    sd: Bound | None = None
    integer: bool = False
    name = "gaussian"

    def __post_init__(self) -> None:
        super().__post_init__()
        for label in ("mean", "sd"):
            value = getattr(self, label)
            if value is not None:
                object.__setattr__(self, label, _as_tuple(value))
                arr = np.asarray(value, np.float64)
                if not np.all(np.isfinite(arr)) or (label == "sd" and np.any(arr <= 0)):
                    raise ValueError(f"gaussian prior {label} must be finite{' and positive' if label == 'sd' else ''}"
                                     f", got {value!r}")  # fmt: skip

    def init_params(self, n_bidders: int, n_items: int = 1) -> GaussianParams:
        bounds = super().init_params(n_bidders, n_items)
        mean = (bounds.low + bounds.high) / 2 if self.mean is None else broadcast_bound(self.mean, n_bidders,
                                                                                          n_items, "mean")  # fmt: skip
        sd = (bounds.high - bounds.low) / 6 if self.sd is None else broadcast_bound(self.sd, n_bidders, n_items, "sd")
        return GaussianParams(bounds.low, bounds.high, jnp.asarray(mean, jnp.float32), jnp.asarray(sd, jnp.float32))

    def check_params(self, params: GaussianParams) -> None:
        super().check_params(RangeParams(params.low, params.high))
        if is_concrete(params.sd) and np.any(np.asarray(params.sd) <= 0):
            raise ValueError(f"gaussian prior sd must be positive, got {np.asarray(params.sd).tolist()}")

    def support(self, params: GaussianParams) -> tuple[Array, Array]:
        return params.low, params.high

    def cdf(self, params: GaussianParams, x: Array) -> Array:
        """``P(value <= x)`` of the truncated (continuous) distribution."""
        a, b, z = ((t - params.mean) / params.sd for t in (params.low, params.high, x))
        phi_a, phi_b = jax.scipy.special.ndtr(a), jax.scipy.special.ndtr(b)
        return jnp.clip((jax.scipy.special.ndtr(z) - phi_a) / (phi_b - phi_a), 0.0, 1.0)

    def sample(self, key: PRNGKey, params: GaussianParams) -> Types:
        a, b = ((t - params.mean) / params.sd for t in (params.low, params.high))
        phi_a, phi_b = jax.scipy.special.ndtr(a), jax.scipy.special.ndtr(b)
        u = phi_a + uniform(key, params.low.shape) * (phi_b - phi_a)
        values = jnp.clip(params.mean + params.sd * jax.scipy.special.ndtri(u), params.low, params.high)
        return Types(values=jnp.round(values) if self.integer else values)


@dataclasses.dataclass(frozen=True)
class WalletPrior(_RangePrior):
    """A common-value setting, the wallet game: each bidder observes its own signal ``s_i`` uniform on
    ``[low, high]`` (integers with ``integer=True``) and every bidder's value is ``V = sum_i s_i``.

    ``Types.signals`` are the signals (what bidders bid on), ``Types.values`` the common value for every
    bidder, ``Types.common`` the value itself. ``support`` is the signals' range. One item.
    """

    low: Bound = 0.0
    high: Bound = 1.0
    integer: bool = False
    name = "wallet"
    private_values = False

    def sample(self, key: PRNGKey, params: RangeParams) -> Types:
        u = uniform(key, params.low.shape)
        if self.integer:
            width = params.high - params.low + 1
            signals = jnp.minimum(jnp.floor(u * width), width - 1) + params.low
        else:
            signals = params.low + u * (params.high - params.low)
        common = jnp.sum(signals[:, 0])
        return Types(values=jnp.broadcast_to(common, signals.shape), signals=signals, common=common)


class PiecewiseParams(NamedTuple):
    """The breakpoints ``[n, m, K + 1]`` and the CDF at each, ``[n, m, K + 1]`` (0 first, 1 last), float32."""

    breaks: Array
    cdf: Array


@dataclasses.dataclass(frozen=True)
class PiecewiseUniformPrior:
    """Values with a piecewise-constant density: uniform on ``[breaks[k], breaks[k + 1])`` with probability
    ``masses[k]``, the same for every bidder and item. ``PiecewiseUniformPrior((0, 3, 8), (0.75, 0.25))`` is
    MyersonNet's irregular prior (U[0, 3] with probability 3/4, U[3, 8] with 1/4). Drawn by inverting the
    piecewise-linear CDF (exact)."""

    breaks: tuple[float, ...] = (0.0, 1.0)
    masses: tuple[float, ...] = (1.0,)
    name = "piecewise_uniform"
    integer = False
    private_values = True

    def __post_init__(self) -> None:
        breaks, masses = np.asarray(self.breaks, np.float64), np.asarray(self.masses, np.float64)
        if breaks.ndim != 1 or masses.ndim != 1 or breaks.size != masses.size + 1 or masses.size == 0:
            raise ValueError(f"piecewise uniform prior needs K + 1 breaks for K masses, got breaks {self.breaks!r} "
                             f"and masses {self.masses!r}")  # fmt: skip
        if not (np.all(np.isfinite(breaks)) and np.all(np.isfinite(masses))):
            raise ValueError(f"piecewise uniform prior breaks and masses must be finite, got {self.breaks!r}, "
                             f"{self.masses!r}")  # fmt: skip
        if breaks[0] < 0 or np.any(np.diff(breaks) <= 0):
            raise ValueError(f"piecewise uniform prior breaks must be non-negative and increasing, got {self.breaks!r}")
        if np.any(masses <= 0) or abs(masses.sum() - 1.0) > 1e-9:
            raise ValueError(f"piecewise uniform prior masses must be positive and sum to 1, got {self.masses!r}")
        object.__setattr__(self, "breaks", tuple(float(b) for b in breaks))
        object.__setattr__(self, "masses", tuple(float(w) for w in masses))

    def init_params(self, n_bidders: int, n_items: int = 1) -> PiecewiseParams:
        check_positive_int(n_bidders, "n_bidders")
        check_positive_int(n_items, "n_items")
        cdf = np.concatenate([[0.0], np.cumsum(self.masses)])
        cdf[-1] = 1.0
        shape = (n_bidders, n_items, len(self.breaks))
        return PiecewiseParams(jnp.broadcast_to(jnp.asarray(self.breaks, jnp.float32), shape),
                               jnp.broadcast_to(jnp.asarray(cdf, jnp.float32), shape))  # fmt: skip

    def check_params(self, params: PiecewiseParams) -> None:
        if is_concrete(params.breaks) and is_concrete(params.cdf):
            breaks, cdf = np.asarray(params.breaks, np.float64), np.asarray(params.cdf, np.float64)
            if np.any(breaks[..., 0] < 0) or np.any(np.diff(breaks) <= 0) or np.any(np.diff(cdf) <= 0):
                raise ValueError("piecewise uniform prior params need non-negative increasing breaks and an "
                                 "increasing CDF")  # fmt: skip

    def support(self, params: PiecewiseParams) -> tuple[Array, Array]:
        return params.breaks[..., 0], params.breaks[..., -1]

    def sample(self, key: PRNGKey, params: PiecewiseParams) -> Types:
        u = uniform(key, params.breaks.shape[:-1])
        invert = jax.vmap(jax.vmap(jnp.interp))  # the CDF is linear between breaks: its inverse is too
        return Types(values=invert(u, params.cdf, params.breaks))


class ComplementsParams(NamedTuple):
    """Item bounds ``[n, 2]`` and complementarity bounds ``[n]``, float32."""

    low: Array
    high: Array
    c_low: Array
    c_high: Array


@dataclasses.dataclass(frozen=True)
class ComplementsPrior:
    """Two items and their bundle (the 2x2 combinatorial settings of RegretNet, after Sandholm and Likhodedov):
    bidder ``i``'s item values are uniform on ``[low_i, high_i)``, and its value for the bundle is
    ``v_i1 + v_i2 + C_i`` with ``C_i`` uniform on ``[c_low, c_high)`` (complements when positive, substitutes
    when negative), all independent. Values are ``[n, 3]``: item 1, item 2, the bundle (``demand
    "combinatorial"``); ``low``/``high`` are one number or one per bidder."""

    low: Bound = 1.0
    high: Bound = 2.0
    c_low: float = -1.0
    c_high: float = 1.0
    name = "complements"
    integer = False
    private_values = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _as_tuple(self.low))
        object.__setattr__(self, "high", _as_tuple(self.high))
        lo, hi = np.asarray(self.low, np.float64), np.asarray(self.high, np.float64)
        if lo.ndim > 1 or hi.ndim > 1 or (lo.ndim == hi.ndim == 1 and lo.shape != hi.shape):
            raise ValueError(f"complements prior low and high are a number or one per bidder, got {self.low!r}, "
                             f"{self.high!r}")  # fmt: skip
        check_range(*np.broadcast_arrays(lo, hi), integer=False, where="complements prior")
        c = np.asarray([self.c_low, self.c_high], np.float64)
        if c.ndim != 1 or not np.all(np.isfinite(c)) or c[1] <= c[0]:
            raise ValueError(f"complements prior needs finite c_low < c_high, got {self.c_low!r}, {self.c_high!r}")
        if np.any(2 * lo + c[0] < 0):
            raise ValueError(f"complements prior: a bundle value 2 low + c_low = {(2 * lo + c[0]).tolist()} would be "
                             "negative (values are non-negative)")  # fmt: skip

    def init_params(self, n_bidders: int, n_items: int = 3) -> ComplementsParams:
        check_positive_int(n_bidders, "n_bidders")
        if n_items != 3:
            raise ValueError(f"the complements prior draws [n, 3] values (item 1, item 2, the bundle), not {n_items} "
                             "columns")  # fmt: skip
        low = broadcast_bound(self.low, n_bidders, 2, "low")
        high = broadcast_bound(self.high, n_bidders, 2, "high")
        c = np.broadcast_to(np.asarray([self.c_low, self.c_high], np.float32), (n_bidders, 2))
        return ComplementsParams(jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32),
                                 jnp.asarray(c[:, 0]), jnp.asarray(c[:, 1]))  # fmt: skip

    def check_params(self, params: ComplementsParams) -> None:
        if all(is_concrete(x) for x in params):
            low, high, c_low, c_high = (np.asarray(x, np.float64) for x in params)
            check_range(low, high, integer=False, where="complements prior")
            if np.any(c_high <= c_low) or np.any(2 * low.min(axis=-1) + c_low < 0):
                raise ValueError("complements prior params need c_low < c_high and bundle values 2 low + c_low >= 0")

    def support(self, params: ComplementsParams) -> tuple[Array, Array]:
        """``[n, 3]``: the items' bounds, and the bundle's ``[low_1 + low_2 + c_low, high_1 + high_2 + c_high]``."""
        low = jnp.concatenate([params.low, (params.low.sum(-1) + params.c_low)[..., None]], axis=-1)
        high = jnp.concatenate([params.high, (params.high.sum(-1) + params.c_high)[..., None]], axis=-1)
        return low, high

    def sample(self, key: PRNGKey, params: ComplementsParams) -> Types:
        u = uniform(key, params.low.shape[:-1] + (3,))
        items = params.low + u[..., :2] * (params.high - params.low)
        c = params.c_low + u[..., 2] * (params.c_high - params.c_low)
        return Types(values=jnp.concatenate([items, (items.sum(-1) + c)[..., None]], axis=-1))


Prior = (UniformIntPrior | UniformPrior | ExponentialPrior | TruncatedGaussianPrior | WalletPrior
         | PiecewiseUniformPrior | ComplementsPrior)


def default_support(prior: Prior, n_bidders: int, n_items: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``, each ``[n, m]`` float64 on the host: the support of ``prior`` at its default params.

    Evaluated eagerly also when called while a function is being traced (a market built inside ``jit``)."""
    with jax.ensure_compile_time_eval():
        low, high = prior.support(prior.init_params(n_bidders, n_items))
    return np.asarray(low, np.float64), np.asarray(high, np.float64)


def top_value(prior: Prior, n_bidders: int, n_items: int = 1) -> float:
    """The highest value ``prior`` draws at its default params, over every bidder and item (the top of its
    support; an exponential prior's is the 1 - 1e-4 quantile): the one scale for bid grids, reserve grids,
    plots and normalised payment networks."""
    return float(default_support(prior, n_bidders, n_items)[1].max())
