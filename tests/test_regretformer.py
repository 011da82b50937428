"""RegretFormer (its equivariance, feasibility and IR: tests/test_equivariant.py): one set of weights for any size,
gradients against finite differences; the regret-budget dual on the shared trainer against its update rule, and
training on a mixture of sizes against the mean of their losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxauction as ja
from jaxauction.mechanisms.regretformer import reference_size
from jaxauction.regret import batch_regret, refine_misreports
from jaxauction.settings import setting as get_setting
from jaxauction.train.lagrangian import Schedule
from jaxauction.train.regretnet import RegretNetConfig, build_mechanism_on, make_regretnet

KEY = jax.random.key(0)
SMALL = {"channels": 16, "attention": 8, "heads": 2, "layers": 2}


def test_one_set_of_weights_serves_every_size_and_the_gradient_is_right():
    """No layer depends on n or m: 2x2 weights run a 3x10 auction, and the reference sizes are the public code's.
    The revenue's gradient matches central finite differences."""
    small = ja.regretformer(2, 2, **SMALL)
    params = small.init(KEY)
    big = jax.jit(ja.regretformer(3, 10, **SMALL).apply)(params, jnp.full((3, 10), 0.5), KEY)
    assert big.allocation.shape == (3, 10) and np.all(np.isfinite(np.asarray(big.payments)))
    assert reference_size(2, 2) == (64, 32, 2, 1)
    assert reference_size(3, 10) == (128, 32, 4, 2)
    bids = jax.random.uniform(jax.random.key(3), (2, 2))
    check_grads(jax.jit(lambda p: jnp.sum(small.apply(p, bids, KEY).payments)), (params,), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)  # fmt: skip
    with pytest.raises(ValueError, match="heads"):
        ja.regretformer(2, 2, heads=0)


def test_the_budget_dual_follows_its_update_rule():
    """Budget dual, one iteration per step: gamma_1 = max(0, gamma_0 + lr (log(sum_i rgt_i / revenue) - log
    budget_start)) with the step's own logged regret and revenue (recomputed here in numpy), the budget target
    decays geometrically to budget_end at two thirds of the run, every bidder shares gamma, rho stays 0. Same key,
    same step bit for bit."""
    config = RegretNetConfig(setting="additive_2x2", model="regretformer", iterations=200, log_every=1,
                             train_size=2_048, batch=128, misreport_steps=3, hidden_units=16,
                             attention_units=8)  # fmt: skip
    schedule = config.schedule()
    assert schedule.dual == "budget" and schedule.clip_norm == 1.0 and schedule.budget_decay == 134
    np.testing.assert_allclose(float(schedule.budget_target(jnp.float32(67))), 0.01 * 0.1**0.5, rtol=1e-5)
    assert float(schedule.budget_target(jnp.float32(10_000))) == pytest.approx(0.001)
    trainer = make_regretnet(config)
    state0 = trainer.init(KEY)
    step = jax.jit(trainer.step)
    state1, log = step(state0)
    assert float(step(trainer.init(KEY))[1].revenue) == float(log.revenue)
    total = 2 * float(log.regret)  # the logged regret is the mean over the 2 bidders
    expected = max(0.0, 1.0 + 0.5 * (np.log(total / (float(log.revenue) + 1e-8)) - np.log(0.01)))
    np.testing.assert_allclose(np.asarray(state1.lambdas), expected, rtol=1e-4)
    assert float(state1.rho) == 0.0 and float(log.rho) == pytest.approx(0.01)


@pytest.mark.slow
def test_the_budget_dual_trains():
    """2x2 with a small network on the budget dual over 200 iterations: revenue rises."""
    config = RegretNetConfig(setting="additive_2x2", model="regretformer", iterations=200, log_every=100,
                             train_size=2_048, batch=128, misreport_steps=3, hidden_units=16,
                             attention_units=8)  # fmt: skip
    long = make_regretnet(config)
    state, first = jax.jit(long.step)(long.init(KEY))
    state, last = jax.jit(long.step)(state)
    assert float(last.revenue) > float(first.revenue) + 0.05


def test_the_budget_dual_is_checked_before_anything_runs():
    prior = ja.UniformPrior()
    with pytest.raises(ValueError, match="dual"):
        Schedule(prior=prior, batch=8, learning_rate=1e-3, dual="lagrange")
    with pytest.raises(ValueError, match="budget_end"):
        Schedule(prior=prior, batch=8, learning_rate=1e-3, budget_start=0.001, budget_end=0.01)
    with pytest.raises(ValueError, match="clip_norm"):
        RegretNetConfig(model="regretformer", clip_norm=-1.0)
    with pytest.raises(ValueError, match="dual applies"):
        RegretNetConfig(setting="additive_1x2", model="rochetnet", dual="budget")
    augmented = RegretNetConfig(model="regretnet", dual="budget").schedule()
    assert augmented.dual == "budget" and augmented.lambda_init == 1.0 and augmented.clip_norm == 1.0


@pytest.mark.slow
def test_a_mixture_of_sizes_trains_one_network_on_the_mean_of_their_losses():
    """RegretFormer on 2x2 with 2x3 and 1x2 mixed in: one set of weights, one training set, cached misreports and
    multipliers per size, and the first iteration's loss is the mean of the three sizes' augmented Lagrangians,
    recomputed here from the initial state (each size's first batch, misreports refined as the trainer does).
    The audit's transfer builder runs the same weights on 3x10."""
    config = RegretNetConfig(setting="additive_2x2", model="regretformer", mixture=("additive_2x3", "additive_1x2"),
                             dual="augmented", iterations=2, log_every=1, train_size=256, batch=64,
                             misreport_steps=2, hidden_units=8, attention_units=4)  # fmt: skip
    trainer = make_regretnet(config)
    state = trainer.init(KEY)
    assert [v.shape for v in state.values] == [(256, 2, 2), (256, 2, 3), (256, 1, 2)]
    assert [lam.shape for lam in state.lambdas] == [(2,), (2,), (1,)]
    _, log = jax.jit(trainer.step)(state)
    schedule = config.schedule()
    keys = jnp.broadcast_to(KEY, (64,))
    losses = []
    for other, values, cached, lam in zip(("additive_2x2", *config.mixture), state.values, state.misreports,
                                          state.lambdas, strict=True):  # fmt: skip
        mechanism = build_mechanism_on(config, other)
        v, mis = values[:64], cached[:64]
        prior = get_setting(other).prior
        low, high = prior.support(prior.init_params(*v.shape[1:]))
        mis = refine_misreports(mechanism, state.params, v, mis, keys, low, high, 2, schedule.misreport_lr)
        regret, revenue = batch_regret(mechanism, state.params, v, mis, keys)
        losses.append(float(-revenue + jnp.sum(lam * regret) + 0.5 * jnp.sum(regret**2)))
    np.testing.assert_allclose(float(log.loss), np.mean(losses), rtol=1e-4, atol=1e-6)
    big = build_mechanism_on(config, "additive_3x10").apply(state.params, jnp.full((3, 10), 0.5), KEY)
    assert big.allocation.shape == (3, 10)
    with pytest.raises(ValueError, match="size-independent"):
        RegretNetConfig(model="regretnet", mixture=("additive_2x3",))
    with pytest.raises(ValueError, match="another prior or demand"):
        RegretNetConfig(model="regretformer", mixture=("unit_1x2",))
    with pytest.raises(ValueError, match="repeats"):
        RegretNetConfig(model="regretformer", mixture=("additive_2x2",))
