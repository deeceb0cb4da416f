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
from stackprobe.report.model import ContainerSeries, Event, Target
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
    assert "<li>1 OOM kill</li>" in page
    assert "255.8 MiB of 256.0 MiB (99.9%)" in page
    assert "<td>memory</td><td>256.0 MiB</td><td>256.0 MiB</td><td>256.0 MiB</td><td>256.0 MiB</td>" in page
    assert '<td>errors</td><td>&lt;</td><td>1%</td><td>5.464%</td><td><span class="bad">not met</span></td>' in page


def test_page_lists_events_with_a_row_per_event(report: Report) -> None:
    page = html_page(report)
    assert page.count('<tr class="event-row event-row-') == 4
    assert '<tr class="event-row event-row-oom"><td>41.3 s</td><td>oom</td><td>users</td>' in page


def test_page_escapes_names_and_paths_from_the_user(report: Report) -> None:
    report.target = Target(compose_files=[HOSTILE], project=HOSTILE, service=HOSTILE, url=HOSTILE)
    report.events.append(Event(t=1.0, action="start", container=HOSTILE, service=HOSTILE))
    report.series.containers[HOSTILE] = ContainerSeries(t=[0.0], memory_bytes=[1], cpu_percent=[0.0])
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
