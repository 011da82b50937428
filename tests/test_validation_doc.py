"""The committed validation table (docs/validation.md, written by tests/validation_table.py) holds every
reference rule, and every row is within its tolerance."""

from pathlib import Path

from tests.reference import RULES

DOC = Path(__file__).resolve().parents[1] / "docs" / "validation.md"


def test_validation_table_covers_every_rule_and_every_row_is_within_tolerance():
    rows = [line for line in DOC.read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| rule", "| ---"))]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    assert len(cells) >= 30
    for rule, setting, metric, value, estimate, se, gap in cells:
        if gap == "exact":
            assert abs(float(estimate) - float(value)) < 1e-5, (rule, setting, metric)
        else:
            assert float(gap) <= 4.0, (rule, setting, metric, gap)
            assert abs(float(estimate) - float(value)) <= 4 * float(se) + 1e-6
    names = " ".join(c[0] for c in cells)
    for name in RULES:
        assert name.removeprefix("with_") in names, f"{name} has no row in docs/validation.md"
