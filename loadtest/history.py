"""The history of runs: one JSON line per run, and ``loadtest compare A B`` over two of them.

A line is the run's summary without its per-second series (``timeline``, ``generator_cpu``):
an hour's soak with four workers is some 50,000 rows, and comparing runs needs only the
totals, the saturation point and the verdict. A run is named by its ``run_id``, by ``-1``
(the last run), ``-2`` (the one before) and so on, or by the path of a ``summary.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadtest.errors import LoadTestError

SERIES = ("timeline", "generator_cpu")
WORSE = 0.10  # a change of more than 10% is marked: run-to-run noise on one machine is ~5%


class HistoryError(LoadTestError):
    """A run is not in the history, or the history or a summary cannot be read."""


def append(summary: Mapping[str, Any], history: Path) -> None:
    """Add ``summary`` (without its per-second series) as the last line of ``history``."""
    kept = {key: value for key, value in summary.items() if key not in SERIES}
    line = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    history.parent.mkdir(parents=True, exist_ok=True)
    # one write of one line: a run killed mid-way leaves at worst a last line without its
    # newline, which ``_runs`` reports by its number
    with history.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def load(history: Path, ref: str) -> dict[str, Any]:
    """The run ``ref`` names: a run_id (or a unique start of one), ``-N``, or a summary.json."""
    path = Path(ref)
    if ref.endswith(".json") or path.is_dir() or path.is_file():
        summary = path / "summary.json" if path.is_dir() else path
        return _read_summary(summary)
    runs = _runs(history)
    if not runs:
        raise HistoryError(f"{history}: no run recorded yet")
    if ref.startswith("-") and ref[1:].isdigit():
        back = int(ref[1:])
        if not 1 <= back <= len(runs):
            raise HistoryError(
                f"{history}: {ref} asks for run {back} from the end; it holds {len(runs)}"
            )
        return runs[-back]
    exact = [run for run in runs if run.get("run_id") == ref]
    found = exact or [run for run in runs if str(run.get("run_id", "")).startswith(ref)]
    ids = sorted({str(run.get("run_id")) for run in found})
    if len(ids) > 1:
        raise HistoryError(f"{history}: {ref!r} names {len(ids)} runs: {', '.join(ids[:5])}")
    if not found:
        last = runs[-1].get("run_id")
        raise HistoryError(f"{history}: no run {ref!r} among {len(runs)} (the last is {last})")
    return found[-1]


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """A plain-text table of run A against run B, per request type, for a terminal."""
    lines = [_heading("A", a), _heading("B", b), ""]
    rows: list[tuple[str, str, str, str, str, str]] = [("type", "metric", "A", "B", "B/A", "")]
    totals_a, totals_b = _mapping(a.get("totals")), _mapping(b.get("totals"))
    kinds = [*totals_a, *(kind for kind in totals_b if kind not in totals_a)]
    for kind in kinds:
        ta, tb = _mapping(totals_a.get(kind)), _mapping(totals_b.get(kind))
        metrics: list[tuple[str, float | None, float | None, bool]] = [
            ("rate/s", _get(ta, "rate"), _get(tb, "rate"), False),
            ("p50 ms", _get(ta, "p50"), _get(tb, "p50"), True),
            ("p95 ms", _get(ta, "p95"), _get(tb, "p95"), True),
            ("p99 ms", _get(ta, "p99"), _get(tb, "p99"), True),
            ("errors %", _error_rate(ta), _error_rate(tb), True),
        ]
        for i, (name, va, vb, higher_is_worse) in enumerate(metrics):
            rows.append(_row(kind if i == 0 else "", name, va, vb, higher_is_worse))
    sat_a, sat_b = _mapping(a.get("saturation")), _mapping(b.get("saturation"))
    if sat_a and sat_b:
        rows.append(
            _row(
                "saturation",
                "rate/s",
                _get(sat_a, "achieved_rate"),
                _get(sat_b, "achieved_rate"),
                False,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i < 2 or i == 5 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        if n > 1 and row[0]:
            lines.append("")  # a blank line between request types guides the eye along a row
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths[:5]))
    return "\n".join(lines)


def _runs(history: Path) -> list[dict[str, Any]]:
    try:
        text = history.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{history}: no history yet (a run appends to it)") from None
    except OSError as exc:
        raise HistoryError(f"{history}: cannot read it ({exc.strerror})") from exc
    runs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{history}:{number}: not a JSON run summary ({exc.msg})") from exc
        if not isinstance(run, dict):
            raise HistoryError(f"{history}:{number}: not a JSON run summary (not an object)")
        runs.append(run)
    return runs


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such summary") from None
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read it ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path}: not a JSON run summary ({exc})") from exc
    if not isinstance(summary, dict):
        raise HistoryError(f"{path}: not a JSON run summary (not an object)")
    return summary


def _heading(name: str, run: Mapping[str, Any]) -> str:
    verdict = str(run.get("verdict") or "?").upper()
    reasons = [str(reason) for reason in run.get("reasons") or []]
    why = f" ({'; '.join(reasons)})" if reasons else ""
    facts = [
        str(run.get("run_id") or "?"),
        str(run.get("shape") or "?"),
        f"{run.get('workers', '?')} workers",
        f"{_get(run, 'duration_s') or 0:.1f} s",
    ]
    return f"{name}: {'  '.join(facts)}  {verdict}{why}"


def _row(
    kind: str, name: str, a: float | None, b: float | None, higher_is_worse: bool
) -> tuple[str, str, str, str, str, str]:
    ratio = "-" if a is None or b is None or a == 0 else f"{b / a:.2f}x"
    return (kind, name, _fmt(a), _fmt(b), ratio, "WORSE" if _worse(a, b, higher_is_worse) else "")


def _worse(a: float | None, b: float | None, higher_is_worse: bool) -> bool:
    if a is None or b is None:
        return False
    if higher_is_worse:
        return b > a * (1 + WORSE) if a > 0 else b > 0
    return b < a * (1 - WORSE)


def _error_rate(total: Mapping[str, Any]) -> float | None:
    count, failures = _get(total, "count"), _get(total, "failures")
    if count is None or failures is None or count == 0:
        return None
    return 100 * failures / count


def _get(mapping: Mapping[str, Any], key: str) -> float | None:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.1f}"
