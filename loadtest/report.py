"""A run's report: one self-contained HTML file a person reads, from the run's summary.

The summary is the dict ``loadtest run`` writes as ``summary.json`` (times in seconds since
the run's start, latencies in ms). The report puts the verdict first, then the main plot
(throughput and p99 per request type over time), the SLOs, invariants and faults, the
other plots, and the raw numbers last. Plots are drawn by matplotlib's SVG backend and
inlined, text kept as text: the file opens offline, with no script, and the same summary
gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.typing import LineStyleType, RcKeyType

# Okabe-Ito's colour-blind-safe palette (its yellow is unreadable on white, so it is
# swapped for a brown), then greys; a type keeps its colour in every plot.
COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#8C6D1F",
    "#7F7F7F",
)
DASHES = ("-", "--", ":", "-.")
FAULT = "#444444"
FAULT_LINE = (0, (7, 2, 1.5, 2))  # dash-dot: unlike any series' dashes
OUTAGE = "#D62728"
CPU_LIMIT = 90.0  # a generator above 90% of a core queues its own requests: the run is invalid
MAX_REASONS = 8  # more error series than this is a legend nobody reads: the rest is "other"

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: searchable, sharp, and small
    "svg.hashsalt": "transparency-loadtest",  # ids from a fixed salt: same summary, same bytes
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
}

MAIN_TITLE = "Throughput and p99 latency per request type over time"

Series = dict[str, list[float]]


def write(summary: Mapping[str, Any], directory: Path) -> Path:
    """Write ``report.html`` and ``report-main.svg`` (the main plot alone) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render(summary), encoding="utf-8")
    with matplotlib.rc_context(STYLE):
        main = _Timeline(summary).main_plot()
        if main is not None:
            svg = _svg(main, MAIN_TITLE, "main", inline=False)
            (directory / "report-main.svg").write_text(svg, encoding="utf-8")
    return path


def render(summary: Mapping[str, Any]) -> str:
    """The report as one complete HTML document."""
    with matplotlib.rc_context(STYLE):  # read when axes are made, not only when saved
        return _render(summary)


def _render(summary: Mapping[str, Any]) -> str:
    timeline = _Timeline(summary)
    verdict = str(summary.get("verdict") or "invalid").lower()
    run_id = str(summary.get("run_id") or "unnamed run")
    parts = [
        _banner(verdict, _strings(summary.get("reasons"))),
        _facts(summary),
        _figure_section(
            "Throughput and p99 latency",
            timeline.main_plot(),
            MAIN_TITLE,
            "main",
            "No request was recorded.",
            "Requests per second (top) and the slowest 1% of latencies (bottom) of each "
            "request type, one point per second.",
        ),
        _slos(_records(summary.get("slos"))),
        _invariants(_records(summary.get("invariants"))),
        _faults(_records(summary.get("faults")), summary.get("outage")),
        _figure_section(
            "Latency percentiles",
            timeline.latency_plot(),
            "Latency p50, p95 and p99 per request type over time",
            "latency",
            "No latency was recorded.",
            "One panel per request type, each on its own scale.",
        ),
        _figure_section(
            "Errors",
            timeline.error_plot(),
            "Failed requests per second by request type and reason",
            "errors",
            "No request failed.",
            "Failed requests per second, stacked by request type and reason.",
            _failure_table(timeline.failure_counts()),
        ),
        _figure_section(
            "Load generator CPU",
            timeline.cpu_plot(),
            "Load generator CPU per worker over time, with the 90% limit",
            "cpu",
            "The load generator's CPU was not recorded.",
            f"Percent of one core per locust worker. Above {CPU_LIMIT:.0f}% the generator "
            "delays its own requests: a worker held there for seconds on end makes the run "
            "invalid, its figures a limit of the generator rather than of the service.",
        ),
        _ramp(summary),
        _totals(timeline.types, _mapping(summary.get("totals"))),
        _scenario(summary.get("scenario")),
    ]
    body = "\n".join(part for part in parts if part)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Load test {escape(run_id)}: {escape(verdict.upper())}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>Load test <span class="run-id">{escape(run_id)}</span></h1>
{body}
</main>
</body>
</html>
"""


CSS = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       background: #fff; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 0.6rem; border-bottom: 1px solid #ddd; }
.run-id { font-family: ui-monospace, monospace; font-weight: normal; }
.verdict { border-radius: 8px; padding: 1rem 1.4rem; color: #fff; }
.verdict p { font-size: 2.2rem; font-weight: 800; margin: 0; letter-spacing: 0.05em; }
.verdict ul { margin: 0.4rem 0 0; padding-left: 1.3rem; font-size: 1.05rem; }
.verdict-pass { background: #1b6e35; }
.verdict-fail { background: #b3261e; }
.verdict-invalid { background: #7a4f00; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1.2rem;
           margin: 1rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
figure { margin: 0.5rem 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.95rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.8rem; border-bottom: 1px solid #e3e3e3; text-align: right; }
th[scope=row], td.text, th.text { text-align: left; }
thead th { border-bottom: 2px solid #999; }
.ok { color: #1b6e35; font-weight: 600; }
.broken { color: #b3261e; font-weight: 600; }
pre { background: #f5f5f5; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.table-wrap { overflow-x: auto; }
"""


def _banner(verdict: str, reasons: list[str]) -> str:
    word = verdict.upper() if verdict in ("pass", "fail", "invalid") else "INVALID"
    kind = word.lower()
    items = "".join(f"<li>{escape(reason)}</li>" for reason in reasons)
    explained = f"<ul>{items}</ul>" if items else ""
    return (
        f'<section class="verdict verdict-{kind}" aria-label="Verdict">'
        f"<p>{word}</p>{explained}</section>"
    )


def _facts(summary: Mapping[str, Any]) -> str:
    codes = _mapping(summary.get("codes"))
    used, prepared = codes.get("used"), codes.get("prepared")
    code_text = f"{_count(used)} of {_count(prepared)} prepared" if prepared else _count(used)
    rows = [
        ("API", summary.get("api")),
        ("Shape", summary.get("shape")),
        ("Workers", summary.get("workers")),
        ("Duration", f"{_number(summary.get('duration_s'), 1)} s"),
        ("Codes used", code_text),
        ("Started", summary.get("started_at")),
        ("Ended", summary.get("ended_at")),
    ]
    saturation = _mapping(summary.get("saturation"))
    if saturation:
        rows.append(
            (
                "Saturation",
                f"{_number(saturation.get('achieved_rate'), 1)}/s achieved "
                f"(target {_number(saturation.get('target_rate'), 0)}/s)",
            )
        )
    items = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(str(value) if value is not None else '-')}</dd>"
        for name, value in rows
    )
    return f'<dl class="facts">{items}</dl>'


def _figure_section(
    heading: str,
    figure: Figure | None,
    title: str,
    key: str,
    empty: str,
    caption: str,
    table: str = "",
) -> str:
    if figure is None:
        return f"<section><h2>{escape(heading)}</h2><p>{escape(empty)}</p></section>"
    return (
        f"<section><h2>{escape(heading)}</h2><figure>{_svg(figure, title, key)}"
        f"<figcaption>{escape(caption)}</figcaption></figure>{table}</section>"
    )


def _failure_table(counts: list[tuple[str, str, float]]) -> str:
    if not counts:
        return ""
    rows = [[_row_header(kind), _text(reason), _cell(_count(n))] for kind, reason, n in counts]
    return _table(["Request", "Reason", "Failed"], rows)


def _slos(slos: list[Mapping[str, Any]]) -> str:
    if not slos:
        return "<section><h2>SLOs</h2><p>The scenario sets no SLO.</p></section>"
    rows = [
        [
            _row_header(slo.get("name")),
            _cell(_measure(slo.get("limit"))),
            _cell(_measure(slo.get("measured"))),
            _ok(slo.get("ok")),
        ]
        for slo in slos
    ]
    return _table_section("SLOs", ["SLO", "Limit", "Measured", "Met"], rows)


def _invariants(invariants: list[Mapping[str, Any]]) -> str:
    if not invariants:
        return "<section><h2>Invariants</h2><p>No invariant was checked.</p></section>"
    rows = [
        [_row_header(inv.get("name")), _ok(inv.get("ok")), _text(inv.get("detail"))]
        for inv in invariants
    ]
    return _table_section("Invariants", ["Invariant", "Holds", "Detail"], rows)


def _faults(faults: list[Mapping[str, Any]], outage: Any) -> str:
    parts = ["<section><h2>Faults and outage</h2>"]
    window = _mapping(outage)
    if window:
        start, end = _float(window.get("start")), _float(window.get("end"))
        parts.append(
            f"<p>Claims failed from {_number(start, 1)} s to {_number(end, 1)} s: an outage of "
            f"<strong>{_number(end - start, 1)} s</strong>, "
            f"{_count(window.get('failed_claims'))} failed claims.</p>"
        )
    elif faults:
        parts.append("<p>No claim failed: no outage.</p>")
    if faults:
        rows = [
            [
                _row_header(f"{_number(fault.get('at'), 1)} s"),
                _text(fault.get("action")),
                _cell(f"{_number(fault.get('done_at'), 1)} s"),
                _ok(fault.get("ok"), yes="done", no="failed"),
                _text(fault.get("detail")),
            ]
            for fault in faults
        ]
        parts.append(_table(["At", "Action", "Done at", "Result", "Detail"], rows))
    else:
        parts.append("<p>No fault was injected.</p>")
    parts.append("</section>")
    return "".join(parts)


def _ramp(summary: Mapping[str, Any]) -> str:
    steps = _records(summary.get("steps"))
    if not steps:
        return ""
    saturation = _mapping(summary.get("saturation"))
    types = sorted({kind for step in steps for kind in _mapping(step.get("p99"))})
    if saturation:
        found = (
            f"<p>Saturation point: <strong>{_number(saturation.get('achieved_rate'), 1)}/s"
            f"</strong> achieved, the highest step (target "
            f"{_number(saturation.get('target_rate'), 0)}/s) that met every SLO.</p>"
        )
    else:
        found = "<p>No step met every SLO: no saturation point was found.</p>"
    rows = [
        [
            _row_header(
                f"{_number(step.get('target_rate'), 0)}/s" + (" again" if step.get("again") else "")
            ),
            _cell(f"{_number(step.get('achieved_rate'), 1)}/s"),
            *(_cell(_number(_mapping(step.get("p99")).get(kind), 1)) for kind in types),
            _ok(step.get("ok")),
            _text("; ".join(_strings(step.get("broken")))),
        ]
        for step in steps
    ]
    figure = _saturation_plot(steps, saturation, types)
    return (
        f"<section><h2>Ramp: saturation curve</h2>{found}<figure>"
        f"{_svg(figure, 'Saturation curve: achieved rate and p99 latency per ramp step', 'ramp')}"
        "<figcaption>Each point is one step of the ramp. Left: the rate achieved against the "
        "rate asked for (on the dotted line, the service kept up). Right: p99 latency per "
        "request type at each step.</figcaption></figure>"
        + _table(
            [
                "Target",
                "Achieved",
                *(f"{kind} p99 ms" for kind in types),
                "Met SLOs",
                "Broken",
            ],
            rows,
        )
        + "</section>"
    )


def _totals(types: Sequence[str], totals: Mapping[str, Any]) -> str:
    kinds = [kind for kind in types if kind in totals] + sorted(set(totals) - set(types))
    if not kinds:
        return ""
    rows = []
    for kind in kinds:
        total = _mapping(totals[kind])
        rows.append(
            [
                _row_header(kind),
                _cell(_count(total.get("count"))),
                _cell(_number(total.get("rate"), 1)),
                *(_cell(_number(total.get(p), 1)) for p in ("p50", "p95", "p99", "max")),
                _cell(_count(total.get("failures"))),
                _cell(_percent(total.get("failures"), total.get("count"))),
            ]
        )
    return _table_section(
        "Totals per request type",
        [
            "Request",
            "Count",
            "Rate/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "Max ms",
            "Failures",
            "Errors",
        ],
        rows,
    )


def _scenario(scenario: Any) -> str:
    if not scenario:
        return ""
    text = json.dumps(scenario, indent=2, sort_keys=True, default=str)
    return f"<section><h2>Scenario</h2><pre>{escape(text)}</pre></section>"


# Tables


def _table_section(heading: str, headers: list[str], rows: list[list[str]]) -> str:
    return f"<section><h2>{escape(heading)}</h2>{_table(headers, rows)}</section>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # a heading sits over its column's values: left over text, right over numbers
    left = [not cell.startswith("<td>") for cell in rows[0]] if rows else []
    aligned = [
        '<th scope="col" class="text">' if i < len(left) and left[i] else '<th scope="col">'
        for i in range(len(headers))
    ]
    head = "".join(f"{th}{escape(name)}</th>" for th, name in zip(aligned, headers, strict=True))
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _row_header(value: Any) -> str:
    return f'<th scope="row">{escape(str(value if value is not None else "-"))}</th>'


def _cell(text: str) -> str:
    return f"<td>{escape(text)}</td>"


def _text(value: Any) -> str:
    return f'<td class="text">{escape(str(value) if value not in (None, "") else "-")}</td>'


def _ok(value: Any, yes: str = "yes", no: str = "no") -> str:
    if value is None:
        return _cell("-")
    # the word carries the meaning, the colour and mark only help the eye
    if value:
        return f'<td class="text ok">✓ {yes}</td>'
    return f'<td class="text broken">✗ {no}</td>'


# Plots


class _Timeline:
    """The summary's per-second rows as series per request type, ready to plot."""

    def __init__(self, summary: Mapping[str, Any]) -> None:
        self.rows = _records(summary.get("timeline"))
        self.cpu = _records(summary.get("generator_cpu"))
        self.faults = _records(summary.get("faults"))
        self.outage = _mapping(summary.get("outage"))
        totals = _mapping(summary.get("totals"))
        seen = {str(row.get("type")) for row in self.rows}
        # busiest first: the main type gets the first colour and the top of each legend
        counts = {kind: _float(_mapping(totals.get(kind)).get("count")) for kind in seen}
        for row in self.rows:
            if str(row.get("type")) not in totals:
                kind = str(row.get("type"))
                counts[kind] = counts.get(kind, 0.0) + _float(row.get("count"))
        self.types = sorted(seen, key=lambda kind: (-counts.get(kind, 0.0), kind))
        self.colours = {kind: _colour(i) for i, kind in enumerate(self.types)}
        self.styles = {
            kind: DASHES[i // len(COLOURS) % len(DASHES)] for i, kind in enumerate(self.types)
        }
        times = [_float(row.get("t")) for row in self.rows] + [_float(c.get("t")) for c in self.cpu]
        row_times = sorted({_float(row.get("t")) for row in self.rows})
        self.step = _step(row_times)
        # rows are whole seconds of the clock, so the first may start a little before the
        # run's start (t = -0.65): slots count from the first row, not from zero
        self.origin = row_times[0] if row_times else 0.0
        self.count = 1 + (round((row_times[-1] - self.origin) / self.step) if row_times else 0)
        self.start = min(0.0, self.origin)
        end = max([*times, 0.0]) + self.step
        self.end = max(end, _float(summary.get("duration_s")))

    def seconds(self) -> list[float]:
        """The start of each slot of the timeline."""
        return [self.origin + i * self.step for i in range(self.count)]

    def index(self, row: Mapping[str, Any]) -> int | None:
        i = round((_float(row.get("t")) - self.origin) / self.step)
        return i if 0 <= i < self.count else None

    def midpoints(self) -> list[float]:
        """Where each second's point is drawn: a row covers [t, t + step), not the instant t."""
        return [t + self.step / 2 for t in self.seconds()]

    def series(self, key: str) -> Series:
        """Per type, ``key`` of each second (NaN where the type had no request)."""
        out = {kind: [math.nan] * self.count for kind in self.types}
        for row in self.rows:
            i = self.index(row)
            if i is not None:
                out[str(row.get("type"))][i] = _float(row.get(key), math.nan)
        return out

    def throughput(self) -> Series:
        counts = self.series("count")
        return {
            kind: [0.0 if math.isnan(v) else v / self.step for v in values]
            for kind, values in counts.items()
        }

    def main_plot(self) -> Figure | None:
        if not self.rows:
            return None
        figure = Figure(figsize=(10, 6.4), layout="constrained")
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1.1))
        seconds = self.midpoints()
        for kind, values in self.throughput().items():
            top.plot(seconds, values, **self._line(kind))
        top.set_ylabel("requests/s")
        top.set_ylim(bottom=0)
        top.set_title("Throughput")
        p99 = self.series("p99")
        for kind, values in p99.items():
            bottom.plot(seconds, values, **self._line(kind))
        _latency_axis(bottom, [v for values in p99.values() for v in values])
        bottom.set_ylabel("p99 latency (ms)")
        bottom.set_title("p99 latency")
        bottom.set_xlabel("seconds since start")
        self._mark([top, bottom])
        handles = [Line2D([], [], **self._line(kind)) for kind in self.types]
        handles += self._mark_handles()
        _legend(figure, handles)
        return figure

    def latency_plot(self) -> Figure | None:
        if not self.rows:
            return None
        columns = min(3, len(self.types))
        rows = math.ceil(len(self.types) / columns)
        figure = Figure(figsize=(10, 1.2 + 2.3 * rows), layout="constrained")
        grid = figure.subplots(rows, columns, sharex=True, squeeze=False)
        seconds = self.midpoints()
        series = {p: self.series(p) for p in ("p50", "p95", "p99")}
        looks: dict[str, tuple[LineStyleType, float]] = {
            "p50": (":", 1.2),
            "p95": ("--", 1.3),
            "p99": ("-", 1.8),
        }
        axes = [ax for line in grid for ax in line]
        for ax, kind in zip(axes, self.types, strict=False):
            values: list[float] = []
            for p, (style, width) in looks.items():
                ax.plot(
                    seconds,
                    series[p][kind],
                    color=self.colours[kind],
                    linestyle=style,
                    linewidth=width,
                )
                values += series[p][kind]
            _latency_axis(ax, values)
            ax.set_title(kind)
            ax.set_ylabel("ms")
        for ax in axes[len(self.types) :]:
            ax.set_visible(False)
        for ax in grid[-1]:
            ax.set_xlabel("seconds since start")
        self._mark(axes[: len(self.types)])
        handles: list[Any] = [
            Line2D([], [], color="#333333", linestyle=style, linewidth=width, label=p)
            for p, (style, width) in looks.items()
        ]
        _legend(figure, handles + self._mark_handles())
        return figure

    def failure_counts(self) -> list[tuple[str, str, float]]:
        """(request type, reason, failed requests) over the run, the most frequent first."""
        counts: dict[tuple[str, str], float] = {}
        for row in self.rows:
            for reason, count in _mapping(row.get("failures")).items():
                key = (str(row.get("type")), str(reason))
                counts[key] = counts.get(key, 0.0) + _float(count)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [(kind, reason, n) for (kind, reason), n in ranked if n]

    def error_plot(self) -> Figure | None:
        slots = self.seconds()
        by_reason: dict[str, list[float]] = {}
        for row in self.rows:
            i = self.index(row)
            for reason, count in _mapping(row.get("failures")).items():
                if i is None or not _float(count):
                    continue
                key = f"{row.get('type')}: {reason}"
                by_reason.setdefault(key, [0.0] * len(slots))[i] += _float(count) / self.step
        if not by_reason:
            return None
        ranked = sorted(by_reason, key=lambda key: (-sum(by_reason[key]), key))
        if len(ranked) > MAX_REASONS:
            other = [
                sum(v) for v in zip(*(by_reason[k] for k in ranked[MAX_REASONS - 1 :]), strict=True)
            ]
            ranked = ranked[: MAX_REASONS - 1]
            by_reason = {key: by_reason[key] for key in ranked} | {"other": other}
            ranked.append("other")
        figure = Figure(figsize=(10, 3.6), layout="constrained")
        ax = figure.subplots()
        # step="post" draws each second up to the next: the last one needs its right edge
        ax.stackplot(
            [*slots, slots[-1] + self.step],
            [[*by_reason[key], by_reason[key][-1]] for key in ranked],
            labels=ranked,
            colors=[_colour(i) for i in range(len(ranked))],
            step="post",
            alpha=0.85,
        )
        ax.set_ylabel("failed requests/s")
        ax.set_xlabel("seconds since start")
        ax.set_ylim(bottom=0)
        self._marked_legend(ax)
        return figure

    def _marked_legend(self, ax: Axes) -> None:
        """Faults and the outage marked on ``ax``, and a legend beside it naming them."""
        self._mark([ax])
        ax.legend(
            handles=[*ax.get_legend_handles_labels()[0], *self._mark_handles()],
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            fontsize=9,
        )

    def cpu_plot(self) -> Figure | None:
        if not self.cpu:
            return None
        workers: dict[str, list[tuple[float, float]]] = {}
        for sample in self.cpu:
            workers.setdefault(str(sample.get("worker")), []).append(
                (_float(sample.get("t")), _float(sample.get("cpu"), math.nan))
            )
        figure = Figure(figsize=(10, 3.2), layout="constrained")
        ax = figure.subplots()
        peak = 0.0
        for i, (worker, samples) in enumerate(sorted(workers.items())):
            samples.sort()
            ax.plot(
                [t for t, _ in samples],
                [c for _, c in samples],
                color=_colour(i),
                label=worker,
                linewidth=1.4,
            )
            peak = max([peak, *(c for _, c in samples if not math.isnan(c))])
        ax.axhline(
            CPU_LIMIT, color=OUTAGE, linestyle="--", linewidth=1.2, label=f"{CPU_LIMIT:.0f}% limit"
        )
        ax.set_ylim(0, max(100.0, peak * 1.05))
        ax.set_xlim(self.start, self.end)
        ax.set_ylabel("% of one core")
        ax.set_xlabel("seconds since start")
        self._marked_legend(ax)
        return figure

    def _line(self, kind: str) -> dict[str, Any]:
        return {
            "color": self.colours[kind],
            "linestyle": self.styles[kind],
            "linewidth": 1.5,
            "label": kind,
        }

    def _mark(self, axes: Sequence[Axes]) -> None:
        """Faults as vertical lines (labelled on the first axes), the outage shaded."""
        start, end = (
            _float(self.outage.get("start"), math.nan),
            _float(self.outage.get("end"), math.nan),
        )
        for n, ax in enumerate(axes):
            ax.set_xlim(self.start, self.end)
            if not math.isnan(start) and not math.isnan(end):
                ax.axvspan(start, end, color=OUTAGE, alpha=0.13, linewidth=0)
            for fault in self.faults:
                at = _float(fault.get("at"), math.nan)
                if math.isnan(at):
                    continue
                ax.axvline(at, color=FAULT, linestyle=FAULT_LINE, linewidth=1.2)
                if n == 0:
                    ax.annotate(
                        str(fault.get("action") or "fault"),
                        xy=(at, 1.0),
                        xycoords=("data", "axes fraction"),
                        xytext=(3, -2),
                        textcoords="offset points",
                        va="top",
                        fontsize=9,
                        color=FAULT,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                    )

    def _mark_handles(self) -> list[Any]:
        handles: list[Any] = []
        if self.faults:
            handles.append(Line2D([], [], color=FAULT, linestyle=FAULT_LINE, label="fault"))
        if self.outage:
            handles.append(Patch(color=OUTAGE, alpha=0.13, label="outage"))
        return handles


def _saturation_plot(
    steps: list[Mapping[str, Any]], saturation: Mapping[str, Any], types: list[str]
) -> Figure:
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    rates, latency = figure.subplots(1, 2)
    targets = [_float(step.get("target_rate")) for step in steps]
    achieved = [_float(step.get("achieved_rate"), math.nan) for step in steps]
    top = max([*targets, *(a for a in achieved if not math.isnan(a)), 1.0])
    rates.plot([0, top], [0, top], color="#999999", linestyle=":", linewidth=1, label="target")
    rates.plot(targets, achieved, color=COLOURS[0], linewidth=1.5, zorder=2)
    ok = [bool(step.get("ok")) for step in steps]
    rates.scatter(
        [t for t, o in zip(targets, ok, strict=True) if o],
        [a for a, o in zip(achieved, ok, strict=True) if o],
        color="#1b6e35",
        marker="o",
        zorder=3,
        label="met SLOs",
    )
    rates.scatter(
        [t for t, o in zip(targets, ok, strict=True) if not o],
        [a for a, o in zip(achieved, ok, strict=True) if not o],
        color=OUTAGE,
        marker="X",
        s=60,
        zorder=3,
        label="broke an SLO",
    )
    if saturation:
        at = _float(saturation.get("target_rate"))
        got = _float(saturation.get("achieved_rate"))
        rates.scatter(
            [at],
            [got],
            s=220,
            facecolors="none",
            edgecolors="#000000",
            linewidths=1.8,
            zorder=4,
            label="saturation",
        )
        rates.annotate(
            f"saturation\n{got:,.0f}/s",
            xy=(at, got),
            xytext=(-12, 12),
            textcoords="offset points",
            ha="right",
            fontsize=9,
            fontweight="bold",
        )
    rates.set_xlim(0, top * 1.05)
    rates.set_ylim(0, top * 1.05)
    rates.set_xlabel("target rate (/s)")
    rates.set_ylabel("achieved rate (/s)")
    rates.set_title("Achieved rate")
    rates.legend(loc="upper left", fontsize=9)
    values: list[float] = []
    for i, kind in enumerate(types):
        p99 = [_float(_mapping(step.get("p99")).get(kind), math.nan) for step in steps]
        latency.plot(targets, p99, color=_colour(i), marker="o", linewidth=1.5, label=kind)
        values += p99
    if saturation:
        latency.axvline(
            _float(saturation.get("target_rate")),
            color="#000000",
            linestyle=":",
            linewidth=1.2,
            label="saturation",
        )
    _latency_axis(latency, values)
    latency.set_xlabel("target rate (/s)")
    latency.set_ylabel("p99 latency (ms)")
    latency.set_title("p99 latency per step")
    if latency.get_legend_handles_labels()[0]:
        latency.legend(loc="upper left", fontsize=9)
    return figure


def _legend(figure: Figure, handles: list[Any], columns: int = 6) -> None:
    """A legend above the plots, read left to right: busiest type first."""
    ncols = min(len(handles), columns)
    # matplotlib fills a legend column by column; hand it each column's entries in turn
    ordered = [handles[i] for j in range(ncols) for i in range(j, len(handles), ncols)]
    figure.legend(handles=ordered, loc="outside upper center", ncols=ncols, fontsize=10)


def _latency_axis(ax: Axes, values: Iterable[float]) -> None:
    """A log scale when latencies span more than 20x (a photo beside a claim), else linear;
    ticks read as plain milliseconds either way."""
    positive = [v for v in values if not math.isnan(v) and v > 0]
    if positive and max(positive) / min(positive) > 20:
        decades = math.log10(max(positive) / min(positive))
        # about three labels a decade while they fit, fewer when the axis spans more
        subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4 else (1.0,)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _svg(figure: Figure, title: str, key: str, inline: bool = True) -> str:
    """``figure`` as an ``<svg>`` with a title, its ids prefixed with ``key`` so several
    plots can share one page; ``inline`` drops the fixed size so it fits the page's width."""
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'id="([^"]+)"', rf'id="{key}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{key}-\1"', text)
    if inline:
        text = re.sub(r'\s(width|height)="[^"]*pt"', "", text, count=2)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    label = escape(title, quote=True)
    return text.replace(
        "<svg ",
        f'<svg role="img" aria-labelledby="{key}-title" ',
        1,
    ).replace(">", f'>\n<title id="{key}-title">{label}</title>', 1)


# Reading a summary that may be partial


def _records(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _float(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _step(times: list[float]) -> float:
    """The timeline's bucket width: the smallest gap between two rows (one second)."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return min(gaps) if gaps else 1.0


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _number(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _count(value: Any) -> str:
    return _number(value, 0)


def _measure(value: Any) -> str:
    """A limit or a measure as written: 50, 61.2, 0.25 (no trailing zeros)."""
    text = _number(value, 2)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _percent(part: Any, whole: Any) -> str:
    if not _float(whole):
        return "-"
    return f"{100 * _float(part) / _float(whole):.2f}%"
