"""Where labels go on paper: a grid of equal labels on an A4 or Letter sheet, or one label
per page on a roll, and the named presets of common label stock.

Pure (no image library), so the API can validate a layout before any renderer starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

PAGE_MM: Final = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
ROLL: Final = "roll"
"""A roll of die-cut labels: each page is one label (what thermal printer drivers take)."""

_CUT_MARK_OFFSET_MM: Final = 1.0


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """A grid of equal labels, centred on the page. Lengths are in millimetres.

    ``columns`` and ``rows`` of 0 mean as many as fit within the margins; after
    construction they hold the actual grid. The defaults are 24 labels of 63.5 x 33.9 mm
    on A4 (Avery L7159 and compatibles). On a ``roll`` the page is the label itself.
    """

    page: Literal["A4", "Letter", "roll"] = "A4"
    label_w_mm: float = 63.5
    label_h_mm: float = 33.9
    columns: int = 0
    rows: int = 0
    margin_mm: float = 5.0
    """Nearest the grid may come to the page edge (printers cannot print to the edge)."""
    gap_x_mm: float = 2.5
    gap_y_mm: float = 0.0
    cut_marks: bool = False
    """Short lines outside the grid, in line with every label edge."""

    def __post_init__(self) -> None:
        if self.page not in PAGE_MM and self.page != ROLL:
            raise ValueError(
                f"page must be one of {', '.join(PAGE_MM)} or {ROLL}, not {self.page!r}"
            )
        for name in ("label_w_mm", "label_h_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of millimetres, not {value}")
        for name in ("margin_mm", "gap_x_mm", "gap_y_mm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be zero or more millimetres, not {value}")
        if self.page == ROLL:
            if self.cut_marks:
                raise ValueError("roll labels are die-cut: cut marks are for sheets")
            if (self.columns, self.rows) not in ((0, 0), (1, 1)):
                raise ValueError("a roll has one label per page: columns and rows are 1")
            object.__setattr__(self, "columns", 1)
            object.__setattr__(self, "rows", 1)
            return
        page_w, page_h = PAGE_MM[self.page]
        columns = self._fit("columns", self.columns, self.label_w_mm, self.gap_x_mm, page_w)
        rows = self._fit("rows", self.rows, self.label_h_mm, self.gap_y_mm, page_h)
        # Frozen, but the grid is part of the value: fill in what was derived.
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)
        if self.cut_marks:
            room = min(self.origin_mm)
            if room < _CUT_MARK_OFFSET_MM + 2:
                raise ValueError(
                    f"cut marks need {_CUT_MARK_OFFSET_MM + 2:g} mm between the grid and the "
                    f"page edge; this grid leaves {room:.1f} mm"
                )

    def _fit(self, name: str, count: int, size: float, gap: float, page: float) -> int:
        usable = page - 2 * self.margin_mm
        what = f"{self.page} leaves {usable:g} mm between its {self.margin_mm:g} mm margins"
        if count < 0:
            raise ValueError(f"{name} must be 0 (as many as fit) or more, not {count}")
        if count == 0:
            count = math.floor((usable + gap) / (size + gap) + 1e-9)
            if count == 0:
                raise ValueError(f"a label {size:g} mm across does not fit: {what}")
            return count
        need = count * size + (count - 1) * gap
        if need > usable + 1e-9:
            raise ValueError(
                f"{count} {name} of {size:g} mm with {gap:g} mm gaps need {need:g} mm, but {what}"
            )
        return count

    @property
    def page_mm(self) -> tuple[float, float]:
        if self.page == ROLL:
            return self.label_w_mm, self.label_h_mm
        return PAGE_MM[self.page]

    @property
    def label_mm(self) -> tuple[float, float]:
        return self.label_w_mm, self.label_h_mm

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def origin_mm(self) -> tuple[float, float]:
        """Distance from the left and top page edges to the grid."""
        page_w, page_h = self.page_mm
        grid_w = self.columns * self.label_w_mm + (self.columns - 1) * self.gap_x_mm
        grid_h = self.rows * self.label_h_mm + (self.rows - 1) * self.gap_y_mm
        return (page_w - grid_w) / 2, (page_h - grid_h) / 2

    def label_box_mm(self, index: int) -> tuple[float, float]:
        """Left and top edge of the ``index``-th label on a page, filled row by row."""
        row, column = divmod(index, self.columns)
        left, top = self.origin_mm
        return (
            left + column * (self.label_w_mm + self.gap_x_mm),
            top + row * (self.label_h_mm + self.gap_y_mm),
        )


DEFAULT_LAYOUT: Final = SheetLayout()


class Preset(StrEnum):
    """Common label stock by name; equivalents of other makers share the sizes."""

    A4_L7159 = "a4-l7159"
    A4_L7160 = "a4-l7160"
    A4_L7163 = "a4-l7163"
    LETTER_5160 = "letter-5160"
    LETTER_5163 = "letter-5163"
    ROLL_40X30 = "roll-40x30"
    ROLL_50X25 = "roll-50x25"


DEFAULT_PRESET: Final = Preset.A4_L7159

# The makers' templates: label size, grid and pitch (pitch = label + gap). Margins are
# the least the centred grid leaves, so a printer's 5 mm unprintable edge is respected
# where the stock allows it (Letter stock is laid out 4.8 and 4.0 mm from the edge).
_PRESETS: Final[dict[Preset, dict[str, Any]]] = {
    # 24 per A4 sheet, 66.04 mm horizontal pitch: the default since the first release.
    Preset.A4_L7159: {"page": "A4", "label_w_mm": 63.5, "label_h_mm": 33.9, "columns": 3,
                      "rows": 8},
    # 21 per A4 sheet: the most common address label (Avery L7160, Herma 4677, ...).
    Preset.A4_L7160: {"page": "A4", "label_w_mm": 63.5, "label_h_mm": 38.1, "columns": 3,
                      "rows": 7},
    # 14 per A4 sheet, 101.6 mm pitch: room for brand, product and lot lines.
    Preset.A4_L7163: {"page": "A4", "label_w_mm": 99.1, "label_h_mm": 38.1, "columns": 2,
                      "rows": 7, "margin_mm": 4.5},
    # 30 per Letter sheet, 1" x 2 5/8" on a 2 3/4" pitch (Avery 5160).
    Preset.LETTER_5160: {"page": "Letter", "label_w_mm": 66.675, "label_h_mm": 25.4,
                         "columns": 3, "rows": 10, "gap_x_mm": 3.175, "margin_mm": 4.7},
    # 10 per Letter sheet, 2" x 4" on a 4 3/16" pitch (Avery 5163).
    Preset.LETTER_5163: {"page": "Letter", "label_w_mm": 101.6, "label_h_mm": 50.8,
                         "columns": 2, "rows": 5, "gap_x_mm": 4.7625, "margin_mm": 3.9},
    # Direct thermal rolls, one label a page.
    Preset.ROLL_40X30: {"page": ROLL, "label_w_mm": 40.0, "label_h_mm": 30.0},
    Preset.ROLL_50X25: {"page": ROLL, "label_w_mm": 50.0, "label_h_mm": 25.0},
}  # fmt: skip


def layout_of(preset: Preset = DEFAULT_PRESET, **overrides: Any) -> SheetLayout:
    """The preset's layout with some fields replaced (None leaves a field as the preset
    has it); raises ValueError when the result does not fit its page."""
    fields = dict(_PRESETS[Preset(preset)])
    given = {name: value for name, value in overrides.items() if value is not None}
    if {"page", "label_w_mm", "label_h_mm"} & given.keys():
        # Another size or page: the preset's grid no longer applies, so it is derived anew.
        fields = {k: v for k, v in fields.items() if k not in ("columns", "rows", "margin_mm")}
    return SheetLayout(**(fields | given))
