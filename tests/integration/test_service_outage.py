"""The database goes away and comes back: the service answers 503s meanwhile and recovers by itself.

These tests stop and start a PostgreSQL container of their own (on a fixed 127.0.0.1 port, so it comes
back where the service expects it), so the session's database is never disturbed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from testcontainers.community.postgres import PostgresContainer

from tests.http_session import Session
from tests.integration._service import LiveService, running_service
from tests.integration.conftest import postgres_container

pytestmark = pytest.mark.integration

RECOVERY_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def outage_postgres(postgres_image: str) -> Iterator[PostgresContainer]:
    """A PostgreSQL container these tests may stop and start."""
    with postgres_container(postgres_image) as container:
        yield container


def stop_database(container: PostgresContainer) -> None:
    """Stop the database container (its data stays)."""
    container.get_wrapped_container().stop(timeout=10)


def start_database(container: PostgresContainer) -> None:
    """Start the stopped database container again; readiness is for the service to find out."""
    container.get_wrapped_container().start()


def assert_unavailable(response: requests.Response) -> None:
    """Check a response is the JSON 503 of a database outage."""
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"]


def processes(service: LiveService) -> set[int]:
    """Return the pids of the main process and its workers."""
    return {service.pid, *service.worker_pids()}


def test_service_started_before_its_database_serves_once_the_database_is_up(
    outage_postgres: PostgresContainer, http: Session, tmp_path: Path
) -> None:
    url = outage_postgres.get_connection_url()  # asks the engine for the port: only while running
    stop_database(outage_postgres)
    try:
        with running_service(url, tmp_path / "service.log", wait_path="/healthz") as service:
            started = processes(service)
            assert http.get(f"{service.url}/healthz").json() == {"status": "ok"}
            assert_unavailable(http.get(f"{service.url}/readyz"))
            assert_unavailable(http.post(f"{service.url}/users", json={"name": "too early"}))
            assert_unavailable(http.get(f"{service.url}/users"))
            start_database(outage_postgres)
            service.wait_ready(timeout_s=RECOVERY_DEADLINE_S)
            created = http.post(f"{service.url}/users", json={"name": "on time"})
            assert created.status_code == 201
            assert http.get(service.url + created.headers["Location"]).json()["name"] == "on time"
            assert processes(service) == started, "the service restarted a process instead of recovering"
            assert "Traceback" not in service.output()
    finally:
        start_database(outage_postgres)


def test_database_restart_gives_503s_then_the_service_recovers_by_itself(
    outage_postgres: PostgresContainer, http: Session, tmp_path: Path
) -> None:
    with running_service(outage_postgres.get_connection_url(), tmp_path / "service.log") as service:
        started = processes(service)
        before = http.post(f"{service.url}/users", json={"name": "before the outage"})
        assert before.status_code == 201
        for _ in range(20):  # every pooled connection in use recently, as under load
            assert http.get(f"{service.url}/users").status_code == 200

        stop_database(outage_postgres)
        try:
            assert http.get(f"{service.url}/healthz").status_code == 200
            for _ in range(10):
                assert_unavailable(http.post(f"{service.url}/users", json={"name": "during the outage"}))
                assert_unavailable(http.get(f"{service.url}/users"))
            assert_unavailable(http.get(f"{service.url}/readyz"))
        finally:
            start_database(outage_postgres)

        statuses: Counter[int] = Counter()
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        while True:
            response = http.post(f"{service.url}/users", json={"name": "after the outage"})
            statuses[response.status_code] += 1
            if response.status_code == 201:
                break
            assert_unavailable(response)
            assert time.monotonic() < deadline, f"no recovery within {RECOVERY_DEADLINE_S} s: {statuses}"
            time.sleep(0.2)
        for _ in range(20):
            assert http.get(f"{service.url}/users").status_code == 200
        assert http.get(service.url + before.headers["Location"]).json() == before.json()
        assert set(statuses) <= {201, 503}
        assert processes(service) == started, "the service restarted a process instead of recovering"
        assert "Traceback" not in service.output()


def wait_for_database(url: str, timeout_s: float = RECOVERY_DEADLINE_S) -> None:
    """Poll until PostgreSQL at `url` accepts a connection."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(conninfo, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, f"database not back within {timeout_s} s"
            time.sleep(0.2)


def test_restart_while_the_service_idles_is_invisible_to_its_next_requests(
    outage_postgres: PostgresContainer, http: Session, tmp_path: Path
) -> None:
    url = outage_postgres.get_connection_url()
    env = {"DB_PING_AFTER_IDLE_S": "1"}
    with running_service(url, tmp_path / "service.log", env=env) as service:
        for _ in range(40):  # fill every worker's pool
            assert http.get(f"{service.url}/users").status_code == 200
        last_request = time.monotonic()
        stop_database(outage_postgres)
        start_database(outage_postgres)
        wait_for_database(url)
        # The behaviour under test: connections idle past DB_PING_AFTER_IDLE_S are checked before use.
        time.sleep(max(0.0, last_request + 1.5 - time.monotonic()))
        statuses = Counter(
            http.post(f"{service.url}/users", json={"name": f"after a quiet restart {i}"}).status_code
            for i in range(20)
        )
        statuses.update(http.get(f"{service.url}/users").status_code for _ in range(20))
        assert statuses == Counter({201: 20, 200: 20})
