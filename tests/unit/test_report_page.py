"""The HTML report as text: self-contained, escaped, with its data embedded (the browser test draws it)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from stackprobe.report import Report, load_report, render_html
from stackprobe.report.model import (
    ClientErrors,
    ContainerSeries,
    Event,
    Failure,
    Limits,
    Listing,
    LocustException,
    Memory,
    MemoryTrend,
    Target,
    Writes,
)
from stackprobe.report.page import UPLOT_VERSION, html_page, script_json

DATA = Path(__file__).parent / "data"
HOSTILE = '"></script><script>alert(1)</script><img src=x onerror=alert(2)>'


class _Page(HTMLParser):
    """Collect the attributes that can fetch something, and the text of every <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "action", "srcset")]
        if tag == "script":
            self._script = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


class _Texts(HTMLParser):
    """Collect the text inside the element with a given id, one entry per block (div, li, td, ...)."""

    BLOCKS = frozenset({"div", "li", "td", "th", "p", "dt", "dd", "h2", "h3", "pre", "summary"})
    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self, ident: str) -> None:
        super().__init__()
        self.ident = ident
        self.depth = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.ident:
            self.depth = 1
        if self.depth and tag in self.BLOCKS:
            self.texts.append("")

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            if not self.texts:
                self.texts.append("")
            self.texts[-1] += data


def _texts(page: str, ident: str) -> list[str]:
    """Return the non-empty texts of the blocks inside the element `ident`, as a reader sees them."""
    parser = _Texts(ident)
    parser.feed(page)
    return [text.strip() for text in parser.texts if text.strip()]


@pytest.fixture
def report() -> Report:
    """A run whose service was OOM-killed and restarted."""
    return load_report(DATA / "report_oom.json")


def test_render_html_writes_the_page(report: Report, tmp_path: Path) -> None:
    path = render_html(report, tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8") == html_page(report)


def test_page_fetches_nothing(report: Report) -> None:
    parsed = _parse(html_page(report))
    assert parsed.links == ["data:,"]  # the empty favicon, so the browser does not ask for one
    assert not {"img", "iframe", "object", "embed", "audio", "video", "source"} & set(parsed.tags)


def test_page_forbids_every_fetch_and_allows_only_its_own_scripts(report: Report) -> None:
    page = html_page(report)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert csp[1].startswith("default-src 'none'; ")
    code = [text for attrs, text in _parse(page).scripts if "type" not in attrs]
    assert len(code) == 2
    for text in code:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp[1]


def test_page_embeds_the_report_as_json(report: Report) -> None:
    (data,) = [text for attrs, text in _parse(html_page(report)).scripts if attrs.get("type") == "application/json"]
    assert json.loads(data) == report.to_dict()


def test_page_inlines_uplot_and_says_which_version(report: Report) -> None:
    static = resources.files("stackprobe.report") / "static"
    uplot = (static / "uPlot.iife.min.js").read_text()
    assert f"(v{UPLOT_VERSION})" in uplot.splitlines()[0]
    page = html_page(report)
    assert uplot in page
    assert (static / "uPlot.min.css").read_text() in page
    assert f"uPlot {UPLOT_VERSION}" in page


def test_page_shows_the_summary_limits_slo_and_verdict(report: Report) -> None:
    page = html_page(report)
    assert '<span class="verdict fail" id="verdict">fail</span>' in page
    assert _texts(page, "reasons") == [
        "1 OOM kill (kernel oom_kill counter (memory.oom_control))",
        "1 restart",
        "3 of 2210 acknowledged writes lost",
        "SLO not met: errors < 1% (actual 5.464%)",
    ]
    assert "<td>memory</td><td>256.0 MiB</td><td>256.0 MiB</td><td>256.0 MiB</td><td>256.0 MiB</td>" in page
    assert '<td>errors</td><td>&lt;</td><td>1%</td><td>5.464%</td><td><span class="bad">not met</span></td>' in page
    assert 'id="problems"' not in page


def test_the_peak_card_shows_the_verdicts_figure_its_source_and_both_measured_peaks(report: Report) -> None:
    assert _texts(html_page(report), "peak-memory") == [
        "peak memory",
        "256.0 MiB of 256.0 MiB (100.0%)",
        "from the limit: PID 1 was OOM-killed at it (cgroup v1 memory.max_usage_in_bytes)",
        "cgroup v1 memory.max_usage_in_bytes: 256.0 MiB",
        "docker stats samples: 255.8 MiB",
    ]


def test_the_peak_card_says_when_the_kernel_mark_was_not_read() -> None:
    memory = Memory(peak_bytes=50 << 20, peak_source="docker stats samples", peak_sampled_bytes=50 << 20)
    texts = _texts(html_page(Report(memory=memory, limits=Limits(cgroup_version=2))), "peak-memory")
    assert texts[1:] == [
        "50.0 MiB",
        "from docker stats samples",
        "cgroup v2 memory.peak: not read",
        "docker stats samples: 50.0 MiB",
    ]


def test_the_oom_card_shows_the_kernels_count_with_the_engines_events_beside(report: Report) -> None:
    page = html_page(report)
    assert _texts(page, "oom-kills") == [
        "OOM kills",
        "1",
        "from kernel oom_kill counter (memory.oom_control)",
        "engine oom events: 1",
    ]
    assert '<div class="card bad wide" id="oom-kills">' in page


def test_the_oom_card_highlights_counts_that_disagree(report: Report) -> None:
    report.oom_events = 3
    page = html_page(report)
    assert _texts(page, "oom-kills")[2:] == [
        "from kernel oom_kill counter (memory.oom_control)",
        "engine oom events: 3",
        "the kernel's count and the engine's events disagree",
    ]
    assert '<div class="card bad wide disagree" id="oom-kills">' in page


def test_an_inconclusive_run_is_badged_inconclusive_never_pass(report: Report) -> None:
    cut = "event stream ended before the watch stopped; OOM kills and restarts may be missing"
    report.oom_kills = report.oom_events = report.restarts = 0
    report.problems = [cut]
    report.verdict, report.reasons = "inconclusive", [f"inconclusive: {cut}"]
    page = html_page(report)
    assert '<span class="verdict inconclusive" id="verdict">inconclusive</span>' in page
    assert "<title>stackprobe: users inconclusive</title>" in page
    assert "verdict pass" not in page
    assert f'<li class="unseen">inconclusive: {cut}</li>' in page
    assert _texts(page, "problems") == [cut]


def test_failures_and_unseen_reasons_are_told_apart() -> None:
    reasons = ["1 restart", "inconclusive: no request was made: the load was not delivered"]
    page = html_page(Report(verdict="fail", reasons=reasons))
    assert '<li class="seen">1 restart</li><li class="unseen">inconclusive: no request' in page


def test_page_shows_what_the_clients_saw_on_the_time_axis(report: Report) -> None:
    page = html_page(report)
    texts = _texts(page, "client-failures")
    assert texts[:7] == [
        "method",
        "name",
        "error",
        "occurrences",
        "first seen",
        "last seen",
        "when (on the charts' time axis, -2.0 s to 61.0 s)",
    ]
    assert texts[7:] == [
        "POST",
        "/users",
        "ConnectionResetError(104, 'Connection reset by peer')",
        "212",
        "41.3 s",
        "42.6 s",
        "GET",
        "/users?limit=20",
        "ConnectionRefusedError(111, 'Connection refused')",
        "193",
        "41.4 s",
        "44.9 s",
    ]
    # 41.3 s to 42.6 s of -2.0 s to 61.0 s.
    assert '<div class="when" title="41.3 s to 42.6 s"><div class="span" style="left:68.73%;width:2.06%">' in page
    assert _texts(page, "client-exceptions") == ["no exception in the locustfile"]


def test_page_lists_the_locustfiles_exceptions_with_their_tracebacks(report: Report) -> None:
    report.client_errors.exceptions = [
        LocustException(
            message="KeyError: 'id'", count=3, traceback="Traceback:\n  x\nKeyError: 'id'", first_t=10.0, last_t=55.5
        )
    ]
    texts = _texts(html_page(report), "client-exceptions")
    assert texts[5:] == ["KeyError: 'id'", "traceback", "Traceback:\n  x\nKeyError: 'id'", "3", "10.0 s", "55.5 s"]


def test_page_shows_unverified_writes_and_why_the_audit_gave_up() -> None:
    writes = Writes(
        applicable=True,
        acknowledged=100,
        verified=60,
        lost=0,
        unverified=40,
        unverified_examples=["/users/7: HTTP 503"],
        gave_up="the service answered 503 for 30 s",
    )
    page = html_page(Report(writes=writes))
    assert _texts(page, "writes") == [
        "acknowledged",
        "verified",
        "lost",
        "unverified (could not be checked)",
        "100",
        "60",
        "0",
        "40",
        "the audit gave up: the service answered 503 for 30 s",
        "unverified, for example:",
        "/users/7: HTTP 503",
    ]
    assert "writes unverified40 of 100the service answered 503 for 30 s" in "".join(_texts(page, "summary"))


def test_page_shows_locusts_exit_code_overrun_limits_notes_and_the_cpu_warning(report: Report) -> None:
    report.load.locust_exit_code, report.load.overran, report.load.shape = 1, "stopped 30 s past --duration", None
    report.limits.notes = ["the host has no swap: the limit is strict in effect"]
    report.cost.load_generator_cpu_warning = True
    page = html_page(report)
    assert "<dt>Locust exit code</dt><dd>1</dd><dt>Locust overran</dt><dd>stopped 30 s past --duration</dd>" in page
    assert "no shape (-u users at -r per second for -t)" in page
    assert _texts(page, "limit-notes") == ["the host has no swap: the limit is strict in effect"]
    assert _texts(page, "cost")[-1] == "yes: the generator, not the service, may have set the pace"


def test_page_names_the_sources_report_js_puts_in_chart_captions(report: Report) -> None:
    assert (
        '<div id="charts" data-sampled-source="docker stats samples" '
        'data-kernel-peak-source="cgroup v1 memory.max_usage_in_bytes"></div>'
    ) in html_page(report)


def test_page_lists_events_with_a_row_per_event(report: Report) -> None:
    page = html_page(report)
    assert page.count('<tr class="event-row event-row-') == 4
    assert '<tr class="event-row event-row-oom"><td>41.3 s</td><td>oom</td><td>users</td>' in page


def test_page_escapes_names_and_paths_from_the_user(report: Report) -> None:
    report.target = Target(compose_files=[HOSTILE], project=HOSTILE, service=HOSTILE, url=HOSTILE)
    report.events.append(Event(t=1.0, action="start", container=HOSTILE, service=HOSTILE))
    report.series.containers[HOSTILE] = ContainerSeries(service=HOSTILE, t=[0.0], memory_bytes=[1], cpu_percent=[0.0])
    report.client_errors = ClientErrors(
        failures=[Failure(method=HOSTILE, name=HOSTILE, error=HOSTILE, occurrences=1, first_t=1.0, last_t=2.0)],
        exceptions=[LocustException(message=HOSTILE, count=1, traceback=HOSTILE)],
    )
    report.problems = [HOSTILE]
    report.memory.peak_source = report.oom_kills_source = report.writes.gave_up = HOSTILE
    report.limits.notes = [HOSTILE]
    page = html_page(report)
    parsed = _parse(page)
    # Exactly the page's own three script elements, and nobody's image.
    assert len(parsed.scripts) == 3
    assert "img" not in parsed.tags
    assert page.count("</script>") == 3
    (data,) = [text for attrs, text in parsed.scripts if attrs.get("type") == "application/json"]
    assert json.loads(data)["target"]["service"] == HOSTILE


def test_script_json_cannot_close_its_script_element() -> None:
    text = script_json({"a": "</script><!-- & -->"})
    assert "<" not in text
    assert ">" not in text
    assert json.loads(text) == {"a": "</script><!-- & -->"}


def test_page_of_an_empty_run_renders() -> None:
    page = html_page(Report())
    assert "no SLO given" in page
    assert "no container events" in page
    assert "n/a: the load logged no writes" in page
    assert _texts(page, "clients") == ["no failed request", "no exception in the locustfile"]
    assert _texts(page, "peak-memory") == ["peak memory", "n/a"]
    assert '<span class="verdict fail" id="verdict">fail</span>' in page


def _with_trend(report: Report, time_to_limit_s: float | None = 3.2 * 3600) -> Report:
    report.memory.trend = MemoryTrend(
        slope_mib_per_min=0.8,
        slope_low=0.5,
        slope_high=1.1,
        intercept_bytes=100.0 * 2**20,
        warmup_s=12.0,
        points=48,
        time_to_limit_s=time_to_limit_s,
        source="Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) of 48 docker stats samples",
    )
    return report


def test_the_trend_card_shows_the_slope_its_interval_and_the_time_to_the_limit(report: Report) -> None:
    page = html_page(_with_trend(report))
    assert _texts(page, "memory-trend") == [
        "memory trend",
        "+0.8 MiB/min",
        "+0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; the limit would be reached in about 3.2 h at this load",
        "from Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) of 48 docker stats samples",
    ]
    assert '<div class="card bad wide" id="memory-trend">' in page


def test_the_time_to_the_limit_is_the_pages_headline(report: Report) -> None:
    page = html_page(_with_trend(report))
    assert _texts(page, "headline") == [
        "At this load the memory limit is reached in about 3.2 h (+0.8 MiB/min after the warm-up)"
    ]
    assert 'id="headline"' not in html_page(_with_trend(load_report(DATA / "report_oom.json"), None))


def test_the_memory_chart_caption_carries_the_trend_for_report_js(report: Report) -> None:
    page = html_page(_with_trend(report))
    assert (
        'data-trend="memory trend (black dashes): +0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; the limit '
        "would be reached in about 3.2 h at this load; source: Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) "
        'of 48 docker stats samples"'
    ) in page


def test_a_run_without_a_trend_says_so_and_draws_none(report: Report) -> None:
    page = html_page(report)
    assert _texts(page, "memory-trend") == [
        "memory trend",
        "n/a",
        "not fitted (fewer than 10 memory samples of the target after the warm-up)",
    ]
    assert "data-trend=" not in page
    assert 'id="headline"' not in page


def test_faults_are_listed_with_their_recovery_and_embedded_for_the_bands() -> None:
    from stackprobe.report.model import FaultRecord, Recovery

    report = load_report(DATA / "report_oom.json")
    report.faults = [
        FaultRecord(
            action="pause",
            service="db",
            at=10,
            for_=5,
            done=True,
            started=10.0,
            ended=15.0,
            recovery=Recovery(status="not_recovered", summary="did not recover within 10 s <b>"),
        )
    ]
    page = html_page(report)
    assert '<tr class="fault-row fault-row-not_recovered"><td>pause db@10s for 5s</td>' in page
    assert "did not recover within 10 s &lt;b&gt;" in page
    embedded = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    assert embedded["faults"][0]["for"] == 5.0


def test_page_shows_the_indeterminate_refused_and_duplicated_writes(report: Report) -> None:
    texts = _texts(html_page(report), "writes")
    headers = ["indeterminate", "recovered (applied)", "not applied", "unresolved", "refused", "refused but written"]
    start = texts.index("indeterminate")
    assert texts[start : start + 14] == [*headers, "duplicated", "12", "7", "5", "0", "41", "0", "0"]


def test_page_says_how_the_writes_were_read_through_the_listing() -> None:
    listing = Listing(url="/users?limit=500", pages=31, records=15_120, complete=True, verified=15_118)
    writes = Writes(applicable=True, acknowledged=15_120, verified=15_120, lost=0, unverified=0, listing=listing)
    assert _texts(html_page(Report(writes=writes)), "writes-listing") == [
        "read back: 15,118 verified on the listing (15,120 records in 31 pages of /users?limit=500), "
        "2 acknowledged read back alone"
    ]
