"""The write audit through a declared listing: one pass over every record, then only the doubtful writes alone.

A small users service on 127.0.0.1 (http.server, in-memory records) answers the bundled service's routes:
GET /users?limit=N[&after=ID] (pages with `next`), GET /users/<id> and GET /users?name=NAME.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stackprobe import audit
from stackprobe.audit import audit_write_log


class _Users(ThreadingHTTPServer):
    daemon_threads = True
    records: dict[int, dict[str, Any]]
    paths: list[str]
    # Answers that replace the listing's own (path -> (status, body)), and pages answered only after a pause.
    broken: dict[str, tuple[int, bytes]]
    slow_pages_s: float
    # The listing leaves out every record whose name an earlier one holds (a deduplicated view).
    dedup_listing: bool
    # A page's `next` as this server writes it (path of the page -> the `next` it answers with).
    next_of: dict[str, object]
    # Paths answered once with their headers only, the connection then closed.
    cut_once: set[str]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that stops reading (the audit stopped) is not this test's concern


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        server: _Users = self.server  # type: ignore[assignment]
        server.paths.append(self.path)
        status, body = server.broken.get(self.path) or self._answer(server)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in server.cut_once:
            server.cut_once.discard(self.path)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _answer(self, server: _Users) -> tuple[int, bytes]:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if parts.path.startswith("/users/"):
            record = server.records.get(int(parts.path.removeprefix("/users/")))
            return (200, json.dumps(record).encode()) if record else (404, b'{"error": "user_not_found"}')
        if "name" in query:
            items = [record for record in server.records.values() if record["name"] == query["name"]]
            return 200, json.dumps({"items": items, "next": None}).encode()
        if server.slow_pages_s:
            time.sleep(server.slow_pages_s)
        limit, after = int(query["limit"]), int(query.get("after", 0))
        ids = sorted(i for i in server.records if i > after)
        items = [server.records[i] for i in ids[:limit]]
        if server.dedup_listing:
            first = {}
            for i in sorted(server.records):
                first.setdefault(server.records[i]["name"], i)
            items = [item for item in items if first[item["name"]] == item["id"]]
        following = f"/users?limit={limit}&after={ids[limit - 1]}" if len(ids) > limit else None
        following = server.next_of.get(self.path, following)
        return 200, json.dumps({"items": items, "next": following}).encode()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def users() -> Iterator[_Users]:
    server = _Users(("127.0.0.1", 0), _Handler)
    server.records, server.paths, server.broken, server.slow_pages_s = {}, [], {}, 0.0
    server.dedup_listing, server.next_of, server.cut_once = False, {}, set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_spot_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the listing at its word, so that each test counts its own requests; the spot-check has its own tests."""
    monkeypatch.setattr(audit, "SPOT_CHECK_MIN", 0)
    monkeypatch.setattr(audit, "SPOT_CHECK_SHARE", 0.0)


def _url(server: _Users) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _history(path: Path, acked: list[tuple[int, str]], *, scan: str | None = "/users?limit=3") -> Path:
    """A write log as loadtests/_write_log.py writes it: the listing, then an invoke and an ok per create."""
    with path.open("w") as log:
        if scan is not None:
            log.write(json.dumps({"type": "scan", "url": scan, "key": "id", "time": 1.0}) + "\n")
        for op, (user_id, name) in enumerate(acked):
            invoke = {"type": "invoke", "op": f"7-{op}", "process": "7-1", "f": "create", "name": name}
            log.write(json.dumps({**invoke, "lookup": f"/users?name={name}", "time": 1.0}) + "\n")
            ok = {"type": "ok", "op": f"7-{op}", "process": "7-1", "name": name, "status": 201}
            expect = {"id": user_id, "name": name}
            log.write(json.dumps({**ok, "location": f"/users/{user_id}", "expect": expect, "time": 2.0}) + "\n")
    return path


def _store(server: _Users, *records: tuple[int, str]) -> None:
    for user_id, name in records:
        server.records[user_id] = {"id": user_id, "name": name, "created_at": "2026-11-30T12:00:00Z"}


def test_the_listing_verifies_writes_in_pages_and_only_the_doubtful_ones_are_read_alone(
    users: _Users, tmp_path: Path
) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 11)])
    users.records[4]["name"] = "changed"  # acknowledged as u4: lost, with what was found
    del users.records[7]  # acknowledged, then gone: lost (404)
    _store(users, (11, "u9"))  # a second u9: duplicated
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 11)]))
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (10, 8, 2, 0)
    assert result.duplicated == 1
    assert result.duplicated_examples == ["/users/9: 2 records of that name"]
    assert sorted(result.lost_examples) == [
        "/users/4: expected {'id': 4, 'name': 'u4'}, found no record of that name",
        "/users/7: expected {'id': 7, 'name': 'u7'}, found no record of that name",
    ]
    pages = [path for path in users.paths if path.startswith("/users?limit=")]
    alone = [path for path in users.paths if path not in pages]
    # 10 records at 3 a page: 4 pages; then the two lost and the duplicated one, each at its lookup.
    assert len(pages) == 4
    assert sorted(alone) == ["/users?name=u4", "/users?name=u7", "/users?name=u9"]
    assert result.listing == {
        "url": "/users?limit=3", "pages": 4, "records": 10, "complete": True, "verified": 7,
        "spot_checked": 0, "spot_check_disagreed": 0, "problem": None,
    }  # fmt: skip


def test_without_a_listing_every_write_is_read_alone(users: _Users, tmp_path: Path) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 6)])
    result = audit_write_log(
        _url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 6)], scan=None)
    )
    assert (result.acknowledged, result.verified) == (5, 5)
    assert sorted(users.paths) == [f"/users?name=u{i}" for i in range(1, 6)]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ((500, b'{"error": "boom"}'), "a listing that keeps failing"),
        ((200, b"<html>"), "a listing that is not JSON"),
        ((200, b'{"items": [], "next": "/users?limit=3"}'), "a listing whose next is itself"),
        ((404, b'{"error": "no route"}'), "a listing the service does not have"),
    ],
)
def test_a_listing_that_cannot_be_read_whole_leaves_every_write_to_be_read_alone(
    users: _Users, tmp_path: Path, answer: tuple[int, bytes], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "BACKOFF_S", (0.01, 0.01, 0.01))
    _store(users, *[(i, f"u{i}") for i in range(1, 6)])
    users.broken["/users?limit=3"] = answer
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 6)]))
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (5, 5, 0, 0), why
    assert sum(path.startswith("/users?name=") for path in users.paths) == 5, why
    assert result.listing is not None
    assert (result.listing["complete"], result.listing["verified"]) == (False, 0), why
    assert result.listing["problem"].startswith("/users?limit=3: "), why


def test_a_listing_cut_short_by_a_failing_page_leaves_its_writes_to_be_read_alone(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "BACKOFF_S", (0.01, 0.01, 0.01))
    # The second page fails for good: a record missing from a listing not read whole is not called lost on
    # the listing's word; each write is read back at its own lookup.
    _store(users, *[(i, f"u{i}") for i in range(1, 7)])
    users.broken["/users?limit=3&after=3"] = (503, b'{"error": "unavailable"}')
    del users.records[5]
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 7)]))
    assert (result.verified, result.lost) == (5, 1)
    assert result.lost_examples == ["/users/5: expected {'id': 5, 'name': 'u5'}, found no record of that name"]


def test_stopping_during_the_listing_ends_within_a_second_and_counts_add_up(users: _Users, tmp_path: Path) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 31)])
    users.slow_pages_s = 0.5
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    result = audit_write_log(
        _url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 31)]), stop=stop
    )
    assert time.monotonic() - started < 2.5
    assert result.gave_up == "the audit was stopped"
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (30, 0, 0, 30)
    assert result.unverified_examples[0] == "/users/1: not checked: the audit was stopped"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ({"type": "scan", "url": "/people?limit=9", "key": "id"}, "a second listing '/people?limit=9' by 'id'"),
        ({"type": "scan", "key": "id"}, "a listing's url is a path from / or an http(s) URL, not None"),
        ({"type": "scan", "url": 5}, "a listing's url is a path from / or an http(s) URL, not 5"),
        ({"type": "scan", "url": "items?limit=9"}, "a listing's url is a path from / or an http(s) URL"),
        ({"type": "scan", "url": "/users?limit=3", "key": ["id"]}, "a listing's key is the name of a field"),
    ],
)
def test_a_listing_declared_wrongly_is_an_unverified_write_named_with_its_place(
    users: _Users, tmp_path: Path, line: dict[str, object], why: str
) -> None:
    # The first, sound declaration stands; the bad line cannot be checked, so the run cannot pass.
    _store(users, (1, "u1"))
    log = _history(tmp_path / "w.jsonl", [(1, "u1")])
    with log.open("a") as file:
        file.write(json.dumps(line) + "\n")
    result = audit_write_log(_url(users), log)
    assert (result.acknowledged, result.verified, result.unverified) == (2, 1, 1)
    assert result.unverified_examples[0].startswith(f"{log}:4: not a write record ({why}")
    assert users.paths[0] == "/users?limit=3"


def test_the_same_listing_declared_by_every_process_is_one_listing(users: _Users, tmp_path: Path) -> None:
    _store(users, (1, "u1"), (2, "u2"))
    log = _history(tmp_path / "w.jsonl", [(1, "u1"), (2, "u2")])
    log.write_text(log.read_text() + json.dumps({"type": "scan", "url": "/users?limit=3", "key": "id"}) + "\n")
    result = audit_write_log(_url(users), log)
    assert (result.acknowledged, result.verified) == (2, 2)
    assert users.paths == ["/users?limit=3"]


def test_writes_the_listing_cannot_match_are_read_alone(users: _Users, tmp_path: Path) -> None:
    # No id in what was acknowledged, or a record elsewhere: the listing cannot speak for them.
    _store(users, (1, "u1"))
    log = _history(tmp_path / "w.jsonl", [(1, "u1")])
    with log.open("a") as file:
        file.write(json.dumps({"location": "/users/1", "expect": {"name": "u1"}}) + "\n")
        file.write(json.dumps({"location": f"{_url(users)}/users/1", "expect": {"id": 1}}) + "\n")
    result = audit_write_log(_url(users), log)
    assert (result.acknowledged, result.verified) == (3, 3)
    assert sorted(users.paths) == ["/users/1", "/users/1", "/users?limit=3"]


def test_memory_for_a_listed_audit_grows_by_tens_of_bytes_a_write(users: _Users, tmp_path: Path) -> None:
    # 300,000 writes must stay under 50 MiB of heap (issue 7); here 10,000, kept under 100 bytes each.
    count = 10_000
    _store(users, *[(i, f"u{i}") for i in range(1, count + 1)])
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, count + 1)], scan="/users?limit=500")
    tracemalloc.start()
    try:
        result = audit_write_log(_url(users), log)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.acknowledged, result.verified) == (count, count)
    assert peak < 100 * count + 2 * 2**20, f"peak {peak / 2**20:.2f} MiB"


def test_a_listing_far_longer_than_the_log_is_abandoned_for_reads_of_each_write(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table that held many rows before the run: paging through all of them costs more than a read per write.
    monkeypatch.setattr(audit, "LISTING_PER_WRITE", 2)
    monkeypatch.setattr(audit, "LISTING_SLACK", 3)
    _store(users, *[(i, f"u{i}") for i in range(1, 41)])
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(38, "u38"), (39, "u39")]))
    assert (result.acknowledged, result.verified) == (2, 2)
    assert result.listing is not None
    assert (result.listing["pages"], result.listing["complete"], result.listing["verified"]) == (3, False, 0)
    assert result.listing["problem"] == (
        "more than 7 records (2 per write to check, plus 3): reading each write alone costs less"
    )
    assert sorted(path for path in users.paths if "name=" in path) == ["/users?name=u38", "/users?name=u39"]


def test_the_listings_word_is_spot_checked_and_a_listing_that_hides_duplicates_is_set_aside(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deduplicated listing shows one record per name: taken at its word, it would hide 40 duplicates.
    monkeypatch.setattr(audit, "SPOT_CHECK_MIN", 10)
    _store(users, *[(i, f"u{i}") for i in range(1, 201)])
    _store(users, *[(1000 + i, f"u{i}") for i in range(1, 201, 5)])  # a second u1, u6, u11 …
    users.dedup_listing = True
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 201)]))
    assert (result.acknowledged, result.verified, result.duplicated) == (200, 200, 40)
    assert result.listing is not None
    assert (result.listing["verified"], result.listing["spot_checked"]) == (0, 10)
    assert result.listing["spot_check_disagreed"] == 10  # u1, u21, u41 …: every 20th write, each a duplicate
    assert result.listing["problem"] == (
        "10 of the 10 writes it showed read otherwise alone (e.g. /users/1: 2 records of that name)"
    )
    assert sum("name=" in path for path in users.paths) == 200


def test_an_honest_listing_passes_its_spot_check_and_verifies_the_rest(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "SPOT_CHECK_MIN", 10)
    monkeypatch.setattr(audit, "SPOT_CHECK_SHARE", 0.02)
    _store(users, *[(i, f"u{i}") for i in range(1, 1001)])
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 1001)], scan="/users?limit=500")
    result = audit_write_log(_url(users), log)
    assert (result.acknowledged, result.verified) == (1000, 1000)
    assert result.listing is not None
    assert (result.listing["verified"], result.listing["spot_checked"], result.listing["problem"]) == (980, 20, None)
    checked = sorted(int(path.removeprefix("/users?name=u")) for path in users.paths if "name=" in path)
    assert checked == list(range(1, 1001, 50))  # evenly spread over the log


@pytest.mark.parametrize(
    ("next_of", "problem"),
    [
        ({"/users?limit=3": "http://127.0.0.1:1/users?limit=3&after=3"}, "its `next` leads to another server"),
        ({"/users?limit=3&after=3": "/users?limit=3"}, "its `next`, /users?limit=3, was read before"),
        ({"/users?limit=3": 5}, "its `next` is 5, not a URL or null"),
    ],
)
def test_a_next_that_leaves_the_service_loops_or_is_no_url_sets_the_listing_aside(
    users: _Users, tmp_path: Path, next_of: dict[str, object], problem: str
) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 8)])
    users.next_of = next_of
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 8)]))
    assert (result.acknowledged, result.verified, result.unverified, result.gave_up) == (7, 7, 0, None)
    assert result.listing is not None
    assert problem in result.listing["problem"]
    assert result.listing["complete"] is False
    assert sum("name=" in path for path in users.paths) == 7


def test_a_relative_next_is_resolved_against_its_page_and_a_same_server_url_is_followed(
    users: _Users, tmp_path: Path
) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 8)])
    users.next_of = {
        "/users?limit=3": "?limit=3&after=3",
        "/users?limit=3&after=3": f"{_url(users)}/users?limit=3&after=6",
    }
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 8)]))
    assert result.listing is not None
    assert (result.listing["pages"], result.listing["verified"], result.listing["problem"]) == (3, 7, None)
    assert users.paths == ["/users?limit=3", "/users?limit=3&after=3", "/users?limit=3&after=6"]


def test_a_page_too_long_to_hold_sets_the_listing_aside(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "MAX_PAGE_BYTES", 100)
    _store(users, *[(i, f"u{i}") for i in range(1, 8)])
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 8)]))
    assert result.verified == 7
    assert result.listing is not None
    assert result.listing["problem"] == "/users?limit=3: an answer over 100 bytes, not read"


def test_a_listing_slower_than_its_share_of_the_deadline_leaves_time_to_read_each_write(
    users: _Users, tmp_path: Path
) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 31)])
    users.slow_pages_s = 0.5
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 31)])
    result = audit_write_log(_url(users), log, deadline_s=4)
    assert (result.verified, result.gave_up) == (30, None)
    assert result.listing is not None
    assert "not read: the listing's share of the audit's deadline was spent" in result.listing["problem"]


def test_a_listing_whose_records_hold_no_write_key_says_so(users: _Users, tmp_path: Path) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 5)])
    for record in users.records.values():
        record["user_id"] = record.pop("id")
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 5)])
    result = audit_write_log(_url(users), log)
    assert result.listing is not None
    assert result.listing["problem"] == (
        "none of its 4 records holds the 'id' of a write (the first record's 'id': absent; values compare as "
        'JSON values: the string "7" is not the number 7)'
    )
    assert sum("name=" in path for path in users.paths) == 4


def test_a_lost_write_whose_name_is_held_by_another_record_shows_what_differs(users: _Users, tmp_path: Path) -> None:
    # Values are compared as JSON values: the string "7" is not the number 7, and the example shows which it was.
    _store(users, (7, "u7"))
    log = tmp_path / "w.jsonl"
    invoke = {"type": "invoke", "op": "1", "process": "1", "name": "u7", "lookup": "/users?name=u7", "time": 1.0}
    ok = {"type": "ok", "op": "1", "name": "u7", "location": "/users/7", "expect": {"id": "7", "name": "u7"}}
    log.write_text(json.dumps(invoke) + "\n" + json.dumps({**ok, "time": 2.0}) + "\n")
    result = audit_write_log(_url(users), log)
    assert result.lost_examples == [
        "/users/7: expected {'id': '7', 'name': 'u7'}, found 1 other record of that name, the first with {'id': 7}"
    ]


@pytest.mark.parametrize("count", [142, 301, 997])
def test_the_spot_check_takes_exactly_its_share_and_the_counts_add_up(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    # 142 / 100 is 1.42: a float step summed a hundred times lands a hair short and took a 101st write.
    monkeypatch.setattr(audit, "SPOT_CHECK_MIN", 100)
    monkeypatch.setattr(audit, "SPOT_CHECK_SHARE", 0.02)
    _store(users, *[(i, f"u{i}") for i in range(1, count + 1)])
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, count + 1)], scan="/users?limit=500")
    result = audit_write_log(_url(users), log)
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (count, count, 0, 0)
    assert result.listing is not None
    assert result.listing["spot_checked"] == 100 == sum("name=" in path for path in users.paths)
    assert result.listing["verified"] == count - 100


def test_ids_listed_as_strings_say_which_type_the_listing_holds(users: _Users, tmp_path: Path) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 4)])
    for record in users.records.values():
        record["id"] = str(record["id"])
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 4)]))
    assert result.listing is not None
    assert result.listing["problem"].startswith(
        "none of its 3 records holds the 'id' of a write (the first record's 'id': '1';"
    )


def test_a_spot_check_that_could_not_read_a_write_sets_the_listing_aside(
    users: _Users, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lookups answer something that is no list: the listing's word cannot be checked, so it is not taken.
    monkeypatch.setattr(audit, "SPOT_CHECK_MIN", 2)
    _store(users, *[(i, f"u{i}") for i in range(1, 11)])
    users.broken.update({f"/users?name=u{i}": (200, b"<html>") for i in range(1, 11)})
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 11)]))
    assert (result.verified, result.unverified) == (0, 10)
    assert result.listing is not None
    assert result.listing["verified"] == 0
    assert result.listing["problem"] == (
        "2 of the 2 writes it showed could not be read alone to check it "
        "(e.g. /users/1: lookup answered no list of records)"
    )


def test_a_listing_on_another_server_is_not_read(users: _Users, tmp_path: Path) -> None:
    _store(users, (1, "u1"))
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(1, "u1")], scan="http://127.0.0.1:1/users"))
    assert result.verified == 1
    assert result.listing is not None
    assert result.listing["problem"] == "http://127.0.0.1:1/users: on another server than the one loaded, not read"


def test_use_listing_false_reads_every_write_alone(users: _Users, tmp_path: Path) -> None:
    _store(users, *[(i, f"u{i}") for i in range(1, 4)])
    log = _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 4)])
    result = audit_write_log(_url(users), log, use_listing=False)
    assert (result.verified, result.listing) == (3, None)
    assert sorted(users.paths) == ["/users?name=u1", "/users?name=u2", "/users?name=u3"]


def test_a_page_cut_short_after_its_headers_is_read_again(users: _Users, tmp_path: Path) -> None:
    # A 200 with Content-Length and no body: http.client's read(n) returns b"" for it without an error.
    _store(users, *[(i, f"u{i}") for i in range(1, 4)])
    users.cut_once = {"/users?limit=3"}
    result = audit_write_log(_url(users), _history(tmp_path / "w.jsonl", [(i, f"u{i}") for i in range(1, 4)]))
    assert result.listing is not None
    assert (result.listing["verified"], result.listing["problem"]) == (3, None)
    assert users.paths == ["/users?limit=3", "/users?limit=3"]
