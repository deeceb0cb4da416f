"""Integration fixtures: one PostgreSQL container per session (testcontainers), the app on it, and the
service itself as production runs it (`python -m users.server`: Granian).

- `postgres`: the container; `database_url`: its `users` database (SQLAlchemy URL, psycopg 3).
- `app` / `client`: the Flask app and its test client on that database, emptied before each test.
- `live_service_url`: the real service (Granian, its production settings) on a free 127.0.0.1 port, for the
  whole session, on a database of its own so per-test cleaning never pulls rows from under it.
- `make_database`: a fresh, empty database in the same container, for tests that need their own.
- `http`: the test module's HTTP client (tests.http_session.Session: requests, with a timeout always set).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from testcontainers.community.postgres import PostgresContainer
from users import create_app
from users.db import init_db

from stackprobe.stack import free_ports
from tests.http_session import Session
from tests.integration._service import LiveService, running_service

# Durability is not under test here; without fsync, bulk inserts and container start are faster.
POSTGRES_COMMAND = "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"


def postgres_container(image: str) -> PostgresContainer:
    """Return a PostgreSQL container (not started) published on 127.0.0.1 only, at a port fixed now.

    A fixed port survives a stop and start of the container, which outage tests rely on.
    """
    container = PostgresContainer(
        image,
        username="users",
        password=secrets.token_urlsafe(16),
        dbname="users",
        driver="psycopg",
    ).with_command(POSTGRES_COMMAND)
    # with_bind_ports() takes no host address; the Docker SDK does: ("127.0.0.1", port).
    container.ports["5432"] = ("127.0.0.1", free_ports(1)[0])
    return container


@pytest.fixture(scope="session")
def postgres(postgres_image: str) -> Iterator[PostgresContainer]:
    """One PostgreSQL container for the session, removed at the end."""
    with postgres_container(postgres_image) as container:
        yield container


@pytest.fixture(scope="session")
def database_url(postgres: PostgresContainer) -> str:
    """The URL of the session's `users` database, with the schema in place."""
    url = postgres.get_connection_url()
    engine = create_engine(url)
    try:
        init_db(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def admin_engine(postgres: PostgresContainer) -> Iterator[Engine]:
    """An autocommit engine on the `postgres` database, for creating databases."""
    url = make_url(postgres.get_connection_url()).set(database="postgres")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def make_database(admin_engine: Engine, postgres: PostgresContainer) -> Callable[[str], str]:
    """Return a factory: create an empty database with a unique name and return its URL."""

    def make(prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with admin_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(postgres.get_connection_url()).set(database=name).render_as_string(hide_password=False)

    return make


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the session's `users` database, for arranging and checking rows directly."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(db_engine: Engine) -> Engine:
    """Empty the users table (ids restart at 1) before the test; return the engine."""
    with db_engine.begin() as connection:
        connection.execute(text("TRUNCATE users RESTART IDENTITY"))
    return db_engine


@pytest.fixture
def app(database_url: str, clean_db: Engine) -> Iterator[Flask]:
    """The app on the session's database, with an empty users table."""
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    yield app
    app.extensions["users.db"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture(scope="session")
def live_service(
    make_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The service as production runs it, for the whole session, on its own database."""
    log_path = tmp_path_factory.mktemp("live-service") / "service.log"
    with running_service(make_database("live"), log_path) as service:
        yield service


@pytest.fixture(scope="session")
def live_service_url(live_service: LiveService) -> str:
    """The base URL (http://127.0.0.1:PORT) of the service run for the session."""
    return live_service.url


@pytest.fixture(scope="module")
def http() -> Iterator[Session]:
    """One requests Session for the test module (full URLs, 15 s timeout), closed after it."""
    with Session() as session:
        yield session


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the service's output to the report of a failed test that used a live service."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveService):
                report.sections.append((f"users service output ({value.url})", value.output()))
    return report
