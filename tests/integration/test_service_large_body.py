"""A refused large body is answered, not reset, through the production server (Granian), for a client that
writes its whole body before it reads the answer (Python's http.client, as many clients do).

The service refuses such a body before reading it (413 on the declared length, 415 on the type). Granian
would then close the connection with the rest of the body unread, the kernel would answer the bytes still
arriving with a reset, and the client would fail on a broken pipe without ever seeing the 413. The service
reads and discards up to DRAIN_MAX_BYTES first (nginx's lingering close); beyond that, it closes at once.

On loopback the kernel's buffers absorb 2-3 MB of a client's body, which hid the failure for bodies below
that; a client across a network has far less in flight. `SNDBUF` stands for such a client: with it, every
refused body from 500 KB up failed before the fix.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import pytest
from users.drain import DRAIN_MAX_BYTES

from tests.http_session import Session
from tests.integration._service import LiveService

pytestmark = pytest.mark.integration

MB = 1_000_000
# The send buffer of a client whose kernel does not absorb megabytes of its body.
SNDBUF = 256 * 1024


def _json_body(size: int) -> bytes:
    """Return a JSON object of exactly `size` bytes, refused for its size alone."""
    head, tail = b'{"name": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _post(
    service: LiveService,
    body: bytes,
    *,
    content_type: str = "application/json",
    sndbuf: int | None = None,
    chunked: bool = False,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST `body` to /users with http.client (the whole body is written, then the answer is read)."""
    address = urlsplit(service.url)
    connection = HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.connect()
        if sndbuf is not None:
            assert connection.sock is not None
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        headers = {"Content-Type": content_type}
        if chunked:
            connection.request("POST", "/users", body=_chunks(body), headers=headers, encode_chunked=True)
        else:
            connection.request("POST", "/users", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        connection.close()


def _serves_on(http: Session, service: LiveService) -> None:
    """A following request, on a new connection, is served."""
    # Connection: close, so that no connection kept alive from an earlier request is used.
    close = {"Connection": "close"}
    created = http.post(f"{service.url}/users", json={"name": "after a large body"}, headers=close)
    assert created.status_code == 201, created.text
    assert http.get(f"{service.url}{created.headers['Location']}", headers=close).status_code == 200


@pytest.mark.parametrize(
    ("size", "sndbuf", "chunked"),
    [
        (2 * MB, None, False),
        (2 * MB, SNDBUF, False),
        (DRAIN_MAX_BYTES, None, False),
        (DRAIN_MAX_BYTES, SNDBUF, False),
        (2 * MB, SNDBUF, True),
    ],
    ids=["2MB", "2MB-small-sndbuf", "drain-bound", "drain-bound-small-sndbuf", "2MB-chunked-small-sndbuf"],
)
def test_a_client_that_writes_its_whole_body_first_reads_the_413(
    live_service: LiveService, http: Session, size: int, sndbuf: int | None, chunked: bool
) -> None:
    body = _json_body(size)
    status, headers, answer = _post(live_service, body, sndbuf=sndbuf, chunked=chunked)
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert answer["error"]["code"] == "payload_too_large"
    assert "16384 bytes" in answer["error"]["message"]
    _serves_on(http, live_service)


def test_a_large_body_of_the_wrong_type_reads_the_415(live_service: LiveService, http: Session) -> None:
    status, _, answer = _post(live_service, b"x" * (2 * MB), content_type="text/plain", sndbuf=SNDBUF)
    assert status == 415
    assert answer["error"]["code"] == "unsupported_media_type"
    _serves_on(http, live_service)


def test_a_body_beyond_the_drain_bound_is_cut_off_and_the_service_serves_on(
    live_service: LiveService, http: Session
) -> None:
    # Not read at all: the client may read the 413 if its kernel took the whole body in (loopback takes a
    # few MB), else its write fails on a broken pipe or a reset, as it did for every size before the fix.
    # Measured on loopback at 10 MB: a broken pipe, every time.
    for size in (DRAIN_MAX_BYTES + 1, 10 * MB):
        try:
            status, _, answer = _post(live_service, _json_body(size))
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            assert (status, answer["error"]["code"]) == (413, "payload_too_large")
        _serves_on(http, live_service)


def test_refused_bodies_side_by_side_leave_the_service_serving(live_service: LiveService, http: Session) -> None:
    # More at once than the service has app threads (4): each is read through and answered.
    body = _json_body(2 * MB)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: _post(live_service, body, sndbuf=SNDBUF)[0], range(24)))
    assert statuses == [413] * 24
    _serves_on(http, live_service)
