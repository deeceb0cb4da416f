"""The database: one engine per app, created by the factory, and the schema created on first use."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry

from .config import Settings
from .models import Base

# Any constant works: it only has to be the same in every worker that may create the schema at once.
_SCHEMA_LOCK_KEY = 0x75736572  # "user"
_EXTENSION_KEY = "users.db"


class Database:
    """An engine, and whether its schema is known to exist."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def ensure_schema(self) -> None:
        """Create the schema the first time the database answers; later calls cost one attribute read."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                init_db(self.engine)
                self._schema_ready = True


def create_db_engine(settings: Settings) -> Engine:
    """Return an engine with a bounded pool sized for a small container."""
    options = f"-c timezone=UTC -c statement_timeout={settings.statement_timeout_ms}"
    engine = create_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_recycle=settings.pool_recycle_s,
        # 0 means ping on every checkout, which SQLAlchemy does itself.
        pool_pre_ping=settings.ping_after_idle_s == 0,
        # Every request is one statement (an INSERT ... RETURNING or a SELECT): autocommit spares the
        # BEGIN/COMMIT round trips and the ROLLBACK on return to the pool.
        isolation_level="AUTOCOMMIT",
        connect_args={
            "connect_timeout": settings.connect_timeout_s,
            "options": options,
            "application_name": "users",
            # A database cut off the network (not stopped: nothing resets the connection) would hold every
            # request on a pooled connection until the kernel gives up, about 15 min. Unacknowledged data
            # (tcp_user_timeout) or a silent peer (keepalives) ends the connection after a few seconds
            # instead, and the request gets the outage's 503.
            "tcp_user_timeout": settings.network_timeout_s * 1000,
            "keepalives": 1,
            "keepalives_idle": settings.network_timeout_s,
            "keepalives_interval": 1,
            "keepalives_count": settings.network_timeout_s,
        },
    )
    if settings.ping_after_idle_s > 0:
        _ping_after_idle(engine, settings.ping_after_idle_s)
    return engine


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout only when it has sat idle for `idle_s` seconds or more.

    A ping on every checkout (pool_pre_ping) is one more round trip per request: about a tenth of the
    service's CPU under load. A connection used moments ago is almost surely alive; one that has waited
    may have outlived a database restart and is replaced before any request sees it. Should a restart
    fall inside the idle window, the request gets a 503 and SQLAlchemy replaces the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _remember_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        # A connection never checked in was opened just now.
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool reconnects this one and, since a dead connection means the server restarted, drops
            # every other connection it holds from before now.
            raise InvalidatePoolError(f"stale pooled connection: {exc}") from exc


def init_db(engine: Engine) -> None:
    """Create the tables that do not exist yet; safe when several workers start at once."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="READ COMMITTED")
        with connection.begin():
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog: serialise it.
            connection.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            Base.metadata.create_all(connection)
            # create_all adds the index only with a new table: a table from an earlier version gets it here.
            connection.execute(text("CREATE INDEX IF NOT EXISTS users_name_idx ON users (name)"))


def init_app(app: Flask, settings: Settings) -> Database:
    """Attach a Database to the app; no connection is opened until a request needs one."""
    database = Database(create_db_engine(settings))
    app.extensions[_EXTENSION_KEY] = database
    return database


def get_db() -> Database:
    """Return the current app's Database."""
    database: Database = current_app.extensions[_EXTENSION_KEY]
    return database


def get_engine() -> Engine:
    """Return the current app's engine, with the schema in place."""
    database = get_db()
    database.ensure_schema()
    return database.engine
