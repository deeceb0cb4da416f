"""Memory per request does not grow with the table: pages are bounded, whatever the table holds."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from users.cursors import encode_cursor

from tests.http_session import Session
from tests.integration._service import LiveService, running_service

pytestmark = pytest.mark.integration

SMALL, LARGE = 1_000, 50_000
MIB = 1024 * 1024


def fill(engine: Engine, total: int) -> None:
    """Grow the users table to `total` rows straight in PostgreSQL."""
    with engine.begin() as connection:
        present = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
        connection.execute(
            text("INSERT INTO users (name) SELECT 'bulk ' || g FROM generate_series(1, :n) AS g"),
            {"n": total - present},
        )


def peak_bytes(client: FlaskClient, url: str) -> int:
    """Return the peak of Python allocations while one GET of `url` is served (after a warm-up request)."""
    assert client.get(url).status_code == 200
    tracemalloc.start()
    try:
        response = client.get(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 500
    return peak


def test_page_memory_is_the_same_for_1k_and_50k_rows(client: FlaskClient, clean_db: Engine) -> None:
    fill(clean_db, SMALL)
    first_small = peak_bytes(client, "/users?limit=500")
    deep_small = peak_bytes(client, f"/users?limit=500&after={encode_cursor(SMALL - 500)}")
    fill(clean_db, LARGE)
    first_large = peak_bytes(client, "/users?limit=500")
    deep_large = peak_bytes(client, f"/users?limit=500&after={encode_cursor(LARGE - 500)}")
    small = max(first_small, deep_small)
    # 50 times the rows; the page costs the same, give or take allocator noise.
    assert first_large <= small * 1.25 + 64 * 1024, (first_small, first_large)
    assert deep_large <= small * 1.25 + 64 * 1024, (deep_small, deep_large)


@pytest.fixture(scope="module")
def large_service(
    make_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveService, Engine]]:
    """The service as production runs it, on a database of its own holding 50,000 users."""
    url = make_database("large")
    log_path: Path = tmp_path_factory.mktemp("large-service") / "service.log"
    with running_service(url, log_path) as service:
        engine = create_engine(url)
        try:
            fill(engine, LARGE)
            yield service, engine
        finally:
            engine.dispose()


def service_rss(service: LiveService) -> int:
    """Return the resident memory of the main process and its workers together."""
    master = psutil.Process(service.pid)
    return sum(process.memory_info().rss for process in [master, *master.children()])


@pytest.fixture(scope="module")
def http(large_service: tuple[LiveService, Engine]) -> Iterator[Session]:
    """The module's HTTP client, paths resolved against the large service; 30 s for a page of a large table."""
    with Session(large_service[0].url, timeout_s=30) as session:
        yield session


def test_service_memory_stays_flat_while_walking_a_large_table(
    large_service: tuple[LiveService, Engine], http: Session
) -> None:
    service, _ = large_service
    for _ in range(50):  # every worker and thread warmed up: pools filled, statements prepared
        assert http.get("/users?limit=500").status_code == 200
    before = service_rss(service)
    seen = 0
    url: str | None = "/users?limit=500"
    while url:
        page = http.get(url).json()
        seen += len(page["items"])
        url = page["next"]
    for _ in range(100):
        assert http.get("/users?limit=500").status_code == 200
    after = service_rss(service)
    assert seen == LARGE
    assert after - before < 8 * MIB, f"RSS grew by {(after - before) / MIB:.1f} MiB walking {LARGE} rows"
