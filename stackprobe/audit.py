"""The write audit: every write the service acknowledged must be found again afterwards."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# A GET that cannot connect is retried (the service may be restarting after an OOM kill);
# an answer that is not the acknowledged record is a loss, not retried.
CONNECT_RETRIES = 5
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
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    with httpx.Client(base_url=base_url, timeout=10, limits=limits) as client, ThreadPoolExecutor(workers) as pool:
        problems = [p for p in pool.map(lambda w: _check(client, w), writes) if p is not None]
    return AuditResult(
        applicable=True,
        acknowledged=len(writes),
        verified=len(writes) - len(problems),
        lost=len(problems),
        lost_examples=problems[:EXAMPLES_KEPT],
    )


def _check(client: httpx.Client, write: AckedWrite) -> str | None:
    """Return None when the write reads back as acknowledged, else what is wrong with it."""
    for attempt in range(CONNECT_RETRIES):
        try:
            response = client.get(write.location)
            break
        except httpx.TransportError as exc:
            if attempt == CONNECT_RETRIES - 1:
                return f"{write.location}: unreachable ({exc.__class__.__name__})"
            time.sleep(0.5 * 2**attempt)
    if response.status_code != 200:
        return f"{write.location}: HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return f"{write.location}: body is not JSON"
    if not isinstance(body, dict):
        return f"{write.location}: body is not a JSON object"
    changed = {key: body.get(key) for key, value in write.expect.items() if body.get(key) != value}
    if changed:
        return f"{write.location}: expected {write.expect}, found {changed}"
    return None
