"""sweep and fit on real containers: a service whose memory need is known, OOM-killed below it.

The needy stack (stacks/needy/) holds 28 MiB from its start and 8 MiB more per request in flight; with two
users that is about 54 MiB with the interpreter (measured: 54.1 MiB, the kernel's high-water mark), so a
48 MiB limit OOM-kills it under load and 64 MiB holds. No image is built: the script is mounted into the
machine's Python image. Runs are short (3-4 s of load, 2 users) on a shared machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import jsonschema
import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from tests.conftest import ROOT, project_containers, read_env_file
from tests.probe.conftest import PROJECT_PREFIXES, STACKS, ProbeRun

pytestmark = pytest.mark.probe

NEEDY = STACKS / "needy"
MIB = 1024 * 1024
# The service's need with two requests in flight: the interpreter (about 9 MiB) + 28 + 2 x 8 MiB.
NEED_BYTES = 54 * MIB
SCHEMAS = Path(__file__).parents[2] / "stackprobe" / "report"
CHROMIUM = Path("/usr/bin/chromium")


def _stackprobe(out: Path, *args: str, timeout: float = 240) -> ProbeRun:
    """Run `python -m stackprobe ARGS --out OUT` on the needy stack with the machine's image choices."""
    env = {**os.environ}
    env.update({k: v for k, v in read_env_file().items() if k.endswith("_IMAGE") or k == "PIP_NO_INDEX"})
    argv = [sys.executable, "-m", "stackprobe", *args]
    argv += ["-f", str(NEEDY / "compose.yaml"), "--locustfile", str(NEEDY / "locustfile.py")]
    argv += ["--users", "2", "--spawn-rate", "10", "--slo", "errors<1%", "--out", str(out)]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prefix = f"stackprobe-{process.pid}-"
    PROJECT_PREFIXES.append(prefix)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return ProbeRun(process.returncode, stdout, stderr, out, prefix)


def _explain(run: ProbeRun) -> str:
    return f"exit {run.exit_code}\n--- stdout ---\n{run.stdout[-4000:]}\n--- stderr ---\n{run.stderr[-3000:]}"


def _leftovers(prefix: str) -> list[str]:
    client = docker.from_env()
    try:
        return project_containers(client, prefix)
    finally:
        client.close()


def _document(run: ProbeRun, name: str) -> dict[str, Any]:
    document = json.loads((run.out / f"{name}.json").read_text())
    jsonschema.validate(document, json.loads((SCHEMAS / f"{name}.schema.json").read_text()))
    return document


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> ProbeRun:
    """One fit over 32..96 MiB by 16 MiB, one run per limit: about 3 runs of 3 s."""
    out = tmp_path_factory.mktemp("fit")
    return _stackprobe(out, "fit", "--memory", "32m..96m", "--step", "16m", "--repeat", "1", "--duration", "3s")


def test_sweep_across_a_limit_that_oom_kills_and_one_that_holds(tmp_path: Path) -> None:
    run = _stackprobe(tmp_path, "sweep", "--memory", "48m,96m", "--duration", "4s")
    assert run.exit_code == 1, _explain(run)  # a run failed
    document = _document(run, "sweep")
    killed, held = document["runs"]
    assert (killed["label"], killed["verdict"], held["label"], held["verdict"]) == (
        "mem-48m",
        "fail",
        "mem-96m",
        "pass",
    ), _explain(run)
    assert killed["oom_kills"] >= 1
    assert killed["first_oom_t"] is not None
    assert any("OOM kill" in reason for reason in killed["reasons"])
    assert held["oom_kills"] == 0
    assert held["requests"] > 0
    # The kernel's high-water mark of the run that held is the service's need, within a few MiB.
    assert abs(held["peak_bytes"] - NEED_BYTES) < 6 * MIB, held["peak_bytes"] / MIB
    for row in document["runs"]:
        assert (run.out / row["report_json"]).is_file()
        assert (run.out / row["report_html"]).is_file()
        assert json.loads((run.out / row["report_json"]).read_text())["verdict"] == row["verdict"]
    (finding,) = document["findings"]
    assert (finding["lowest_holding"], finding["highest_failing"]) == (96 * MIB, 48 * MIB)
    assert (run.out / "sweep.html").is_file()
    assert "mem-48m" in run.stdout
    assert "mem-96m" in run.stdout
    assert _leftovers(run.project_prefix) == []


def test_fit_finds_the_limit_within_one_step_of_the_need_with_the_oom_as_evidence(fitted: ProbeRun) -> None:
    run = fitted
    assert run.exit_code == 0, _explain(run)
    document = _document(run, "fit")
    assert document["status"] == "found", _explain(run)
    holding, failing = document["lowest_holding"]["value"], document["highest_failing"]["value"]
    assert failing < NEED_BYTES <= holding, (failing / MIB, holding / MIB)
    assert holding - failing == 16 * MIB
    assert holding - NEED_BYTES < 16 * MIB  # within one step of the truth
    evidence = document["highest_failing"]
    assert evidence["oom_kills"] >= 1
    assert (run.out / evidence["report_html"]).is_file()
    # 64 MiB x 1.15 = 73.6 MiB, rounded up to the 16-MiB step.
    assert document["recommended"]["value"] == 80 * MIB
    assert document["rules"]["vpa"]["value"] == 250 * MIB  # VPA's floor: the need is far below it
    assert document["rules"]["krr"]["value"] >= NEED_BYTES
    # The top first, then bisection: not every limit of the grid was run.
    assert document["runs"][0]["label"] == "mem-96m-r1"
    assert len(document["runs"]) < len(document["grid"])
    assert "FOUND" in run.stdout
    assert _leftovers(run.project_prefix) == []


@pytest.mark.browser
def test_the_fit_page_opens_offline_in_chromium_with_a_mark_per_run(fitted: ProbeRun) -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    assert (fitted.out / "fit.html").is_file(), _explain(fitted)
    runs = json.loads((fitted.out / "fit.json").read_text())["runs"]
    with _page(fitted.out / "fit.html") as (page, requests, problems):
        assert page.locator("figure.chart canvas").count() == 5
        assert page.locator("figure.chart .no-data").count() == 0
        # Requests/s, errors and OOM kills: one mark per run each; latency p95 and p99; peak and limit.
        marks = page.locator("#chart-oom .mark")
        assert marks.count() == len(runs)
        hrefs = {marks.nth(i).get_attribute("href") for i in range(marks.count())}
        assert hrefs == {run["report_html"] for run in runs}
        assert page.locator("#highest-failing a").get_attribute("href") == "runs/mem-48m-r1/report.html"
        assert requests == [(fitted.out / "fit.html").as_uri()]
        assert problems == []


@contextlib.contextmanager
def _page(path: Path) -> Iterator[tuple[Page, list[str], list[str]]]:
    """Open a page in headless Chromium; yield it with the URLs it asked for and what went wrong."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            problems: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    problems.append(f"console error: {message.text}")

            page.on("request", lambda request: requests.append(request.url))
            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-charts-ready]", timeout=10_000)
            yield page, requests, problems
        finally:
            browser.close()
