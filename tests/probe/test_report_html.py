"""The HTML report in headless Chromium: every chart drawn, events marked, nothing fetched, no errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

from stackprobe.report import Report, load_report, render_html
from stackprobe.report.model import ContainerSeries, Event, MemoryTrend
from stackprobe.trend import target_trend

pytestmark = pytest.mark.browser

REPORT = Path(__file__).resolve().parent.parent / "unit" / "data" / "report_oom.json"
# Requests/failures, latency, memory of each of the two services, CPU.
CHARTS = 5
USERS, DB = "probe-3f9a-users-1", "probe-3f9a-db-1"
MIB = 1024 * 1024
# Each chart's id and the labels of its uPlot series (the first is the time axis).
SERIES_LABELS = """() => Object.fromEntries(window.stackprobeCharts.map(
    u => [u.root.closest("figure").id, u.series.map(s => s.label)]))"""


@dataclass
class OpenedReport:
    """A report page open in Chromium, with what it asked the network for and what went wrong."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _open(browser: Browser, report: Report, path: Path) -> OpenedReport:
    """Render the report to `path`, open it in a new page and wait until its charts are drawn."""
    render_html(report, path)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    opened = OpenedReport(page=page, url=path.as_uri())

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.problems.append(f"console error: {message.text}")

    def on_dialog(dialog: Dialog) -> None:
        opened.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    page.on("dialog", on_dialog)
    page.goto(opened.url)
    page.wait_for_selector("body[data-charts-ready]", timeout=10_000)
    return opened


@pytest.fixture(scope="module")
def oom_page(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenedReport]:
    """The report of a run whose service was OOM-killed and restarted, open for tests that only look."""
    opened = _open(browser, load_report(REPORT), tmp_path_factory.mktemp("report") / "report.html")
    yield opened
    opened.page.close()


@pytest.fixture
def open_report(browser: Browser, tmp_path: Path) -> Iterator[Callable[[Report], OpenedReport]]:
    """Return a function that opens a report in a page of its own, for tests that click or hover."""
    pages: list[Page] = []

    def open_(report: Report) -> OpenedReport:
        opened = _open(browser, report, tmp_path / f"report-{len(pages)}.html")
        pages.append(opened.page)
        return opened

    yield open_
    for page in pages:
        page.close()


def test_every_chart_is_drawn(oom_page: OpenedReport) -> None:
    page = oom_page.page
    assert page.locator("figure.chart canvas").count() == CHARTS
    assert page.locator(".no-data").count() == 0
    for canvas in page.locator("figure.chart canvas").all():
        box = canvas.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
    # Every canvas holds drawn pixels, not just a blank surface of the right size.
    painted = page.evaluate(
        """() => Array.from(document.querySelectorAll("figure.chart canvas")).map(c => {
            const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
            return n;
        })"""
    )
    assert all(n > 1000 for n in painted), painted


def test_charts_are_titled_per_service(oom_page: OpenedReport) -> None:
    captions = oom_page.page.locator("figure.chart figcaption .title").all_inner_texts()
    assert captions == [
        "Requests and failures per second",
        "Latency (ms)",
        "Memory of users (MiB)",
        "Memory of db (MiB), no limit",
        "CPU (% of one core)",
    ]


def test_every_chart_names_its_source(oom_page: OpenedReport) -> None:
    load_source = load_report(REPORT).series.load.source
    assert load_source
    sources = oom_page.page.locator("figure.chart figcaption .source").all_inner_texts()
    assert sources == [
        f"source: {load_source}",
        f"source: {load_source}",
        "source: docker stats samples, one line per container; kernel peak: cgroup v1 memory.max_usage_in_bytes",
        "source: docker stats samples, one line per container",
        "source: docker stats samples, one line per container",
    ]


def test_the_memory_chart_draws_the_container_its_limit_and_the_kernel_peak(oom_page: OpenedReport) -> None:
    page = oom_page.page
    labels = page.evaluate(SERIES_LABELS)
    assert labels["chart-memory-0"] == ["t", USERS, "limit", "kernel peak"]
    assert labels["chart-memory-1"] == ["t", DB]
    assert labels["chart-cpu"] == ["t", USERS, DB]
    # The limit and the kernel's high-water mark are level lines at their values, across the whole axis.
    levels = page.evaluate(
        """() => { const u = window.stackprobeCharts.find(u => u.root.closest("figure").id === "chart-memory-0");
            return [2, 3].map(i => [...new Set(u.data[i].filter(v => v != null))]); }"""
    )
    report = load_report(REPORT)
    assert levels == [[256.0], [report.memory.peak_kernel_bytes / MIB]]


def test_the_oom_kill_is_marked_on_every_chart_and_listed(oom_page: OpenedReport) -> None:
    page = oom_page.page
    markers = page.locator("figure.chart .event-marker.event-oom")
    assert markers.count() == CHARTS
    for marker in markers.all():
        assert marker.is_visible()
        assert marker.get_attribute("title") == "oom users (probe-3f9a-users-1) at 41.3 s"
    row = page.locator("#events tr.event-row-oom")
    assert row.locator("td").all_inner_texts()[:3] == ["41.3 s", "oom", "users"]


def test_the_page_opens_offline_without_errors(oom_page: OpenedReport) -> None:
    assert oom_page.requests == [oom_page.url]
    assert oom_page.problems == []


def test_charts_share_one_time_axis(oom_page: OpenedReport) -> None:
    scales = oom_page.page.evaluate("() => window.stackprobeCharts.map(u => [u.scales.x.min, u.scales.x.max])")
    # The containers' samples start 2 s before the load; the load's charts span that too.
    assert scales == [[-2.0, 61.0]] * CHARTS


def test_zooming_one_chart_zooms_them_all(open_report: Callable[[Report], OpenedReport]) -> None:
    opened = open_report(load_report(REPORT))
    page = opened.page
    over = page.locator("#chart-latency .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.6, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=5)
    page.mouse.up()
    scales = page.evaluate("() => window.stackprobeCharts.map(u => [u.scales.x.min, u.scales.x.max])")
    low, high = scales[0]
    assert 30 < low < high < 55
    assert scales == [[low, high]] * CHARTS
    # The OOM kill at 41.3 s stays in view and its markers follow the zoom.
    assert all(m.is_visible() for m in page.locator(".event-marker.event-oom").all())
    assert opened.problems == []


def test_hovering_one_chart_moves_the_cursor_on_all(open_report: Callable[[Report], OpenedReport]) -> None:
    page = open_report(load_report(REPORT)).page
    over = page.locator("#chart-requests .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=3)
    legend_times = page.locator("figure.chart .u-legend .u-series:first-child .u-value").all_inner_texts()
    # Each chart shows its sample nearest the cursor: load rows each second, containers each half second.
    seconds = [float(text.removesuffix(" s")) for text in legend_times]
    assert len(seconds) == CHARTS
    assert max(seconds) - min(seconds) <= 0.5
    assert 25 < seconds[0] < 35


def test_a_replica_report_draws_one_memory_line_per_container(
    open_report: Callable[[Report], OpenedReport],
) -> None:
    report = load_report(REPORT)
    first = report.series.containers[USERS]
    # A second replica, sampled a quarter second later: the lines must not break where the other has samples.
    report.series.containers["probe-3f9a-users-2"] = ContainerSeries(
        service="users",
        t=[t + 0.25 for t in first.t],
        memory_bytes=[b // 2 for b in first.memory_bytes],
        limit_bytes=first.limit_bytes,
        cpu_percent=[c / 2 for c in first.cpu_percent],
    )
    opened = open_report(report)
    page = opened.page
    assert opened.problems == []
    assert opened.requests == [opened.url]
    assert page.locator("figure.chart canvas").count() == CHARTS
    labels = page.evaluate(SERIES_LABELS)
    assert labels["chart-memory-0"] == ["t", USERS, "probe-3f9a-users-2", "limit", "kernel peak"]
    assert labels["chart-memory-1"] == ["t", DB]
    assert labels["chart-cpu"] == ["t", USERS, "probe-3f9a-users-2", DB]
    captions = page.locator("figure.chart figcaption .title").all_inner_texts()
    assert captions[2:4] == ["Memory of users (MiB), 2 containers", "Memory of db (MiB), no limit"]
    # Each replica's line holds every one of its samples and is drawn unbroken where the other replica has
    # samples (uPlot's path for the series records no gap: the 1.6 series' _paths.gaps).
    drawn = page.evaluate(
        """() => { const u = window.stackprobeCharts.find(u => u.root.closest("figure").id === "chart-memory-0");
            return [1, 2].map(i => [
                u.data[i].filter(v => v != null).length, (u.series[i]._paths.gaps || []).length]); }"""
    )
    assert drawn == [[len(first.t), 0], [len(first.t), 0]]


def test_an_inconclusive_verdict_is_badged_as_such(open_report: Callable[[Report], OpenedReport]) -> None:
    report = load_report(REPORT)
    report.problems = ["event stream ended before the watch stopped"]
    report.verdict, report.reasons = "inconclusive", ["inconclusive: event stream ended before the watch stopped"]
    opened = open_report(report)
    badge = opened.page.locator("#verdict")
    assert badge.inner_text() == "INCONCLUSIVE"
    colours = opened.page.evaluate(
        """() => { const probe = document.createElement("span");
            document.body.appendChild(probe);
            return ["pass", "fail", "inconclusive"].map(v => {
                probe.className = "verdict " + v; return getComputedStyle(probe).backgroundColor; }); }"""
    )
    assert badge.evaluate("b => getComputedStyle(b).backgroundColor") == colours[2]
    assert len(set(colours)) == 3
    assert opened.problems == []


def test_a_run_without_samples_shows_no_data(open_report: Callable[[Report], OpenedReport]) -> None:
    opened = open_report(Report())
    page = opened.page
    assert page.locator("canvas").count() == 0
    assert page.locator("figure.chart .no-data").all_inner_texts() == ["no data"] * 4
    assert opened.problems == []
    assert opened.requests == [opened.url]


def test_hostile_names_are_shown_as_text(open_report: Callable[[Report], OpenedReport]) -> None:
    hostile = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    report = load_report(REPORT)
    report.target.service = hostile
    report.series.containers[hostile] = report.series.containers.pop(USERS)
    report.series.containers[hostile].service = hostile
    report.events.append(Event(t=5.0, action="start", container=hostile, service=hostile))
    opened = open_report(report)
    assert opened.problems == []
    assert opened.requests == [opened.url]
    assert opened.page.locator("img").count() == 0
    assert f"Memory of {hostile} (MiB)" in opened.page.locator("figure.chart figcaption .title").all_inner_texts()
    assert opened.page.locator("#events tr").last.locator("td").nth(2).inner_text() == hostile


def test_the_memory_trend_is_drawn_over_the_targets_memory_chart(
    open_report: Callable[[Report], OpenedReport],
) -> None:
    report = load_report(REPORT)
    # 100 MiB/min from 80 MiB at t=0: 100 MiB at the warm-up's end (12 s), 180 MiB at the load's end (60 s).
    report.memory.trend = MemoryTrend(
        slope_mib_per_min=100.0,
        slope_low=90.0,
        slope_high=110.0,
        intercept_bytes=80.0 * MIB,
        warmup_s=12.0,
        points=97,
        time_to_limit_s=45.0,
        source="Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) of 97 docker stats samples",
    )
    opened = open_report(report)
    page = opened.page
    assert opened.problems == []
    assert opened.requests == [opened.url]
    labels = page.evaluate(SERIES_LABELS)
    # One more series on the target's memory chart, and on no other.
    assert labels["chart-memory-0"] == ["t", USERS, "trend", "limit", "kernel peak"]
    assert labels["chart-memory-1"] == ["t", DB]
    assert labels["chart-cpu"] == ["t", USERS, DB]
    drawn = page.evaluate(
        """() => { const u = window.stackprobeCharts.find(u => u.root.closest("figure").id === "chart-memory-0");
            return u.data[2].map((v, i) => [u.data[0][i], v]).filter(p => p[1] != null); }"""
    )
    assert drawn == [[12.0, 100.0], [60.0, 180.0]]
    # The line does not stretch the shared time axis.
    scales = page.evaluate("() => window.stackprobeCharts.map(u => [u.scales.x.min, u.scales.x.max])")
    assert scales == [[-2.0, 61.0]] * CHARTS
    captions = page.locator("figure.chart figcaption .trend").all_inner_texts()
    assert captions == [
        "memory trend (black dashes): +100.0 MiB/min (95 % CI 90.0..110.0) after 12 s warm-up; the limit would be "
        "reached in about 45 s at this load; source: Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) of 97 "
        "docker stats samples"
    ]
    assert page.locator("#chart-memory-0 figcaption .trend").count() == 1
    assert page.locator("#headline").inner_text() == (
        "At this load the memory limit is reached in about 45 s (+100.0 MiB/min after the warm-up)"
    )


def test_a_fitted_trend_of_the_recorded_run_draws_without_errors(
    open_report: Callable[[Report], OpenedReport],
) -> None:
    report = load_report(REPORT)
    report.memory.trend = target_trend(report)
    assert report.memory.trend is not None
    opened = open_report(report)
    assert opened.problems == []
    labels = opened.page.evaluate(SERIES_LABELS)
    assert labels["chart-memory-0"] == ["t", USERS, "trend", "limit", "kernel peak"]
    assert opened.page.locator("figure.chart canvas").count() == CHARTS


def _with_faults() -> Report:
    from stackprobe.report.model import FaultEffects, FaultRecord, Recovery

    report = load_report(REPORT)
    report.faults = [
        FaultRecord(
            action="pause",
            service="db",
            at=10,
            for_=5,
            done=True,
            started=10.02,
            ended=15.03,
            undone_by="schedule",
            recovery=Recovery(from_t=15.03, recovered_s=1.2, status="recovered", summary="recovered in 1.2 s"),
        ),
        FaultRecord(
            action="kill",
            service="users",
            at=30,
            signal="SIGKILL",
            sent_via="host",
            done=True,
            started=30.0,
            ended=30.01,
            recovery=Recovery(reference="start", from_t=30.0, status="not_recovered", summary="did not recover"),
        ),
        FaultRecord(action="squeeze", service="users", at=50, size_bytes=16 << 20, kernel="refused", error="busy"),
    ]
    report.fault_effects = FaultEffects(recovery_allowance_s=10, restarts_explained=1)
    return report


def test_each_fault_is_a_band_from_its_start_to_its_end_on_every_chart(
    open_report: Callable[[Report], OpenedReport],
) -> None:
    opened = open_report(_with_faults())
    page = opened.page
    assert opened.problems == []
    # The squeeze the kernel refused was never sent to the engine's effect: it has no band.
    bands = page.locator("figure.chart .fault-band")
    assert bands.count() == 2 * CHARTS
    pause = page.locator("#chart-latency .fault-band.fault-pause")
    kill = page.locator("#chart-latency .fault-band.fault-kill")
    assert pause.get_attribute("title") == "pause db@10s for 5s: t=10.0 to 15.0 s; recovered in 1.2 s"
    pause_box, kill_box = pause.bounding_box(), kill.bounding_box()
    assert pause_box is not None
    assert kill_box is not None
    # 5 s of a 63-s axis is several times a kill's instant, which is drawn 2 px wide.
    assert pause_box["width"] > 40
    assert kill_box["width"] == 2
    assert page.locator("#chart-latency .recovery-band").count() == 1
    rows = page.locator("#faults tr.fault-row")
    assert rows.count() == 3
    assert rows.nth(1).locator("td").all_inner_texts()[0] == "kill users@30s"
