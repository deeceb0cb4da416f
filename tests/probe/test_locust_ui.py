"""The Locust plugin stackprobe.locust_ui: a Containers tab in Locust's own web UI, seen in headless Chromium.

Locust runs as users run it, a subprocess serving its web UI on 127.0.0.1 and a free port: against the
bundled stack, against a local server with no engine reachable, and beside a container OOM-killed on purpose.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container
from playwright.sync_api import Browser, Page

from stackprobe.stack import ServiceOverride, Stack, free_ports, unique_project_name
from tests.conftest import ROOT

LOCUST = [sys.executable, "-m", "locust"]
PLUGIN = "stackprobe/locust_ui.py"
TAB_KEY = "stackprobe-containers"
MIB = 1024 * 1024
TIMEOUT_S = 10  # every HTTP request of these tests


@dataclass
class UiStack:
    """The bundled stack (db and app) up for these tests, and its app's URL on 127.0.0.1."""

    stack: Stack
    app_url: str


@dataclass
class LocustUi:
    """A Locust process serving its web UI at url; log is its output so far (read after it stops)."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def ui_stack() -> Iterator[UiStack]:
    """The bundled stack's db and app (128 MiB) under a project name of its own; down -v after."""
    env = {} if os.environ.get("POSTGRES_PASSWORD") else {"POSTGRES_PASSWORD": secrets.token_urlsafe(16)}
    stack = Stack(
        [ROOT / "docker-compose.yml"],
        project=unique_project_name("stackprobe-locustui"),
        overrides={"app": ServiceOverride(publish_ports=[5000])},
        env=env,
    )
    with stack.running(wait_timeout=120):
        yield UiStack(stack=stack, app_url=f"http://127.0.0.1:{stack.port('app', 5000)}")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """An HTTP session for Locust's web UI (every call passes timeout=TIMEOUT_S)."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def start_locust(tmp_path: Path) -> Iterator[Callable[..., LocustUi]]:
    """Return a function that starts `locust -f FILES` with its web UI on 127.0.0.1; each is stopped after."""
    started: list[LocustUi] = []

    def start(files: str, *args: str, env: dict[str, str] | None = None) -> LocustUi:
        port = free_ports(1)[0]
        log_path = tmp_path / f"locust-{port}.log"
        argv = [*LOCUST, "-f", files, "--web-host", "127.0.0.1", "--web-port", str(port), *args]
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, text=True
            )
        ui = LocustUi(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
        started.append(ui)
        _wait_until_serving(ui)
        return ui

    yield start
    for ui in started:
        _stop(ui)


def _wait_until_serving(ui: LocustUi, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            pytest.fail(f"locust exited with {ui.process.returncode}:\n{ui.log()[-3000:]}", pytrace=False)
        try:
            if requests.get(ui.url + "/", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)  # polling a port with a deadline, not a readiness guess
    pytest.fail(f"locust's web UI did not answer within {timeout_s} s:\n{ui.log()[-3000:]}", pytrace=False)


def _stop(ui: LocustUi) -> None:
    """Stop Locust as Ctrl-C would (it runs its quitting listeners), killing it if it hangs."""
    if ui.process.poll() is None:
        ui.process.send_signal(signal.SIGTERM)
        try:
            ui.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ui.process.kill()
            ui.process.wait()


def _template_args(http: requests.Session, ui: LocustUi) -> dict[str, Any]:
    """Return the template arguments Locust's page was rendered with (its `templateArgs` object)."""
    html = http.get(ui.url + "/", timeout=TIMEOUT_S).text
    start = html.index("templateArgs = ") + len("templateArgs = ")
    args, _ = json.JSONDecoder().raw_decode(html, start)
    return args


def _start_test_and_open_tab(page: Page, ui: LocustUi) -> None:
    """Start a test from Locust's form, as a user does, then open the Containers tab."""
    page.goto(ui.url + "/")
    page.get_by_role("button", name="Start").click()
    page.get_by_role("tab", name="Containers").click()


def _rows(page: Page) -> list[list[str]]:
    """Return the text of each cell of the tab's table, row by row."""
    return [[cell.inner_text().strip() for cell in row.locator("td").all()] for row in page.locator("tbody tr").all()]


def _columns(page: Page) -> list[str]:
    return [" ".join(cell.inner_text().split()) for cell in page.locator("thead th").all()]


@pytest.mark.probe
@pytest.mark.browser
def test_the_containers_tab_draws_each_containers_memory_against_its_limit(
    ui_stack: UiStack, start_locust, browser: Browser, http: requests.Session, tmp_path: Path
) -> None:
    project = ui_stack.stack.project
    ui = start_locust(f"loadtests,{PLUGIN}", "-H", ui_stack.app_url, "--stackprobe-project", str(project))
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    try:
        _start_test_and_open_tab(page, ui)
        app_name = f"{project}-app-1"
        # The page polls every 2 s while the test runs; the first figures come with the first stats sample.
        page.get_by_role("cell", name=app_name).wait_for(timeout=15_000)
        page.locator("tbody tr", has_text=app_name).locator("td", has_text="%").first.wait_for(timeout=15_000)
        shot = tmp_path / "locust-containers.png"
        page.screenshot(path=str(shot))
        columns = _columns(page)
        rows = {row[0]: dict(zip(columns, row, strict=True)) for row in _rows(page)}
    finally:
        page.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
    assert set(rows) == {app_name, f"{project}-db-1"}
    app = rows[app_name]
    assert app["Service"] == "app"
    assert app["State"] == "running"
    assert app["Limit"] == "128.0 MiB"
    memory = re.fullmatch(r"(\d+\.\d) MiB", app["Memory (docker stats)"])
    assert memory is not None, app
    drawn = re.fullmatch(r"(█*)(░*) (\d+) %", app["Memory / limit"])
    assert drawn is not None, app
    assert len(drawn[1]) + len(drawn[2]) == 10
    assert 0 < int(drawn[3]) < 100
    # The bar draws the figure beside it: memory over the limit, in tenths (both rounded).
    assert abs(len(drawn[1]) - float(memory[1]) / 128 * 10) <= 0.6
    assert re.fullmatch(r"\d+\.\d %", app["CPU (% of a core)"]), app
    assert app["OOM kills (kernel counter)"] == "0"
    assert app["Restarts"] == "0"
    assert rows[f"{project}-db-1"]["Limit"] == "none"

    # The same figures as numbers, with their sources, for scripts.
    doc = http.get(ui.url + "/stackprobe/containers", timeout=TIMEOUT_S).json()
    assert (doc["engine"], doc["project"], doc["message"]) == ("reachable", project, "")
    figures = {c["name"]: c for c in doc["containers"]}
    assert figures[app_name]["limit_bytes"] == 128 * MIB
    assert 0 < figures[app_name]["memory_bytes"] < 128 * MIB
    assert figures[app_name]["peak_source"].startswith("cgroup v")


@pytest.fixture
def plain_target() -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 that answers every request 404: something for Locust to load."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.browser
def test_without_an_engine_the_tab_says_so_and_locust_loads_as_usual(
    plain_target: str, start_locust, browser: Browser, http: requests.Session, tmp_path: Path
) -> None:
    no_engine = f"unix://{tmp_path / 'no-engine.sock'}"
    ui = start_locust(f"loadtests,{PLUGIN}", "-H", plain_target, env={"DOCKER_HOST": no_engine})
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    try:
        _start_test_and_open_tab(page, ui)
        message = page.get_by_role("cell", name=re.compile("^Docker engine unreachable: "))
        message.wait_for(timeout=15_000)
        page.screenshot(path=str(tmp_path / "locust-no-engine.png"))
        assert page.locator("tbody tr").count() == 1
    finally:
        page.close()
    # Locust loads as usual (the target's 404s are its failures): requests are counted within seconds.
    deadline = time.monotonic() + 15
    stats = http.get(ui.url + "/stats/requests", timeout=TIMEOUT_S).json()
    while not sum(s["num_requests"] for s in stats["stats"]):
        assert time.monotonic() < deadline, stats
        time.sleep(0.2)
        stats = http.get(ui.url + "/stats/requests", timeout=TIMEOUT_S).json()
    assert stats["state"] == "running"
    assert ui.process.poll() is None
    assert "Traceback" not in ui.log()


def test_locust_without_the_plugin_has_no_containers_tab_or_route(
    start_locust, http: requests.Session, tmp_path: Path
) -> None:
    ui = start_locust("loadtests", "-H", "http://127.0.0.1:9", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    args = _template_args(http, ui)
    assert "extended_tabs" not in args
    assert http.get(ui.url + "/stackprobe/containers", timeout=TIMEOUT_S).status_code == 404


def test_the_plugin_named_by_path_and_imported_by_a_locustfile_adds_one_tab(
    start_locust, http: requests.Session, tmp_path: Path
) -> None:
    oneliner = tmp_path / "containers.py"
    oneliner.write_text("import stackprobe.locust_ui  # noqa: F401\n")
    no_engine = f"unix://{tmp_path}/none.sock"
    ui = start_locust(f"loadtests,{PLUGIN},{oneliner}", "-H", "http://127.0.0.1:9", env={"DOCKER_HOST": no_engine})
    args = _template_args(http, ui)
    assert args["extended_tabs"] == [{"key": TAB_KEY, "title": "Containers"}]
    assert [t["key"] for t in args["extended_tables"]] == [TAB_KEY]
    doc = http.get(ui.url + "/stackprobe/containers", timeout=TIMEOUT_S).json()
    assert doc["engine"] == "unreachable"
    assert doc["message"].startswith("Docker engine unreachable: ")


# Under a 64 MiB limit: PID 1 asks for 128 MiB a second after it starts, and is OOM-killed.
KILLED_AFTER_A_SECOND = "import time; time.sleep(1); b = b'x' * (128 << 20)"


@pytest.fixture
def killed_twice_project(client: docker.DockerClient, python_image: str) -> Iterator[Callable[[str], str]]:
    """Return a function that starts a container, labelled as service `grow` of the project named, which is
    OOM-killed, restarted once by its policy and OOM-killed again; it is removed after the test."""
    started: list[Container] = []

    def start(project: str) -> str:
        started.append(
            client.containers.run(
                python_image,
                ["python3", "-c", KILLED_AFTER_A_SECOND],
                detach=True,
                name=f"{project}-grow-1",
                labels={"com.docker.compose.project": project, "com.docker.compose.service": "grow"},
                mem_limit="64m",
                memswap_limit="64m",
                restart_policy={"Name": "on-failure", "MaximumRetryCount": 1},
            )
        )
        return f"{project}-grow-1"

    try:
        yield start
    finally:
        for container in started:
            container.remove(force=True)


@pytest.mark.probe
def test_oom_kills_and_restarts_are_counted_live_by_the_panel(
    killed_twice_project, plain_target: str, start_locust, http: requests.Session
) -> None:
    project = unique_project_name("stackprobe-locustui-oom")
    ui = start_locust(f"loadtests,{PLUGIN}", "-H", plain_target, "--stackprobe-project", project)
    # A named project is watched before it has a container: the engine's start event announces each one.
    assert http.get(ui.url + "/stackprobe/containers", timeout=TIMEOUT_S).json()["project"] == project
    name = killed_twice_project(project)
    deadline = time.monotonic() + 25
    while True:
        doc = http.get(ui.url + "/stackprobe/containers", timeout=TIMEOUT_S).json()
        grow = {c["name"]: c for c in doc["containers"]}.get(name)
        if grow is not None and grow["state"] == "exited (137)" and grow["restarts"] == 1:
            break
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)
    assert grow["oom_kills"] == 2, grow
    assert grow["limit_bytes"] == 64 * MIB
    assert grow["oom_kills_source"].startswith("the kernel's oom_kill counter")
