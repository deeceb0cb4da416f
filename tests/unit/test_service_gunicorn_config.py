"""gunicorn's settings for the users service: fixed for a 128 MiB container, changed only by the environment."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "services" / "users" / "gunicorn.conf.py"


def _load(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict[str, Any]:
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_ACCESS_LOG", "DB_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONFIG))


def test_defaults_are_fixed_numbers_whatever_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    config = _load(monkeypatch)
    assert (config["workers"], config["threads"], config["worker_class"]) == (2, 4, "gthread")
    assert config["bind"] == "0.0.0.0:5000"
    assert config["accesslog"] is None
    assert config["max_requests"] > 0
    assert 0 < config["max_requests_jitter"] < config["max_requests"]


def test_environment_overrides_workers_threads_and_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _load(monkeypatch, GUNICORN_WORKERS="1", GUNICORN_THREADS="8", GUNICORN_ACCESS_LOG="true")
    assert (config["workers"], config["threads"], config["accesslog"]) == (1, 8, "-")


def test_pool_size_follows_threads_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _load(monkeypatch, GUNICORN_THREADS="6")
    assert os.environ["DB_POOL_SIZE"] == "6"
    _load(monkeypatch, GUNICORN_THREADS="6", DB_POOL_SIZE="3")
    assert os.environ["DB_POOL_SIZE"] == "3"


@pytest.mark.parametrize(("name", "value"), [("GUNICORN_WORKERS", "lots"), ("GUNICORN_WORKERS", "0")])
def test_bad_worker_setting_stops_with_a_message(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(SystemExit, match=f"{name} must be an integer"):
        _load(monkeypatch, **{name: value})


def test_gunicorn_refuses_to_start_without_a_database_and_says_why() -> None:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", "127.0.0.1:0"],
        cwd=CONFIG.parent,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no database configured: set DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
