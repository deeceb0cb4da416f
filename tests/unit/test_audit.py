"""The write audit against a real HTTP server on 127.0.0.1: what counts as found, changed or lost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stackprobe import audit
from stackprobe.audit import AckedWrite, audit_writes, read_write_log

USERS = {
    "/users/1": (200, b'{"id": 1, "name": "ada", "created_at": "2026-01-01T00:00:00Z"}'),
    "/users/2": (200, b'{"id": 2, "name": "someone else"}'),
    "/users/4": (200, b"<html>not json</html>"),
    "/users/5": (200, b"[1, 2]"),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    client_ports: set[int]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services answer
    # Headers and body go out in two writes: without this, delayed ACKs hold each answer ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.server.client_ports.add(self.client_address[1])  # type: ignore[attr-defined]
        status, body = USERS.get(self.path, (404, b'{"error": "not found"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.client_ports = set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_every_kind_of_loss_is_counted_and_named(server: _Server) -> None:
    writes = [
        AckedWrite("/users/1", {"id": 1, "name": "ada"}),
        AckedWrite("/users/2", {"id": 2, "name": "bob"}),
        AckedWrite("/users/3", {"id": 3}),
        AckedWrite("/users/4", {"id": 4}),
        AckedWrite("/users/5", {"id": 5}),
    ]
    result = audit_writes(_url(server), writes)
    assert (result.applicable, result.acknowledged, result.verified, result.lost) == (True, 5, 1, 4)
    assert sorted(result.lost_examples) == [
        "/users/2: expected {'id': 2, 'name': 'bob'}, found {'name': 'someone else'}",
        "/users/3: HTTP 404",
        "/users/4: body is not JSON",
        "/users/5: body is not a JSON object",
    ]


def test_absolute_locations_are_read_where_they_point(server: _Server) -> None:
    writes = [AckedWrite(f"{_url(server)}/users/1", {"name": "ada"})]
    assert audit_writes("http://127.0.0.1:9", writes).lost == 0


def test_thousands_of_reads_reuse_one_connection_per_thread(server: _Server) -> None:
    writes = [AckedWrite("/users/1", {"id": 1})] * 2000
    result = audit_writes(_url(server), writes, workers=4)
    assert result.verified == 2000
    assert len(server.client_ports) <= 4


def test_a_service_that_never_answers_costs_the_retry_budget_once_not_per_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(audit, "RETRY_BUDGET_S", 1.0)
    started = time.monotonic()
    result = audit_writes("http://127.0.0.1:9", [AckedWrite(f"/users/{i}", {"id": i}) for i in range(400)])
    elapsed = time.monotonic() - started
    assert result.lost == 400
    assert all(": unreachable (" in example for example in result.lost_examples)
    # 400 writes of a full budget each would be 50 s with 8 threads.
    assert elapsed < 10, f"the audit took {elapsed:.1f} s"


def test_a_service_back_within_the_budget_loses_nothing(server: _Server) -> None:
    # The service answers only from its second second on, as after a restart.
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    later = _Server(("127.0.0.1", port), _Handler)
    later.client_ports = set()

    def start_later() -> None:
        time.sleep(1.0)
        later.serve_forever()

    threading.Thread(target=start_later, daemon=True).start()
    try:
        result = audit_writes(f"http://127.0.0.1:{port}", [AckedWrite("/users/1", {"id": 1})] * 20)
    finally:
        later.shutdown()
        later.server_close()
    assert (result.verified, result.lost) == (20, 0)


def test_no_write_log_means_the_audit_does_not_apply(tmp_path: Path) -> None:
    assert read_write_log(tmp_path / "writes.jsonl") == []
    assert audit_writes("http://127.0.0.1:9", []).applicable is False


def test_a_line_that_is_not_a_write_record_is_refused_with_its_place(tmp_path: Path) -> None:
    log = tmp_path / "writes.jsonl"
    log.write_text(json.dumps({"location": "/users/1", "expect": {"id": 1}}) + "\n\n{oops\n")
    with pytest.raises(ValueError, match=r"writes.jsonl:3: not a write record"):
        read_write_log(log)
