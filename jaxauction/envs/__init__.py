"""JAX RL environments over jaxauction markets (the optional extra: ``pip install "jaxauction[envs]"``).

* ``BiddingEnv``: gymnax, one RL bidder against jaxauction's learners;
* ``MultiBiddingEnv``: JaxMARL, every ``external`` bidder an agent.

Give the RL bidders a group of ``ja.external(k, n_items)`` in the market's
population. Both environments step with ``market.auction``, the function
``run_round`` scans (``jaxauction.envs.core``), keep every number in params,
and run under ``jit`` and ``vmap``. Each class is imported on first use, so
gymnax alone serves ``BiddingEnv``.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "BiddingEnv": "single_agent", "BiddingParams": "single_agent", "BiddingState": "single_agent",
    "MultiBiddingEnv": "multi_agent", "MultiBiddingState": "multi_agent",
}  # fmt: skip
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'jaxauction.envs' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"jaxauction.envs.{_HOMES[name]}")
    except ModuleNotFoundError as error:
        library = "gymnax" if _HOMES[name] == "single_agent" else "jaxmarl"
        raise ModuleNotFoundError(f"jaxauction.envs.{name} needs {library} ({error}): "
                                  f'pip install "jaxauction[envs]"') from error  # fmt: skip
    return getattr(module, name)
