"""EquivariantNet (and RegretFormer, for the first two tests): permutation equivariance in bidders and items,
feasibility and IR, one set of weights for any
size, gradients against finite differences, and training on the shared trainer with regret."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxauction as ja
from jaxauction.train.regretnet import RegretNetConfig, make_regretnet

KEY = jax.random.key(0)
# the size-independent networks: EquivariantNet and RegretFormer share the equivariance and feasibility tests
NETWORKS = {
    "equivariantnet": lambda n, m, demand: ja.equivariantnet(n, m, demand, hidden=(16, 16)),
    "equivariantnet_relu": lambda n, m, demand: ja.equivariantnet(n, m, demand, hidden=(16, 16), activation="relu"),
    "regretformer": lambda n, m, demand: ja.regretformer(n, m, demand, channels=16, attention=8, heads=2, layers=1),
}


@pytest.mark.parametrize("network", sorted(NETWORKS))
@pytest.mark.parametrize("demand", ["additive", "unit"])
def test_permuting_bidders_or_items_permutes_the_outcome(demand, network):
    """A relabelling of the bidders relabels the allocation's rows and the payments; one of the items relabels
    the allocation's columns and leaves the payments alone (float32 rounding aside)."""
    n, m = 3, 4
    mechanism = NETWORKS[network](n, m, demand)
    params = mechanism.init(KEY)
    apply = jax.jit(mechanism.apply)
    rng = np.random.default_rng(0)
    for _ in range(10):
        bids = jnp.asarray(rng.uniform(0, 1, (n, m)), jnp.float32)
        rows, cols = rng.permutation(n), rng.permutation(m)
        out = apply(params, bids, KEY)
        by_bidder = apply(params, bids[rows], KEY)
        by_item = apply(params, bids[:, cols], KEY)
        np.testing.assert_allclose(by_bidder.allocation, out.allocation[rows], atol=1e-6)
        np.testing.assert_allclose(by_bidder.payments, out.payments[rows], atol=1e-6)
        np.testing.assert_allclose(by_item.allocation, out.allocation[:, cols], atol=1e-6)
        np.testing.assert_allclose(by_item.payments, out.payments, atol=1e-6)


@pytest.mark.parametrize(("n", "m", "demand"), [(1, 1, "additive"), (2, 2, "additive"), (3, 10, "additive"),
                                                (2, 3, "unit"), (5, 1, "unit")])  # fmt: skip
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_allocations_are_feasible_and_payments_individually_rational(n, m, demand, network):
    """Random far-from-initial weights: every item sold at most once, a unit-demand bidder at most one item in
    total, and no bidder pays more than its reported value of what it gets (ties and zero bids included)."""
    mechanism = NETWORKS[network](n, m, demand)
    params = jax.tree.map(lambda x: 3 * x + 0.5, mechanism.init(jax.random.key(n * 10 + m)))
    rng = np.random.default_rng(n)
    bids = rng.uniform(0, 1, (64, n, m)).astype(np.float32)
    bids[:16] = np.round(bids[:16] * 2) / 2  # ties and zeros
    out = jax.jit(jax.vmap(lambda b: mechanism.apply(params, b, KEY)))(jnp.asarray(bids))
    a, p = np.asarray(out.allocation), np.asarray(out.payments)
    assert np.all(a >= 0) and np.all(a.sum(axis=1) <= 1 + 1e-6)
    if demand == "unit":
        assert np.all(a.sum(axis=2) <= 1 + 1e-6)
    assert np.all(p >= 0) and np.all(p <= (a * bids).sum(axis=2) + 1e-6)


def test_one_set_of_weights_serves_every_size_and_the_gradient_is_right():
    """The layers do not depend on n or m: 2x2 weights run a 3x10 auction. The revenue's gradient matches central
    finite differences."""
    small = ja.equivariantnet(2, 2, hidden=(8,))
    params = small.init(KEY)
    big = jax.jit(ja.equivariantnet(3, 10, hidden=(8,)).apply)(params, jnp.full((3, 10), 0.5), KEY)
    assert big.allocation.shape == (3, 10) and np.all(np.isfinite(np.asarray(big.payments)))
    bids = jax.random.uniform(jax.random.key(3), (2, 2))
    check_grads(jax.jit(lambda p: jnp.sum(small.apply(p, bids, KEY).payments)), (params,), order=1, modes=["rev"],
                atol=1e-2, rtol=1e-2)  # fmt: skip


def test_the_shared_trainer_trains_it_with_regret():
    """2x2 on RegretNet's augmented Lagrangian (16 channels, 300 iterations, misreports refined 5 steps): revenue
    rises from its start, and the cached misreports' regret is logged (it is not incentive compatible by
    construction). Same key, same step bit for bit."""
    config = RegretNetConfig(setting="additive_2x2", model="equivariantnet", iterations=300, log_every=100,
                             hidden_units=16, train_size=6_400, misreport_steps=5)  # fmt: skip
    trainer = make_regretnet(config)
    assert not trainer.mechanism.incentive_compatible and trainer.mechanism.name == "equivariantnet_additive"
    step = jax.jit(trainer.step)
    state, first = step(trainer.init(KEY))
    assert float(step(trainer.init(KEY))[1].revenue) == float(first.revenue)
    for _ in range(2):
        state, log = step(state)
    assert float(log.revenue) > float(first.revenue) + 0.05 and float(log.regret) > 0
