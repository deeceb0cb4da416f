"""The write audit: every write the service acknowledged must be found again afterwards."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

# A GET that cannot connect is retried (the service may be restarting after an OOM kill), at once and
# then after these pauses, the last one repeating, for as long as the service has been unreachable for
# less than RETRY_BUDGET_S: a service that never comes back costs the audit that long, not a wait per
# write. An answer that is not the acknowledged record is a loss, not retried. The first retry is
# immediate: a kept-alive connection the server has since closed fails once, harmlessly.
RETRY_DELAYS_S = (0.0, 0.5, 1.0, 2.0)
RETRY_BUDGET_S = 30.0
TIMEOUT_S = 10.0
EXAMPLES_KEPT = 10


@dataclass(frozen=True)
class AckedWrite:
    """One acknowledged write, as the locustfile logged it: where to read it back, and what it said."""

    location: str
    expect: dict[str, Any]


@dataclass
class AuditResult:
    """How many acknowledged writes were found again, and some of those that were not."""

    applicable: bool
    acknowledged: int | None = None
    verified: int | None = None
    lost: int | None = None
    lost_examples: list[str] = field(default_factory=list)


def read_write_log(path: Path) -> list[AckedWrite]:
    """Read the JSON-lines write log; a missing file means the locustfile records no writes."""
    if not path.is_file():
        return []
    writes = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            writes.append(AckedWrite(location=str(record["location"]), expect=dict(record.get("expect", {}))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a write record ({exc}): {line[:120]}") from exc
    return writes


def audit_writes(base_url: str, writes: list[AckedWrite], workers: int = 8) -> AuditResult:
    """Read back every acknowledged write from the service; count those missing or changed."""
    if not writes:
        return AuditResult(applicable=False)
    with _Connections(base_url) as connections, ThreadPoolExecutor(workers) as pool:
        problems = [p for p in pool.map(lambda w: _check(connections, w), writes) if p is not None]
    return AuditResult(
        applicable=True,
        acknowledged=len(writes),
        verified=len(writes) - len(problems),
        lost=len(problems),
        lost_examples=problems[:EXAMPLES_KEPT],
    )


class _Connections:
    """One kept-alive HTTP connection per thread and server: http.client, a fraction of a full client's CPU.

    The audit reads back every acknowledged write, tens of thousands after a minute of load, while the
    machine may still be busy: each GET should cost as little as the standard library allows.
    """

    def __init__(self, base_url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # When the service last stopped answering, as seen by any thread; None while it answers.
        self._down_since: float | None = None

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()

    def unreachable_for(self) -> float:
        """Return how long the service has not answered anyone, in seconds (0 while it answers)."""
        down_since = self._down_since
        return 0.0 if down_since is None else time.monotonic() - down_since

    def get(self, location: str) -> tuple[int, bytes]:
        """GET `location` (relative to the base URL, or absolute); return the status and the body."""
        url = urlsplit(urljoin(self.base_url, location))
        path = url.path or "/"
        if url.query:
            path = f"{path}?{url.query}"
        connection = self._connection(url.scheme, url.netloc)
        try:
            connection.request("GET", path, headers={"Accept": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            with self._lock:
                if self._down_since is None:
                    self._down_since = time.monotonic()
            # A connection in an unknown state is never reused.
            connection.close()
            raise
        except BaseException:
            connection.close()
            raise
        self._down_since = None
        if response.will_close:
            connection.close()
        return response.status, body

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        cache: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("cache", {})
        connection = cache.get((scheme, netloc))
        if connection is None:
            factory = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            connection = factory(netloc, timeout=self.timeout_s)
            cache[(scheme, netloc)] = connection
            with self._lock:
                self._opened.append(connection)
        # A closed http.client connection reconnects by itself on the next request.
        return connection


def _check(connections: _Connections, write: AckedWrite) -> str | None:
    """Return None when the write reads back as acknowledged, else what is wrong with it."""
    for attempt in itertools.count():
        try:
            status, content = connections.get(write.location)
            break
        except (OSError, http.client.HTTPException) as exc:
            if connections.unreachable_for() >= RETRY_BUDGET_S:
                return f"{write.location}: unreachable ({exc.__class__.__name__})"
            time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
    if status != 200:
        return f"{write.location}: HTTP {status}"
    try:
        body = json.loads(content)
    except ValueError:
        return f"{write.location}: body is not JSON"
    if not isinstance(body, dict):
        return f"{write.location}: body is not a JSON object"
    changed = {key: body.get(key) for key, value in write.expect.items() if body.get(key) != value}
    if changed:
        return f"{write.location}: expected {write.expect}, found {changed}"
    return None
