"""The importer of dimonenka/optimaler's shipped networks (jaxauction.optimaler): its reader of the legacy
torch.save format, and the imported networks against a numpy transcription of the reference's own forward pass
(tests/reference.py), on random and edge-case profiles and at sizes the file was not trained at."""

import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxauction import optimaler
from tests import reference as ref

DATA = Path(__file__).parent / "data" / "optimaler"
FILES = {"RegretNet": DATA / "RegretNet_1x2_seed0", "EquivariantNet": DATA / "EquivariantNet_2x2_seed0",
         "RegretFormer": DATA / "RegretFormer_1x2_seed0"}  # fmt: skip
KEY = jax.random.key(0)


def profiles(n: int, m: int) -> list[np.ndarray]:
    """Random U[0,1] profiles and edge cases: all zero, all one, ties, one bidder far above, values above 1."""
    rng = np.random.default_rng(n * 10 + m)
    edge = [np.zeros((n, m)), np.ones((n, m)), np.full((n, m), 0.5), rng.uniform(0, 1, (1, m)).repeat(n, 0)]
    lone = np.zeros((n, m))
    lone[0] = 1.0
    return [*rng.uniform(0, 1, (20, n, m)), *edge, lone, rng.uniform(0, 2, (n, m))]


def test_the_reader_returns_every_tensor_with_its_shape():
    """The three fixtures hold the layers their configurations say (core/configs: 100 tanh units in two hidden
    layers; 32 exchangeable channels, 3 layers; 32 channels, 16 x 2 attention, one block), in float32."""
    nets = {kind: optimaler.read_state_dict(path) for kind, path in FILES.items()}
    assert {k: v.shape for k, v in nets["RegretNet"].items() if "weight" in k} == {
        "alloc_layers.0.weight": (100, 2), "alloc_layers.1.weight": (100, 100), "alloc_layers.2.weight": (4, 100),
        "pay_layers.0.weight": (100, 2), "pay_layers.1.weight": (100, 100), "pay_layers.2.weight": (1, 100)}
    assert len(nets["EquivariantNet"]) == 20
    assert nets["EquivariantNet"]["body_layers.0.row_layer.weight"].shape == (32, 32)
    assert nets["RegretFormer"]["body_layers.0.attention_agent.w_qs.weight"].shape == (32, 32)
    for kind, state in nets.items():
        assert optimaler.architecture_of(state) == kind
        assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in state.values())
    # trained LayerNorm scales are near one, not bytes read at the wrong offset
    assert 0.3 < float(np.mean(nets["RegretFormer"]["head_layer.layer_norm.weight"])) < 3.0


@pytest.mark.parametrize("kind, n, m, heads", [
    ("RegretNet", 1, 2, None), ("EquivariantNet", 2, 2, None), ("EquivariantNet", 3, 4, None),
    ("EquivariantNet", 1, 1, None), ("RegretFormer", 1, 2, None), ("RegretFormer", 2, 3, 2), ("RegretFormer", 3, 2, 4),
])  # fmt: skip
def test_an_imported_network_computes_the_reference_forward_pass(kind, n, m, heads):
    """jaxauction's network on the imported params gives the reference's allocation and payments (float32 against
    float64: 1e-5), at the file's size and, for the size-independent ones, at sizes it was not trained on
    (EquivariantNet's dummy channel is rebuilt for each n); RegretFormer with 4 heads is another split of the same
    32 attention features."""
    state = optimaler.read_state_dict(FILES[kind])
    mechanism, params = optimaler.import_network(FILES[kind], n, m, heads=heads)
    apply = jax.jit(mechanism.apply)
    for bids in profiles(n, m):
        out = apply(params, jnp.asarray(bids, jnp.float32), KEY)
        allocation, payments = ref.optimaler_network(state, bids, heads=heads or 2)
        np.testing.assert_allclose(out.allocation, allocation, atol=1e-5)
        np.testing.assert_allclose(out.payments, payments, atol=1e-5)


def test_the_equivariantnet_activation_is_a_choice():
    """The reference's EquivariantNet uses ReLU; importing it with tanh gives tanh's network (the reference with
    tanh), not the file's."""
    mechanism, params = optimaler.import_network(FILES["EquivariantNet"], 2, 2, activation="tanh")
    state = optimaler.read_state_dict(FILES["EquivariantNet"])
    bids = profiles(2, 2)[0]
    out = mechanism.apply(params, jnp.asarray(bids, jnp.float32), KEY)
    np.testing.assert_allclose(out.payments, ref.optimaler_network(state, bids, activation="tanh")[1], atol=1e-5)
    assert not np.allclose(out.payments, ref.optimaler_network(state, bids)[1], atol=1e-4)


def test_a_state_dict_of_arrays_imports_as_its_file():
    """``import_network`` takes the arrays themselves too (a zip-format file loaded with torch, as numpy): the
    same params, bit for bit, in float32 whatever dtype they come in."""
    state = optimaler.read_state_dict(FILES["RegretFormer"])
    from_file = optimaler.import_network(FILES["RegretFormer"], 1, 2)[1]
    from_arrays = optimaler.import_network({k: v.astype(np.float64) for k, v in state.items()}, 1, 2)[1]
    for a, b in zip(jax.tree_util.tree_leaves(from_file), jax.tree_util.tree_leaves(from_arrays), strict=True):
        assert a.dtype == b.dtype == jnp.float32 and np.array_equal(a, b)


def test_files_it_cannot_read_are_refused_with_the_reason(tmp_path):
    def write(name, chunks):
        path = tmp_path / name
        path.write_bytes(b"".join(pickle.dumps(c, protocol=2) for c in chunks))
        return path

    with pytest.raises(ValueError, match="zip-format"):
        (tmp_path / "zip").write_bytes(b"PK\x03\x04rest")
        optimaler.read_state_dict(tmp_path / "zip")
    with pytest.raises(ValueError, match="legacy torch.save file"):
        optimaler.read_state_dict(write("other", [1, 2]))
    with pytest.raises(ValueError, match="legacy torch.save file"):
        (tmp_path / "junk").write_bytes(b"\x00\x01junk")
        optimaler.read_state_dict(tmp_path / "junk")

    class Evil:  # a pickle that would call os.system on load: refused by name, nothing runs
        def __reduce__(self):
            import os

            return os.system, ("echo never",)

    path = tmp_path / "evil"
    path.write_bytes(b"".join(pickle.dumps(c, protocol=2) for c in [optimaler._MAGIC, 1001, {}]) + pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="refuses to load"):
        optimaler.read_state_dict(path)
    data = FILES["RegretNet"].read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 200, 40):  # in the bytes, in the pickle, in the header
        (tmp_path / "cut").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated|not a readable legacy torch.save file"):
            optimaler.read_state_dict(tmp_path / "cut")
    (tmp_path / "long").write_bytes(data + b"\x00" * 4)
    with pytest.raises(ValueError, match="bytes left"):
        optimaler.read_state_dict(tmp_path / "long")


def test_a_tensor_outside_its_storage_is_refused():
    """The views a file declares are checked against the bytes it holds before anything is read; a transposed
    view (stride) and an empty tensor read right."""
    storage = optimaler._Storage(np.float32, 6)
    storage.data = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(optimaler._Tensor(storage, 0, (2, 3), (1, 2)).array(), [[0, 2, 4], [1, 3, 5]])
    assert optimaler._Tensor(storage, 6, (0, 3), (3, 1)).array().shape == (0, 3)
    for offset, size, stride in [(1, (2, 3), (3, 1)), (0, (7,), (1,)), (-1, (2,), (1,)), (0, (2, 2), (1,))]:
        with pytest.raises(ValueError, match="reads past|not a valid view"):
            optimaler._Tensor(storage, offset, size, stride).array()


def test_a_network_of_another_size_or_configuration_is_refused():
    with pytest.raises(ValueError, match="not 2 x 2"):
        optimaler.import_network(FILES["RegretNet"], 2, 2)  # RegretNet's layers fix n x m
    with pytest.raises(ValueError, match="reference configuration for 2 x 2: give heads"):
        optimaler.import_network(FILES["RegretFormer"], 2, 2)  # 32 channels is the 1x2 configuration
    with pytest.raises(ValueError, match="do not split into 3 heads"):
        optimaler.import_network(FILES["RegretFormer"], 2, 2, heads=3)
    with pytest.raises(ValueError, match="activation"):
        optimaler.import_network(FILES["EquivariantNet"], 2, 2, activation="gelu")
    with pytest.raises(ValueError, match="n_bidders"):
        optimaler.import_network(FILES["EquivariantNet"], 0, 2)
    with pytest.raises(ValueError, match="not a dimonenka/optimaler network"):
        optimaler.architecture_of({"fc.weight": np.zeros((1, 1))})
