"""Training RegretNet (augmented Lagrangian), RochetNet, affine maximizers and MyersonNet, as pure jit-compiled
steps.

RegretNet, as configured in Dütting et al. 2019 (the reference configuration):

* loss ``-revenue + sum_i lambda_i rgt_i + (rho / 2) sum_i rgt_i^2``, where
  ``rgt_i`` is the batch mean of bidder ``i``'s gain from its cached misreport
  (``max(0, u_i(misreport) - u_i(truthful))``);
* Adam (learning rate 1e-3), batch 128, 400,000 iterations over a fixed
  training set of 640,000 profiles;
* misreports: one per profile and bidder, cached across iterations and
  refined by 25 projected Adam steps (learning rate 0.1 of the support width,
  clipped to the support) every time its batch comes round; the refinement
  starts a fresh Adam state each iteration;
* ``lambda_i += rho * rgt_i`` every 100 iterations, from 5 (1 for 5x10);
  ``rho`` from 1 (0.25 for 5x10), raised every 10,000 iterations (100,000 for
  5x10) by 50 (1x2 additive), 5 (2x2), 10 (2x3), 1 (3x10), 0.25 (5x10), and 1
  for the settings the paper does not list.

RochetNet, the affine maximizers and MyersonNet (exactly DSIC for every params): Adam
on ``-revenue`` of a softmax relaxation of the argmax (the menu; the entry
and the pivots), over fresh batches from the prior; the argmax rule is
evaluated.

All train on the one shared trainer, ``train.lagrangian.make_lagrangian_trainer``:
``ARCHITECTURES`` maps each name to how its mechanism is built (and, for an
exactly incentive-compatible one, the relaxation it trains on), and ``RegretNetConfig.schedule()`` resolves the
reference configuration above into a ``Schedule`` once, before anything is
traced. ``make_regretnet(config)`` returns the trainer: ``init(key) -> state``
and ``step(state) -> (state, log)``, where one step runs ``log_every``
iterations in a ``lax.scan`` and logs their means; the experiment runs it
through ``driver.Session`` (chunks, checkpoints, resume).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_choice, check_finite, check_positive_int
from jaxauction.mechanisms.affine_maximizer import MENUS, affine_maximizer, affine_maximizer_soft, deterministic_menu
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.equivariant import equivariantnet
from jaxauction.mechanisms.myersonnet import myersonnet, myersonnet_soft
from jaxauction.mechanisms.regretformer import reference_size, regretformer
from jaxauction.mechanisms.regretnet import regretnet, rochetnet, rochetnet_soft
from jaxauction.priors import default_support, top_value
from jaxauction.settings import Setting, setting
from jaxauction.train.lagrangian import (
    LagrangianLog,
    LagrangianState,
    Schedule,
    Trainer,
    make_lagrangian_trainer,
)
from jaxauction.types import Array, Outcome, Params

RegretNetState = LagrangianState  # the names experiments and checkpoints use
RegretNetLog = LagrangianLog

# rho's increment per setting (known_results section 4; the combinatorial settings: the reference code's configs,
# +20 every 10,000 iterations); other settings use 1.
RHO_INCREMENT = {"additive_1x2": 50.0, "additive_2x2": 5.0, "additive_2x3": 10.0, "additive_3x10": 1.0,
                 "additive_5x10": 0.25, "ca_2x2_sym": 20.0, "ca_2x2_asym": 20.0}  # fmt: skip
LARGE = ("additive_3x10", "additive_5x10")  # 5 hidden layers
REGRET_TRAINED = ("regretnet", "equivariantnet", "regretformer")  # trained with regret (the others: exactly DSIC)
SIZE_FREE = ("equivariantnet", "regretformer")  # one set of weights for every size
COMBINATORIAL = ("regretnet", "affine_maximizer")  # the models with a head for two items and their bundle


@dataclasses.dataclass(frozen=True)
class RegretNetConfig:
    """One training run; an unset field takes the reference configuration's value for the setting."""

    setting: str = "additive_2x2"
    """the setting (jaxauction.settings): single2, single3, single5, seed3, single3_exp, single3_irregular,
    single5_asym, additive_1x2, unit_1x2, unit_1x2_23, additive_1x2_416_47, additive_2x2, additive_2x3,
    additive_2x5, additive_3x10, additive_4x5, additive_5x10, ca_2x2_sym, ca_2x2_asym"""
    model: Literal["regretnet", "equivariantnet", "regretformer", "rochetnet", "affine_maximizer", "myersonnet"] = (
        "regretnet"
    )
    """regretnet, equivariantnet or regretformer (any setting; trained with regret), rochetnet (one bidder),
    affine_maximizer (any setting; exactly DSIC) or myersonnet (one item; exactly DSIC)"""
    iterations: int = 400_000
    """optimizer steps"""
    log_every: int = 1_000
    """iterations per logged step (one row of rounds.csv)"""
    batch: int | None = None
    """profiles per step (regretnet and equivariantnet 128, regretformer 512, the exactly DSIC ones 1,024)"""
    train_size: int = 640_000
    """regretnet, equivariantnet, regretformer: fixed training profiles (their misreports are cached)"""
    learning_rate: float | None = None
    """Adam's learning rate for the mechanism (regretnet, equivariantnet and myersonnet 1e-3, the others 0.01)"""
    hidden_layers: int | None = None
    """regretnet: hidden layers per network (2; 5 for 3x10 and 5x10); equivariantnet: exchangeable layers (2);
    regretformer: attention blocks (its reference size, jaxauction.mechanisms.regretformer)"""
    hidden_units: int | None = None
    """regretnet: units per hidden layer (100); equivariantnet: channels per layer (100); regretformer: channels
    per token (its reference size)"""
    heads: int | None = None
    """regretformer: attention heads (its reference size)"""
    attention_units: int | None = None
    """regretformer: features per attention head (its reference size)"""
    misreport_steps: int | None = None
    """regretnet, equivariantnet, regretformer: projected Adam steps refining the cached misreports per iteration
    (25; regretformer 50)"""
    misreport_lr: float = 0.1
    """regretnet, equivariantnet: their step size, as a fraction of the support's width"""
    misreport_candidates: int = 0
    """regretnet, equivariantnet, regretformer: fresh uniform reports per profile and bidder each iteration, the
    best of them and the cached misreport starting the refinement (0: RegretNet's cached start alone; a stronger
    training attack, not the reference)"""
    misreport_keep_best: bool = False
    """regretnet, equivariantnet, regretformer: the refinement keeps each bidder's best report on its way (the start
    included), as the audit does, instead of the last step's (the reference's; a stronger training attack)"""
    misreport_unroll: int = 1
    """regretnet, equivariantnet: refinement steps per iteration of the compiled loop (speed only: the same computation;
    on a GPU, unrolling all of them saves a loop round trip per step)"""
    lambda_init: float | None = None
    """regretnet, equivariantnet: initial Lagrange multipliers (5; 1 for 5x10)"""
    lambda_every: int = 100
    """regretnet, equivariantnet: iterations between multiplier updates lambda += rho * regret"""
    rho_init: float | None = None
    """regretnet, equivariantnet: initial penalty weight (1; 0.25 for 5x10)"""
    rho_increment: float | None = None
    """regretnet, equivariantnet: penalty weight increment (per setting, see the module)"""
    rho_every: int | None = None
    """regretnet, equivariantnet: iterations between increments (10,000; 100,000 for 5x10)"""
    dual: Literal["augmented", "budget"] | None = None
    """the regret-trained models' dual: augmented (RegretNet's augmented Lagrangian; regretnet, equivariantnet) or
    budget (RegretFormer's regret budget; regretformer); see jaxauction.train.lagrangian"""
    budget_start: float = 0.01
    """budget dual: the regret budget (regret over revenue) at the start"""
    budget_end: float = 0.001
    """budget dual: the budget after budget_decay iterations (geometric decay), and from then on"""
    budget_decay: int | None = None
    """budget dual: iterations over which the budget decays (two thirds of iterations, the reference's); a run
    records the value it started with, so extending it with --iterations does not stretch its decay"""
    budget_lr: float = 0.5
    """budget dual: the step of gamma on log(regret / revenue) - log(budget)"""
    clip_norm: float | None = None
    """the gradient's global-norm clip before Adam (budget dual 1, as RegretFormer's reference; else none)"""
    mixture: tuple[str, ...] = ()
    """equivariantnet, regretformer: more settings (same prior and demand, other sizes) trained jointly with
    setting, sharing the weights; each with its own training profiles, misreports and multipliers (the loss is
    the mean over sizes; the log and the evaluation are setting's)"""
    menu_size: int = 1_000
    """rochetnet, affine_maximizer (lottery menu): lotteries on the menu"""
    ama_menu: Literal["lottery", "deterministic"] = "lottery"
    """affine_maximizer: a learned menu of lotteries, or every deterministic allocation (weights and boosts
    learned)"""
    groups: int = 10
    """myersonnet: groups of lines per bidder's virtual-value network (a min over groups)"""
    lines: int = 10
    """myersonnet: lines per group (a max over lines)"""
    shared: bool = False
    """myersonnet: one virtual-value network for every bidder (anonymous; for i.i.d. bidders with a regular prior:
    on an irregular one it cannot reach the optimum, see jaxauction.mechanisms.myersonnet)"""
    softness: float = 1_000.0
    """rochetnet, affine_maximizer, myersonnet: inverse temperature of the training softmax, per unit of the
    support's top value"""
    revive_every: int = 0
    """affine_maximizer (lottery menu): iterations between revivals of the menu's unused entries (perturbed copies
    of chosen ones replace them, at the start of the first step at or after each multiple; 0: never)"""

    def __post_init__(self) -> None:
        s = setting(self.setting)
        for name in (
            "iterations",
            "log_every",
            "train_size",
            "lambda_every",
            "menu_size",
            "misreport_unroll",
            "groups",
            "lines",
        ):
            check_positive_int(getattr(self, name), name)
        if self.misreport_steps is not None:
            check_positive_int(self.misreport_steps, "misreport_steps", minimum=0)
        check_positive_int(self.misreport_candidates, "misreport_candidates", minimum=0)
        if (self.misreport_candidates or self.misreport_keep_best) and self.model not in REGRET_TRAINED:
            raise ValueError(f"misreport_candidates and misreport_keep_best strengthen the misreport search of "
                             f"{REGRET_TRAINED}; {self.model} is exactly DSIC: no misreports")  # fmt: skip
        for name in ("batch", "hidden_layers", "hidden_units", "heads", "attention_units", "rho_every",
                     "budget_decay"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        if self.iterations % self.log_every:
            raise ValueError(f"iterations ({self.iterations}) must be a multiple of log_every ({self.log_every})")
        if self.model == "rochetnet" and s.n_bidders != 1:
            raise ValueError(f"rochetnet is for one bidder; setting {self.setting} has {s.n_bidders}")
        if s.demand == "combinatorial" and self.model not in COMBINATORIAL:
            raise ValueError(f"setting {self.setting} is combinatorial: only {', '.join(COMBINATORIAL)} have a head "
                             f"for two items and their bundle, not {self.model}")  # fmt: skip
        if self.model == "myersonnet" and s.n_items != 1:
            raise ValueError(f"myersonnet is for one item; setting {self.setting} has {s.n_items}")
        if self.model not in ARCHITECTURES:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(ARCHITECTURES)}")
        check_choice(self.ama_menu, MENUS, "ama_menu")
        if self.model == "affine_maximizer" and self.ama_menu == "deterministic":
            deterministic_menu(s.n_bidders, s.n_items, s.demand)  # refuses a menu too large to enumerate
        if self.model in REGRET_TRAINED and self.train_size < self.resolved("batch"):
            raise ValueError(f"train_size ({self.train_size}) must be at least the batch ({self.resolved('batch')})")
        check_finite(self.softness, "softness", positive=True)
        if self.revive_every and (self.model != "affine_maximizer" or self.ama_menu != "lottery"):
            raise ValueError(f"revive_every revives a learned lottery menu (model affine_maximizer, ama_menu "
                             f"lottery), not {self.model} with ama_menu {self.ama_menu}")  # fmt: skip
        if self.dual is not None and self.model not in REGRET_TRAINED:
            raise ValueError(f"dual applies to the regret-trained models {REGRET_TRAINED}, not {self.model}")
        Schedule(prior=s.prior, **self._schedule_fields())  # the trainer's own checks, before anything runs
        if self.mixture and self.model not in SIZE_FREE:
            raise ValueError(f"mixture needs a size-independent network {SIZE_FREE}, not {self.model}")
        for other in self.mixture:
            if other == self.setting or self.mixture.count(other) > 1:
                raise ValueError(f"mixture repeats setting {other!r}")
            check_resized(s, setting(other))

    def resolved(self, name: str) -> Any:
        """A setting with the reference configuration filled in for ``None``."""
        value = getattr(self, name)
        if value is not None:
            return value
        if name == "dual":
            return "budget" if self.model == "regretformer" else "augmented"
        large, former = self.setting == "additive_5x10", self.model == "regretformer"
        budget = self.resolved("dual") == "budget"
        s = self.the_setting
        size = dict(zip(("hidden_units", "attention_units", "heads", "hidden_layers"),
                        reference_size(s.n_bidders, s.n_items), strict=True))  # fmt: skip
        return {
            "batch": 512 if former else 128 if self.model in REGRET_TRAINED else 1024,
            "learning_rate": 1e-3 if self.model in (*REGRET_TRAINED, "myersonnet") else 0.01,
            "hidden_layers": size["hidden_layers"] if former else 5 if self.setting in LARGE else 2,
            "hidden_units": size["hidden_units"] if former else 100,
            "heads": size["heads"],
            "attention_units": size["attention_units"],
            "misreport_steps": 50 if former else 25,
            "clip_norm": 1.0 if budget else None,
            "lambda_init": 1.0 if large or budget else 5.0,
            "rho_init": 0.25 if large else 1.0,
            "rho_increment": RHO_INCREMENT.get(self.setting, 1.0),
            "rho_every": 100_000 if large else 10_000,
            "budget_decay": max(1, -(-2 * self.iterations // 3)),  # the reference: the end budget at 2/3
        }[name]

    @property
    def the_setting(self) -> Setting:
        return setting(self.setting)

    def _schedule_fields(self) -> dict[str, Any]:
        return {
            **{name: self.resolved(name) for name in ("batch", "learning_rate", "lambda_init", "rho_init",
                                                      "rho_increment", "rho_every", "misreport_steps", "dual",
                                                      "clip_norm", "budget_decay")},
            **{name: getattr(self, name) for name in ("log_every", "train_size", "misreport_lr", "misreport_unroll",
                                                      "misreport_candidates", "misreport_keep_best", "lambda_every",
                                                      "budget_start", "budget_end", "budget_lr",
                                                      "revive_every")},
        }  # fmt: skip

    def schedule(self) -> Schedule:
        """The trainer's schedule, every reference value filled in (resolved here, once, not in the step)."""
        return Schedule(prior=self.the_setting.prior, **self._schedule_fields())


class Architecture(NamedTuple):
    """A learned-auction architecture: ``build(config) -> Mechanism`` (what is evaluated) and, for a menu
    mechanism, ``surrogate(config) -> (params, bids) -> Outcome`` (what it trains on)."""

    build: Callable[[RegretNetConfig], Mechanism]
    surrogate: Callable[[RegretNetConfig], Callable[[Params, Array], Outcome]] | None = None


def _network(build: Callable[..., Mechanism]) -> Callable[[RegretNetConfig], Mechanism]:
    """RegretNet's or EquivariantNet's builder: ``hidden_layers`` x ``hidden_units``, bids in units of the top
    value."""

    def network(config: RegretNetConfig) -> Mechanism:
        s = config.the_setting
        hidden = (config.resolved("hidden_units"),) * config.resolved("hidden_layers")
        return build(s.n_bidders, s.n_items, s.demand, hidden, bid_scale=top_value(s.prior, s.n_bidders, s.n_items))

    return network


def _regretformer(config: RegretNetConfig) -> Mechanism:
    s = config.the_setting
    sizes = [config.resolved(name) for name in ("hidden_units", "attention_units", "heads", "hidden_layers")]
    return regretformer(s.n_bidders, s.n_items, s.demand, *sizes, bid_scale=top_value(s.prior, s.n_bidders, s.n_items))


def _rochetnet(config: RegretNetConfig) -> Mechanism:
    s = config.the_setting
    return rochetnet(s.n_items, config.menu_size, price_scale=top_value(s.prior, 1, s.n_items), demand=s.demand)


def _rochetnet_surrogate(config: RegretNetConfig) -> Callable[[Params, Array], Outcome]:
    s = config.the_setting
    _, high = s.prior.support(s.prior.init_params(1, s.n_items))
    return lambda params, bids: rochetnet_soft(params, bids, config.softness / jnp.max(high), s.demand)


def _affine_maximizer(config: RegretNetConfig) -> Mechanism:
    s = config.the_setting
    low = default_support(s.prior, s.n_bidders, s.n_items)[0]
    return affine_maximizer(s.n_bidders, s.n_items, config.ama_menu, config.menu_size, s.demand, value_low=low,
                            value_scale=top_value(s.prior, s.n_bidders, s.n_items))  # fmt: skip


def _affine_maximizer_surrogate(config: RegretNetConfig) -> Callable[[Params, Array], Outcome]:
    s = config.the_setting
    top = top_value(s.prior, s.n_bidders, s.n_items)
    fixed = None if config.ama_menu == "lottery" else jnp.asarray(deterministic_menu(s.n_bidders, s.n_items, s.demand))
    return affine_maximizer_soft(config.ama_menu, s.n_bidders, s.demand, config.softness / top, fixed)


def _bidder_tops(s: Setting) -> np.ndarray:
    """``[n]`` the top of each bidder's support (MyersonNet's per-bidder scales)."""
    return default_support(s.prior, s.n_bidders, s.n_items)[1].max(axis=1)


def _myersonnet(config: RegretNetConfig) -> Mechanism:
    s = config.the_setting
    return myersonnet(s.n_bidders, config.groups, config.lines, _bidder_tops(s), config.shared)


def _myersonnet_surrogate(config: RegretNetConfig) -> Callable[[Params, Array], Outcome]:
    s = config.the_setting
    return myersonnet_soft(s.n_bidders, config.softness / top_value(s.prior, s.n_bidders, 1), _bidder_tops(s))


ARCHITECTURES = {
    "regretnet": Architecture(_network(regretnet)),
    "equivariantnet": Architecture(_network(equivariantnet)),
    "regretformer": Architecture(_regretformer),
    "rochetnet": Architecture(_rochetnet, _rochetnet_surrogate),
    "affine_maximizer": Architecture(_affine_maximizer, _affine_maximizer_surrogate),
    "myersonnet": Architecture(_myersonnet, _myersonnet_surrogate),
}


def build_mechanism(config: RegretNetConfig) -> Mechanism:
    """The mechanism ``config`` trains, from the architecture registry."""
    return ARCHITECTURES[config.model].build(config)


def check_resized(trained: Setting, other: Setting) -> None:
    """Refuse ``other`` unless it is ``trained`` at another size: the same prior and demand."""
    if other.prior != trained.prior or other.demand != trained.demand:
        raise ValueError(f"setting {other.name} has another prior or demand than {trained.name}: only the size may "
                         "change")  # fmt: skip


def build_mechanism_on(config: RegretNetConfig, other: str) -> Mechanism:
    """``config``'s size-independent network (same sizes, hence the same params) on the setting ``other`` (the
    same prior and demand): a mixture's other sizes, or a trained network evaluated on a size it never saw."""
    if config.model not in SIZE_FREE:
        raise ValueError(f"{config.model} has weights of one size; only {SIZE_FREE} run on another setting")
    check_resized(config.the_setting, setting(other))
    sizes = {name: config.resolved(name) for name in ("hidden_units", "attention_units", "heads", "hidden_layers")}
    return build_mechanism(dataclasses.replace(config, setting=other, mixture=(), **sizes))


def make_regretnet(config: RegretNetConfig) -> Trainer:
    """The shared trainer (``make_lagrangian_trainer``) for ``config``'s architecture and resolved schedule."""
    mechanism = build_mechanism(config)
    surrogate = ARCHITECTURES[config.model].surrogate
    mixture = [build_mechanism_on(config, other) for other in config.mixture]
    return make_lagrangian_trainer(mechanism, config.schedule(), None if surrogate is None else surrogate(config),
                                   mixture)  # fmt: skip
