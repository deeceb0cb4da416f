"""The schema is created on first use, once, however many workers start at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from users.db import init_db

from tests.http_session import Session
from tests.integration._service import running_service

pytestmark = pytest.mark.integration


def test_init_db_twice_keeps_the_table_and_its_rows(make_database: Callable[[str], str]) -> None:
    engine = create_engine(make_database("twice"))
    try:
        init_db(engine)
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO users (name) VALUES ('kept')"))
        init_db(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM users")).scalars().all() == ["kept"]
    finally:
        engine.dispose()


def test_init_db_from_many_connections_at_once_succeeds_everywhere(make_database: Callable[[str], str]) -> None:
    url = make_database("race")
    engines = [create_engine(url, pool_size=1) for _ in range(8)]
    start = threading.Barrier(len(engines))

    def race(engine: object) -> None:
        start.wait()
        init_db(engine)  # type: ignore[arg-type]

    try:
        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            for result in [pool.submit(race, engine) for engine in engines]:
                result.result(timeout=60)
        assert inspect(engines[0]).get_table_names() == ["users"]
    finally:
        for engine in engines:
            engine.dispose()


def test_several_workers_meeting_an_empty_database_at_once_all_serve(
    make_database: Callable[[str], str], tmp_path: Path
) -> None:
    env = {"GRANIAN_WORKERS": "4", "GRANIAN_BLOCKING_THREADS": "4"}
    with running_service(make_database("workers"), tmp_path / "service.log", env=env, wait_path="/healthz") as service:

        def create(i: int) -> int:
            # A Session of its own for each request: this is the start of 64 clients at once.
            with Session(service.url, timeout_s=30) as client:
                return client.post("/users", json={"name": f"first {i}"}).status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(create, range(64)))
        assert statuses == [201] * 64
        assert "Traceback" not in service.output()
