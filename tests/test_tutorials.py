"""The tutorials (``docs/tutorials/*.md``) run as written, and print what their pages show.

A tutorial is a Markdown page whose ```` ```python ```` blocks run in order in one namespace; a ```` ```text ````
block right after a code block is the output that block prints. The test compares the words exactly and the
numbers to 2% (or 0.01): learning runs are deterministic for a key on one machine, and may differ in the last
digits on another. ``python -m tests.test_tutorials`` rewrites the output blocks from a fresh run.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def pages() -> list[Path]:
    return sorted(p for p in TUTORIALS.glob("*.md") if p.name != "index.md")


def run(page: Path) -> list[tuple[re.Match, str | None, str]]:
    """Each code block's match, the text block that follows it (or None) and what the code printed."""
    text = page.read_text()
    matches = list(BLOCK.finditer(text))
    namespace: dict = {"__name__": "tutorial"}
    out = []
    for i, m in enumerate(matches):
        if m.group(1) != "python":
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(m.group(2), str(page), "exec", dont_inherit=True), namespace)  # noqa: S102 - its own code
        after = matches[i + 1] if i + 1 < len(matches) else None
        adjacent = after is not None and after.group(1) == "text" and not text[m.end() : after.start()].strip()
        out.append((m, after if adjacent else None, printed.getvalue()))
    return out


def same_output(expected: str, actual: str) -> bool:
    words = lambda s: NUMBER.sub("#", " ".join(s.split()))  # noqa: E731
    if words(expected) != words(actual):
        return False
    pairs = zip(NUMBER.findall(expected), NUMBER.findall(actual), strict=True)
    return all(math.isclose(float(a), float(b), rel_tol=0.02, abs_tol=0.01) for a, b in pairs)


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: p.stem)
def test_tutorial_runs_and_prints_what_its_page_shows(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _, shown, printed in run(page):
        if shown is not None:
            assert same_output(shown.group(2), printed), f"{page.name}: shown\n{shown.group(2)}\nprinted\n{printed}"
        else:
            assert not printed, f"{page.name}: a block prints but its page shows no output:\n{printed}"


def test_every_tutorial_is_in_the_docs_navigation():
    nav = (TUTORIALS.parents[1] / "mkdocs.yml").read_text()
    assert pages() and all(f"tutorials/{p.name}" in nav for p in pages())


def write(page: Path) -> None:
    """Rewrite ``page``'s output blocks from a fresh run (a block that prints gets one)."""
    text = page.read_text()
    edits = []
    for code, shown, printed in run(page):
        block = f"```text\n{printed}```" if printed else ""
        if shown is not None:
            edits.append((shown.start(), shown.end(), block))
        elif printed:
            edits.append((code.end(), code.end(), "\n\n" + block))
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    page.write_text(text)


if __name__ == "__main__":
    for path in sys.argv[1:] or pages():
        write(Path(path))
        print(f"wrote {path}")
