"""`stackprobe grow` end to end on the bundled stack, and grow.html in headless Chromium."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import jsonschema
import pytest
from playwright.sync_api import Browser

from stackprobe.grow import GrowPoint, grow_document, run_sizes
from stackprobe.report.grow_page import render_grow_html
from stackprobe.spec import RunSpec
from tests.conftest import ROOT, project_containers
from tests.probe.conftest import ProbeRun

SCHEMA = json.loads((ROOT / "stackprobe" / "report" / "grow.schema.json").read_text())
MIB = 1024 * 1024


def _explain(run: ProbeRun) -> str:
    return f"exit {run.exit_code}\n--- stdout ---\n{run.stdout[-4000:]}\n--- stderr ---\n{run.stderr[-3000:]}"


def _leftovers(project_prefix: str) -> list[str]:
    client = docker.from_env()
    try:
        return project_containers(client, project_prefix)
    finally:
        client.close()


@pytest.mark.probe
def test_grow_on_the_bundled_stack_seeds_each_size_and_fits_its_memory(run_stackprobe, tmp_path: Path) -> None:
    # Two sizes with 5-s loads keep this near a minute. Latency on a shared CI machine is not what this
    # pins: the SLO is about errors only.
    out = tmp_path / "grow"
    run = run_stackprobe(
        "grow", "--rows", "1k,10k", "--duration", "5s", "--users", "10", "--slo", "errors<1%", "--out", str(out),
    )  # fmt: skip
    assert run.exit_code == 0, _explain(run)
    grow = json.loads((out / "grow.json").read_text())
    jsonschema.validate(grow, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert grow["verdict"] == "pass"
    assert grow["seed_command"].endswith("services/users/seed.sh")
    assert grow["load"]["locustfile"].endswith("loadtests/reader.py")
    assert grow["target"]["memory_limit_bytes"] == 128 * MIB
    assert [(p["rows"], p["phase"], p["verdict"]) for p in grow["points"]] == [
        (1_000, "size", "pass"),
        (10_000, "size", "pass"),
    ]
    for point in grow["points"]:
        assert 0 < point["peak_bytes"] < 128 * MIB
        assert point["seed_s"] is not None
        assert point["seed_s"] < 30
        assert point["failures"] == 0
        assert point["requests"] > 0
        report = json.loads((out / point["report"]).read_text())
        assert report["verdict"] == "pass"
        assert report["load"]["locustfile"].endswith("reader.py")
        assert report["writes"]["applicable"] is False  # the reader never writes
        assert (out / point["page"]).is_file()
        assert "users:" in (out / "runs" / point["label"] / "seed.log").read_text()
    assert grow["fit"]["points"] == 2
    assert grow["fit"]["bytes_per_row"] is not None
    assert grow["break"] is None
    assert (out / "grow.html").is_file()
    assert "stackprobe grow: app, peak memory against rows" in run.stdout
    assert "Verdict: PASS" in run.stdout
    assert _leftovers(run.project_prefix) == []


def _document(tmp_path: Path) -> dict:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    spec = RunSpec(compose_files=(compose,), locustfile=tmp_path, duration_s=5)

    def run(rows: int, phase) -> GrowPoint:
        broke = rows >= 37_000
        return GrowPoint(
            rows=rows,
            label=f"rows-{rows}",
            phase=phase,
            verdict="fail" if broke else "pass",
            reasons=["OOM kill at t=2.0 s"] if broke else [],
            peak_bytes=128 * MIB if broke else 50 * MIB + 1_500 * rows,
            limit_bytes=128 * MIB,
            p95_ms=20.0 + rows / 1_000,
            error_ratio=0.2 if broke else 0.0,
            oom_kills=1 if broke else 0,
            restarts=0,
            seed_s=0.5,
            page=f"runs/rows-{rows}/report.html",
        )

    points, search = run_sizes([1_000, 10_000, 20_000, 100_000], run, bisect=True, tolerance=0.1, max_runs=6)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    return grow_document(
        points=points,
        search=search,
        spec=spec,
        seed_command="seed.sh",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
    )


@pytest.mark.browser
def test_grow_page_draws_its_charts_offline_without_errors(browser: Browser, tmp_path: Path) -> None:
    document = _document(tmp_path)
    jsonschema.validate(document, SCHEMA)
    path = render_grow_html(document, tmp_path / "grow.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-charts-ready]", timeout=10_000)
        assert page.get_attribute("body", "data-charts-ready") == "3"
        assert requests == [path.as_uri()]
        assert problems == []
        labels = page.evaluate(
            '() => Object.fromEntries(window.stackprobeGrowCharts.map(u => [u.root.closest("figure").id, '
            "u.series.map(s => s.label)]))"
        )
        slope = document["fit"]["bytes_per_row"]
        assert labels == {
            "chart-memory": ["rows", "held", "broke", "inconclusive", f"fit: {slope:.1f} B/row", "limit"],
            "chart-p95": ["rows", "held", "broke", "inconclusive"],
            "chart-errors": ["rows", "held", "broke", "inconclusive"],
        }
        painted = page.evaluate(
            """() => Array.from(document.querySelectorAll("figure.chart canvas")).map(c => {
                const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
                return n;
            })"""
        )
        assert len(painted) == 3
        assert all(n > 1000 for n in painted), painted
        # One row per run, each linking its own report.
        links = page.locator("#runs a").all()
        assert [link.get_attribute("href") for link in links] == [p["page"] for p in document["points"]]
        assert page.locator("#break .value").inner_text() == (
            f"{document['break']['last_held_rows']:,} .. {document['break']['first_broke_rows']:,} rows"
        )
    finally:
        page.close()
