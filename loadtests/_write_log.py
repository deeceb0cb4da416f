"""The write log: every create the load attempts, as an operation history for a later durability audit.

When STACKPROBE_WRITE_LOG names a file, each create becomes two JSON lines, in Jepsen's terms: an
`invoke` recorded before the request is sent, then its completion:

    {"type": "invoke", "op": "812-17", "process": "812-3", "f": "create", "time": 1764493200.125,
     "name": "ada 3f2a", "lookup": "/users?name=ada%203f2a"}
    {"type": "ok", "op": "812-17", "process": "812-3", "time": 1764493200.131, "name": "ada 3f2a",
     "status": 201, "location": "/users/123", "expect": {"id": 123, "name": "ada 3f2a"}}

`ok`: acknowledged (2xx with the record); `fail`: a definite rejection (nothing was written); `info`: the
outcome is unknown (a timeout, a broken connection, a 5xx that does not promise nothing was written). An
invoke with no completion (the load stopped while the request was out) is unknown too. `time` is the wall
clock (Unix seconds); `op` and `process` are unique across worker processes (they start with the pid).
`lookup` is where the audit finds the records of that name, to settle the unknown ones and count duplicates.

A locustfile may also declare, once, where every record is listed (the first page of a listing that pages
with `next`, and the key that names a record, which each acknowledged write's `expect` holds):

    {"type": "scan", "url": "/users?limit=500", "key": "id", "time": 1764493200.001}

The audit then reads that listing once and reads back alone only the writes it does not show as
acknowledged: a few requests per thousand writes instead of one per write.

Lines are buffered and appended in batches of whole lines with O_APPEND, so Locust worker processes
(--processes) can share the file without tearing each other's lines; each process's lines stay in the
order they were recorded. Unset, nothing is recorded.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from locust import events
from locust.env import Environment

ENV_VAR = "STACKPROBE_WRITE_LOG"
# A long soak creates millions of users: bound the buffer, and keep each append a few tens of KiB.
FLUSH_EVERY = 500
# A quiet process still appends at least this often (seconds), so the file never lags far behind.
FLUSH_AFTER_S = 1.0

logger = logging.getLogger(__name__)


class WriteLog:
    """Buffer write operations (invoke, then ok / fail / info) and append them to a file as whole JSON lines."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._pending: list[str] = []
        self._flushed_at = time.monotonic()
        self._ops = itertools.count(1)
        self._processes = itertools.count(1)
        self._scan: dict[str, Any] | None = None

    def open(self, path: str | None) -> None:
        """Start recording to path (None: record nothing); create the file now so a bad path fails early."""
        self.path = path
        self._pending.clear()
        if path:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            if self._scan is not None:
                self._add(dict(self._scan))

    def declare_scan(self, url: str, key: str = "id") -> None:
        """Declare where every record is listed: `url` (relative to the host) is the first page of a JSON list
        of records, or of an object with an `items` list and a `next` URL (null on the last page); `key` is
        the field that names a record, as each acknowledged write's `expect` holds it.

        Recorded once per process, before its first write (now if the log is already open).
        """
        self._scan = {"type": "scan", "url": url, "key": key}
        if self.path:
            self._add(dict(self._scan))

    def new_process(self) -> str:
        """Return a process id for one simulated user ("<pid>-<n>"), unique across worker processes."""
        return f"{os.getpid()}-{next(self._processes)}"

    def invoke(self, process: str, name: str, lookup: str | None = None) -> str:
        """Record that process is about to create `name` (call it before sending); return the op's id.

        lookup: a URL (relative to the host, like the request's own) listing the records of that name.
        """
        op = f"{os.getpid()}-{next(self._ops)}"
        line: dict[str, Any] = {"type": "invoke", "op": op, "process": process, "f": "create", "name": name}
        if lookup is not None:
            line["lookup"] = lookup
        self._add(line)
        return op

    def ok(self, op: str, process: str, name: str, location: str, expect: Mapping[str, Any], status: int = 201) -> None:
        """Record that op was acknowledged (HTTP status): the record is at location and holds expect."""
        line = {"type": "ok", "op": op, "process": process, "name": name, "status": status}
        self._add({**line, "location": location, "expect": dict(expect)})

    def fail(self, op: str, process: str, name: str, status: int, error: str) -> None:
        """Record that op was definitely rejected (HTTP status; nothing was written)."""
        self._add({"type": "fail", "op": op, "process": process, "name": name, "status": status, "error": error})

    def info(self, op: str, process: str, name: str, status: int, error: str) -> None:
        """Record that op's outcome is unknown (status 0: no response, e.g. a timeout or a broken connection)."""
        self._add({"type": "info", "op": op, "process": process, "name": name, "status": status, "error": error})

    def _add(self, line: dict[str, Any]) -> None:
        if not self.path:
            return
        line["time"] = round(time.time(), 6)
        self._pending.append(json.dumps(line, ensure_ascii=False))
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._flushed_at >= FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        """Append every pending line in one write."""
        self._flushed_at = time.monotonic()
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
        logger.info("Recording write operations to %s", path)


@events.test_stop.add_listener
def flush_on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    """Write out what was recorded before the test stopped."""
    write_log.flush()


@events.quitting.add_listener
def flush_on_quit(environment: Environment, **_kwargs: Any) -> None:
    """Write out anything recorded after the last stop (e.g. when SIGTERM ends the run)."""
    write_log.flush()
