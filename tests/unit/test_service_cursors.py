"""Pagination cursors: opaque, round-trip the last id, and reject anything the service did not issue."""

from __future__ import annotations

import base64

import pytest
from users.cursors import MAX_ID, CursorError, decode_cursor, encode_cursor


@pytest.mark.parametrize("last_id", [0, 1, 49, 50, 123_456_789, MAX_ID])
def test_cursor_round_trips_the_last_id(last_id: int) -> None:
    assert decode_cursor(encode_cursor(last_id)) == last_id


def test_cursor_is_url_safe_and_does_not_show_the_id() -> None:
    cursor = encode_cursor(987_654)
    assert "987654" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("last_id", [-1, MAX_ID + 1])
def test_encoding_an_id_out_of_range_is_a_bug(last_id: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_cursor(last_id)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "%%%garbage",
        "x",
        "a" * 65,
        "dTE6MQ==",  # padding is never handed out
        "dTE+MQ",  # standard, not URL-safe, alphabet
        "é",
        _b64(b"42"),  # no version tag
        _b64(b"u1:"),
        _b64(b"u1:-1"),
        _b64(b"u1:007"),
        _b64(b"u1:1e3"),
        _b64(b"u1:\xb2"),
        _b64(b"u1:" + str(MAX_ID + 1).encode()),
        _b64(b"u1:" + b"9" * 40),
        _b64(b"u2:5"),
    ],
)
def test_garbage_cursor_is_rejected(garbage: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(garbage)
