"""A PPO bidder, purejaxrl-style, learns to shade in first price against equilibrium bidders (``jaxauction.envs``).

    python -m experiments.ppo_bidder                     # 2 bidders: the agent and one equilibrium bidder
    python -m experiments.ppo_bidder --bidders 3 --seeds 8

The agent is the ``external`` bidder of a first-price market whose other
``n - 1`` bidders play the symmetric equilibrium ``b(v) = (n - 1) / n * v``
(values i.i.d. ``U[0, 1]``); its best response is that same bid, so a bidder
that learns well ends at the ratio ``(n - 1) / n``. Training is purejaxrl's
PPO for continuous actions (a Gaussian policy and a value network, each an
MLP of two tanh layers of 64, clipped surrogate, GAE, Adam), the whole run in
one ``jit`` and every seed in one ``vmap``. The agent clips its sampled bid
to the action space ``[0, 1]`` before bidding (purejaxrl's ``ClipAction``).
Each auction's values are fresh and the opponents do not learn, so a bid has
no effect on later auctions: the discount ``gamma`` defaults to 0.

``metrics.json``: ``bid_to_value`` (the learned policy's mean bid over the
value, averaged over values in the upper half of the range and over the
clock; mean +- s.e. over seeds), ``theory_bid_to_value`` = (n - 1) / n,
the mean reward of the last update beside the equilibrium's expected
utility ``1 / (n (n + 1))``, the learning curve, and the wall time.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tyro

from jaxauction import cli, plots
from jaxauction._checks import check_finite, check_positive_int
from jaxauction.bidders import equilibrium, external, population
from jaxauction.driver import Session
from jaxauction.envs import BiddingEnv
from jaxauction.market import Market
from jaxauction.mechanisms import first_price
from jaxauction.priors import UniformPrior
from jaxauction.studies import mean_se

NAME = "ppo_bidder"


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """The market and PPO's hyperparameters (purejaxrl's names)."""

    bidders: Annotated[int, tyro.conf.arg(aliases=("-n",))] = 2
    """bidders in all: the PPO agent and n - 1 equilibrium bidders"""
    num_envs: int = 64
    """environments stepped in parallel"""
    num_steps: int = 32
    """steps (auctions) per environment per update"""
    total_timesteps: int = 400_000
    """auctions in all (per seed)"""
    update_epochs: int = 4
    num_minibatches: int = 4
    lr: float = 3e-3
    anneal_lr: bool = True
    """the learning rate falls linearly to 0 over the run"""
    gamma: float = 0.0
    """discount; 0 because a bid has no effect on later auctions here"""
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    horizon: int = 100
    """auctions per episode (the observation's clock t / horizon)"""

    def __post_init__(self) -> None:
        check_positive_int(self.bidders, "bidders", minimum=2)
        for name in ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches", "horizon"):
            check_positive_int(getattr(self, name), name)
        for name in ("lr", "clip_eps", "max_grad_norm"):
            check_finite(getattr(self, name), name, positive=True)
        for name in ("gamma", "gae_lambda"):
            check_finite(getattr(self, name), name, minimum=0.0)
            if getattr(self, name) > 1:
                raise ValueError(f"{name} must be at most 1, got {getattr(self, name)}")
        check_finite(self.ent_coef, "ent_coef", minimum=0.0)
        check_finite(self.vf_coef, "vf_coef", minimum=0.0)
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(f"num_envs x num_steps ({self.num_envs * self.num_steps}) must be a multiple of "
                             f"num_minibatches ({self.num_minibatches})")  # fmt: skip
        if self.total_timesteps < self.num_envs * self.num_steps:
            raise ValueError(f"total_timesteps ({self.total_timesteps}) is below one update's "
                             f"num_envs x num_steps ({self.num_envs * self.num_steps})")  # fmt: skip

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


def make_env(config: PPOConfig) -> BiddingEnv:
    """The agent (bidder 0) and ``n - 1`` first-price equilibrium bidders, values ``U[0, 1]``."""
    n = config.bidders
    opponents = equilibrium(n - 1, "first_price", n, 1.0)
    market = Market(first_price(n), population([external(1), opponents]), UniformPrior(0.0, 1.0))
    return BiddingEnv(market, horizon=config.horizon)


class ActorCritic(nn.Module):
    """purejaxrl's continuous actor-critic: a Gaussian policy (state-independent log std) and a value."""

    action_dim: int

    @nn.compact
    def __call__(self, x):
        def mlp(x, out, scale):
            for _ in range(2):
                x = nn.tanh(nn.Dense(64, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
            return nn.Dense(out, kernel_init=nn.initializers.orthogonal(scale))(x)

        mean = mlp(x, self.action_dim, 0.01)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, log_std, jnp.squeeze(mlp(x, 1, 1.0), -1)


def log_prob(action, mean, log_std):
    """The Gaussian's log density, summed over the action's entries."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi), axis=-1)


def make_train(config: PPOConfig, env: BiddingEnv):
    """purejaxrl's shape: ``train(key) -> (params, curve)``, one pure function to ``jit`` and ``vmap``."""
    params_env = env.default_params
    space = env.action_space(params_env)
    network = ActorCritic(env.num_actions)
    batch = config.num_envs * config.num_steps
    minibatch = batch // config.num_minibatches
    steps = config.num_updates * config.update_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, steps) if config.anneal_lr else config.lr
    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))

    def train(key):
        key, k_init, k_reset = jax.random.split(key, 3)
        params = network.init(k_init, jnp.zeros(env.observation_space(params_env).shape))
        opt_state = tx.init(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, config.num_envs),
                                                                  params_env)  # fmt: skip

        def env_step(carry, key):
            params, obs, env_state = carry
            k_act, k_step = jax.random.split(key)
            mean, log_std, value = network.apply(params, obs)
            action = mean + jnp.exp(log_std) * jax.random.normal(k_act, mean.shape)
            bid = jnp.clip(action, space.low, space.high)  # purejaxrl's ClipAction
            obs_next, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, config.num_envs), env_state, bid, params_env)  # fmt: skip
            transition = (obs, action, log_prob(action, mean, log_std), value, reward, terminated | truncated)
            return (params, obs_next, env_state), transition

        def update(carry, key):
            params, opt_state, obs, env_state = carry
            k_roll, k_perm = jax.random.split(key)
            (_, obs, env_state), (o, a, logp, v, r, done) = jax.lax.scan(
                env_step, (params, obs, env_state), jax.random.split(k_roll, config.num_steps))
            last_value = network.apply(params, obs)[2]

            def gae(carry, t):
                advantage, next_value = carry
                delta = r[t] + config.gamma * next_value * (1 - done[t]) - v[t]
                advantage = delta + config.gamma * config.gae_lambda * (1 - done[t]) * advantage
                return (advantage, v[t]), advantage

            _, adv = jax.lax.scan(gae, (jnp.zeros_like(last_value), last_value), jnp.arange(config.num_steps),
                                  reverse=True)  # fmt: skip
            targets = adv + v

            def loss(params, o, a, logp, adv, targets):
                mean, log_std, value = network.apply(params, o)
                ratio = jnp.exp(log_prob(a, mean, log_std) - logp)
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                actor = -jnp.mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip_eps,
                                                                      1 + config.clip_eps) * adv))  # fmt: skip
                entropy = jnp.sum(log_std + 0.5 * np.log(2 * np.pi * np.e))
                return actor + config.vf_coef * jnp.mean((value - targets) ** 2) - config.ent_coef * entropy

            flat = jax.tree.map(lambda x: x.reshape(batch, *x.shape[2:]), (o, a, logp, adv, targets))

            def epoch(carry, key):
                def step(carry, idx):
                    params, opt_state = carry
                    grads = jax.grad(loss)(params, *jax.tree.map(lambda x: x[idx], flat))
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                order = jax.random.permutation(key, batch).reshape(config.num_minibatches, minibatch)
                return jax.lax.scan(step, carry, order)[0], None

            (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state),
                                                  jax.random.split(k_perm, config.update_epochs))  # fmt: skip
            return (params, opt_state, obs, env_state), jnp.mean(r)

        carry = (params, opt_state, obs, env_state)
        (params, *_), curve = jax.lax.scan(update, carry, jax.random.split(key, config.num_updates))
        return params, curve

    return network, train


def bid_to_value(network: ActorCritic, params, n_points: int = 11) -> jax.Array:
    """The policy's mean bid over the value, averaged over values in ``[0.5, 1]`` and clocks in ``[0, 1)``."""
    values = jnp.linspace(0.5, 1.0, n_points)
    clocks = jnp.arange(10) / 10
    obs = jnp.stack(jnp.broadcast_arrays(values[:, None], clocks[None, :]), axis=-1).reshape(-1, 2)
    mean = network.apply(params, obs)[0][:, 0]
    return jnp.mean(mean / obs[:, 0])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return cli.main(lambda: run(argv))


def run(argv: list[str] | None) -> dict[str, Any]:
    config, spec = cli.parse(PPOConfig, argv, experiment=NAME, description=__doc__.split("\n\n")[0])
    session = Session(NAME, config, spec)
    env = make_env(config)
    network, train = make_train(config, env)
    keys = jax.random.split(jax.random.key(spec.seed), spec.seeds)
    start = time.perf_counter()
    program = jax.jit(jax.vmap(train)).lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    params, curves = jax.block_until_ready(program(keys))
    seconds = time.perf_counter() - start
    # a program of its own: compiled into the training program, this evaluation hung XLA's CPU runtime (JAX
    # 0.10.2, 4 seeds of 9 updates: a wait at 0% CPU, every time)
    ratios = jax.jit(jax.vmap(lambda p: bid_to_value(network, p)))(params)
    ratios, curves = np.asarray(ratios, np.float64), np.asarray(curves, np.float64)
    n = config.bidders
    mean, se = mean_se(ratios)
    last, last_se = mean_se(curves[:, -1])
    m = {
        "config": config,
        "seeds": spec.seeds,
        "seed": spec.seed,
        "bid_to_value": float(mean),
        "bid_to_value_se": float(se),
        "bid_to_value_per_seed": ratios,
        "theory_bid_to_value": (n - 1) / n,
        "last_update_reward": float(last),
        "last_update_reward_se": float(last_se),
        "equilibrium_expected_utility": 1 / (n * (n + 1)),
        "reward_curve": curves.mean(axis=0),
        "updates": config.num_updates,
        "auctions_per_seed": config.num_updates * config.num_envs * config.num_steps,
        "compile_seconds": compile_seconds,
        "run_seconds": seconds,
        "device": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax_version": jax.__version__,
    }
    if session.leader:
        session.write_metrics(m)
        if spec.plots:
            x = np.arange(1, config.num_updates + 1) * config.num_envs * config.num_steps
            series = {"PPO bidder, mean reward per auction": (curves.mean(0), None),
                      "equilibrium's expected utility": (np.full_like(x, m["equilibrium_expected_utility"],
                                                                      dtype=np.float64), None)}  # fmt: skip
            plots.curves(session.out / "reward.png", x, series, "auctions per environment x environments",
                         "reward", title=f"PPO bidder, first price, {n} bidders")  # fmt: skip
        session.print(f"PPO bidder's bid / value {mean:.3f} +- {se:.3f} over {spec.seeds} seed(s); "
                      f"theory (n - 1) / n = {(n - 1) / n:.3f}")  # fmt: skip
        session.print(f"last update's mean reward {last:.4f}; the equilibrium's expected utility "
                      f"{m['equilibrium_expected_utility']:.4f}")  # fmt: skip
        session.print(f"{m['auctions_per_seed']:,} auctions per seed in {seconds:.1f} s (compile "
                      f"{compile_seconds:.1f} s) on {m['device']}; results in {session.out}/")  # fmt: skip
    return m


if __name__ == "__main__":
    main()
