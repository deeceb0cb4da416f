"""Serve the users service with Granian, set for a 128 MiB container: `python -m users.server`.

Granian parses HTTP and moves bytes in Rust, outside the GIL; Python runs only the app. Measured on the
bench's create-and-list mix (2 cores), one Granian process with four app threads served 870-1,010
requests/s where gunicorn's gthread workers (2 x 4 threads) served 510-730, in about 20 MiB less memory.

Every setting is one of Granian's own GRANIAN_* environment variables (`granian --help` lists them);
the defaults below are fixed numbers, never derived from the host's CPU count: the host's cores say
nothing about the container's memory limit, and a second worker process costs about 40 MiB.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

from .config import ConfigError, load_settings

APP = "users:create_app"

DEFAULTS: dict[str, str] = {
    "GRANIAN_INTERFACE": "wsgi",
    "GRANIAN_FACTORY": "true",
    "GRANIAN_HOST": "0.0.0.0",
    "GRANIAN_PORT": "5000",
    # HTTP/1.1 only: the service has no use for HTTP/2 or websockets.
    "GRANIAN_HTTP": "1",
    "GRANIAN_WEBSOCKETS": "false",
    # One process: its Python threads share one GIL, and the Rust side does the I/O for all of them.
    "GRANIAN_WORKERS": "1",
    # Threads that run the app; each holds one pooled database connection while it works.
    "GRANIAN_BLOCKING_THREADS": "4",
    "GRANIAN_RUNTIME_THREADS": "1",
    "GRANIAN_BACKLOG": "256",
    # Request line and headers: 64 KiB at most per connection (431 beyond), not Granian's 408 KiB.
    "GRANIAN_HTTP1_BUFFER_SIZE": "65536",
    # A worker that dies (killed by the OOM killer, say) is replaced; the container lives on.
    "GRANIAN_RESPAWN_FAILED_WORKERS": "true",
    "GRANIAN_WORKERS_KILL_TIMEOUT": "20",
    "GRANIAN_LOG_LEVEL": "info",
}


def configure(environ: MutableMapping[str, str]) -> None:
    """Fill in the defaults the environment leaves unset; the pool gets one connection per app thread."""
    for name, value in DEFAULTS.items():
        if not environ.get(name, "").strip():
            environ[name] = value
    threads = environ["GRANIAN_BLOCKING_THREADS"].strip()
    # A bad thread count is left for Granian to refuse, under its own name.
    if not environ.get("DB_POOL_SIZE", "").strip() and threads.isdigit():
        environ["DB_POOL_SIZE"] = threads


def main() -> None:
    """Check the configuration, then become Granian (same process id: PID 1 in the container)."""
    configure(os.environ)
    try:
        load_settings(os.environ)
    except ConfigError as exc:
        # Said once, before any worker starts: a worker failing at import would be respawned and die again.
        print(f"users service: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stdout.flush()
    # exec, not an in-process call: checking the settings imported the app's libraries (about 16 MiB of the
    # limit), which Granian's main process has no use for; its worker imports the app on its own.
    os.execv(sys.executable, [sys.executable, "-m", "granian", APP])


if __name__ == "__main__":
    main()
