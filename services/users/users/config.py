"""The service's settings: read once from the environment, validated, never defaulted to a credential."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DRIVER = "postgresql+psycopg"
# Plain postgresql:// means psycopg2 to SQLAlchemy, which this service does not ship: read it as psycopg 3.
_DRIVERLESS_SCHEMES = {"postgres", "postgresql"}
_REQUIRED_PIECES = ("POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")


class ConfigError(RuntimeError):
    """The environment does not describe a usable configuration."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: URL
    pool_size: int = 4
    max_overflow: int = 0
    pool_timeout_s: float = 5.0
    pool_recycle_s: int = 1800
    ping_after_idle_s: int = 2
    connect_timeout_s: int = 3
    network_timeout_s: int = 3
    statement_timeout_ms: int = 5000
    max_content_length: int = 16 * 1024

    @property
    def safe_database_url(self) -> str:
        """Return the database URL with its password masked, for logs and messages."""
        return self.database_url.render_as_string(hide_password=True)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Return validated settings from an environment mapping; raise ConfigError saying what is wrong."""
    return Settings(
        database_url=_database_url(environ),
        pool_size=_int(environ, "DB_POOL_SIZE", 4, 1, 100),
        max_overflow=_int(environ, "DB_MAX_OVERFLOW", 0, 0, 100),
        pool_timeout_s=float(_int(environ, "DB_POOL_TIMEOUT", 5, 1, 300)),
        pool_recycle_s=_int(environ, "DB_POOL_RECYCLE", 1800, 60, 86400),
        ping_after_idle_s=_int(environ, "DB_PING_AFTER_IDLE_S", 2, 0, 3600),
        connect_timeout_s=_int(environ, "DB_CONNECT_TIMEOUT", 3, 1, 60),
        network_timeout_s=_int(environ, "DB_NETWORK_TIMEOUT", 3, 1, 300),
        statement_timeout_ms=_int(environ, "DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
        max_content_length=_int(environ, "MAX_CONTENT_LENGTH", 16 * 1024, 1024, 1024 * 1024),
    )


def _database_url(environ: Mapping[str, str]) -> URL:
    raw = environ.get("DATABASE_URL", "").strip()
    if raw:
        return _parse_database_url(raw)
    pieces = {name: environ.get(name, "").strip() for name in _REQUIRED_PIECES}
    password_file = environ.get("POSTGRES_PASSWORD_FILE", "").strip()
    if not pieces["POSTGRES_PASSWORD"] and password_file:
        pieces["POSTGRES_PASSWORD"] = _read_secret(password_file)
    if not any(pieces.values()):
        raise ConfigError(
            "no database configured: set DATABASE_URL (postgresql+psycopg://user:password@host:5432/db) "
            "or POSTGRES_HOST, POSTGRES_USER and POSTGRES_PASSWORD (POSTGRES_PORT and POSTGRES_DB optional)"
        )
    missing = [name for name, value in pieces.items() if not value]
    if missing:
        raise ConfigError(f"incomplete database configuration: {', '.join(missing)} not set")
    user = pieces["POSTGRES_USER"]
    return URL.create(
        DRIVER,
        username=user,
        password=pieces["POSTGRES_PASSWORD"],
        host=pieces["POSTGRES_HOST"],
        port=_int(environ, "POSTGRES_PORT", 5432, 1, 65535),
        # The official image names the default database after the user: so do we.
        database=environ.get("POSTGRES_DB", "").strip() or user,
    )


def _parse_database_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        # The message would echo the URL, password included: say only what is expected.
        raise ConfigError("DATABASE_URL is not a URL like postgresql+psycopg://user:password@host:5432/db") from None
    if url.drivername in _DRIVERLESS_SCHEMES:
        url = url.set(drivername=DRIVER)
    if url.drivername != DRIVER:
        raise ConfigError(f"DATABASE_URL must use {DRIVER}://, not {url.drivername}://")
    if not url.database:
        raise ConfigError("DATABASE_URL names no database")
    return url


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"POSTGRES_PASSWORD_FILE cannot be read: {exc.strerror} ({path})") from None


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}, got {value}")
    return value
