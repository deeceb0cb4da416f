"""The users service's settings: read from the environment, validated, never defaulted to a credential."""

from __future__ import annotations

from pathlib import Path

import pytest
from users import create_app
from users.config import ConfigError, load_settings

PIECES = {"POSTGRES_HOST": "db", "POSTGRES_USER": "users", "POSTGRES_PASSWORD": "s3cret"}


def test_nothing_configured_refuses_with_a_message_naming_both_ways() -> None:
    with pytest.raises(ConfigError, match=r"no database configured: set DATABASE_URL .* or POSTGRES_HOST"):
        load_settings({})


def test_app_factory_refuses_to_start_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="no database configured"):
        create_app()


def test_pieces_build_a_psycopg_url_with_the_default_port_and_database() -> None:
    url = load_settings(PIECES).database_url
    assert (url.drivername, url.host, url.port, url.username, url.database) == (
        "postgresql+psycopg",
        "db",
        5432,
        "users",
        "users",
    )


def test_pieces_take_port_and_database_when_given() -> None:
    url = load_settings({**PIECES, "POSTGRES_PORT": "6543", "POSTGRES_DB": "directory"}).database_url
    assert (url.port, url.database) == (6543, "directory")


def test_password_with_url_special_characters_survives_intact() -> None:
    url = load_settings({**PIECES, "POSTGRES_PASSWORD": "p@ss:/w?rd#%"}).database_url
    assert url.password == "p@ss:/w?rd#%"


def test_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    environ = {"POSTGRES_HOST": "db", "POSTGRES_USER": "users", "POSTGRES_PASSWORD_FILE": str(secret)}
    assert load_settings(environ).database_url.password == "from-file"


def test_unreadable_password_file_is_named(tmp_path: Path) -> None:
    environ = {"POSTGRES_HOST": "db", "POSTGRES_USER": "users", "POSTGRES_PASSWORD_FILE": str(tmp_path / "none")}
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD_FILE cannot be read"):
        load_settings(environ)


@pytest.mark.parametrize("missing", sorted(PIECES))
def test_incomplete_pieces_name_what_is_missing(missing: str) -> None:
    environ = {name: value for name, value in PIECES.items() if name != missing}
    with pytest.raises(ConfigError, match=f"incomplete database configuration: {missing} not set"):
        load_settings(environ)


def test_database_url_wins_over_pieces() -> None:
    settings = load_settings({**PIECES, "DATABASE_URL": "postgresql+psycopg://a:b@elsewhere:5433/other"})
    assert (settings.database_url.host, settings.database_url.database) == ("elsewhere", "other")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_driverless_database_url_means_psycopg_3(scheme: str) -> None:
    url = load_settings({"DATABASE_URL": f"{scheme}://a:b@h/db"}).database_url
    assert url.drivername == "postgresql+psycopg"


def test_database_url_for_another_driver_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"must use postgresql\+psycopg://, not mysql\+pymysql://"):
        load_settings({"DATABASE_URL": "mysql+pymysql://a:b@h/db"})


def test_malformed_database_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"DATABASE_URL": "not a url with hunter2"})
    assert "hunter2" not in str(raised.value)


def test_database_url_without_a_database_is_refused() -> None:
    with pytest.raises(ConfigError, match="names no database"):
        load_settings({"DATABASE_URL": "postgresql+psycopg://a:b@h"})


def test_safe_url_masks_the_password() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql+psycopg://a:hunter2@h/db"})
    assert "hunter2" not in settings.safe_database_url
    assert "***" in settings.safe_database_url


def test_tuning_values_are_read() -> None:
    settings = load_settings(
        {
            **PIECES,
            "DB_POOL_SIZE": "8",
            "DB_MAX_OVERFLOW": "2",
            "DB_PING_AFTER_IDLE_S": "0",
            "DB_NETWORK_TIMEOUT": "7",
            "MAX_CONTENT_LENGTH": "4096",
        }
    )
    assert (settings.pool_size, settings.max_overflow, settings.ping_after_idle_s, settings.max_content_length) == (
        8,
        2,
        0,
        4096,
    )
    assert settings.network_timeout_s == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [("DB_POOL_SIZE", "many"), ("DB_POOL_SIZE", "0"), ("DB_POOL_SIZE", "1000"), ("POSTGRES_PORT", "70000")],
)
def test_out_of_range_tuning_value_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be an integer from"):
        load_settings({**PIECES, name: value})


def test_create_app_takes_settings_from_test_config_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://a:b@from-env/db")
    app = create_app({"DATABASE_URL": "postgresql+psycopg://a:b@from-test-config/db", "TESTING": True})
    assert app.extensions["users.db"].engine.url.host == "from-test-config"
    assert app.testing
