"""The write audit: every write the service acknowledged must be found again afterwards.

The write log is the load's history of creates (loadtests/_write_log.py): an `invoke` before each request,
then `ok` (acknowledged), `fail` (definitely rejected) or `info` (outcome unknown); an invoke with no
completion is unknown too. A line with no `type`, {"location": ..., "expect": {...}}, is an acknowledged
write (the log's first format, still what a locustfile of your own may write).

Each acknowledged write ends in exactly one of three counts, in Jepsen's vocabulary:

- verified: read back with HTTP 200 and every expected key equal;
- lost: HTTP 404 (or 410), or a 200 whose body is not the acknowledged record;
- unverified: the audit could not look: 5xx or 429 after its tries, a timeout, a refused or reset
  connection, another status (401, 403, 3xx …), or not looked at because the audit gave up (its deadline,
  a service that answered nobody for too long) or was stopped.

A write whose invoke names a `lookup` URL (the records of that name: a JSON list, or an object with an
`items` list) is read there instead, one request that also counts the records of that name:

- acknowledged: verified when a record of that name holds every expected key, else lost;
- indeterminate (info, or no completion): recovered (a record of that name exists: it was applied), not
  applied (none), or unresolved (the audit could not look);
- failed: a record of that name means it was applied although refused (failed_applied);
- duplicated: more than one record of that name, whatever the write's type.

A log that declares a listing ({"type": "scan", "url": <first page>, "key": "id"}) has its acknowledged
writes settled through it: the audit pages through the listing once (`next` to `next`), matches each record
to the write whose expect holds the same key, and counts as verified every write whose record it shows as
acknowledged, the only one of its name. Every other write (missing from the listing, different, its name
held twice) is read back alone as above, as is every write when the listing cannot be read whole or holds
far more records than there are writes (LISTING_PER_WRITE). Absence from a listing is never itself a loss.

The write log is streamed: a reader (the calling thread) feeds a bounded queue, a few worker threads read
back, each on its own kept-alive http.client connection. The state kept per write is that of the creates
in flight (invoked but not yet completed at that point of the log) and, for a write the listing may
settle, about 42 bytes in arrays (hashes of its key, its expected values and its name, and where its lines
are in the log): 300,000 writes take about 35 MiB at the peak (bench/audit.py). The calling thread keeps
watching the deadline, the service's silence and the stop event, so the audit ends within about a second
of being stopped or interrupted.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import math
import queue
import re
import socket
import ssl
import threading
import time
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from stackprobe.fastjson import loads

# Per socket operation (connect, each read): a read that hangs longer fails and may be retried. Stopping
# does not wait for it: the sockets are shut down to wake the reads. A write whose reads all hang takes
# TRIES * TIMEOUT_S plus the pauses, 21.5 s: under the default unreachable budget, so that a single hung
# write at the end of the audit ends on its own tries rather than as the service answering nobody.
TIMEOUT_S = 5.0
# Tries of a write that meets 5xx, 429, or connection failures while the service answers others.
TRIES = 4
# Pauses before the 2nd, 3rd, 4th try after 5xx or 429 without Retry-After.
BACKOFF_S = (0.5, 1.0, 2.0)
# Retry-After is honoured up to this many seconds (a service asking for minutes would stall the audit).
RETRY_AFTER_CAP_S = 5.0
# Pauses between tries after connection failures, the last repeating. The first retry is immediate: a
# kept-alive connection the server has since closed fails once, harmlessly. While the service answers
# nobody (restarting after an OOM kill, say) these retries do not use up the write's tries: the shared
# unreachable budget bounds them instead.
RECONNECT_DELAYS_S = (0.0, 0.5, 1.0, 2.0)
EXAMPLES_KEPT = 10
# Writes go to the workers in batches (a hand-over per write would cost more CPU than the write's own GET),
# one batch queued per worker: enough to keep them busy, few enough that memory does not grow.
BATCH = 32
# A listing is read while it holds at most this many records per write it can settle, plus the slack: past
# that (a table of a million rows before a short run), one read per write costs less than the listing.
# Listing a record costs the prober ~2 µs of CPU and the service a 500th of a page; a write read alone ~200 µs.
LISTING_PER_WRITE = 50
LISTING_SLACK = 100_000
# The listing may take this share of the audit's deadline; the rest is for the writes read back alone.
LISTING_SHARE = 0.5
# A page longer than this is not read (it would be held whole in memory to be parsed).
MAX_PAGE_BYTES = 16 * 2**20
# The listing's word is spot-checked: this share of the writes it verified (at least SPOT_CHECK_MIN, evenly
# spread over the log) is read back alone too. One that reads otherwise (missing, different, its name held
# twice) means the listing does not show what the service holds (filtered, deduplicated, cached, another
# replica): the listing is then set aside and every write is read back alone.
SPOT_CHECK_SHARE = 0.02
SPOT_CHECK_MIN = 100
# How often the calling thread looks at the stop event, the deadline and the service's silence.
TICK_S = 0.1
# How long stopping waits for the workers before returning (a worker still blocked is a daemon thread
# that ends by itself, and whose outcome no longer counts).
JOIN_S = 0.8

_ABSOLUTE = re.compile(r"^https?://", re.IGNORECASE)  # as Locust's clients tell an absolute URL
_RETRYABLE = frozenset({429, *range(500, 600)})
_GONE = frozenset({404, 410})


Kind = Literal["ok", "info", "fail"]


class Write(NamedTuple):
    """One write to settle: its type in the log, where to read it back, and what to expect there.

    kind: "ok" (acknowledged), "info" (indeterminate) or "fail" (refused). location: the acknowledged
    record's URL (None unless ok). expect: the acknowledged record's keys. lookup: the URL listing the
    records named `name` (None when the log gave none). why: for an indeterminate write, what made it so.
    """

    kind: Kind
    location: str | None
    expect: dict[str, Any]
    lookup: str | None = None
    name: str | None = None
    why: str = ""
    sample: bool = False

    @property
    def label(self) -> str:
        """How examples name this write: its location, else its name."""
        if self.kind == "ok" and self.location is not None:
            return self.location
        return f"{self.name!r}" if self.name is not None else str(self.lookup)


@dataclass
class AuditResult:
    """What the audit found: each acknowledged write is verified, lost or unverified, exactly one of the three.

    applicable: False when there was no write log (the locustfile records no writes); the counts are None then.
    acknowledged: acknowledged writes in the log; equal to verified + lost + unverified.
    indeterminate: creates whose outcome the load did not learn; equal to recovered + not_applied + unresolved.
    failed: creates the service refused; failed_applied of them were found written all the same.
    duplicated: writes whose name the service holds more than once (counted only where a lookup was made).
    *_examples: at most EXAMPLES_KEPT each, "<location or name>: <why>".
    gave_up: why the audit stopped before looking at every write (its deadline passed, the service answered
        nobody for the unreachable budget, or it was stopped); None when it looked at every write.
    duration_s: wall-clock seconds the audit took.
    listing: None when the log declares no listing; else report.json's writes.listing: {"url", "pages",
        "records", "complete", "verified" (on the listing's word), "spot_checked" (of the writes it showed,
        read back alone too), "spot_check_disagreed" (of those, read otherwise), "problem" (why it did not
        settle the writes)}.
    """

    applicable: bool
    acknowledged: int | None = None
    verified: int | None = None
    lost: int | None = None
    unverified: int | None = None
    lost_examples: list[str] = field(default_factory=list)
    unverified_examples: list[str] = field(default_factory=list)
    gave_up: str | None = None
    duration_s: float = 0.0
    indeterminate: int | None = None
    recovered: int | None = None
    not_applied: int | None = None
    unresolved: int | None = None
    failed: int | None = None
    failed_applied: int | None = None
    duplicated: int | None = None
    unresolved_examples: list[str] = field(default_factory=list)
    failed_applied_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)
    listing: dict[str, Any] | None = None

    def section(self) -> dict[str, Any]:
        """Return report.json's "writes" object (the keys of stackprobe/report/schema.json's writes)."""
        return writes_section(self)


def writes_section(audit: AuditResult | None) -> dict[str, Any]:
    """Return report.json's "writes" object for an audit (None or not applicable: every count null)."""
    applicable = audit is not None and audit.applicable
    counts = (
        "acknowledged",
        "verified",
        "lost",
        "unverified",
        "indeterminate",
        "recovered",
        "not_applied",
        "unresolved",
        "failed",
        "failed_applied",
        "duplicated",
    )
    examples = (
        "lost_examples",
        "unverified_examples",
        "unresolved_examples",
        "failed_applied_examples",
        "duplicated_examples",
    )
    section: dict[str, Any] = {"applicable": applicable}
    section.update({name: getattr(audit, name) if applicable else None for name in counts})
    section.update({name: list(getattr(audit, name)) if applicable else [] for name in examples})
    section["gave_up"] = audit.gave_up if applicable and audit is not None else None
    section["listing"] = dict(audit.listing) if applicable and audit is not None and audit.listing else None
    return section


def audit_write_log(
    base_url: str,
    path: Path,
    *,
    workers: int = 8,
    deadline_s: float = 120.0,
    unreachable_budget_s: float = 30.0,
    stop: threading.Event | None = None,
    use_listing: bool = True,
) -> AuditResult:
    """Read back every write in the JSON-lines write log at `path` from the service at `base_url`.

    Each line is an operation of the load's history (see the module's docstring), or the first format's
    {"location": "/users/123", "expect": {"id": 123, ...}}. A relative location or lookup is read at
    base_url + location, as Locust requests it (so "http://host/api" + "/users/1" is "/api/users/1"); an
    absolute http(s) location as it stands. Credentials in base_url are sent as HTTP Basic auth, as Locust
    sends them.

    At most `workers` reads are in flight, and at most 2 * workers + 1 batches of BATCH writes are held,
    besides the creates in flight at a point of the log and ~42 bytes per write a declared listing may
    settle (see the module's docstring); the listing's pages are read one at a time.

    The audit gives up, counting every write not yet read back as unverified (an indeterminate one as
    unresolved, a failed one as neither applied nor not) without a request each, when
    `deadline_s` seconds have passed since it started, or when the service has answered nobody for
    `unreachable_budget_s` seconds (an answer: any status but 5xx and 429). It stops the same way within
    about a second when `stop` is set. A KeyboardInterrupt in the calling thread stops the workers within
    about a second too, then propagates.

    A line that is not a write record (not JSON, an unknown type, a listing declared without a usable url
    or differently from the first) counts as an acknowledged write the audit could not check: unverified,
    its example naming file:line. use_listing=False reads every write back alone, whatever listing the log
    declares. Returns AuditResult(applicable=False) when `path` is not a file. Raises
    ValueError for a base_url that is not an http(s) URL or workers < 1.
    """
    started = time.monotonic()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if not path.is_file():
        return AuditResult(applicable=False)
    with path.open("rb") as log:
        run = _Audit(base_url, workers=workers, unreachable_budget_s=unreachable_budget_s, use_listing=use_listing)
        run.start()
        try:
            run.feed(log, path, stop, deadline_at=started + deadline_s, deadline_s=deadline_s)
        except BaseException:
            run.halt("the audit was interrupted")
            run.wind_down()
            raise
    if run.error is not None:
        raise run.error
    return run.result(duration_s=time.monotonic() - started)


class _Audit:
    """The shared state of one audit: the queue, the outcomes, the service's silence, the workers."""

    def __init__(self, base_url: str, *, workers: int, unreachable_budget_s: float, use_listing: bool = True) -> None:
        parts = urlsplit(base_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.headers = {"Accept": "application/json"}
        self.base_url = base_url
        if parts.username and parts.password:
            # As Locust does: the credentials leave the URL and go into an Authorization header.
            user, password = unquote(parts.username), unquote(parts.password)
            token = base64.b64encode(f"{user}:{password}".encode("latin1")).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"
            netloc = parts.netloc.rpartition("@")[2]
            self.base_url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        self.unreachable_budget_s = unreachable_budget_s
        # For locations that are a path to append to base_url: where they all go, and the prefix.
        self.base_path: str | None = None
        self.base_server, _ = self.target(self.base_url)
        self.base_path = urlsplit(self.base_url).path if not parts.query and not parts.fragment else None
        self.queue: queue.Queue[list[Write] | None] = queue.Queue(workers)
        self.halted = threading.Event()
        self.reason: str | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Per kind of write: how many the log holds (queued, or left unread when the audit gave up) and how
        # many were settled. Outcomes: verified, lost, recovered, not_applied, failed_applied,
        # failed_not_applied, duplicated, and looked_<kind> for writes looked at but left unsettled.
        self.total: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {
            name: [] for name in ("lost", "unverified", "unresolved", "failed_applied", "duplicated")
        }
        # The service's silence: when the last decisive answer came (any worker), and when the first
        # attempt since then that got none began.
        self.last_answer_at = time.monotonic()
        self.silent_since: float | None = None
        self.workers = [_Worker(self, number) for number in range(workers)]
        # The listing (when the log declares one): its writes, its reader, and how far it got.
        self.listed: _Listed | None = None
        self.use_listing = use_listing
        self.scanner = _Worker(self, "scan", target=self._scan)
        self.scan_url: str | None = None
        self.scan_complete = False
        self.scan_pages = 0
        self.scan_problem: str | None = None
        self.listed_verified = 0
        self.scan_cap = 0
        self.scan_until = 0.0
        # The spot-check of the listing's word: how many writes, how many came back, how many read otherwise.
        self.sample_total = 0
        self.sample_done = 0
        self.sample_disagreed = 0
        self.sample_example = ""
        self.sample_unread = 0
        self.sample_unread_example = ""
        self.samples_done = threading.Event()
        self._unlisted_from = 0
        self._shown = bytearray()
        self._log_read = False

    # -- the calling thread --------------------------------------------------------------------------

    def start(self) -> None:
        for worker in self.workers:
            worker.thread.start()

    def feed(
        self, log: IO[bytes], path: Path, stop: threading.Event | None, *, deadline_at: float, deadline_s: float
    ) -> None:
        """Queue every write of the log, then wait for the workers, watching stop, deadline and silence."""

        def watch() -> bool:
            if self.error is not None:
                self.halt("the audit failed")
            elif stop is not None and stop.is_set():
                self.halt("the audit was stopped")
            elif time.monotonic() >= deadline_at:
                self.halt(f"the audit's deadline of {deadline_s:g} s passed")
            elif self.silent_for() >= self.unreachable_budget_s:
                self.halt(f"the service answered nobody for {self.unreachable_budget_s:g} s")
            return self.halted.is_set()

        def queued(item: list[tuple[str, dict[str, Any]]] | None) -> bool:
            """Put item on the queue, watching meanwhile; False when the audit halted first."""
            while not watch():
                try:
                    self.queue.put(item, timeout=TICK_S)
                    return True
                except queue.Full:
                    continue
            return False

        next_watch = time.monotonic()  # look once before the first request
        batch: list[Write] = []
        reader = _LogReader(path)
        offset = 0
        for number, line in enumerate(log, start=1):
            at, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                write = reader.read(line, number, at)
            except ValueError as exc:
                # Whatever the line was meant to say, the audit cannot check it: one acknowledged write unverified.
                self.total["ok"] += 1
                self.record_unsettled(Write("ok", None, {}), str(exc))
                continue
            if write is None:
                continue
            if self.use_listing and reader.scan is not None and write.kind == "ok":
                if self.listed is None:
                    self.listed = _Listed(reader.scan[1])
                    self.scan_url = reader.scan[0]
                if self.listed.add(write, at, reader.invoked_at):
                    self.total["ok"] += 1
                    continue
            batch.append(write)
            if len(batch) >= BATCH:
                if not queued(batch):
                    break
                self._count_queued(batch)
                batch = []
                next_watch = time.monotonic() + TICK_S
            elif time.monotonic() >= next_watch:
                next_watch = time.monotonic() + TICK_S
                if watch():
                    break
        else:
            self._log_read = True
        if not self.halted.is_set():
            # Creates invoked but never completed (the load stopped while they were out) are indeterminate.
            batch.extend(reader.unfinished())
            for start in range(0, len(batch), BATCH):
                if not queued(batch[start : start + BATCH]):
                    batch = batch[start:]
                    break
                self._count_queued(batch[start : start + BATCH])
            else:
                batch = []
        listed = self.listed
        if listed is not None and not self.halted.is_set():
            # The writes the listing can settle: list every record once, then read back alone only those it
            # did not show as acknowledged (missing, different, or their name held twice).
            listed.freeze()
            self.scan_cap = LISTING_PER_WRITE * len(listed) + LISTING_SLACK
            self.scan_until = time.monotonic() + LISTING_SHARE * max(0.0, deadline_at - time.monotonic())
            self.scanner.thread.start()
            while self.scanner.thread.is_alive() and not watch():
                self.scanner.thread.join(TICK_S)
            if not self.halted.is_set():
                self._read_back_unlisted(log, reader, queued, watch)
        if self.halted.is_set():
            self._count_unread(batch, log, reader)
            self._count_unlisted(log, reader)
            self.wind_down()
            return
        # Every write is queued: one end mark per worker, then wait for them to finish.
        for _ in self.workers:
            if not queued(None):
                break
        for worker in self.workers:
            while worker.thread.is_alive() and not watch():
                worker.thread.join(TICK_S)
        self.wind_down()

    def _read_back_unlisted(
        self,
        log: IO[bytes],
        reader: _LogReader,
        queued: Callable[[list[Write] | None], bool],
        watch: Callable[[], bool],
    ) -> None:
        """Spot-check the listing's word, count the writes it verified, queue the others to be read alone."""
        listed = self.listed
        assert listed is not None
        trusted = self.scan_complete
        if trusted and self.scan_problem is None and listed.listed and not any(listed.seen):
            first = listed.first_key_value
            self.scan_problem = (
                f"none of its {listed.listed:,} records holds the {listed.key!r} of a write (the first record's "
                f'{listed.key!r}: {first}; values compare as JSON values: the string "7" is not the number 7)'
            )
        # Per write, 1 where the listing showed it as acknowledged (each needs a look-up of its name's count).
        self._shown = shown = bytearray(map(listed.settled, range(len(listed)))) if trusted else bytearray(len(listed))
        settled = shown.count(1)
        sampled = bytearray(len(listed))
        size = min(settled, max(SPOT_CHECK_MIN, math.ceil(SPOT_CHECK_SHARE * settled)))
        if size:
            # The k-th of the `size` picks is the settled write of rank k * settled // size: evenly spread,
            # in integers (a float step can round into one pick too many).
            self.sample_total = size
            picks = (i * settled // size for i in range(size))
            pick, rank = next(picks), 0
            writes: list[Write] = []
            for number in range(len(listed)):
                if not shown[number]:
                    continue
                if rank == pick:
                    sampled[number] = 1
                    writes.append(
                        reader.reread(log, listed.ok_at[number], listed.invoked_at[number])._replace(sample=True)
                    )
                    pick = next(picks, -1)
                    if pick < 0:
                        break
                rank += 1
            if not self._hand_over(writes, queued):
                return
            while not self.samples_done.wait(TICK_S):
                if watch():
                    return
            if self.sample_disagreed:
                trusted = False
                self.scan_problem = (
                    f"{self.sample_disagreed} of the {size:,} writes it showed read otherwise alone "
                    f"(e.g. {self.sample_example})"
                )
            elif self.sample_unread:
                # Its word was not checked: taking it would verify writes on no evidence but its own.
                trusted = False
                self.scan_problem = (
                    f"{self.sample_unread} of the {size:,} writes it showed could not be read alone to check it "
                    f"(e.g. {self.sample_unread_example})"
                )
        if trusted and settled:
            verified = settled - size
            with self._lock:
                self.outcomes["verified"] += verified
            self.listed_verified = verified
        for start in range(0, len(listed), BATCH):
            alone = [
                reader.reread(log, listed.ok_at[number], listed.invoked_at[number])
                for number in range(start, min(start + BATCH, len(listed)))
                if not sampled[number] and not (trusted and shown[number])
            ]
            if not self._hand_over(alone, queued):
                self._unlisted_from = start + BATCH
                return
        self._unlisted_from = len(listed)

    def _hand_over(self, writes: list[Write], queued: Callable[[list[Write] | None], bool]) -> bool:
        """Queue writes in batches; False when the audit halted first (those not queued named as unchecked)."""
        for start in range(0, len(writes), BATCH):
            if not queued(writes[start : start + BATCH]):
                for write in writes[start:]:
                    self._unchecked_example(write, self.reason)
                return False
        return True

    def _count_unlisted(self, log: IO[bytes], reader: _LogReader) -> None:
        """Name, as examples, a few of the listed writes the audit stopped before settling."""
        listed = self.listed
        if listed is None:
            return
        room = EXAMPLES_KEPT - len(self.examples["unverified"])
        for number in range(self._unlisted_from, len(listed)):
            if room <= 0:
                break
            if self.listed_verified and self._shown[number]:
                continue
            self._unchecked_example(reader.reread(log, listed.ok_at[number], listed.invoked_at[number]), self.reason)
            room -= 1

    def _scan(self) -> None:
        """In the scanner's thread: read the listing page by page (`next`), matching its records to writes.

        Sets scan_complete when it read every page; else scan_problem says why not (an error after the tries,
        a page that is no list of records or over MAX_PAGE_BYTES, a `next` read before or on another server,
        more records than LISTING_PER_WRITE allows, or its share of the deadline spent).
        """
        listed, worker = self.listed, self.scanner
        assert listed is not None
        assert self.scan_url is not None
        url: str | None = self.scan_url
        read: set[str] = set()
        if _ABSOLUTE.match(url) and self._next_page(url, url) is None:
            self.scan_problem = f"{url}: on another server than the one loaded, not read"
            return
        try:
            while url is not None:
                if time.monotonic() > self.scan_until:
                    self.scan_problem = f"{url}: not read: the listing's share of the audit's deadline was spent"
                    return
                read.add(url)
                answer = worker.fetch(url, max_bytes=MAX_PAGE_BYTES)
                if answer is None:
                    return
                if isinstance(answer, str):
                    self.scan_problem = f"{url}: {answer}"
                    return
                status, body = answer
                document = _json_or_none(body) if status == 200 else None
                items = document.get("items") if isinstance(document, dict) else document
                following = document.get("next") if isinstance(document, dict) else None
                if status != 200 or not isinstance(items, list):
                    why = f"HTTP {status}" if status != 200 else "no list of records (a list, or an `items` list)"
                    self.scan_problem = f"{url}: {why}"
                    return
                if not isinstance(following, str | None):
                    self.scan_problem = f"{url}: its `next` is {following!r}, not a URL or null"
                    return
                listed.see(items)
                self.scan_pages += 1
                if listed.listed > self.scan_cap:
                    self.scan_problem = (
                        f"more than {self.scan_cap:,} records ({LISTING_PER_WRITE} per write to check, plus "
                        f"{LISTING_SLACK:,}): reading each write alone costs less"
                    )
                    return
                if not following:
                    break
                following = self._next_page(url, following)
                if following is None:
                    self.scan_problem = f"{url}: its `next` leads to another server: {document.get('next')!r}"
                    return
                if following in read:
                    self.scan_problem = f"{url}: its `next`, {following}, was read before"
                    return
                url = following
            self.scan_complete = True
        except BaseException as exc:
            self.fail(exc)
        finally:
            for connection in worker.connections.values():
                connection.close()

    def _next_page(self, page: str, following: str) -> str | None:
        """Return where a page's `next` leads, as the audit reads a location; None when to another server.

        A path from / is read at base_url + path (as locations are); an http(s) URL as it stands, on the
        listing's own server only; anything else (a query, a relative path) resolved against the page's URL.
        """
        if following.startswith("/"):
            return following
        if not _ABSOLUTE.match(following):
            following = urljoin(page if _ABSOLUTE.match(page) else self.base_url + page, following)
        try:
            server, _ = self.target(following)
        except ValueError:
            return None
        return following if server == self.base_server else None

    def _count_queued(self, batch: list[Write]) -> None:
        for write in batch:
            self.total[write.kind] += 1

    def _count_unread(self, batch: list[Write], log: IO[bytes], reader: _LogReader) -> None:
        """Count the writes the audit will not look at: those in hand and the rest of the log, unchecked."""
        for write in batch:
            self.total[write.kind] += 1
            self._unchecked_example(write, self.reason)
        for line in () if self._log_read else log:
            if not line.strip():
                continue
            write = reader.skim(line)
            if write is not None:
                self.total[write.kind] += 1
                self._unchecked_example(write, self.reason)
        for write in reader.unfinished():
            self.total[write.kind] += 1
            self._unchecked_example(write, self.reason)

    def wind_down(self) -> None:
        """Count what is still queued as not looked at, end the workers, wait for them a little."""
        if self.halted.is_set():
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                for write in item or ():
                    self.record_unchecked(write)
            for _ in self.workers:
                try:
                    self.queue.put_nowait(None)
                except queue.Full:
                    break
        until = time.monotonic() + JOIN_S
        started = [worker for worker in (*self.workers, self.scanner) if worker.thread.ident is not None]
        for worker in started:
            worker.thread.join(max(0.0, until - time.monotonic()))
        with self._lock:
            self._closed = True

    def halt(self, reason: str) -> None:
        """Stop the audit: no new request; requests under way are woken by shutting their sockets."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self.halted.set()
        for worker in (*self.workers, self.scanner):
            worker.wake()

    def silent_for(self) -> float:
        """Return for how many seconds the service has answered nobody although asked (0 while it answers)."""
        since = self.silent_since
        for worker in (*self.workers, self.scanner):
            asked = worker.asking_since
            if asked is not None and (since is None or asked < since):
                since = asked
        if since is None:
            return 0.0
        return time.monotonic() - max(since, self.last_answer_at)

    def result(self, *, duration_s: float) -> AuditResult:
        total, done = self.total, self.outcomes
        acknowledged, indeterminate, failed = total["ok"], total["info"], total["fail"]
        settled = {
            "ok": done["verified"] + done["lost"],
            "info": done["recovered"] + done["not_applied"],
            "fail": done["failed_applied"] + done["failed_not_applied"],
        }
        looked = sum(settled.values()) + done["looked_ok"] + done["looked_info"] + done["looked_fail"]
        return AuditResult(
            applicable=True,
            acknowledged=acknowledged,
            verified=done["verified"],
            lost=done["lost"],
            unverified=acknowledged - settled["ok"],
            lost_examples=list(self.examples["lost"]),
            unverified_examples=list(self.examples["unverified"]),
            gave_up=self.reason if looked < acknowledged + indeterminate + failed else None,
            duration_s=duration_s,
            indeterminate=indeterminate,
            recovered=done["recovered"],
            not_applied=done["not_applied"],
            unresolved=indeterminate - settled["info"],
            failed=failed,
            failed_applied=done["failed_applied"],
            duplicated=done["duplicated"],
            unresolved_examples=list(self.examples["unresolved"]),
            failed_applied_examples=list(self.examples["failed_applied"]),
            duplicated_examples=list(self.examples["duplicated"]),
            listing=self._listing_figures(),
        )

    def _listing_figures(self) -> dict[str, Any] | None:
        listed = self.listed
        if listed is None or self.scan_url is None:
            return None
        problem = self.scan_problem
        if problem is None and not self.scan_complete:
            problem = self.reason or "the listing was not read"
        return {
            "url": self.scan_url,
            "pages": self.scan_pages,
            "records": listed.listed,
            "complete": self.scan_complete,
            "verified": self.listed_verified,
            "spot_checked": self.sample_total,
            "spot_check_disagreed": self.sample_disagreed,
            "problem": problem,
        }

    # -- any thread ----------------------------------------------------------------------------------

    def answered(self) -> None:
        self.last_answer_at = time.monotonic()
        self.silent_since = None

    def unanswered(self, attempt_started: float) -> None:
        if self.silent_since is None:
            self.silent_since = attempt_started

    def record(self, write: Write, outcome: str, example: str | None = None, *, duplicated: str | None = None) -> None:
        """Count a settled write's outcome (verified, lost, recovered, not_applied, failed_applied, ...)."""
        with self._lock:
            if self._closed:
                return
            self.outcomes[outcome] += 1
            self._example(outcome, example)
            if duplicated is not None:
                self.outcomes["duplicated"] += 1
                self._example("duplicated", duplicated)
            if write.sample:
                self._tally_sample(None if outcome == "verified" and duplicated is None else example or duplicated)

    def record_unsettled(self, write: Write, example: str) -> None:
        """Count a write the audit looked at but could not settle (unverified, unresolved, or neither)."""
        with self._lock:
            if not self._closed:
                self.outcomes[f"looked_{write.kind}"] += 1
                self._example(_UNSETTLED[write.kind], example)
                if write.sample:
                    self._tally_sample(None, unread=example)

    def _tally_sample(self, disagreement: str | None, unread: str | None = None) -> None:
        """Count one spot-checked write back (under the lock): how it read otherwise, or why it could not be read."""
        self.sample_done += 1
        if unread is not None:
            self.sample_unread += 1
            self.sample_unread_example = self.sample_unread_example or unread
        if disagreement is not None:
            self.sample_disagreed += 1
            self.sample_example = self.sample_example or disagreement
        if self.sample_done >= self.sample_total:
            self.samples_done.set()

    def record_unchecked(self, write: Write) -> None:
        """A write taken off the queue but not looked at: it stays unsettled through the remainder."""
        with self._lock:
            if not self._closed:
                self._unchecked_example(write, self.reason)

    def _unchecked_example(self, write: Write, reason: str | None) -> None:
        self._example(_UNSETTLED[write.kind], f"{write.label}: not checked: {reason}")

    def _example(self, outcome: str, example: str | None) -> None:
        kept = self.examples.get(outcome)
        if kept is not None and example is not None and len(kept) < EXAMPLES_KEPT:
            kept.append(example)

    def fail(self, error: BaseException) -> None:
        """A worker met an error the audit does not expect: stop, and raise it in the calling thread."""
        if self.error is None:
            self.error = error
        self.halt("the audit failed")

    def target(self, location: str) -> tuple[tuple[str, str, int], str]:
        """Return where to read location: (scheme, host, port) and the request target. ValueError if nowhere."""
        if self.base_path is not None and location[:1] == "/" and location.isprintable() and "#" not in location:
            # What urlsplit(base_url + location) gives, without its cost (the audit's most frequent case).
            return self.base_server, self.base_path + location
        url = location if _ABSOLUTE.match(location) else self.base_url + location
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        request_target = parts.path or "/"
        if parts.query:
            request_target = f"{request_target}?{parts.query}"
        return (scheme, host, port), request_target


# http.client, not requests or httpx: the audit reads back every acknowledged write (300,000 in `make bench`)
# on the prober's own CPU, beside the service and Locust on two cores. Per kept-alive GET, bench/http_clients.py
# measured 0.14 ms of CPU for http.client, 0.59 ms for httpx and 1.3 ms for a requests.Session; and owning the
# connection lets wake() reach its socket while it is still connecting.
class _Worker:
    """One thread reading writes back over its own kept-alive connections (one per server it meets)."""

    def __init__(self, audit: _Audit, number: int | str, target: Callable[[], None] | None = None) -> None:
        self.audit = audit
        self.connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        # The start of the request under way (None between requests), and the socket being connected.
        self.asking_since: float | None = None
        self.connecting: socket.socket | None = None
        self.thread = threading.Thread(target=target or self.run, name=f"stackprobe-audit-{number}", daemon=True)

    def run(self) -> None:
        audit, get = self.audit, self.audit.queue.get
        try:
            while not audit.halted.is_set():
                batch = get()
                if batch is None:
                    return
                for write in batch:
                    self.check(write)
        except BaseException as exc:
            audit.fail(exc)
        finally:
            for connection in self.connections.values():
                connection.close()

    def wake(self) -> None:
        """Called from another thread: make a blocked connect or read return at once."""
        sockets = [self.connecting, *(c.sock for c in list(self.connections.values()))]
        for sock in sockets:
            if sock is not None:
                # socket.socket's own shutdown, also on a TLS socket: a read blocked on it returns.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def check(self, write: Write) -> None:
        """Read one write back (at its lookup if it has one, else its location) and record what was found."""
        audit = self.audit
        where = write.lookup if write.lookup is not None else write.location
        if where is None:
            audit.record_unsettled(write, f"{write.label}: nowhere to look (the log gives no lookup)")
            return
        answer = self.fetch(where)
        if answer is None:
            audit.record_unchecked(write)
        elif isinstance(answer, str):
            audit.record_unsettled(write, f"{write.label}: {answer}")
        elif write.lookup is not None:
            _classify_lookup(audit, write, *answer)
        else:
            _classify(audit, write, *answer)

    def fetch(self, where: str, max_bytes: int | None = None) -> tuple[int, bytes] | str | None:
        """GET `where` (a location, a lookup or a listing's page) with the audit's tries.

        Returns (status, body) for a decisive answer (any status but 5xx and 429); a text saying why there was
        none (the status or the connection's failure after TRIES tries, a URL that cannot be read, or a body
        over max_bytes); or None when the audit halted before an answer.
        """
        audit = self.audit
        try:
            server, request_target = audit.target(where)
        except ValueError as exc:
            return f"cannot be read: {exc}"
        attempts = tries = 0
        first_try: float | None = None
        while True:
            if audit.halted.is_set():
                return None
            started = time.monotonic()
            if first_try is None:
                first_try = started
            self.asking_since = started
            try:
                status, retry_after, body = self.get(server, request_target, max_bytes)
            except _TooLong:
                return f"an answer over {max_bytes or 0:,} bytes, not read"
            except (http.client.InvalidURL, UnicodeError) as exc:  # a location http.client will not send (a space …)
                return f"cannot be read: {exc}"
            except (OSError, http.client.HTTPException) as exc:
                status, retry_after, body, failure = 0, None, b"", exc
            else:
                failure = None
            finally:
                self.asking_since = None
            attempts += 1
            if failure is None and status not in _RETRYABLE:
                audit.answered()
                return status, body
            audit.unanswered(started)
            if audit.halted.is_set():
                return None
            if failure is None:
                tries += 1
                if tries >= TRIES:
                    after = f" (Retry-After {retry_after.strip()[:40]})" if retry_after else ""
                    return f"HTTP {status} after {attempts} tries{after}"
                wait = _retry_after_s(retry_after)
                delay = BACKOFF_S[min(tries, len(BACKOFF_S)) - 1] if wait is None else wait
            else:
                # A failure says something about this write only if the service has answered others since
                # this write's first try; while it answers nobody (a restart), the shared budget decides.
                if audit.last_answer_at > first_try:
                    tries += 1
                if tries >= TRIES:
                    return f"{_describe(failure)} after {attempts} tries"
                delay = RECONNECT_DELAYS_S[min(attempts, len(RECONNECT_DELAYS_S)) - 1]
            if delay > 0 and audit.halted.wait(delay):
                return None

    def get(
        self, server: tuple[str, str, int], request_target: str, max_bytes: int | None = None
    ) -> tuple[int, str | None, bytes]:
        """GET request_target from server; return the status, the Retry-After header and the body.

        Raises _TooLong (the connection closed) for a body over max_bytes, before reading more of it.
        """
        connection = self.connections.get(server)
        if connection is None:
            connection = self.connections[server] = self._connection(server)
        try:
            connection.request("GET", request_target, headers=self.audit.headers)
            response = connection.getresponse()
            if max_bytes is None:
                body = response.read()  # a body shorter than its Content-Length raises IncompleteRead
            else:
                body = response.read(max_bytes + 1)
                if len(body) > max_bytes:
                    raise _TooLong()
                body += response.read()  # the end of a chunked body; b"" once the body is whole
                # read(amt) returns what came before the peer closed, without IncompleteRead: a short body is one.
                declared = (response.getheader("Content-Length") or "").strip()
                if declared.isdigit() and not response.chunked and len(body) < int(declared):
                    raise http.client.IncompleteRead(body, int(declared) - len(body))
        except BaseException:
            # A connection in an unknown state is never reused (a closed one reconnects on the next request).
            connection.close()
            raise
        if response.will_close:
            connection.close()
        return response.status, response.getheader("Retry-After"), body

    def _connection(self, server: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = server
        connection: http.client.HTTPConnection
        if scheme == "https":
            # Locust's FastHttpUser does not verify certificates by default: read back what it wrote to.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=context)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
        # http.client opens its socket through this attribute: ours lets wake() reach a socket still connecting.
        connection._create_connection = self._open_socket  # type: ignore[attr-defined]
        return connection

    def _open_socket(
        self, address: tuple[str, int], timeout: float | None = None, source_address: object = None
    ) -> socket.socket:
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            self.connecting = sock
            try:
                sock.settimeout(timeout)
                if self.audit.halted.is_set():
                    raise ConnectionAbortedError("the audit stopped")
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            finally:
                self.connecting = None
        raise error or OSError(f"no address for {host}:{port}")


class _TooLong(Exception):
    """An answer longer than the reader would hold."""


_UNSETTLED = {"ok": "unverified", "info": "unresolved", "fail": "failed_unverified"}
_COMPLETIONS = frozenset({"ok", "fail", "info"})


class _LogReader:
    """Turn the write log's lines into Writes, pairing each completion with its invoke.

    The state is the creates in flight at this point of the log (invoked, not yet completed), by op id,
    with the byte offset of each invoke's line; and the listing the log declares (a "scan" line), if any.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.in_flight: dict[str, tuple[str | None, str | None, int]] = {}
        # The listing of every record ("scan" lines: its first page's URL, and the key records are matched by).
        self.scan: tuple[str, str] | None = None
        # The offset of the invoke of the write the last read returned (-1: it had none).
        self.invoked_at = -1

    def read(self, line: bytes, number: int, offset: int = -1) -> Write | None:
        """Return the write a line settles (None for an invoke); ValueError naming file:line if it is none.

        offset: where the line starts in the log (bytes), kept for an invoke so the write can be read again.
        """
        try:
            return self._settle(loads(line), offset)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            text = line.decode("utf-8", "replace").rstrip("\r\n")[:120]
            raise ValueError(f"{self.path}:{number}: not a write record ({exc}): {text}") from None

    def skim(self, line: bytes) -> Write | None:
        """As read, for a line the audit will not look at: a line that is no write record counts as one."""
        try:
            return self._settle(loads(line), -1)
        except (ValueError, KeyError, TypeError, AttributeError):
            return Write("ok", "(a line that is not a write record)", {})

    def reread(self, log: IO[bytes], ok_at: int, invoked_at: int) -> Write:
        """Read an acknowledged write again from its lines' offsets in the log (invoked_at -1: no invoke)."""
        lookup = name = None
        if invoked_at >= 0:
            log.seek(invoked_at)
            lookup, name = _invoked(loads(log.readline()))
        log.seek(ok_at)
        return _acknowledged(loads(log.readline()), lookup, name)

    def _settle(self, record: Any, offset: int) -> Write | None:
        kind = record.get("type")
        self.invoked_at = -1
        if kind is None:  # the first format: an acknowledged write
            return _acknowledged(record)
        if kind == "invoke":
            self.in_flight[str(record["op"])] = (*_invoked(record), offset)
            return None
        if kind == "scan":
            self._declare_scan(record.get("url"), record.get("key", "id"))
            return None
        if kind not in _COMPLETIONS:
            raise ValueError(f"unknown type {kind!r}")
        lookup, name, self.invoked_at = self.in_flight.pop(str(record["op"]), (None, None, -1))
        if kind == "ok":
            return _acknowledged(record, lookup, name)
        name = _text(record.get("name")) if name is None else name
        return Write(kind, None, {}, lookup, name, str(record.get("error", "")))

    def _declare_scan(self, url: Any, key: Any) -> None:
        if not isinstance(url, str) or not (url.startswith("/") or _ABSOLUTE.match(url)):
            raise ValueError(f"a listing's url is a path from / or an http(s) URL, not {url!r}")
        if not isinstance(key, str) or not key:
            raise ValueError(f"a listing's key is the name of a field, not {key!r}")
        # Every process of a distributed load declares the listing once: the same declaration may repeat.
        if self.scan is not None and self.scan != (url, key):
            raise ValueError(f"a second listing {url!r} by {key!r}, after {self.scan[0]!r} by {self.scan[1]!r}")
        self.scan = (url, key)

    def unfinished(self) -> list[Write]:
        """Return (and forget) the creates invoked that the log never completed: indeterminate."""
        writes = [
            Write("info", None, {}, lookup, name, "no completion in the log")
            for lookup, name, _offset in self.in_flight.values()
        ]
        self.in_flight.clear()
        return writes


class _Listed:
    """The acknowledged writes a listing can settle, in compact arrays: about 42 bytes a write.

    Per write: the hash of its key's value (its id), the hash of its expected keys' values, which keys
    those are (an index into `keysets`), the hash of its name (where it has a lookup: duplicates are counted
    only then), and the offsets of its lines in the log (to read it again where the listing does not settle
    it). Python's hash() of equal values is equal (1 == 1.0), as the per-write comparison's ==; two unequal
    values share a 64-bit hash with odds of about 1 in 2**64 per pair.
    """

    MAX_KEYSETS = 255

    def __init__(self, key: str) -> None:
        self.key = key
        self.keys = array("q")
        self.prints = array("q")
        self.keyset_of = array("B")
        self.names = array("q")
        self.named = bytearray()
        self.ok_at = array("q")
        self.invoked_at = array("q")
        self.keysets: list[tuple[str, ...]] = []
        self._keyset_ids: dict[tuple[str, ...], int] = {}
        # Built by freeze(): the keys in order and the write each belongs to; what the listing showed of
        # each write (1: its record as acknowledged, 2: a record with its key that differs); and how many
        # listed records bear each (sorted) name.
        self.sorted_keys = array("q")
        self.order = array("q")
        self.seen = bytearray()
        self.sorted_names = array("q")
        self.name_counts = bytearray()
        self.listed = 0
        # The first listed record's key value, as Python writes it ("absent" when it has none): for messages.
        self.first_key_value: str | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, write: Write, ok_at: int, invoked_at: int) -> bool:
        """Take an acknowledged write the listing can settle; False when it cannot (read it back alone)."""
        expect = write.expect
        value = expect.get(self.key)
        if type(value) not in (int, str) or write.location is None or _ABSOLUTE.match(write.location):
            return False
        order = tuple(expect)
        number = self._keyset_ids.get(order)
        if number is None:
            keyset = tuple(sorted(order))
            if keyset in self.keysets:
                number = self.keysets.index(keyset)
            elif len(self.keysets) >= self.MAX_KEYSETS:
                return False
            else:
                number = len(self.keysets)
                self.keysets.append(keyset)
            self._keyset_ids[order] = number
        fingerprint = _fingerprint(tuple(map(expect.__getitem__, self.keysets[number])))
        self.keys.append(hash(value))
        self.prints.append(fingerprint)
        self.keyset_of.append(number)
        has_name = write.lookup is not None and write.name is not None
        self.named.append(has_name)
        self.names.append(hash(write.name) if has_name else 0)
        self.ok_at.append(ok_at)
        self.invoked_at.append(invoked_at)
        return True

    def freeze(self) -> None:
        """Sort what the listing is matched against (call once, after the last add)."""
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        self.order = array("q", order)
        del order
        self.sorted_keys = array("q", map(self.keys.__getitem__, self.order))
        self.seen = bytearray(len(self.keys))
        self.sorted_names = array(
            "q", sorted(name for name, named in zip(self.names, self.named, strict=True) if named)
        )
        self.name_counts = bytearray(len(self.sorted_names))

    def see(self, items: list[Any]) -> None:
        """Match one page of the listing's records against the writes."""
        key, keys, count = self.key, self.sorted_keys, len(self.sorted_keys)
        names, named_count = self.sorted_names, len(self.sorted_names)
        for item in items:
            if not isinstance(item, dict):
                continue
            self.listed += 1
            value = item.get(key)
            if self.first_key_value is None:
                self.first_key_value = repr(value) if key in item else "absent"
            if type(value) in (int, str):
                wanted = hash(value)
                at = bisect_left(keys, wanted)
                while at < count and keys[at] == wanted:
                    write = self.order[at]
                    found = _fingerprint(tuple(map(item.get, self.keysets[self.keyset_of[write]])))
                    self.seen[write] |= 1 if found == self.prints[write] else 2
                    at += 1
            name = item.get("name")
            if named_count and isinstance(name, str):
                wanted = hash(name)
                at = bisect_left(names, wanted)
                if at < named_count and names[at] == wanted and self.name_counts[at] < 255:
                    self.name_counts[at] += 1

    def settled(self, write: int) -> bool:
        """Whether the listing verified a write: its record as acknowledged, and no other of its name."""
        if self.seen[write] != 1:
            return False
        if not self.named[write]:
            return True
        at = bisect_left(self.sorted_names, self.names[write])
        return self.name_counts[at] <= 1


def _fingerprint(values: tuple[Any, ...]) -> int:
    """Return the hash of JSON values: equal values (1 == 1.0, lists and objects within) hash alike."""
    try:
        return hash(values)
    except TypeError:  # a list or an object among them
        return hash(tuple(map(_frozen, values)))


def _frozen(value: Any) -> Any:
    """A JSON value in a hashable form that is equal exactly when the values are (lists, objects within)."""
    if isinstance(value, list):
        return ("[]", tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return ("{}", frozenset((key, _frozen(item)) for key, item in value.items()))
    return value


def _invoked(invoke: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return an invoke line's lookup URL and name (None where it gives none)."""
    lookup = invoke.get("lookup")
    return (None if lookup is None else str(lookup)), _text(invoke.get("name"))


def _acknowledged(record: dict[str, Any], lookup: str | None = None, name: str | None = None) -> Write:
    """Return the acknowledged write an ok line (or a first-format line) records; lookup, name: its invoke's."""
    if record.get("type") is None:  # the first format: a location and what it holds, nothing more
        return Write("ok", str(record["location"]), dict(record.get("expect", {})))
    name = _text(record.get("name")) if name is None else name
    return Write("ok", str(record["location"]), dict(record.get("expect", {})), lookup, name)


def _json_or_none(body: bytes) -> Any:
    try:
        return loads(body)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _classify(audit: _Audit, write: Write, status: int, body: bytes) -> None:
    """Settle an acknowledged write read back at its location."""
    location, expect = write.label, write.expect
    if status in _GONE:
        audit.record(write, "lost", f"{location}: HTTP {status}")
        return
    if status != 200:
        # 3xx, 401, 403 …: the service answered, but not with the record: the audit could not look.
        audit.record_unsettled(write, f"{location}: HTTP {status}")
        return
    try:
        record = loads(body)
    except ValueError:
        audit.record(write, "lost", f"{location}: body is not JSON")
        return
    if not isinstance(record, dict):
        audit.record(write, "lost", f"{location}: body is not a JSON object")
        return
    changed = {key: record.get(key) for key, value in expect.items() if record.get(key) != value}
    if changed:
        audit.record(write, "lost", f"{location}: expected {expect}, found {changed}")
    else:
        audit.record(write, "verified")


def _classify_lookup(audit: _Audit, write: Write, status: int, body: bytes) -> None:
    """Settle a write from its lookup's answer: the records of its name, as a list or an `items` list."""
    label = write.label
    if status != 200:
        # A 404 from a lookup says the lookup is unknown, not that the write is missing.
        audit.record_unsettled(write, f"{label}: lookup answered HTTP {status}")
        return
    try:
        document = loads(body)
    except ValueError:
        document = None
    items = document.get("items") if isinstance(document, dict) else document
    if not isinstance(items, list):
        audit.record_unsettled(write, f"{label}: lookup answered no list of records")
        return
    named = [item for item in items if isinstance(item, dict) and item.get("name") == write.name]
    duplicated = f"{label}: {len(named)} records of that name" if len(named) > 1 else None
    if write.kind == "ok":
        expect = write.expect
        if any(all(item.get(key) == value for key, value in expect.items()) for item in named):
            audit.record(write, "verified", duplicated=duplicated)
        else:
            found = "no record of that name"
            if named:
                differs = {key: named[0].get(key) for key, value in expect.items() if named[0].get(key) != value}
                others = "1 other record" if len(named) == 1 else f"{len(named)} other records"
                found = f"{others} of that name, the first with {differs}"
            audit.record(write, "lost", f"{label}: expected {expect}, found {found}", duplicated=duplicated)
    elif write.kind == "info":
        audit.record(write, "recovered" if named else "not_applied", duplicated=duplicated)
    elif named:
        audit.record(write, "failed_applied", f"{label}: refused ({write.why}) but written", duplicated=duplicated)
    else:
        audit.record(write, "failed_not_applied")


def _retry_after_s(value: str | None) -> float | None:
    """Return the wait a Retry-After header asks for, in seconds, capped; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def _describe(failure: BaseException) -> str:
    if isinstance(failure, TimeoutError):
        return f"no answer within {TIMEOUT_S:g} s"
    if isinstance(failure, ConnectionRefusedError):
        return "connection refused"
    if isinstance(failure, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(failure, ConnectionResetError):
        return "connection reset"
    text = str(failure)
    return f"{failure.__class__.__name__}: {text}" if text else failure.__class__.__name__
