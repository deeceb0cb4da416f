"""The server settings of the users service: fixed for a 128 MiB container, changed only by the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from users.server import DEFAULTS, configure

SERVICE_DIR = Path(__file__).resolve().parents[2] / "services" / "users"


def _run_server(**environ: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environ}
    return subprocess.run(
        [sys.executable, "-m", "users.server"],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults_are_fixed_numbers_whatever_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    environ: dict[str, str] = {}
    configure(environ)
    assert environ["GRANIAN_INTERFACE"] == "wsgi"
    assert (environ["GRANIAN_WORKERS"], environ["GRANIAN_BLOCKING_THREADS"]) == ("1", "4")
    assert (environ["GRANIAN_HOST"], environ["GRANIAN_PORT"]) == ("0.0.0.0", "5000")
    assert environ["GRANIAN_RESPAWN_FAILED_WORKERS"] == "true"
    assert environ["GRANIAN_HTTP1_BUFFER_SIZE"] == "65536"
    assert "GRANIAN_LOG_ACCESS_ENABLED" not in environ


def test_environment_overrides_every_default() -> None:
    environ = {"GRANIAN_WORKERS": "2", "GRANIAN_BLOCKING_THREADS": "6", "GRANIAN_PORT": "8000"}
    configure(environ)
    assert (environ["GRANIAN_WORKERS"], environ["GRANIAN_BLOCKING_THREADS"], environ["GRANIAN_PORT"]) == (
        "2",
        "6",
        "8000",
    )
    assert set(DEFAULTS) <= set(environ)


def test_blank_setting_counts_as_unset() -> None:
    environ = {"GRANIAN_WORKERS": "  "}
    configure(environ)
    assert environ["GRANIAN_WORKERS"] == DEFAULTS["GRANIAN_WORKERS"]


def test_pool_size_follows_the_app_threads_unless_set() -> None:
    environ = {"GRANIAN_BLOCKING_THREADS": "6"}
    configure(environ)
    assert environ["DB_POOL_SIZE"] == "6"
    environ = {"GRANIAN_BLOCKING_THREADS": "6", "DB_POOL_SIZE": "3"}
    configure(environ)
    assert environ["DB_POOL_SIZE"] == "3"


def test_server_refuses_to_start_without_a_database_and_says_why() -> None:
    result = _run_server()
    assert result.returncode == 2
    assert "no database configured: set DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "option"),
    [
        ("GRANIAN_WORKERS", "lots", "--workers"),
        ("GRANIAN_WORKERS", "0", "--workers"),
        ("GRANIAN_BLOCKING_THREADS", "-1", "--blocking-threads"),
    ],
)
def test_bad_server_setting_stops_with_a_message(name: str, value: str, option: str) -> None:
    result = _run_server(DATABASE_URL="postgresql+psycopg://u:p@127.0.0.1:9/db", **{name: value})
    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert "Traceback" not in result.stderr
