"""Read and discard what is left of a request body before answering, so the client gets to read the answer.

The service refuses some bodies before reading them (a 413 on the declared Content-Length, a 415 on the
Content-Type) or partway (a chunked body past the limit). Granian then closes the connection with the rest
of the body unread, and the kernel answers the bytes still arriving with a reset: a client that writes its
whole body before reading (Python's http.client, many others) fails on a broken pipe or a reset and never
sees the 413. Measured on loopback: most refused bodies of 2.5 MB and more (what the kernel's buffers absorb
decides), and every one from 500 KB up from a client with a 64 KiB send buffer.

As nginx's lingering close does, the unread rest is read and thrown away first, within a bound: at most
DRAIN_MAX_BYTES, for at most DRAIN_MAX_SECONDS, in chunks of DRAIN_CHUNK_BYTES (memory stays flat). A body
whose unread rest is larger is not read at all: that client gets the reset it got before, without the
service spending an app thread on bytes it would discard anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# The most a refused body may still have unread for the client to get its answer: 4 MiB, 256 times the
# default MAX_CONTENT_LENGTH. About 4 ms of an app thread on loopback.
DRAIN_MAX_BYTES = 4 * 1024 * 1024
# A body that trickles in slower than about 16 Mbit/s is cut off here and gets the reset. Checked between
# chunks: a client that stops sending altogether holds the thread until it hangs up (see the README).
DRAIN_MAX_SECONDS = 2.0
DRAIN_CHUNK_BYTES = 16 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _CountingInput:
    """wsgi.input as the app sees it, counting the bytes read and noting the end of the body."""

    __slots__ = ("_stream", "consumed", "ended")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0
        self.ended = False

    def _seen(self, data: bytes, asked: int | None) -> bytes:
        self.consumed += len(data)
        if not data and asked != 0:
            self.ended = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data = self._stream.read()
            self.ended = True
            return self._seen(data, None)
        return self._seen(self._stream.read(size), size)

    def readline(self, size: int | None = -1) -> bytes:
        line = self._stream.readline() if size is None or size < 0 else self._stream.readline(size)
        return self._seen(line, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = list(self._stream.readlines())
        self.consumed += sum(len(line) for line in lines)
        self.ended = True
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class DrainUnreadBody:
    """WSGI middleware: after the app has answered, read the unread rest of the body (within the bounds)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        declared = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not declared and not chunked:
            return self.app(environ, start_response)
        body = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        result = self.app(environ, start_response)
        # Before the answer is handed to the server: it closes the connection when it sends the answer.
        _drain(environ, body, declared)
        return result


def _declared_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "")
    return int(raw) if raw.isdigit() else None


def _drain(environ: dict[str, Any], body: _CountingInput, declared: int | None) -> None:
    if body.ended:
        return
    if declared is not None:
        unread = declared - body.consumed
    elif environ.get("wsgi.input_terminated"):
        # A chunked body of unknown size: the server ends the stream where the body ends.
        unread = DRAIN_MAX_BYTES
    else:
        # Read past its end, the stream of a server that does not terminate it could block: leave it.
        return
    if unread <= 0 or unread > DRAIN_MAX_BYTES:
        return
    if body.consumed == 0 and "100-continue" in environ.get("HTTP_EXPECT", "").lower():
        # The client waits for a 100 Continue before it sends the body: reading would ask for it.
        return
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    try:
        while unread > 0 and time.monotonic() < deadline:
            data = body.read(min(DRAIN_CHUNK_BYTES, unread))
            if not data:
                return
            unread -= len(data)
    except (OSError, ValueError):
        # The client went away: nothing left to save.
        return
