"""Charts of the brand dashboard, drawn here as SVG: the page works without any script.

A chart is bars per day, stacked when a day has several parts (blocked checks by reason).
The numbers are also given as a table next to it, for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup, escape

# Colours told apart by people with the common colour blindnesses (Okabe and Ito's palette),
# each at least 3:1 against the white background (WCAG 1.4.11, graphics).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8a6d00", "#56606b", "#a0522d")
WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 44, 22, 10  # room for the axis' numbers and the first and last day


@dataclass(frozen=True, slots=True)
class Series:
    """One chart: a total per day, split into named parts (one part for most charts)."""

    key: str
    days: list[date]
    parts: dict[str, list[int]]

    @property
    def totals(self) -> list[int]:
        return [sum(values) for values in zip(*self.parts.values(), strict=True)] or [
            0 for _ in self.days
        ]


def calendar(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def series(rows: Iterable[Mapping[str, Any]], days: Sequence[date]) -> list[Series]:
    """One series for each count the dashboard's day rows carry, summed over products;
    one for each dict of counts (``blocked`` by reason), split into its keys."""
    index = {day: i for i, day in enumerate(days)}
    flat: dict[str, list[int]] = {}
    split: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        day = _day(row.get("day"))
        at = None if day is None else index.get(day)
        if at is None:
            continue
        for key, value in row.items():
            if isinstance(value, bool) or key == "day":
                continue
            if isinstance(value, int):
                flat.setdefault(key, [0] * len(days))[at] += value
            elif isinstance(value, Mapping):
                parts = split.setdefault(key, {})
                for part, count in value.items():
                    if isinstance(count, int):
                        parts.setdefault(str(part), [0] * len(days))[at] += count
    found = [Series(key, list(days), {key: values}) for key, values in flat.items()]
    found += [Series(key, list(days), dict(sorted(parts.items()))) for key, parts in split.items()]
    return found


def _day(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def svg(chart: Series, title: str, names: Mapping[str, str]) -> Markup:
    """The bars of ``chart``, labelled with ``title`` and each part's name in ``names``."""
    days, totals = chart.days, chart.totals
    top = max([*totals, 1])
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 1.0)
    out = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' class="chart" preserveAspectRatio="none">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 4}" y2="{TOP + plot_h}"'
        ' stroke="#56606b"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{top}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        base = float(TOP + plot_h)
        x = LEFT + i * step + (step - bar) / 2
        for n, (part, values) in enumerate(chart.parts.items()):
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            base -= h
            colour = PALETTE[n % len(PALETTE)]
            label = escape(f"{day.isoformat()} {names.get(part, part)}: {values[i]}")
            out.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{label}</title></rect>'
            )
    if days:
        out.append(f'<text x="{LEFT}" y="{HEIGHT - 4}">{days[0].isoformat()}</text>')
        end = days[-1].isoformat()
        out.append(f'<text x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">{end}</text>')
    out.append("</svg>")
    # Every text in it went through escape(); the rest are numbers and our own markup.
    return Markup("".join(out))  # noqa: S704
