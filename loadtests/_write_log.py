"""The acknowledged-write log: every write the service confirmed, for a later durability audit.

When STACKPROBE_WRITE_LOG names a file, each acknowledged create becomes one JSON line
{"location": "/users/123", "expect": {"id": 123, "name": "bob"}} appended to it. Lines are buffered and
appended in batches of whole lines with O_APPEND, so Locust worker processes (--processes) can share the
file without tearing each other's lines. Unset, nothing is recorded.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from locust import events
from locust.env import Environment

ENV_VAR = "STACKPROBE_WRITE_LOG"
# A long soak creates millions of users: bound the buffer, and keep each append a few tens of KiB.
FLUSH_EVERY = 500

logger = logging.getLogger(__name__)


class WriteLog:
    """Buffer acknowledged writes and append them to a file as whole JSON lines."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._pending: list[str] = []

    def open(self, path: str | None) -> None:
        """Start recording to path (None: record nothing); create the file now so a bad path fails early."""
        self.path = path
        self._pending.clear()
        if path:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))

    def record(self, location: str, expect: Mapping[str, Any]) -> None:
        """Remember that the resource at location was acknowledged with these values."""
        if not self.path:
            return
        self._pending.append(json.dumps({"location": location, "expect": dict(expect)}, ensure_ascii=False))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Append every pending line in one write."""
        if not self.path or not self._pending:
            return
        lines, self._pending = self._pending, []
        data = ("\n".join(lines) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # One write(2) per batch: with O_APPEND, Linux places it whole at the end of the file.
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)


write_log = WriteLog()


@events.init.add_listener
def open_write_log(environment: Environment, **_kwargs: Any) -> None:
    """Point the log at STACKPROBE_WRITE_LOG, failing the run at once if that file cannot be created."""
    path = os.environ.get(ENV_VAR) or None
    try:
        write_log.open(path)
    except OSError as exc:
        logger.error("%s=%s: cannot append to it (%s)", ENV_VAR, path, exc.strerror)
        raise SystemExit(2) from None
    if path:
        logger.info("Recording acknowledged writes to %s", path)


@events.test_stop.add_listener
def flush_on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    """Write out what was acknowledged before the test stopped."""
    write_log.flush()


@events.quitting.add_listener
def flush_on_quit(environment: Environment, **_kwargs: Any) -> None:
    """Write out anything acknowledged after the last stop (e.g. when SIGTERM ends the run)."""
    write_log.flush()
