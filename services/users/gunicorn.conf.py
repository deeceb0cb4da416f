"""gunicorn settings for the users service in a 128 MiB container.

Workers and threads are fixed numbers, never derived from the CPU count: the host's cores say nothing
about the container's memory limit, and every worker costs memory (measured here: about 17 MiB each on
top of the preloaded master's 50 MiB; about 40 MiB each without preloading). Every setting below can be
changed with the environment variable named beside it.
"""

from __future__ import annotations

import gc
import os
from typing import Any


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise SystemExit(f"{name} must be an integer from {low} to {high}, got {value}")
    return value


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


wsgi_app = "users:create_app()"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:5000")

worker_class = "gthread"
# Two workers (about 85 MiB in use under load) outrun one (about 68 MiB) once one core is not enough.
workers = _env_int("GUNICORN_WORKERS", 2, 1, 8)
threads = _env_int("GUNICORN_THREADS", 4, 1, 64)
# One pooled connection per thread, so no request waits for another's connection (unless set apart).
os.environ.setdefault("DB_POOL_SIZE", str(threads))
# Load the app once in the master: workers share its imported code (copy-on-write) and boot faster.
preload_app = True
# A worker that has not checked in for this long is killed and replaced.
timeout = _env_int("GUNICORN_TIMEOUT", 30, 5, 600)
graceful_timeout = 20
keepalive = 5
backlog = 256
# Recycle workers now and then (every 20 minutes or so at 800 requests/s), so a slow leak can never grow
# to the container's limit; jitter keeps the workers from restarting together.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 500_000, 0, 10_000_000)
max_requests_jitter = max_requests // 10

# Logs go to stdout ("-" would be stderr for the error log); the access log costs throughput, so it is
# off unless asked for.
errorlog = "/dev/stdout"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = "-" if _env_flag("GUNICORN_ACCESS_LOG") else None
# Request line and headers stay small: nothing in this API needs more.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190


def pre_fork(server: Any, worker: Any) -> None:
    """Move everything the master has loaded out of the garbage collector's sight before forking.

    A worker's collections would otherwise write to every object inherited from the master, copying
    each page of the preloaded app into the worker (copy-on-write): about 15 MiB per worker.
    """
    gc.freeze()


def post_worker_init(worker: Any) -> None:
    """Drop any pooled connection inherited from the master: a socket must never be shared across processes."""
    # The master opens none today (connections open on first request); this keeps it true if that changes.
    extensions = getattr(worker.wsgi, "extensions", {})
    database = extensions.get("users.db")
    if database is not None:
        database.engine.dispose(close=False)
