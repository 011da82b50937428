"""Import the networks shipped by dimonenka/optimaler, the public PyTorch reimplementation of RegretNet,
EquivariantNet and RegretFormer (Ivanov et al., NeurIPS 2022), to audit them under jaxauction's protocol.

Its repository ships trained weights as
``target_nets/<Architecture>/setting_additive_<n>x<m>_uniform/seed_<k>/model_200000``:
PyTorch state dicts in the legacy (pre-1.6, not zip) ``torch.save`` format.
``read_state_dict`` reads that format with the standard library's pickle and
numpy, no torch: it resolves only the names a state dict needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the
float and integer storage types) and refuses any other, so a file cannot run
code. ``import_network`` maps the weights onto the same architecture in
jaxauction (``regretnet``, ``equivariantnet``, ``regretformer``) and returns
``(mechanism, params)``, with the same outputs up to float rounding (tested
against a numpy transcription of the reference's forward pass):

* **RegretNet**: the allocation and payment MLPs, unchanged (tanh; the
  layers' sizes read from the weights, so ``n`` and ``m`` must agree).
* **EquivariantNet**: the reference adds its four exchangeable terms where
  jaxauction halves them (both layers' weights are doubled), and its
  allocation head's dummy logit, minus the sum of the bidders' logits,
  becomes jaxauction's dummy channel (the mean over bidders of a channel)
  through weights ``-n`` times the logits' (exact for the ``n`` it is
  imported at). Its activation is ReLU (the reference configuration's
  ``activation_exch``; it is not stored in the file), ``activation="relu"``.
* **RegretFormer**: the same layers, renamed; the exchangeable input layer
  doubled as above. The reference's optional positional encodings
  (``pos_enc``, off in every shipped configuration) are refused.

The networks read raw values (``bid_scale`` 1) and were trained on additive
U[0,1] values: audit them on the matching ``additive_<n>x<m>`` setting
(``python -m experiments.regret_audit --optimaler FILE --setting additive_2x2``).
"""

from __future__ import annotations

import collections
import io as _io
import os
import pickle
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxauction._checks import check_choice, check_positive_int
from jaxauction.mechanisms.base import Mechanism
from jaxauction.mechanisms.equivariant import ACTIVATIONS, equivariantnet
from jaxauction.mechanisms.regretformer import reference_size, regretformer
from jaxauction.mechanisms.regretnet import regretnet

ARCHITECTURES = ("RegretNet", "EquivariantNet", "RegretFormer")
_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "BoolStorage": np.bool_}  # fmt: skip


class _Storage:
    """A storage named in the pickle, whose bytes follow it in the file."""

    def __init__(self, dtype: type, numel: int) -> None:
        self.dtype, self.numel, self.data = np.dtype(dtype), numel, None


class _Tensor:
    """A tensor waiting for its storage's bytes: ``(storage, offset, size, stride)``."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, *_: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        flat, size, stride = self.storage.data, self.size, self.stride
        if len(stride) != len(size) or min(stride, default=0) < 0 or self.offset < 0 or min(size, default=0) < 0:
            raise ValueError(f"a tensor of size {size}, stride {stride} at offset {self.offset}: not a valid view")
        if 0 in size:
            return np.zeros(size, flat.dtype)
        if self.offset + sum((s - 1) * t for s, t in zip(size, stride, strict=True)) >= flat.size:
            raise ValueError(f"a tensor of size {size}, stride {stride} at offset {self.offset} reads past its "
                             f"storage of {flat.size} elements")  # fmt: skip
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], size, tuple(t * flat.itemsize for t in stride))
        return np.array(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Tensor
        if module == "torch" and name in _STORAGES:
            return name
        raise ValueError(f"not a plain state dict: the file names {module}.{name}, which this reader refuses to load")

    def persistent_load(self, saved: Any) -> _Storage:
        if not (isinstance(saved, tuple) and saved and saved[0] == "storage"):
            raise ValueError(f"not a plain state dict: unknown persistent object {saved!r:.80}")
        kind, key, _location, numel, view = saved[1:6]
        if view is not None:
            raise ValueError("storage views (PyTorch < 0.4 files) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(_STORAGES[kind], int(numel))
        return self.storages[key]


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a PyTorch state dict saved in the legacy ``torch.save`` format, by name (module docstring)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"PK":
        raise ValueError(f"{path} is a zip-format torch.save file: load it with torch and save the state dict with "
                         "_use_new_zipfile_serialization=False, or pass its arrays")  # fmt: skip
    try:
        return _parse(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign pickle fails in many ways; all mean one thing
        raise ValueError(f"{path} is not a readable legacy torch.save file ({type(e).__name__}: {e})") from None


def _parse(data: bytes) -> dict[str, np.ndarray]:
    f = _io.BytesIO(data)
    magic, version = pickle.load(f), pickle.load(f)
    if magic != _MAGIC or version != 1001:
        raise ValueError(f"not a legacy torch.save file (magic {magic!r:.40}, protocol {version!r:.40})")
    pickle.load(f)  # system info: byte order and type sizes (little-endian in every file this reads)
    unpickler = _Unpickler(f)
    state = unpickler.load()
    if not isinstance(state, dict) or not all(isinstance(v, _Tensor) for v in state.values()):
        raise ValueError(f"it holds a {type(state).__name__}, not a state dict of tensors")
    for key in pickle.load(f):  # the storages' bytes, in this order: an int64 element count, then the elements
        storage, at = unpickler.storages[key], f.tell()
        (count,) = np.frombuffer(data[at : at + 8], "<i8")
        if count != storage.numel:
            raise ValueError(f"storage {key} has {count} elements, its tensors say {storage.numel}")
        end = at + 8 + count * storage.dtype.itemsize
        if end > len(data):
            raise ValueError(f"truncated: storage {key} ends at byte {end} of {len(data)}")
        storage.data = np.frombuffer(data[at + 8 : end], storage.dtype.newbyteorder("<"))
        f.seek(end)
    if f.tell() != len(data):
        raise ValueError(f"{len(data) - f.tell()} bytes left after the last storage")
    return {name: tensor.array() for name, tensor in state.items()}


def architecture_of(state: dict[str, np.ndarray]) -> str:
    """Which of ``ARCHITECTURES`` a state dict holds, from its parameter names."""
    if "alloc_layers.0.weight" in state:
        return "RegretNet"
    if "head_layer.alloc_layer.channel_layer.weight" in state:
        return "EquivariantNet"
    if "head_layer.encoder_agent.weight" in state:
        return "RegretFormer"
    raise ValueError(f"not a dimonenka/optimaler network: parameters {sorted(state)[:4]}...")


def _dense(state: dict, name: str, bias: bool = True) -> dict:
    out = {"kernel": state[f"{name}.weight"].T}
    if bias:
        out["bias"] = state[f"{name}.bias"]
    return out


def _exchangeable(state: dict, name: str) -> dict:
    """An optimaler ``Exchangeable`` as jaxauction's, whose four terms are halved: every weight doubled."""
    terms = {"cell": "channel_layer", "item": "row_layer", "bidder": "col_layer", "all": "mat_layer"}
    out = {ours: {"kernel": 2.0 * state[f"{name}.{theirs}.weight"].T} for ours, theirs in terms.items()}
    out["cell"]["bias"] = 2.0 * state[f"{name}.channel_layer.bias"]
    return out


def _layer_norm(state: dict, name: str) -> dict:
    return {"scale": state[f"{name}.weight"], "bias": state[f"{name}.bias"]}


def _count(state: dict, prefix: str) -> int:
    return len({k.split(".")[1] for k in state if k.startswith(prefix + ".")})


def _regretnet(state: dict, n: int, m: int) -> tuple[Mechanism, Any]:
    layers = {part: _count(state, f"{part}_layers") for part in ("alloc", "pay")}
    hidden = [state[f"alloc_layers.{i}.weight"].shape[0] for i in range(layers["alloc"] - 1)]
    pay_hidden = [state[f"pay_layers.{i}.weight"].shape[0] for i in range(layers["pay"] - 1)]
    if pay_hidden != hidden or any(k.startswith(("a_lns", "p_lns")) for k in state):
        raise ValueError("this RegretNet has layer norms or payment layers unlike its allocation layers; jaxauction's "
                         "RegretNet has neither")  # fmt: skip
    shapes = (state["alloc_layers.0.weight"].shape[1], state[f"alloc_layers.{layers['alloc'] - 1}.weight"].shape[0],
              state[f"pay_layers.{layers['pay'] - 1}.weight"].shape[0])  # fmt: skip
    if shapes != (n * m, (n + 1) * m, n):
        raise ValueError(f"this RegretNet reads {shapes[0]} bids and pays {shapes[2]} bidders: not {n} x {m}")
    params = {ours: {f"Dense_{i}": _dense(state, f"{theirs}_layers.{i}") for i in range(layers[theirs])}
              for ours, theirs in (("allocation", "alloc"), ("payment", "pay"))}  # fmt: skip
    return regretnet(n, m, hidden=hidden), {"params": params}


def _equivariantnet(state: dict, n: int, m: int, activation: str) -> tuple[Mechanism, Any]:
    hidden = [state["input_layer.channel_layer.weight"].shape[0]]
    hidden += [state[f"body_layers.{i}.channel_layer.weight"].shape[0] for i in range(_count(state, "body_layers"))]
    layers = {f"Exchangeable_{i}": _exchangeable(state, "input_layer" if i == 0 else f"body_layers.{i - 1}")
              for i in range(len(hidden))}  # fmt: skip
    alloc = _exchangeable(state, "head_layer.alloc_layer")
    pay = _exchangeable(state, "head_layer.pay_layer")
    # output channels: 0 the logits, 1 the dummy (-n times the logits, so its mean over bidders is minus their
    # sum), 2 unused (unit demand only), 3 the payment fractions' logits
    layers["out"] = {term: {key: np.concatenate([alloc[term][key], -n * alloc[term][key],
                                                 np.zeros_like(alloc[term][key]), pay[term][key]], axis=-1)
                            for key in alloc[term]} for term in alloc}  # fmt: skip
    return equivariantnet(n, m, hidden=hidden, activation=activation), {"params": layers}


def _attention(state: dict, name: str, heads: int) -> dict:
    def split(weight: np.ndarray) -> np.ndarray:  # torch [heads * d, C] -> flax [C, heads, d]
        return weight.T.reshape(weight.shape[1], heads, -1)

    out_weight = state[f"{name}.fc.weight"]  # [C, heads * d]
    attend = {proj: {"kernel": split(state[f"{name}.w_{p}s.weight"])}
              for proj, p in (("query", "q"), ("key", "k"), ("value", "v"))}  # fmt: skip
    attend["out"] = {"kernel": out_weight.T.reshape(heads, -1, out_weight.shape[0])}
    return {"MultiHeadDotProductAttention_0": attend, "LayerNorm_0": _layer_norm(state, f"{name}.layer_norm")}


def _regretformer(state: dict, n: int, m: int, heads: int | None) -> tuple[Mechanism, Any]:
    if any(".pe" in k or k.startswith("input_layer.1") for k in state):
        raise ValueError("this RegretFormer has positional encodings (pos_enc), which jaxauction's does not")
    channels = state["input_layer.channel_layer.weight"].shape[0]
    attention_width = state["body_layers.0.attention_item.w_qs.weight"].shape[0]
    layers = _count(state, "body_layers")
    if heads is None:  # not stored in the file: the reference configuration's for this size, if its widths agree
        ref = reference_size(n, m)
        if (channels, layers) != (ref[0], ref[3]) or attention_width != ref[1] * ref[2]:
            raise ValueError(f"this RegretFormer ({channels} channels, {attention_width} attention features, {layers} "
                             f"blocks) is not the reference configuration for {n} x {m}: give heads")  # fmt: skip
        heads = ref[2]
    if attention_width % heads:
        raise ValueError(f"{attention_width} attention features do not split into {heads} heads")
    params = {"embed": _exchangeable(state, "input_layer"), "LayerNorm_0": _layer_norm(state, "head_layer.layer_norm"),
              "bidder": _dense(state, "head_layer.encoder_agent", bias=False),
              "item": _dense(state, "head_layer.encoder_item", bias=False),
              "payment": _dense(state, "head_layer.fc_payment.0")}  # fmt: skip
    for i in range(layers):
        body = f"body_layers.{i}"
        params[f"_Block_{i}"] = {"items": _attention(state, f"{body}.attention_item", heads),
                                 "bidders": _attention(state, f"{body}.attention_agent", heads),
                                 "merge": _dense(state, f"{body}.fc")}  # fmt: skip
    mechanism = regretformer(n, m, channels=channels, attention=attention_width // heads, heads=heads, layers=layers)
    return mechanism, {"params": params}


def import_network(source: str | os.PathLike | Mapping[str, np.ndarray], n_bidders: int, n_items: int,
                   heads: int | None = None, activation: str = "relu") -> tuple[Mechanism, Any]:  # fmt: skip
    """``(mechanism, params)`` of the optimaler network in ``source`` (a file, or its state dict's arrays by name,
    as ``read_state_dict`` or ``torch.load`` gives them) for ``n_bidders x n_items`` additive bidders (module
    docstring). ``heads``: a RegretFormer's attention heads (not stored in the file; default the reference
    configuration's); ``activation``: an EquivariantNet's (the reference's ``relu``, or ``tanh``). The params
    are checked against the mechanism's own initialisation: same tree, same shapes."""
    check_positive_int(n_bidders, "n_bidders")
    check_positive_int(n_items, "n_items")
    check_choice(activation, ACTIVATIONS, "activation")
    if isinstance(source, Mapping):
        state = {name: np.asarray(value, np.float32) for name, value in source.items()}
    else:
        state = read_state_dict(source)
    kind = architecture_of(state)
    if kind == "RegretNet":
        mechanism, params = _regretnet(state, n_bidders, n_items)
    elif kind == "EquivariantNet":
        mechanism, params = _equivariantnet(state, n_bidders, n_items, activation)
    else:
        mechanism, params = _regretformer(state, n_bidders, n_items, heads)
    expected = jax.tree_util.tree_map(lambda x: x.shape, mechanism.init(jax.random.key(0)))
    got = jax.tree_util.tree_map(lambda x: x.shape, params)
    if expected != got:
        raise ValueError(f"this {kind} does not map onto jaxauction's: params {got} against {expected}")
    return mechanism, jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
