"""The run report (one self-contained HTML file) and the history of runs with its compare.

Summaries are built in memory (tests/support/loadtest_summary.py) in the shape
``loadtest run`` writes; nothing here starts a process or a browser.
"""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadtest import history, report
from loadtest.errors import LoadTestError
from tests.support import loadtest_summary

SVG = re.compile(r"<svg\b.*?</svg>", re.S)
TIME_PLOTS = ("main", "latency", "errors", "cpu")


@pytest.fixture(scope="module")
def realistic() -> dict[str, Any]:
    return loadtest_summary.realistic()


@pytest.fixture(scope="module")
def page(realistic: dict[str, Any]) -> str:
    return report.render(realistic)


def plots(page: str) -> dict[str, str]:
    """Each inline plot by its key (the prefix of its title's id)."""
    found = {}
    for svg in SVG.findall(page):
        key = re.search(r'aria-labelledby="([a-z]+)-title"', svg)
        assert key is not None, "a plot without a title"
        found[key.group(1)] = svg
    return found


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (the report this test just rendered)


def texts(svg: str) -> list[str]:
    """The words drawn in a plot (text stays text: svg.fonttype is none)."""
    root = parse(svg)
    return ["".join(node.itertext()) for node in root.iter("{http://www.w3.org/2000/svg}text")]


# The HTML file


def test_the_report_is_one_file_that_needs_nothing_else(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in page
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "@import" not in page
    assert "<link" not in page
    assert "<img" not in page
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs  # the plots reuse their markers by reference...
    assert all(ref.startswith("#") for ref in hrefs)  # ...inside the page


def test_the_verdict_is_a_banner_with_its_reasons(page: str, realistic: dict[str, Any]) -> None:
    banner = re.search(r'<section class="verdict verdict-fail".*?</section>', page, re.S)
    assert banner is not None
    assert "<p>FAIL</p>" in banner.group(0)
    for reason in realistic["reasons"]:
        assert f"<li>{reason.replace('>', '&gt;')}</li>" in banner.group(0)
    assert "<title>Load test 20261204T031500-ab12: FAIL</title>" in page


def test_the_run_facts_are_shown(page: str) -> None:
    for fact in ("http://127.0.0.1:8000", "ramp", "60.0 s", "37,412 of 100,000 prepared"):
        assert f"<dd>{fact}</dd>" in page
    assert "<dt>Workers</dt><dd>2</dd>" in page


def test_each_plot_is_an_inline_svg_with_a_title(page: str) -> None:
    found = plots(page)
    assert set(found) == {*TIME_PLOTS, "ramp"}
    for key, svg in found.items():
        root = parse(svg)  # well-formed after its ids were prefixed
        assert root.get("role") == "img"
        title = root.find("{http://www.w3.org/2000/svg}title")
        assert title is not None
        assert title.text
        assert title.get("id") == f"{key}-title"
        assert root.get("width") is None  # scales with the page instead of a fixed size
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two plots share an id"


def test_the_main_plot_shows_throughput_and_p99_of_every_type(
    page: str, realistic: dict[str, Any]
) -> None:
    words = texts(plots(page)["main"])
    assert "Throughput" in words
    assert "p99 latency" in words
    assert "seconds since start" in words
    for kind in realistic["totals"]:
        assert kind in words


def test_the_totals_table_holds_every_type_and_value(page: str, realistic: dict[str, Any]) -> None:
    table = page[page.index("<h2>Totals per request type</h2>") :]
    for kind, total in realistic["totals"].items():
        row = re.search(rf'<th scope="row">{kind}</th>(.*?)</tr>', table)
        assert row is not None, kind
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert cells[:3] == [f"{total['count']:,}", f"{total['rate']:,.1f}", f"{total['p50']:.1f}"]
        assert cells[4] == f"{total['p99']:,.1f}"
        assert cells[6] == f"{total['failures']:,}"
    assert '<th scope="col" class="text">Request</th>' in table


def test_the_errors_table_counts_each_reason(page: str, realistic: dict[str, Any]) -> None:
    errors = page[page.index("<h2>Errors</h2>") : page.index("<h2>Load generator CPU</h2>")]
    expected: dict[tuple[str, str], int] = {}
    for line in realistic["timeline"]:
        for reason, n in line["failures"].items():
            expected[line["type"], reason] = expected.get((line["type"], reason), 0) + n
    for (kind, reason), n in expected.items():
        assert f'<th scope="row">{kind}</th><td class="text">{reason}</td><td>{n:,}</td>' in errors


def test_the_slo_and_invariant_tables_say_what_held(page: str) -> None:
    slos = page[page.index("<h2>SLOs</h2>") : page.index("<h2>Invariants</h2>")]
    assert re.search(
        r"claim p99 &lt;= 50 ms</th><td>50</td><td>61.2</td><td class=\"text broken\">✗ no", slos
    )
    assert re.search(r'no 5xx</th><td>0</td><td>0</td><td class="text ok">✓ yes', slos)
    invariants = page[page.index("<h2>Invariants</h2>") :]
    assert re.search(r'no unit passed twice</th><td class="text ok">✓ yes</td>', invariants)
    assert "36,981 codes" in invariants


def test_faults_are_listed_and_marked_on_every_time_plot(page: str) -> None:
    section = page[page.index("<h2>Faults and outage</h2>") :]
    assert "an outage of <strong>2.5 s</strong>, 53 failed claims" in section
    assert '<td class="text">kill-api</td>' in section
    assert "killed pid 1234" in section
    found = plots(page)
    for key in TIME_PLOTS:
        words = texts(found[key])
        assert "kill-api" in words, key  # the fault's label
        assert "outage" in words, key  # the shaded window's legend


def test_a_run_without_faults_marks_none(realistic: dict[str, Any]) -> None:
    calm = {**realistic, "faults": [], "outage": None}
    page = report.render(calm)
    assert "No fault was injected." in page
    for svg in plots(page).values():
        words = texts(svg)
        assert "kill-api" not in words
        assert "outage" not in words


def test_the_ramp_section_shows_steps_and_the_saturation_point(page: str) -> None:
    ramp = page[page.index("<h2>Ramp: saturation curve</h2>") :]
    assert "Saturation point: <strong>790.2/s</strong>" in ramp
    assert re.search(r'<th scope="row">1,000/s</th><td>865.2/s</td>', ramp)
    assert "claim p99 76.0 ms &gt; 50 ms" in ramp
    words = texts(plots(page)["ramp"])
    assert "saturation" in words
    assert "target rate (/s)" in words


def test_the_ramp_section_appears_only_with_steps(realistic: dict[str, Any]) -> None:
    steady = {**realistic, "shape": "steady", "steps": [], "saturation": None}
    page = report.render(steady)
    assert "Ramp" not in page
    assert "ramp" not in plots(page)


def test_a_minimal_run_renders_with_what_it_has() -> None:
    page = report.render(loadtest_summary.minimal())
    assert "<p>PASS</p>" in page
    assert "No request failed." in page
    assert "The load generator&#x27;s CPU was not recorded." in page
    assert "The scenario sets no SLO." in page
    assert "No invariant was checked." in page
    assert set(plots(page)) == {"main", "latency"}


def test_rows_of_clock_seconds_that_start_before_the_run_all_count() -> None:
    """The run's rows are whole seconds of the clock: t is -0.65, 0.35, 1.35... when the
    run started 0.65 s into a second. None is dropped, the first included."""
    summary = loadtest_summary.minimal()
    summary["timeline"] = [
        {"t": t - 0.653, "type": "claim", "count": 30, "p99": 11.0, "failures": {}}
        for t in range(3)
    ]
    summary["timeline"][0]["failures"] = {"HTTP 503": 4}
    page = report.render(summary)
    assert "No request failed." not in page
    assert "errors" in plots(page)


def test_an_invalid_run_says_so_and_why(realistic: dict[str, Any]) -> None:
    invalid = {
        **realistic,
        "verdict": "invalid",
        "reasons": ["load generator CPU 97% > 90% on w2: the limit found is the generator's"],
    }
    page = report.render(invalid)
    assert '<section class="verdict verdict-invalid"' in page
    assert "<p>INVALID</p>" in page
    assert "the limit found is the generator&#x27;s" in page


@pytest.mark.parametrize(
    "summary",
    [
        {},
        {"verdict": "pass", "timeline": [], "totals": {}, "steps": [], "outage": None},
        {"timeline": [{"t": 0, "type": "claim", "count": 0}], "generator_cpu": [{"t": 0}]},
        {"steps": [{"target_rate": 100}], "saturation": None, "faults": [{"action": "x"}]},
    ],
)
def test_a_partial_summary_still_renders(summary: dict[str, Any]) -> None:
    page = report.render(summary)
    assert page.rstrip().endswith("</html>")
    for svg in SVG.findall(page):
        parse(svg)


def test_text_from_the_summary_is_escaped(realistic: dict[str, Any]) -> None:
    hostile = {**realistic, "reasons": ["<script>alert(1)</script>"], "run_id": "<b>x</b>"}
    page = report.render(hostile)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_same_summary_gives_the_same_bytes(realistic: dict[str, Any], page: str) -> None:
    assert report.render(copy.deepcopy(realistic)) == page


def test_write_makes_the_report_and_the_main_plot_for_the_readme(
    tmp_path: Path, realistic: dict[str, Any], page: str
) -> None:
    path = report.write(realistic, tmp_path / "run")
    assert path == tmp_path / "run" / "report.html"
    assert path.read_text(encoding="utf-8") == page
    main = parse((tmp_path / "run" / "report-main.svg").read_text(encoding="utf-8"))
    assert main.get("width")  # a file on its own keeps its size
    assert main.get("{http://www.w3.org/2000/svg}title") is None
    assert main.find("{http://www.w3.org/2000/svg}title") is not None


# The history and compare


def test_append_keeps_one_small_line_per_run(tmp_path: Path, realistic: dict[str, Any]) -> None:
    path = tmp_path / "history.jsonl"
    history.append(realistic, path)
    history.append(loadtest_summary.minimal(), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert "timeline" not in first
    assert "generator_cpu" not in first
    assert first["totals"] == realistic["totals"]
    assert len(lines[0]) < len(json.dumps(realistic)) / 5


def test_load_finds_runs_by_id_prefix_position_and_path(
    tmp_path: Path, realistic: dict[str, Any]
) -> None:
    path = tmp_path / "history.jsonl"
    minimal = loadtest_summary.minimal()
    history.append(realistic, path)
    history.append(minimal, path)
    kept = {k: v for k, v in realistic.items() if k not in ("timeline", "generator_cpu")}
    assert history.load(path, "20261204T031500-ab12") == kept
    assert history.load(path, "20261204T0315") == kept
    assert history.load(path, "-2") == kept
    assert history.load(path, "-1") == {
        k: v for k, v in minimal.items() if k not in ("timeline", "generator_cpu")
    }
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(realistic), encoding="utf-8")
    assert history.load(path, str(run / "summary.json")) == realistic
    assert history.load(path, str(run)) == realistic


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("-3", "asks for run 3 from the end; it holds 2"),
        ("2026", "names 2 runs"),
        ("nope", "no run 'nope' among 2 (the last is 20261204T040000-cd34)"),
        ("missing/summary.json", "no such summary"),
    ],
)
def test_load_names_what_it_could_not_find(
    tmp_path: Path, realistic: dict[str, Any], ref: str, message: str
) -> None:
    path = tmp_path / "history.jsonl"
    history.append(realistic, path)
    history.append(loadtest_summary.minimal(), path)
    with pytest.raises(history.HistoryError, match=re.escape(message)):
        history.load(path, str(tmp_path / ref) if ref.endswith(".json") else ref)


def test_a_broken_history_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with pytest.raises(LoadTestError, match="no history yet"):
        history.load(path, "-1")
    history.append(loadtest_summary.minimal(), path)
    with path.open("a", encoding="utf-8") as out:
        out.write('{"run_id": "cut sho')
    with pytest.raises(history.HistoryError, match=r"history.jsonl:2: not a JSON run summary"):
        history.load(path, "-1")


def row(table: str, metric: str, after: str) -> str:
    """The line of ``metric`` in the block of request type ``after``."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after + " "))
    return next(line for line in lines[start:] if f" {metric} " in f" {line} ")


def test_compare_marks_a_p99_twice_as_slow_as_worse(realistic: dict[str, Any]) -> None:
    slower = copy.deepcopy(realistic)
    slower["run_id"] = "20261205T031500-ef56"
    slower["totals"]["claim"]["p99"] = realistic["totals"]["claim"]["p99"] * 2
    table = history.compare(realistic, slower)
    p99 = row(table, "p99 ms", "claim")
    assert "2.00x" in p99
    assert p99.endswith("WORSE")
    assert not row(table, "p50 ms", "claim").endswith("WORSE")
    assert not row(table, "rate/s", "claim").endswith("WORSE")
    assert "1.00x" in row(table, "rate/s", "claim")
    assert "WORSE" not in row(table, "p99 ms", "tote")


def test_compare_marks_lower_rates_and_new_errors_as_worse(realistic: dict[str, Any]) -> None:
    worse = copy.deepcopy(realistic)
    worse["totals"]["tote"]["rate"] = realistic["totals"]["tote"]["rate"] * 0.5
    worse["totals"]["forged"]["failures"] = 10
    worse["saturation"] = {"target_rate": 600, "achieved_rate": 590.0}
    table = history.compare(realistic, worse)
    assert row(table, "rate/s", "tote").endswith("WORSE")
    assert row(table, "errors %", "forged").endswith("WORSE")
    saturation = row(table, "rate/s", "saturation")
    assert "790.2" in saturation
    assert "590.0" in saturation
    assert saturation.endswith("WORSE")
    # a better run is not marked
    assert "WORSE" not in history.compare(worse, worse)


def test_compare_shows_both_verdicts_and_types_only_one_run_had(
    realistic: dict[str, Any],
) -> None:
    minimal = loadtest_summary.minimal()
    table = history.compare(minimal, realistic)
    lines = table.splitlines()
    assert lines[0].startswith("A: 20261204T040000-cd34  steady  1 workers  3.0 s  PASS")
    assert lines[1].startswith("B: 20261204T031500-ab12  ramp  2 workers  60.0 s  FAIL (")
    assert "claim p99 61.2 ms > 50 ms at 1000/s" in lines[1]
    tote = row(table, "rate/s", "tote")
    assert tote.split()[2:4] == ["-", "20.70"]
    assert "saturation" not in table  # only B found one


def test_compare_reads_runs_back_from_the_history(
    tmp_path: Path, realistic: dict[str, Any]
) -> None:
    path = tmp_path / "history.jsonl"
    history.append(realistic, path)
    slower = copy.deepcopy(realistic)
    slower["run_id"] = "20261205T031500-ef56"
    slower["totals"]["claim"]["p99"] *= 2
    history.append(slower, path)
    table = history.compare(history.load(path, "-2"), history.load(path, "-1"))
    assert row(table, "p99 ms", "claim").endswith("WORSE")
