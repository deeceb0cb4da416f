"""`stackprobe grow` without Docker: sizes, the bisection, the bytes-per-row fit, the verdict, the seeder's
environment, grow.json against its schema, the page and the console table, and the read-heavy persona's switch."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import psutil
import pytest
from rich.console import Console

from stackprobe import cli
from stackprobe.grow import (
    BreakSearch,
    GrowAborted,
    GrowPoint,
    Phase,
    Seeder,
    SeedError,
    find_break,
    fit_bytes_per_row,
    format_rows,
    grow_document,
    grow_verdict,
    parse_rows,
    parse_tolerance,
    run_sizes,
    write_grow_json,
)
from stackprobe.load import check_locustfile
from stackprobe.report.grow_page import grow_html_page, render_grow_console
from stackprobe.report.model import Report
from stackprobe.spec import RunSpec, UsageError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "stackprobe" / "report" / "grow.schema.json").read_text())
MIB = 1024 * 1024


REASONS = {"pass": [], "fail": ["OOM kill at t=3.0 s"], "inconclusive": ["inconclusive: the cgroup was not read"]}


def _point(rows: int, verdict: str = "pass", phase: Phase = "size", peak: int | None = 60 * MIB, **extra) -> GrowPoint:
    label = f"rows-{rows}"
    fields = {
        "rows": rows,
        "label": label,
        "phase": phase,
        "verdict": verdict,
        "reasons": REASONS[verdict],
        "peak_bytes": peak,
        "limit_bytes": 128 * MIB,
        "peak_ratio": None if peak is None else peak / (128 * MIB),
        "p95_ms": 12.0,
        "rps": 300.0,
        "requests": 9000,
        "failures": 0,
        "error_ratio": 0.0,
        "oom_kills": 0,
        "restarts": 0,
        "report": f"runs/{label}/report.json",
        "page": f"runs/{label}/report.html",
    }
    return GrowPoint(**{**fields, **extra})


def _breaks_at(threshold: int) -> Callable[[int, Phase], GrowPoint]:
    """A run of a service whose limit breaks at `threshold` rows and more."""

    def run(rows: int, phase: Phase) -> GrowPoint:
        return _point(rows, "fail" if rows >= threshold else "pass", phase)

    return run


# --rows


@pytest.mark.parametrize(
    ("text", "sizes"),
    [
        ("1k,10k,100k,1m", (1_000, 10_000, 100_000, 1_000_000)),
        ("1M, 2500 ,1.5k", (1_500, 2_500, 1_000_000)),
        ("10_000", (10_000,)),
        ("0.25m", (250_000,)),
        ("1", (1,)),
    ],
)
def test_rows_are_whole_counts_in_decimal_units_in_ascending_order(text: str, sizes: tuple[int, ...]) -> None:
    assert parse_rows(text) == sizes


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a row count"),
        ("1k,", "not a row count"),
        ("10x", "not a row count"),
        ("-1k", "not a row count"),
        ("1.2345k", "not a whole number"),
        ("0", "at least one row"),
        ("1k,1000", "given twice"),
        ("1kb", "not a row count"),
    ],
)
def test_rows_that_are_not_whole_positive_distinct_counts_are_refused(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_rows(text)


@pytest.mark.parametrize(
    ("rows", "label"),
    [(1_000, "1k"), (10_000, "10k"), (1_000_000, "1m"), (2_500, "2,500"), (31_623, "31,623"), (7, "7")],
)
def test_row_counts_are_labelled_as_rows_spells_them(rows: int, label: str) -> None:
    assert format_rows(rows) == label


@pytest.mark.parametrize(("text", "ratio"), [("10%", 0.1), ("2.5%", 0.025), ("0.2", 0.2)])
def test_break_tolerance_is_a_percentage_or_a_ratio(text: str, ratio: float) -> None:
    assert parse_tolerance(text) == pytest.approx(ratio)


@pytest.mark.parametrize("text", ["0", "100%", "1.5", "ten"])
def test_break_tolerance_outside_zero_to_one_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_tolerance(text)


# The bisection


def test_bisection_closes_on_the_break_within_the_tolerance() -> None:
    run = _breaks_at(37_000)
    sizes = [run(rows, "size") for rows in (1_000, 10_000, 100_000, 1_000_000)]
    tried: list[int] = []

    def try_rows(rows: int) -> GrowPoint:
        tried.append(rows)
        return run(rows, "bisection")

    search = find_break(sizes, try_rows, tolerance=0.1, max_runs=10)
    assert search.last_held_rows is not None
    assert search.first_broke_rows is not None
    assert search.last_held_rows < 37_000 <= search.first_broke_rows
    assert search.first_broke_rows <= search.last_held_rows * 1.1
    assert search.runs == len(tried) == 5  # 10x apart, halved in log: 3.2, 1.8, 1.33, 1.15, 1.07
    assert all(10_000 < rows < 100_000 for rows in tried)
    assert search.stop_reason == "the bracket is within 10%"


def test_bisection_goes_down_to_one_row_with_a_tight_tolerance() -> None:
    run = _breaks_at(1_234)
    sizes = [run(rows, "size") for rows in (1_000, 2_000)]
    search = find_break(sizes, lambda rows: run(rows, "bisection"), tolerance=1e-9, max_runs=50)
    assert (search.last_held_rows, search.first_broke_rows) == (1_233, 1_234)
    assert search.stop_reason == "the bracket is one row wide"


def test_bisection_stops_when_its_runs_are_spent_with_the_bracket_so_far() -> None:
    run = _breaks_at(37_000)
    sizes = [run(rows, "size") for rows in (1_000, 1_000_000)]
    search = find_break(sizes, lambda rows: run(rows, "bisection"), tolerance=0.01, max_runs=2)
    assert search.runs == 2
    assert search.stop_reason == "the bisection's 2 runs are spent"
    assert search.last_held_rows is not None
    assert search.first_broke_rows is not None
    assert search.last_held_rows < 37_000 <= search.first_broke_rows


def test_bisection_stops_at_an_inconclusive_run_keeping_the_bracket_it_had() -> None:
    sizes = [_point(1_000), _point(100_000, "fail")]
    search = find_break(sizes, lambda rows: _point(rows, "inconclusive", "bisection"), tolerance=0.1, max_runs=6)
    assert (search.last_held_rows, search.first_broke_rows, search.runs) == (1_000, 100_000, 1)
    assert search.stop_reason == "the run at 10k rows was inconclusive, so its side is not known"


def test_bisection_starts_from_the_most_rows_that_held_below_the_first_break() -> None:
    # 100k held again after 10k broke: the bracket is the one below the first break.
    sizes = [_point(1_000), _point(3_000), _point(10_000, "fail"), _point(100_000)]
    search = find_break(sizes, lambda rows: _point(rows, "pass", "bisection"), tolerance=0.5, max_runs=6)
    assert search.last_held_rows is not None
    assert search.first_broke_rows == 10_000
    assert 3_000 < search.last_held_rows < 10_000


def test_no_bisection_when_nothing_broke_or_nothing_held_below_the_break() -> None:
    def never(rows: int) -> GrowPoint:
        raise AssertionError("no run expected")

    held = find_break([_point(1_000), _point(10_000)], never)
    assert held == BreakSearch(
        last_held_rows=None, first_broke_rows=None, runs=0, tolerance=0.1, stop_reason="no size broke"
    )
    first_broke = find_break([_point(1_000, "fail"), _point(10_000, "fail")], never)
    assert (first_broke.last_held_rows, first_broke.first_broke_rows, first_broke.runs) == (None, 1_000, 0)
    assert "nothing to bisect from" in first_broke.stop_reason


def test_sizes_run_in_ascending_order_then_the_bisection_adds_its_runs() -> None:
    calls: list[tuple[int, Phase]] = []
    breaks = _breaks_at(37_000)

    def run(rows: int, phase: Phase) -> GrowPoint:
        calls.append((rows, phase))
        return breaks(rows, phase)

    points, search = run_sizes([100_000, 1_000, 10_000], run, bisect=True, tolerance=0.1, max_runs=6)
    assert calls[:3] == [(1_000, "size"), (10_000, "size"), (100_000, "size")]
    assert {phase for _, phase in calls[3:]} == {"bisection"}
    assert [p.rows for p in points] == [rows for rows, _ in calls]
    assert search is not None
    assert search.runs == len(calls) - 3


def test_a_size_that_cannot_be_run_ends_the_sizes_and_the_first_one_aborts() -> None:
    def run(rows: int, phase: Phase) -> GrowPoint:
        if rows >= 10_000:
            return GrowPoint.not_run(rows, f"rows-{rows}", phase, "the seed command exited with code 1")
        return _point(rows, phase=phase)

    points, search = run_sizes([1_000, 10_000, 100_000], run)
    assert [(p.rows, p.verdict) for p in points] == [(1_000, "pass"), (10_000, "inconclusive")]
    assert search is None
    with pytest.raises(GrowAborted, match="exited with code 1"):
        run_sizes([10_000, 100_000], run)


# The fit


def test_bytes_per_row_is_the_robust_slope_one_odd_size_does_not_tilt() -> None:
    sizes = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
    samples = [(rows, 50 * MIB + 100 * rows) for rows in sizes]
    samples[-1] = (1_000_000, 50 * MIB + 100 * 1_000_000 + 40 * MIB)  # a spike at the largest size
    fit = fit_bytes_per_row(samples, limit_bytes=512 * MIB)
    assert fit.points == 7
    assert fit.bytes_per_row == pytest.approx(100, rel=0.02)
    assert fit.least_squares_bytes_per_row is not None
    assert fit.least_squares_bytes_per_row > 130  # what least squares makes of the same spike
    assert fit.bytes_per_row_low is not None
    assert fit.bytes_per_row_high is not None
    assert 0 < fit.bytes_per_row_low <= 100 <= fit.bytes_per_row_high
    assert fit.intercept_bytes == pytest.approx(50 * MIB, rel=0.01)
    # 512 MiB - 50 MiB at 100 B/row.
    assert fit.rows_at_limit == pytest.approx((462 * MIB) / 100, rel=0.02)


def test_flat_memory_fits_about_zero_bytes_per_row_and_reaches_no_limit() -> None:
    peaks = [61.0, 60.2, 62.1, 60.9]
    samples = [(rows, int(p * MIB)) for rows, p in zip((1_000, 10_000, 100_000, 1_000_000), peaks, strict=True)]
    fit = fit_bytes_per_row(samples, limit_bytes=128 * MIB)
    assert fit.bytes_per_row is not None
    assert abs(fit.bytes_per_row) < 5
    assert fit.bytes_per_row_low is not None
    assert fit.bytes_per_row_low <= 0
    assert fit.rows_at_limit is None
    assert fit.peak_spread == pytest.approx((62.1 - 60.2) / 60.2)


def test_two_sizes_give_a_slope_but_no_interval_and_so_no_row_count_at_the_limit() -> None:
    # Two runs 0.7 MiB apart: the slope is real arithmetic, but nothing says it is more than noise.
    fit = fit_bytes_per_row([(1_000, 65_500 * 1024), (10_000, 66_200 * 1024)], limit_bytes=128 * MIB)
    assert fit.bytes_per_row == pytest.approx(700 * 1024 / 9_000)
    assert (fit.bytes_per_row_low, fit.bytes_per_row_high, fit.rows_at_limit) == (None, None, None)


def test_one_size_gives_no_slope() -> None:
    fit = fit_bytes_per_row([(1_000, 60 * MIB)], limit_bytes=128 * MIB)
    assert (fit.points, fit.bytes_per_row, fit.rows_at_limit, fit.peak_spread) == (1, None, None, None)
    assert fit_bytes_per_row([]).points == 0


def test_runs_killed_or_restarted_stay_out_of_the_fit() -> None:
    killed = _point(100_000, "fail", peak=128 * MIB, oom_kills=1)
    restarted = _point(200_000, "fail", restarts=1)
    unmeasured = _point(300_000, "inconclusive", peak=None)
    assert _point(1_000).fittable
    assert not killed.fittable
    assert not restarted.fittable
    assert not unmeasured.fittable


# Verdict, grow.json, the page and the console


def test_a_broken_size_fails_the_grow_and_an_unseen_one_makes_it_inconclusive() -> None:
    assert grow_verdict([_point(1_000), _point(10_000)]) == ("pass", [])
    verdict, reasons = grow_verdict([_point(1_000), _point(10_000, "inconclusive"), _point(100_000, "fail")])
    assert verdict == "fail"
    assert reasons == ["at 100k rows: OOM kill at t=3.0 s", "inconclusive: at 10k rows: the cgroup was not read"]
    not_run = GrowPoint.not_run(10_000, "rows-10k", "size", "the seed command exited with code 3")
    verdict, reasons = grow_verdict([_point(1_000), not_run])
    assert verdict == "inconclusive"
    assert reasons == [
        "inconclusive: at 10k rows: the run could not be made: the seed command exited with code 3",
    ]


def test_cli_exit_codes_follow_the_grow_verdict() -> None:
    assert [cli.EXIT_CODES[v] for v in ("pass", "fail", "inconclusive")] == [0, 1, 3]


def _document(tmp_path: Path) -> dict:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    spec = RunSpec(compose_files=(compose,), locustfile=tmp_path, duration_s=5)
    run = _breaks_at(37_000)
    points, search = run_sizes([1_000, 10_000, 100_000], run, bisect=True, tolerance=0.5, max_runs=3)
    points.append(GrowPoint.not_run(1_000_000, "rows-1m", "size", "the seed command <b>exited</b> with code 1"))
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return grow_document(
        points=points,
        search=search,
        spec=spec,
        seed_command="services/users/seed.sh",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
    )


def test_grow_json_follows_its_schema_and_says_where_the_limit_breaks(tmp_path: Path) -> None:
    document = _document(tmp_path)
    path = write_grow_json(document, tmp_path / "out" / "grow.json")
    written = json.loads(path.read_text())
    jsonschema.validate(written, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert written["verdict"] == "fail"
    assert written["sizes"] == [1_000, 10_000, 100_000, 1_000_000]
    assert written["target"]["memory_limit_bytes"] == 128 * MIB
    assert written["break"]["last_held_rows"] < 37_000 <= written["break"]["first_broke_rows"]
    assert [p["rows"] for p in written["points"]] == sorted(p["rows"] for p in written["points"])
    assert written["fit"]["points"] == sum(p["in_fit"] for p in written["points"])
    assert not [f for f in os.listdir(path.parent) if f.startswith(".")]


def test_the_page_inlines_its_scripts_under_a_csp_and_links_each_run(tmp_path: Path) -> None:
    page = grow_html_page(_document(tmp_path))
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert "default-src 'none'" in csp.group(1)
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", csp.group(1))) == 2
    assert '<a href="runs/rows-1000/report.html">rows-1000</a>' in page
    assert "<b>exited</b>" not in page  # an error message is text, never markup
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert 'id="grow-data"' in page


def test_the_console_table_has_a_row_per_run_and_the_answers(tmp_path: Path) -> None:
    document = _document(tmp_path)
    console = Console(width=200, record=True, color_system=None)
    render_grow_console(document, console)
    text = console.export_text()
    for point in document["points"]:
        assert f"{point['rows']:,}" in text
    assert "bytes per row:" in text
    assert "break: the limit breaks between" in text
    assert "Verdict: FAIL" in text


def test_a_point_takes_its_figures_from_the_runs_report() -> None:
    report = Report(verdict="pass")
    report.memory.peak_bytes, report.memory.peak_source = 70 * MIB, "cgroup v1 memory.max_usage_in_bytes"
    report.memory.limit_bytes, report.memory.peak_ratio = 128 * MIB, 0.55
    report.latency_ms.p95, report.latency_ms.p99 = 9.0, 20.0
    report.requests.total, report.requests.failures, report.requests.rps = 1000, 2, 200.0
    report.requests.failure_ratio = 0.002
    point = GrowPoint.from_report(10_000, "rows-10k", "size", report, 1.5, "runs/rows-10k")
    assert (point.peak_bytes, point.limit_bytes, point.p95_ms, point.error_ratio) == (70 * MIB, 128 * MIB, 9.0, 0.002)
    assert (point.seed_s, point.page) == (1.5, "runs/rows-10k/report.html")
    assert point.held


# The seeder


def test_the_seed_command_gets_the_runs_project_url_rows_and_compose_files(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    dump = tmp_path / "env.txt"
    seeder = Seeder(command=f"env > {dump}", compose_files=(compose,), profiles=("tools",))
    seconds = seeder.seed(1_000, "stackprobe-1-abc", "http://127.0.0.1:5000", tmp_path / "run" / "seed.log")
    assert seconds >= 0
    env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert env["STACKPROBE_PROJECT"] == env["COMPOSE_PROJECT_NAME"] == "stackprobe-1-abc"
    assert env["STACKPROBE_SERVICE_URL"] == "http://127.0.0.1:5000"
    assert env["STACKPROBE_ROWS"] == "1000"
    assert env["COMPOSE_FILE"] == env["STACKPROBE_COMPOSE_FILES"] == str(compose.resolve())
    assert env["COMPOSE_PROFILES"] == "tools"


def test_a_failing_seed_command_raises_with_its_exit_code_and_output(tmp_path: Path) -> None:
    seeder = Seeder(command="echo no users table >&2; exit 3", compose_files=())
    with pytest.raises(SeedError) as raised:
        seeder.seed(10_000, "p", "http://127.0.0.1:1", tmp_path / "seed.log")
    first, tail = str(raised.value).split("\n", 1)
    # The first line stands alone (the progress line shows only it); the output's tail follows.
    assert first == f"the seed command exited with code 3 at 10k rows (its output: {tmp_path / 'seed.log'})"
    assert tail == "no users table"


def test_a_seed_command_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    seeder = Seeder(command=f"sleep 30 & echo $! > {marker}; wait", compose_files=(), timeout_s=1)
    started = time.monotonic()
    with pytest.raises(SeedError, match="ran past 1 s"):
        seeder.seed(1_000, "p", "http://127.0.0.1:1", tmp_path / "seed.log")
    assert time.monotonic() - started < 10
    assert not _still_running(int(marker.read_text()))


def _still_running(pid: int, wait_s: float = 5.0) -> bool:
    """Tell whether a process is still there (a zombie is not) after giving it wait_s seconds to go."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.1)
    return True


# The command line


def _main(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = cli.main(list(args))
    return code, errors.getvalue()


def test_grow_is_a_command_with_every_run_flag() -> None:
    args = cli.build_parser().parse_args(["grow", "--rows", "1k,10k", "--find-break", "--memory", "96m", "-u", "5"])
    assert (args.rows, args.find_break, args.memory, args.users) == ("1k,10k", True, "96m", 5)
    assert callable(args.handler)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--rows", "1x"], "--rows: not a row count"),
        (["--rows", "1k", "--keep-up"], "--keep-up"),
        (["--rows", "1k", "--break-tolerance", "0"], "--break-tolerance"),
        (["--rows", "1k", "--seed-cmd", " "], "--seed-cmd is empty"),
    ],
)
def test_grow_usage_errors_exit_2_before_anything_starts(tmp_path: Path, extra: list[str], words: str) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    code, errors = _main("grow", "-f", str(compose), "--locustfile", str(tmp_path), *extra)
    assert code == 2
    assert words in errors


def test_a_stack_without_a_bundled_seeder_needs_seed_cmd(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    code, errors = _main("grow", "-f", str(compose), "--locustfile", str(tmp_path), "--rows", "1k")
    assert code == 2
    assert "--seed-cmd is needed" in errors


# The read-heavy persona


def test_the_reader_runs_only_when_named_so_the_default_traffic_stays_the_registrars() -> None:
    loadtests = ROOT / "loadtests"
    assert check_locustfile(loadtests).user_classes == ["Registrar"]
    assert check_locustfile(loadtests / "reader.py").user_classes == ["Reader"]
