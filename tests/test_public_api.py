"""The public surface: ``jaxauction.__all__`` is sorted, reaches every name, matches the documentation's API
pages name for name, and every public function and class has its own docstring (the API pages show it)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import jaxauction as ja

API = Path(__file__).resolve().parents[1] / "docs" / "api"


def documented() -> list[str]:
    """The names the API pages render (``::: jaxauction.NAME``), in page order."""
    pattern = re.compile(r"^::: jaxauction\.(\w+)$", re.M)
    return [name for page in sorted(API.glob("*.md")) for name in pattern.findall(page.read_text())]


def test_all_is_sorted_unique_and_reachable():
    assert ja.__all__ == sorted(set(ja.__all__))
    for name in ja.__all__:
        assert getattr(ja, name) is not None, name


def test_the_api_pages_document_exactly_the_public_names():
    names = documented()
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    assert set(names) == set(ja.__all__), (sorted(set(ja.__all__) - set(names)), sorted(set(names) - set(ja.__all__)))


def test_the_environments_page_documents_exactly_the_envs_names():
    import jaxauction.envs as envs

    names = re.findall(r"^::: jaxauction\.envs\.\w+\.(\w+)$", (API / "envs.md").read_text(), re.M)
    assert names == envs.__all__
    for name in names:
        assert inspect.getdoc(getattr(envs, name)), name


def test_every_public_function_and_class_has_its_own_docstring():
    for name in ja.__all__:
        obj = getattr(ja, name)
        if isinstance(obj, (str, dict, tuple)):  # registries and constants: documented on their page
            continue
        doc = inspect.getdoc(obj) or ""
        assert doc and not doc.startswith(f"{name}("), f"{name} has no docstring of its own"
