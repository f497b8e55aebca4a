"""CSV exports never hand a spreadsheet a formula (OWASP's CSV injection advice)."""

from __future__ import annotations

import pytest

from transparency.services.exports import spreadsheet_safe


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_prefixed_with_a_quote(start: str) -> None:
    assert spreadsheet_safe(f"{start}HYPERLINK(1)") == f"'{start}HYPERLINK(1)"


@pytest.mark.parametrize(
    "cell", ["TP0123", "(01)09506000134352(21)AB", "https://x/t/TP1", "L-1", "", None, "'="]
)
def test_any_other_cell_is_left_alone(cell: str | None) -> None:
    assert spreadsheet_safe(cell) == cell
