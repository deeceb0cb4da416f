"""The write audit against real HTTP servers on 127.0.0.1: what counts as verified, lost or unverified."""

from __future__ import annotations

import _thread
import base64
import contextlib
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stackprobe import audit
from stackprobe.audit import AuditResult, audit_write_log

USERS = {
    "/users/1": b'{"id": 1, "name": "ada", "created_at": "2026-01-01T00:00:00Z"}',
    "/users/2": b'{"id": 2, "name": "someone else"}',
    "/users/4": b"<html>not json</html>",
    "/users/5": b"[1, 2]",
}

# A scripted answer: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    client_ports: set[int]
    # Per path, the answers still to give, in order; the last one repeats.
    script: dict[str, list[Answer]]
    seen: list[tuple[float, str, str | None]]  # (when, path, Authorization header)
    slow: set[str]  # paths answered only after a second


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services answer
    # Headers and body go out in two writes: without this, delayed ACKs hold each answer ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        server.client_ports.add(self.client_address[1])
        server.seen.append((time.monotonic(), self.path, self.headers.get("Authorization")))
        if self.path in server.slow:
            time.sleep(1.0)
        answers = server.script.get(self.path)
        if answers:
            status, headers, body = answers.pop(0) if len(answers) > 1 else answers[0]
        else:
            headers = {}
            status, body = (200, USERS[self.path]) if self.path in USERS else (404, b'{"error": "not found"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        # A slow answer finds its client gone: that is the point, not an error to print.
        with contextlib.suppress(ConnectionError):
            super().handle()


def _start(port: int = 0) -> _Server:
    httpd = _Server(("127.0.0.1", port), _Handler)
    httpd.client_ports, httpd.script, httpd.seen, httpd.slow = set(), {}, [], set()
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers a request."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _log(tmp_path: Path, writes: Iterable[tuple[str, dict[str, object]]]) -> Path:
    path = tmp_path / "writes.jsonl"
    with path.open("w") as out:
        for location, expect in writes:
            out.write(json.dumps({"location": location, "expect": expect}) + "\n")
    return path


def _users(count: int) -> list[tuple[str, dict[str, object]]]:
    return [(f"/users/{i}", {"id": i}) for i in range(count)]


def _adds_up(result: AuditResult) -> bool:
    counts = (result.acknowledged, result.verified, result.lost, result.unverified)
    assert all(isinstance(count, int) and count >= 0 for count in counts), counts
    return result.acknowledged == result.verified + result.lost + result.unverified  # type: ignore[operator]


def _audit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stackprobe-audit-")]


def test_every_kind_of_loss_is_counted_and_named(server: _Server, tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        [
            ("/users/1", {"id": 1, "name": "ada"}),
            ("/users/2", {"id": 2, "name": "bob"}),
            ("/users/3", {"id": 3}),
            ("/users/4", {"id": 4}),
            ("/users/5", {"id": 5}),
        ],
    )
    result = audit_write_log(_url(server), log)
    assert (result.applicable, result.acknowledged, result.verified, result.lost, result.unverified) == (
        True, 5, 1, 4, 0,
    )  # fmt: skip
    assert sorted(result.lost_examples) == [
        "/users/2: expected {'id': 2, 'name': 'bob'}, found {'name': 'someone else'}",
        "/users/3: HTTP 404",
        "/users/4: body is not JSON",
        "/users/5: body is not a JSON object",
    ]
    assert _adds_up(result)
    assert result.unverified_examples == []
    assert result.gave_up is None


def test_a_base_url_with_a_path_is_prefixed_to_each_location_as_locust_does(server: _Server, tmp_path: Path) -> None:
    # Locust requests base_url + path: "http://host/api" + "/users/1" is /api/users/1 (urljoin would drop /api).
    server.script["/api/users/1"] = [(200, {}, USERS["/users/1"])]
    result = audit_write_log(f"{_url(server)}/api", _log(tmp_path, [("/users/1", {"id": 1})]))
    assert [path for _, path, _ in server.seen] == ["/api/users/1"]
    assert (result.verified, result.lost, result.unverified) == (1, 0, 0)


def test_credentials_in_the_base_url_are_sent_as_basic_auth(server: _Server, tmp_path: Path) -> None:
    port = server.server_address[1]
    result = audit_write_log(f"http://ada:s%40cret@127.0.0.1:{port}", _log(tmp_path, [("/users/1", {"id": 1})]))
    assert result.verified == 1
    assert server.seen[0][2] == "Basic " + base64.b64encode(b"ada:s@cret").decode()


def test_absolute_locations_are_read_where_they_point(server: _Server, tmp_path: Path) -> None:
    result = audit_write_log("http://127.0.0.1:9", _log(tmp_path, [(f"{_url(server)}/users/1", {"name": "ada"})]))
    assert (result.verified, result.lost, result.unverified) == (1, 0, 0)


def test_thousands_of_reads_reuse_one_connection_per_thread(server: _Server, tmp_path: Path) -> None:
    result = audit_write_log(_url(server), _log(tmp_path, [("/users/1", {"id": 1})] * 2000), workers=4)
    assert result.verified == 2000
    assert len(server.client_ports) <= 4


def test_a_503_with_retry_after_then_200_is_verified_after_the_wait_asked(server: _Server, tmp_path: Path) -> None:
    server.script["/users/1"] = [(503, {"Retry-After": "1"}, b"busy"), (200, {}, USERS["/users/1"])]
    result = audit_write_log(_url(server), _log(tmp_path, [("/users/1", {"id": 1})]))
    assert (result.verified, result.lost, result.unverified) == (1, 0, 0)
    (first, _, _), (second, _, _) = server.seen
    assert second - first >= 0.9, "Retry-After: 1 was not honoured"


def test_5xx_and_429_that_persist_are_unverified_not_lost(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "RETRY_AFTER_CAP_S", 0.1)  # Retry-After 1 is capped: the test stays fast
    server.script["/users/9"] = [(503, {"Retry-After": "1"}, b"busy")]
    server.script["/users/8"] = [(429, {"Retry-After": "1"}, b"slow down")]
    server.script["/users/7"] = [(403, {}, b"forbidden")]
    log = _log(tmp_path, [("/users/1", {"id": 1}), ("/users/9", {"id": 9}), ("/users/8", {"id": 8}), ("/users/7", {})])
    result = audit_write_log(_url(server), log)
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (4, 1, 0, 3)
    assert sorted(result.unverified_examples) == [
        "/users/7: HTTP 403",
        "/users/8: HTTP 429 after 4 tries (Retry-After 1)",
        "/users/9: HTTP 503 after 4 tries (Retry-After 1)",
    ]
    assert [path for _, path, _ in server.seen].count("/users/9") == audit.TRIES
    assert result.gave_up is None


def test_a_service_that_accepts_and_never_answers_costs_the_budget_once_not_per_write(
    silent_port: int, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = audit_write_log(f"http://127.0.0.1:{silent_port}", _log(tmp_path, _users(2000)), unreachable_budget_s=2)
    elapsed = time.monotonic() - started
    # 2,000 writes of one 5 s read timeout each would be over 20 minutes with 8 threads.
    assert elapsed < 10, f"the audit took {elapsed:.1f} s"
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (2000, 0, 0, 2000)
    assert _adds_up(result)
    assert result.gave_up == "the service answered nobody for 2 s"
    assert len(result.unverified_examples) == audit.EXAMPLES_KEPT
    assert all(e.endswith(": not checked: the service answered nobody for 2 s") for e in result.unverified_examples)
    assert not _audit_threads()


def test_a_service_that_refuses_connections_is_unverified_not_lost(tmp_path: Path) -> None:
    started = time.monotonic()
    result = audit_write_log("http://127.0.0.1:9", _log(tmp_path, _users(400)), unreachable_budget_s=1)
    assert time.monotonic() - started < 8
    assert (result.verified, result.lost, result.unverified) == (0, 0, 400)
    assert result.gave_up == "the service answered nobody for 1 s"


def test_a_read_that_hangs_is_unverified_not_lost_and_does_not_hold_up_the_rest(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "TIMEOUT_S", 0.3)
    server.slow.add("/users/1")
    log = _log(tmp_path, [("/users/1", {"id": 1})] + [("/users/2", {"id": 2, "name": "someone else"})] * 300)
    started = time.monotonic()
    # Its 4 tries take 4 * 0.3 s and pauses of 0, 0.5 and 1 s: within the budget, the rest read back meanwhile.
    result = audit_write_log(_url(server), log, unreachable_budget_s=5)
    assert time.monotonic() - started < 10
    assert (result.verified, result.lost, result.unverified) == (300, 0, 1)
    assert result.unverified_examples == ["/users/1: no answer within 0.3 s after 4 tries"]
    assert result.gave_up is None


def test_a_service_back_within_the_budget_loses_nothing(server: _Server, tmp_path: Path) -> None:
    # The service answers only from its second second on, as after a restart.
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    later: list[_Server] = []

    def start_later() -> None:
        time.sleep(1.0)
        later.append(_start(port))

    threading.Thread(target=start_later, daemon=True).start()
    try:
        result = audit_write_log(f"http://127.0.0.1:{port}", _log(tmp_path, [("/users/1", {"id": 1})] * 20))
    finally:
        for httpd in later:
            httpd.shutdown()
            httpd.server_close()
    assert (result.verified, result.lost, result.unverified) == (20, 0, 0)


def test_setting_stop_mid_audit_returns_within_a_second(silent_port: int, tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    result = audit_write_log(
        f"http://127.0.0.1:{silent_port}", _log(tmp_path, _users(5000)), unreachable_budget_s=60, stop=stop
    )
    stopped_after = time.monotonic() - started - 0.5
    assert stopped_after < 2.0, f"returned {stopped_after:.1f} s after stop was set"
    assert (result.acknowledged, result.unverified) == (5000, 5000)
    assert _adds_up(result)
    assert result.gave_up == "the audit was stopped"
    assert result.unverified_examples[0].endswith(": not checked: the audit was stopped")


def test_the_deadline_ends_the_audit(silent_port: int, tmp_path: Path) -> None:
    started = time.monotonic()
    result = audit_write_log(
        f"http://127.0.0.1:{silent_port}", _log(tmp_path, _users(100)), deadline_s=1, unreachable_budget_s=60
    )
    assert time.monotonic() - started < 4
    assert (result.acknowledged, result.unverified) == (100, 100)
    assert _adds_up(result)
    assert result.gave_up == "the audit's deadline of 1 s passed"


def test_ctrl_c_stops_the_workers_then_propagates(silent_port: int, tmp_path: Path) -> None:
    log = _log(tmp_path, _users(5000))
    threading.Timer(0.5, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        audit_write_log(f"http://127.0.0.1:{silent_port}", log, unreachable_budget_s=60, deadline_s=60)
    assert time.monotonic() - started - 0.5 < 2.0
    assert not _audit_threads(), "workers still running after the KeyboardInterrupt"


def test_counts_add_up_when_the_audit_is_stopped_while_reading_back(server: _Server, tmp_path: Path) -> None:
    # Some writes found, some lost, some answered 503, then a stop: every write is in exactly one count.
    for i in range(0, 3000, 3):
        server.script[f"/users/{i}"] = [(200, {}, json.dumps({"id": i}).encode())]
    for i in range(1, 3000, 3):
        server.script[f"/users/{i}"] = [(503, {"Retry-After": "0"}, b"busy")]
    stop = threading.Event()

    def stop_after_300_requests() -> None:
        deadline = time.monotonic() + 20
        while len(server.seen) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=stop_after_300_requests, daemon=True).start()
    result = audit_write_log(_url(server), _log(tmp_path, _users(3000)), stop=stop)
    assert _adds_up(result)
    assert result.acknowledged == 3000
    assert result.verified
    assert result.lost
    assert result.unverified
    # About 6,000 requests would read them all back: the stop came long before.
    assert result.gave_up == "the audit was stopped"


def test_the_reader_stays_a_bounded_window_ahead_of_the_workers(
    silent_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the service does not answer, the log is read no further than the queue and the workers hold.
    parsed: list[int] = []
    read = audit._LogReader.read
    monkeypatch.setattr(
        audit._LogReader,
        "read",
        lambda reader, line, number, at: (parsed.append(number), read(reader, line, number, at))[1],
    )
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    result = audit_write_log(
        f"http://127.0.0.1:{silent_port}",
        _log(tmp_path, _users(100_000)),
        workers=4,
        unreachable_budget_s=60,
        stop=stop,
    )
    # A batch in each worker's hands, one queued per worker, one being filled.
    assert len(parsed) <= (2 * 4 + 1) * audit.BATCH
    assert (result.acknowledged, result.unverified) == (100_000, 100_000)


def _serve_canned(listener: socket.socket, answer: bytes) -> None:
    """Answer every request on every connection with the same bytes: a server far faster than http.server."""

    def serve(connection: socket.socket) -> None:
        with connection:
            pending = b""
            while chunk := connection.recv(65536):
                pending += chunk
                requests = pending.count(b"\r\n\r\n")
                pending = pending[pending.rfind(b"\r\n\r\n") + 4 :] if requests else pending
                if requests:
                    connection.sendall(answer * requests)

    with contextlib.suppress(OSError):
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()


def test_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    # The old audit held every write and a Future for it: ~2 KiB each, 8 MiB for these 4,000. (tracemalloc
    # slows each request tenfold: the bounded window for 100,000 writes is pinned by the test above.)
    body = json.dumps({"id": 1, "name": "ada"}).encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    log = _log(tmp_path, [("/users/1", {"id": 1, "name": "ada"})] * 4000)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=_serve_canned, args=(listener, answer), daemon=True).start()
        tracemalloc.start()
        try:
            result = audit_write_log(f"http://127.0.0.1:{listener.getsockname()[1]}", log)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.verified == 4000
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_no_write_log_means_the_audit_does_not_apply(tmp_path: Path) -> None:
    result = audit_write_log("http://127.0.0.1:9", tmp_path / "writes.jsonl")
    assert result == AuditResult(applicable=False)
    assert audit_write_log("http://127.0.0.1:9", _log(tmp_path, [])) == AuditResult(
        applicable=True,
        acknowledged=0,
        verified=0,
        lost=0,
        unverified=0,
        duration_s=pytest.approx(0, abs=1),
        indeterminate=0,
        recovered=0,
        not_applied=0,
        unresolved=0,
        failed=0,
        failed_applied=0,
        duplicated=0,
    )


def test_a_line_that_is_not_a_write_record_is_an_unverified_write_named_with_its_place(
    server: _Server, tmp_path: Path
) -> None:
    # A torn or foreign line may have been anything: the audit cannot check it, so the run cannot pass.
    log = tmp_path / "writes.jsonl"
    log.write_text(json.dumps({"location": "/users/1", "expect": {"id": 1}}) + "\n\n{oops\n")
    result = audit_write_log(_url(server), log)
    assert (result.acknowledged, result.verified, result.unverified, result.gave_up) == (2, 1, 1, None)
    assert result.unverified_examples == [
        f"{log}:3: not a write record (Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)): {oops"
    ]
    assert not _audit_threads()


def test_retry_after_is_read_in_seconds_or_as_a_date_and_capped() -> None:
    assert audit._retry_after_s("2") == 2.0
    assert audit._retry_after_s("3600") == audit.RETRY_AFTER_CAP_S
    assert audit._retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert audit._retry_after_s("soon") is None
    assert audit._retry_after_s(None) is None


@pytest.mark.parametrize(
    ("base_url", "location", "server", "target"),
    [
        ("http://127.0.0.1:5", "/users/1", ("http", "127.0.0.1", 5), "/users/1"),
        ("http://127.0.0.1:5/api", "/users/1?x=1", ("http", "127.0.0.1", 5), "/api/users/1?x=1"),
        # Locust concatenates: a trailing slash on the base URL doubles, a fragment is not sent.
        ("http://127.0.0.1:5/api/", "/users/1#top", ("http", "127.0.0.1", 5), "/api//users/1"),
        ("http://ada:pw@localhost/api", "/users/1", ("http", "localhost", 80), "/api/users/1"),
        ("HTTP://LOCALHOST:5/x", "HTTPS://127.0.0.1:7/users/2", ("https", "127.0.0.1", 7), "/users/2"),
        ("http://127.0.0.1:5", "?q", ("http", "127.0.0.1", 5), "/?q"),
    ],
)
def test_each_location_is_read_at_base_url_plus_location_as_locust_builds_it(
    base_url: str, location: str, server: tuple[str, str, int], target: str
) -> None:
    assert audit._Audit(base_url, workers=1, unreachable_budget_s=1).target(location) == (server, target)


def _history(tmp_path: Path, lines: Iterable[dict[str, object]]) -> Path:
    path = tmp_path / "writes.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _create(op: str, name: str, outcome: str, **completion: object) -> list[dict[str, object]]:
    """An invoke of a create of `name`, and its completion of type outcome ("" for none)."""
    invoke = {"type": "invoke", "op": op, "process": "7-1", "f": "create", "name": name, "time": 1.0}
    invoke["lookup"] = f"/users?name={name}"
    if not outcome:
        return [invoke]
    return [invoke, {"type": outcome, "op": op, "process": "7-1", "name": name, "time": 2.0, **completion}]


def _named(*records: tuple[int, str]) -> list[Answer]:
    items = [{"id": i, "name": n, "created_at": "2026-01-01T00:00:00Z"} for i, n in records]
    return [(200, {}, json.dumps({"items": items, "next": None}).encode())]


def test_creates_are_settled_by_looking_their_names_up_in_jepsens_terms(server: _Server, tmp_path: Path) -> None:
    server.script.update(
        {
            "/users?name=acked": _named((1, "acked")),
            "/users?name=acked-gone": _named(),
            "/users?name=timed-out-applied": _named((3, "timed-out-applied")),
            "/users?name=timed-out-not-applied": _named(),
            "/users?name=never-answered": _named((5, "never-answered")),
            "/users?name=refused": _named(),
            "/users?name=refused-but-written": _named((7, "refused-but-written")),
            "/users?name=twice": _named((8, "twice"), (9, "twice"), (10, "someone else")),
        }
    )
    log = _history(
        tmp_path,
        [
            *_create("1", "acked", "ok", location="/users/1", expect={"id": 1, "name": "acked"}),
            *_create("2", "acked-gone", "ok", location="/users/2", expect={"id": 2, "name": "acked-gone"}),
            *_create("3", "timed-out-applied", "info", status=0, error="no response"),
            *_create("4", "timed-out-not-applied", "info", status=0, error="no response"),
            *_create("5", "never-answered", ""),
            *_create("6", "refused", "fail", status=503, error="HTTP 503"),
            *_create("7", "refused-but-written", "fail", status=503, error="HTTP 503"),
            *_create("8", "twice", "ok", location="/users/8", expect={"id": 8, "name": "twice"}),
        ],
    )
    result = audit_write_log(_url(server), log)
    assert (result.acknowledged, result.verified, result.lost, result.unverified) == (3, 2, 1, 0)
    assert (result.indeterminate, result.recovered, result.not_applied, result.unresolved) == (3, 2, 1, 0)
    assert (result.failed, result.failed_applied, result.duplicated) == (2, 1, 1)
    assert result.lost_examples == ["/users/2: expected {'id': 2, 'name': 'acked-gone'}, found no record of that name"]
    assert result.failed_applied_examples == ["'refused-but-written': refused (HTTP 503) but written"]
    assert result.duplicated_examples == ["/users/8: 2 records of that name"]
    assert result.gave_up is None
    # One request per write, at its lookup (not at its location).
    assert sorted(path for _, path, _ in server.seen) == sorted(server.script)


def test_an_indeterminate_create_whose_lookup_keeps_failing_is_unresolved_not_lost(
    server: _Server, tmp_path: Path
) -> None:
    server.script["/users?name=x"] = [(503, {"Retry-After": "0"}, b"{}")]
    server.script["/users?name=y"] = [(404, {}, b"{}")]
    log = _history(tmp_path, [*_create("1", "x", "info", status=0), *_create("2", "y", "ok", location="/users/2")])
    result = audit_write_log(_url(server), log)
    assert (result.indeterminate, result.recovered, result.not_applied, result.unresolved) == (1, 0, 0, 1)
    # A lookup that is not found says nothing of the write: unverified, not lost.
    assert (result.acknowledged, result.lost, result.unverified) == (1, 0, 1)
    assert result.unresolved_examples == ["'x': HTTP 503 after 4 tries (Retry-After 0)"]
    assert result.unverified_examples == ["/users/2: lookup answered HTTP 404"]


def test_the_first_formats_lines_and_history_lines_are_audited_together(server: _Server, tmp_path: Path) -> None:
    server.script["/users?name=ada"] = _named((1, "ada"))
    log = _history(
        tmp_path,
        [
            {"location": "/users/1", "expect": {"id": 1, "name": "ada"}},
            *_create("9", "ada", "ok", location="/users/1", expect={"id": 1, "name": "ada"}),
        ],
    )
    result = audit_write_log(_url(server), log)
    assert (result.acknowledged, result.verified, result.indeterminate) == (2, 2, 0)


def test_a_history_line_of_an_unknown_type_is_an_unverified_write_named_with_its_place(
    server: _Server, tmp_path: Path
) -> None:
    log = _history(tmp_path, [*_create("1", "ada", ""), {"type": "maybe", "op": "1"}])
    result = audit_write_log(_url(server), log)
    assert (result.acknowledged, result.unverified, result.indeterminate) == (1, 1, 1)
    assert result.unverified_examples[0].startswith(f"{log}:2: not a write record (unknown type 'maybe')")


def test_writes_not_looked_at_when_the_audit_gives_up_stay_unverified_or_unresolved(tmp_path: Path) -> None:
    log = _history(
        tmp_path,
        [
            *_create("1", "a", "ok", location="/users/1", expect={"id": 1}),
            *_create("2", "b", "info", status=0),
            *_create("3", "c", ""),
            *_create("4", "d", "fail", status=400),
        ],
    )
    result = audit_write_log("http://127.0.0.1:9", log, unreachable_budget_s=0.5)
    assert (result.acknowledged, result.unverified, result.indeterminate, result.unresolved) == (1, 1, 2, 2)
    assert (result.failed, result.failed_applied, result.lost, result.recovered) == (1, 0, 0, 0)
    assert result.gave_up == "the service answered nobody for 0.5 s"


def test_the_writes_section_has_every_count_and_nulls_when_nothing_was_logged() -> None:
    empty = audit.writes_section(None)
    assert empty["applicable"] is False
    assert {k for k, v in empty.items() if v is not None and v != []} == {"applicable"}
    full = AuditResult(applicable=True, acknowledged=3, verified=3, lost=0, unverified=0, indeterminate=1).section()
    assert set(full) == set(empty)
    assert (full["acknowledged"], full["indeterminate"]) == (3, 1)
