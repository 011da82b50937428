"""The package is layered: every import of a jaxauction module (at module level or inside a function) points to
its own layer or a lower one, there is no import cycle, and the package imports nothing from ``experiments``,
``benchmarks`` or ``tests``. The layers are the README's module map."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jaxauction"
LAYERS = [  # lowest first; a package name covers its submodules
    ("foundation", ["_checks", "_ops", "types", "prng", "io", "memory", "registry"]),
    ("values", ["priors", "utilities"]),
    ("components", ["mechanisms", "bidders"]),
    ("markets", ["market", "metrics", "equilibria", "specs", "settings", "parallel", "envs"]),
    ("training and evaluation", ["train", "regret", "evaluation", "studies", "checkpoint"]),
    ("operations", ["driver", "cli", "runs", "optimaler", "plots"]),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The jaxauction modules (and any outside package of this repository) that ``path`` imports, anywhere."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] in ("jaxauction", "experiments", "benchmarks", "tests")}


def layer(module: str) -> int:
    name = module.removeprefix("jaxauction.")
    for i, (_, members) in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to the README's module map")


def test_imports_point_down_the_layers_and_never_outside_the_package():
    known = modules()
    for module, path in known.items():
        for target in imports(path, known):
            assert target.startswith("jaxauction"), f"{module} imports {target}, outside the package"
            if module == "jaxauction" or target == "jaxauction" or target == module:
                continue  # the top-level package re-exports every layer
            assert layer(target) <= layer(module), (
                f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]}), a higher layer"
            )


def test_no_import_cycles():
    known = modules()
    graph = {m: {t for t in imports(p, known) if t in known and t not in ("jaxauction", m)} for m, p in known.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
