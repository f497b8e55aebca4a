"""Where each part of a label goes: the symbol with its quiet zone, the call to action,
the grouped code and the brand's lines, in millimetres from the label's top-left corner.

PDF, PNG and SVG all draw one ``Arrangement``, so a label looks the same in each. Text is
measured with the metrics of the PDF standard fonts (Helvetica and Courier, which Arial,
Liberation and Nimbus share), so it is measured once for every format.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Final

PT_MM: Final = 25.4 / 72
"""Millimetres per point."""
MIN_MODULE_MM: Final = 0.25
"""Below this a 300 dpi printer has fewer than three dots per module and scans get
unreliable."""

PAD_MM: Final = 1.0
"""Kept clear inside each label edge: die-cut label stock is cut within about 1 mm."""
_GAP_MM = 0.8
"""Between the symbol's quiet zone and the text beside or under it."""
_LINE_SPACING = 1.2
# Text sizes tried, largest first: 6 pt is the smallest that stays legible on thermal and
# laser prints; above 9 pt the code outgrows the labels it is printed on.
_SIZES_PT = (9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0)
_LINE_SCALE = 0.9
"""The brand's lines against the code's size."""
_ENOUGH_MODULE_MM = 0.6
"""A module size that phones read from a hand's length; beyond it, text gets the room."""
_LONGEST_GROUP = 18
"""Characters of human text kept on one line; GS1's (01) and its GTIN are 18."""
_NEAR_BEST = 0.9
"""Arrangements whose module is within this of the best one are as good to scan."""


class Font(StrEnum):
    MONO = "mono"  # the code: Courier-Bold, one advance for every character
    SANS = "sans"  # the brand's lines: Helvetica
    SANS_BOLD = "sans-bold"  # the call to action: Helvetica-Bold


# Advance widths in 1/1000 em of ASCII 32..126 (Adobe's AFM for Helvetica; Arial and
# Liberation Sans have the same).
_HELVETICA = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
    722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556,
    556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
    500, 334, 260, 334, 584,
)  # fmt: skip
_HELVETICA_BOLD = (
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722,
    722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611,
    611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556,
    500, 389, 280, 389, 584,
)  # fmt: skip
_MONO_ADVANCE = 600
_WIDEST = 1015  # what an unknown character is measured as: never narrower than drawn


def _advance(char: str, table: tuple[int, ...]) -> int:
    code = ord(char)
    if 32 <= code < 127:
        return table[code - 32]
    # An accented letter is as wide as its base letter in these fonts (é as e).
    base = unicodedata.normalize("NFD", char)[:1]
    if base != char and 32 <= ord(base) < 127:
        return table[ord(base) - 32]
    return _WIDEST


def text_width_mm(text: str, font: Font, size_pt: float) -> float:
    if font is Font.MONO:
        units = _MONO_ADVANCE * len(text)
    else:
        table = _HELVETICA_BOLD if font is Font.SANS_BOLD else _HELVETICA
        units = sum(_advance(char, table) for char in text)
    return units / 1000 * size_pt * PT_MM


def fit_width(text: str, font: Font, size_pt: float, width_mm: float) -> str:
    """``text``, cut short with an ellipsis if it is wider than ``width_mm``."""
    if text_width_mm(text, font, size_pt) <= width_mm:
        return text
    while text and text_width_mm(text + "…", font, size_pt) > width_mm:
        text = text[:-1]
    return text.rstrip() + "…" if text else ""


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    font: Font
    size_pt: float
    center_mm: float
    """Horizontal centre of the line."""
    baseline_mm: float
    width_mm: float
    """The line's measured width: a renderer whose font runs wider squeezes it to this."""


@dataclass(frozen=True, slots=True)
class Arrangement:
    symbol_left_mm: float
    symbol_top_mm: float
    """The symbol's top-left corner, inside its quiet zone."""
    module_mm: float
    lines: tuple[Line, ...]


def _chunks(items: tuple[str, ...], count: int) -> list[str]:
    """``items`` joined by spaces into ``count`` lines as even as can be."""
    per_line = math.ceil(len(items) / count)
    return [" ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]


def _split_words(text: str, count: int) -> list[str]:
    words = tuple(text.split())
    return _chunks(words, min(count, len(words))) if words else [""]


@dataclass(frozen=True, slots=True)
class _Plan:
    beside: bool
    size_pt: float
    code_lines: int
    cta_lines: int
    module_mm: float
    extra_lines: int
    """The brand's lines this arrangement has room for."""


def arrange(
    *,
    symbol_modules: int,
    quiet_zone: int,
    human_text: str,
    call_to_action: str,
    lines: tuple[str, ...],
    label_mm: tuple[float, float],
) -> Arrangement:
    """The arrangement with the largest symbol (up to what phones need), then the largest
    text; the human text breaks only at its spaces. ValueError if nothing fits."""
    # A long run without spaces is cut into pieces a line can hold (parse() ignores the
    # spaces that then appear in a code).
    groups = tuple(
        word[i : i + _LONGEST_GROUP]
        for word in human_text.split()
        for i in range(0, len(word), _LONGEST_GROUP)
    ) or ("",)
    plan = _plan(
        symbol_modules,
        quiet_zone,
        tuple(len(g) for g in groups),
        call_to_action,
        len(lines),
        label_mm,
    )
    if plan is None:
        raise ValueError(
            f"a {label_mm[0]:g} x {label_mm[1]:g} mm label has no room for {human_text!r}: "
            f"its {symbol_modules} x {symbol_modules} symbol would need modules below "
            f"{MIN_MODULE_MM} mm"
        )
    return _place(plan, symbol_modules, quiet_zone, groups, call_to_action, lines, label_mm)


def _block(
    size: float, code: list[str], cta: list[str]
) -> tuple[list[tuple[str, Font, float]], float]:
    """The text block's lines (text, font, size) and its width, without the brand's lines."""
    items = [(text, Font.SANS_BOLD, size) for text in cta if text]
    items += [(text, Font.MONO, size) for text in code]
    return items, max(text_width_mm(text, font, s) for text, font, s in items)


@lru_cache(maxsize=256)
def _plan(
    symbol_modules: int,
    quiet_zone: int,
    group_lengths: tuple[int, ...],
    call_to_action: str,
    extra_lines: int,
    label_mm: tuple[float, float],
) -> _Plan | None:
    """Searches text sizes, line breaks, the two places for the text (beside the symbol
    or under it) and room for up to ``extra_lines`` of the brand's lines; the code's width
    depends only on its groups' lengths."""
    inner_w, inner_h = (side - 2 * PAD_MM for side in label_mm)
    span = symbol_modules + 2 * quiet_zone
    placeholder = tuple("0" * n for n in group_lengths)
    candidates: list[_Plan] = []
    for size in _SIZES_PT:
        line_h = size * PT_MM * _LINE_SPACING
        extra_h = max(_SIZES_PT[-1], size * _LINE_SCALE) * PT_MM * _LINE_SPACING
        for code_lines in range(1, len(placeholder) + 1):
            code = _chunks(placeholder, code_lines)
            if code_lines > 1 and len(code) < code_lines:
                continue  # the same breaks as fewer lines
            for cta_lines in (1, 2):
                cta = _split_words(call_to_action, cta_lines)
                _, width = _block(size, code, cta)
                text_h = (len(code) + len([c for c in cta if c])) * line_h
                for extra, beside in itertools.product(range(extra_lines + 1), (True, False)):
                    height = text_h + extra * extra_h
                    if beside:
                        side = min(inner_h, inner_w - width - _GAP_MM)
                        fits = height <= inner_h
                    else:
                        side = min(inner_w, inner_h - height - _GAP_MM)
                        fits = width <= inner_w
                    module = side / span
                    if fits and module >= MIN_MODULE_MM:
                        candidates.append(_Plan(beside, size, code_lines, cta_lines, module, extra))
    if not candidates:
        return None
    best = max(min(c.module_mm, _ENOUGH_MODULE_MM) for c in candidates)
    good = [c for c in candidates if min(c.module_mm, _ENOUGH_MODULE_MM) >= _NEAR_BEST * best]
    # Among symbols about as good to scan as the best: every line the brand chose (a 99 x
    # 38 mm label once put its text under the symbol, leaving no room for any of them),
    # then the largest text, the fewest lines, the largest symbol.
    return max(
        good,
        key=lambda c: (c.extra_lines, c.size_pt, -c.code_lines, -c.cta_lines, c.module_mm),
    )


def _place(
    plan: _Plan,
    symbol_modules: int,
    quiet_zone: int,
    groups: tuple[str, ...],
    call_to_action: str,
    extra: tuple[str, ...],
    label_mm: tuple[float, float],
) -> Arrangement:
    label_w, label_h = label_mm
    inner_w, inner_h = label_w - 2 * PAD_MM, label_h - 2 * PAD_MM
    size = plan.size_pt
    line_size = max(_SIZES_PT[-1], size * _LINE_SCALE)
    items, _ = _block(
        size, _chunks(groups, plan.code_lines), _split_words(call_to_action, plan.cta_lines)
    )
    span_mm = (symbol_modules + 2 * quiet_zone) * plan.module_mm
    block_w = inner_w - span_mm - _GAP_MM if plan.beside else inner_w
    # The brand's lines take the room the text block has; longer ones are cut short, and
    # those that no longer fit under the block are left off, never drawn over the symbol.
    room_h = inner_h if plan.beside else inner_h - span_mm - _GAP_MM
    used_h = len(items) * size * PT_MM * _LINE_SPACING
    for text in extra:
        line_h = line_size * PT_MM * _LINE_SPACING
        if used_h + line_h > room_h + 1e-9:
            break
        items.append((fit_width(text, Font.SANS, line_size, block_w), Font.SANS, line_size))
        used_h += line_h
    widths = [text_width_mm(text, font, s) for text, font, s in items]
    content_w = max(widths)

    if plan.beside:
        # Symbol and text centred together: on a wide label the spare room goes outside.
        total_w = span_mm + _GAP_MM + content_w
        left = PAD_MM + (inner_w - total_w) / 2
        symbol_box_top = PAD_MM + (inner_h - span_mm) / 2
        block_center = left + span_mm + _GAP_MM + content_w / 2
        block_top = PAD_MM + (inner_h - used_h) / 2
    else:
        total_h = span_mm + _GAP_MM + used_h
        left = PAD_MM + (inner_w - span_mm) / 2
        symbol_box_top = PAD_MM + (inner_h - total_h) / 2
        block_center = label_w / 2
        block_top = symbol_box_top + span_mm + _GAP_MM
    lines = []
    y = block_top
    for (text, font, s), w in zip(items, widths, strict=True):
        line_h = s * PT_MM * _LINE_SPACING
        # The baseline sits at 0.8 of the line: cap height and descenders both stay inside.
        lines.append(Line(text, font, s, block_center, y + 0.8 * line_h, w))
        y += line_h
    return Arrangement(
        symbol_left_mm=left + quiet_zone * plan.module_mm,
        symbol_top_mm=symbol_box_top + quiet_zone * plan.module_mm,
        module_mm=plan.module_mm,
        lines=tuple(lines),
    )
