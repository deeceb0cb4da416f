"""The bundled stack, as `make up` starts it: routes, errors, limits in force, the optional profiles."""

from __future__ import annotations

import time

import docker
import pytest

from tests.http_session import Session
from tests.stack.conftest import BundledStack

pytestmark = pytest.mark.stack

LIMIT_128_MIB = 128 * 1024 * 1024


def test_app_memory_limit_is_strict_128_mib_in_host_config(bundled_stack: BundledStack) -> None:
    host_config = bundled_stack.container("app").attrs["HostConfig"]
    assert (host_config["Memory"], host_config["MemorySwap"]) == (LIMIT_128_MIB, LIMIT_128_MIB)


def test_app_cgroup_inside_the_container_agrees_with_the_limit(bundled_stack: BundledStack) -> None:
    container = bundled_stack.container("app")
    # cgroup v1 names the file memory.limit_in_bytes, v2 memory.max; whichever exists must say 128 MiB.
    result = container.exec_run(
        ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]
    )
    assert result.exit_code == 0, result.output
    assert int(result.output.decode().strip()) == LIMIT_128_MIB


def test_app_runs_as_a_non_root_user(bundled_stack: BundledStack) -> None:
    result = bundled_stack.container("app").exec_run(["id", "-u"])
    assert result.exit_code == 0
    assert result.output.decode().strip() != "0"


def test_app_image_stops_gracefully_on_sigterm_as_pid_1(bundled_stack: BundledStack) -> None:
    # docker stop sends SIGTERM to PID 1 and SIGKILL (exit 137) after the timeout: the server must be PID 1
    # itself (users.server execs it) and shut down on SIGTERM. A database that is not there is fine: the
    # service connects on first request only.
    client = docker.from_env()
    container = client.containers.run(
        bundled_stack.container("app").image.id,
        environment={"DATABASE_URL": "postgresql+psycopg://users:secret@127.0.0.1:9/users"},
        detach=True,
        name=f"{bundled_stack.stack.project}-sigterm",
    )
    try:
        deadline = time.monotonic() + 60
        while b"Started worker" not in container.logs():
            assert time.monotonic() < deadline, container.logs().decode(errors="replace")
            time.sleep(0.2)
        assert container.top()["Processes"][0][-1].startswith("/opt/venv/bin/python3 -m granian")
        started = time.monotonic()
        container.stop(timeout=15)
        stopped_in = time.monotonic() - started
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode(errors="replace")
        assert stopped_in < 10, f"took {stopped_in:.1f} s to stop"
    finally:
        container.remove(force=True)
        client.close()


def test_health_and_readiness_answer(http: Session) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").json() == {"status": "ready"}


def test_created_user_is_listed_and_fetched(http: Session) -> None:
    created = http.post("/users", json={"name": "  Ana Souza  "})
    assert created.status_code == 201
    user = created.json()
    assert user["name"] == "Ana Souza"
    assert created.headers["Location"].endswith(f"/users/{user['id']}")
    assert http.get(f"/users/{user['id']}").json() == user
    ids = []
    url: str | None = "/users?limit=500"
    while url:
        page = http.get(url).json()
        ids += [item["id"] for item in page["items"]]
        url = page["next"]
    assert user["id"] in ids


def test_openapi_document_lists_every_route(http: Session) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/users", "/users/{id}", "/healthz", "/readyz"} <= set(document["paths"])


BAD_REQUESTS = [
    ("POST", "/users", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
    ("POST", "/users", {"data": b"name=x", "headers": {"Content-Type": "text/plain"}}, 415),
    ("POST", "/users", {"json": {}}, 400),
    ("POST", "/users", {"json": {"name": "   "}}, 400),
    ("POST", "/users", {"json": {"name": "x" * 81}}, 400),
    ("POST", "/users", {"json": {"name": 42}}, 400),
    ("POST", "/users", {"json": ["name"]}, 400),
    ("POST", "/users", {"data": b"x" * 2_000_000, "headers": {"Content-Type": "application/json"}}, 413),
    ("GET", "/users?limit=abc", {}, 400),
    ("GET", "/users?limit=0", {}, 400),
    ("GET", "/users?limit=501", {}, 400),
    ("GET", "/users?after=%%%garbage", {}, 400),
    ("GET", "/users/not-a-number", {}, 404),
    ("GET", "/users/999999999", {}, 404),
    ("GET", "/no/such/route", {}, 404),
    ("DELETE", "/users", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD_REQUESTS)
def test_bad_request_gets_a_json_4xx_naming_the_problem(
    http: Session, method: str, path: str, kwargs: dict, status: int
) -> None:
    response = http.request(method, path, **kwargs)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status
    assert error["code"]
    assert error["message"]


def test_service_keeps_serving_after_a_burst_of_bad_requests(http: Session) -> None:
    for _ in range(20):
        for method, path, kwargs, _status in BAD_REQUESTS:
            assert http.request(method, path, **kwargs).status_code < 500
    for i in range(50):
        assert http.post("/users", json={"name": f"after-burst-{i}"}).status_code == 201
        assert http.get("/users").status_code == 200


def test_web_profile_serves_the_tutorial_page(bundled_stack: BundledStack, http: Session) -> None:
    response = http.get(bundled_stack.web_url + "/")
    assert response.status_code == 200
    # nginx names no charset, for which requests reads text/html as ISO-8859-1: the page's <meta> says UTF-8.
    assert "Teste de Página HTML" in response.content.decode("utf-8")


def test_tools_profile_serves_adminer(bundled_stack: BundledStack, http: Session) -> None:
    response = http.get(bundled_stack.adminer_url + "/")
    assert response.status_code == 200
    assert "Adminer" in response.text
