"""With 200,000 rows in the table, pages still answer and the app stays inside its 128 MiB limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http_session import Session
from tests.stack.conftest import BundledStack

pytestmark = pytest.mark.stack

ROWS = 200_000


def _memory_cgroup_file(name_v1: str, name_v2: str) -> list[str]:
    return ["sh", "-c", f"cat /sys/fs/cgroup/memory/{name_v1} 2>/dev/null || cat /sys/fs/cgroup/{name_v2}"]


@pytest.fixture(scope="module")
def large_table(bundled_stack: BundledStack) -> int:
    """Fill the users table to at least 200,000 rows straight in PostgreSQL; return the row count."""
    db = bundled_stack.container("db")
    sql = (
        "INSERT INTO users (name) SELECT 'bulk-' || g FROM generate_series(1, "
        f"{ROWS}) AS g; SELECT count(*) FROM users;"
    )
    psql = 'psql -v ON_ERROR_STOP=1 -qtA -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$0"'
    result = db.exec_run(["sh", "-c", psql, sql])
    assert result.exit_code == 0, result.output.decode()
    return int(result.output.decode().split()[-1])


@pytest.fixture(scope="module")
def http(bundled_stack: BundledStack) -> Iterator[Session]:
    """The module's HTTP client for the users service; 30 s for a page of a large table."""
    with Session(bundled_stack.app_url, timeout_s=30) as session:
        yield session


def test_walking_every_page_of_a_large_table_sees_each_row_once(http: Session, large_table: int) -> None:
    seen: set[int] = set()
    url: str | None = "/users?limit=500"
    while url:
        response = http.get(url)
        assert response.status_code == 200
        page = response.json()
        ids = [item["id"] for item in page["items"]]
        assert not seen.intersection(ids)
        seen.update(ids)
        url = page["next"]
    assert len(seen) == large_table >= ROWS


def test_large_table_never_pushes_the_app_to_its_limit(
    bundled_stack: BundledStack, http: Session, large_table: int
) -> None:
    for _ in range(200):
        assert http.get("/users", params={"limit": 500}).status_code == 200
    app = bundled_stack.container("app")
    assert app.attrs["State"]["OOMKilled"] is False
    assert app.attrs["RestartCount"] == 0
    peak = app.exec_run(_memory_cgroup_file("memory.max_usage_in_bytes", "memory.peak"))
    if peak.exit_code == 0:  # memory.peak needs Linux 5.19 on cgroup v2
        assert int(peak.output.decode().strip()) < 128 * 1024 * 1024
