"""The bundled stack rides out its database's restart and disconnection, and a killed app comes back.

Each test breaks one part of the session's stack the way an operator or the kernel would, checks what a
client sees meanwhile (JSON 503s with Retry-After, never a hang) and that the stack serves again by itself.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import docker
import pytest
import requests

from stackprobe.stack import ComposeError
from tests.http_session import Session
from tests.stack.conftest import BundledStack

pytestmark = pytest.mark.stack

# What a request may take while the database is cut off: its network timeout (3 s) plus the wait for a
# pooled connection (5 s), with room for a loaded machine.
LONGEST_ANSWER_S = 9.5
RECOVERY_DEADLINE_S = 60.0


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env(timeout=60)
    try:
        yield engine
    finally:
        engine.close()


def _create(app: Session, name: str) -> requests.Response:
    return app.post("/users", json={"name": name})


def _serves_again(app: Session, deadline_s: float = RECOVERY_DEADLINE_S) -> float:
    """Poll POST /users until it is a 201; return how long that took (seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            if _create(app, "back again").status_code == 201:
                return time.monotonic() - started
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the service did not serve again within {deadline_s:g} s")


def _assert_outage_answer(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"]


def test_a_database_cut_off_its_network_gives_503s_not_hangs_and_the_service_recovers_without_a_restart(
    bundled_stack: BundledStack, client: docker.DockerClient
) -> None:
    app, db = bundled_stack.container("app"), bundled_stack.container("db")
    network = client.networks.get(f"{bundled_stack.stack.project}_default")
    with Session(bundled_stack.app_url, timeout_s=20) as http:
        assert _create(http, "before the cut").status_code == 201
        network.disconnect(db)
        try:
            answers: list[tuple[float, requests.Response]] = []
            cut_at = time.monotonic()
            while time.monotonic() - cut_at < 8:
                started = time.monotonic()
                response = _create(http, "during the cut")
                answers.append((time.monotonic() - started, response))
        finally:
            network.connect(db, aliases=["db"])
        took = _serves_again(http)
    assert answers, "no request was answered while the database was cut off"
    for _, response in answers:
        _assert_outage_answer(response)
    assert max(seconds for seconds, _ in answers) < LONGEST_ANSWER_S, [round(s, 1) for s, _ in answers]
    assert took < 15, f"serving again took {took:.1f} s after the database came back"
    assert bundled_stack.container("app").attrs["RestartCount"] == app.attrs["RestartCount"]


def test_a_compose_restart_of_the_database_leaves_the_app_running_and_it_recovers_by_itself(
    bundled_stack: BundledStack,
) -> None:
    app = bundled_stack.container("app")
    bundled_stack.stack.run("restart", "db", timeout=120)
    with Session(bundled_stack.app_url, timeout_s=20) as http:
        _serves_again(http)
    after = bundled_stack.container("app")
    assert (after.attrs["State"]["StartedAt"], after.attrs["RestartCount"]) == (
        app.attrs["State"]["StartedAt"],
        app.attrs["RestartCount"],
    )


def test_an_app_killed_by_sigkill_comes_back_by_its_restart_policy(bundled_stack: BundledStack) -> None:
    app = bundled_stack.container("app")
    # As the OOM killer does: `docker kill` would mark the container stopped by hand, and no policy restarts that.
    os.kill(app.attrs["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while (restarted := bundled_stack.container("app")).attrs["RestartCount"] == app.attrs["RestartCount"]:
        assert time.monotonic() < deadline, "the killed app was not restarted"
        time.sleep(0.2)
    assert restarted.attrs["State"]["Pid"] != app.attrs["State"]["Pid"]
    # A port published as "127.0.0.1::5000" may get another host port when the container restarts, and has
    # none until the restarted container runs: ask until the engine gives one.
    while True:
        try:
            port = bundled_stack.stack.port("app", 5000)
            break
        except ComposeError:
            assert time.monotonic() < deadline, "the restarted app published no port"
            time.sleep(0.2)
    url = bundled_stack.app_url = f"http://127.0.0.1:{port}"
    with Session(url, timeout_s=20) as http:
        _serves_again(http, deadline - time.monotonic())
