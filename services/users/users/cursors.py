"""Opaque pagination cursors: the last id of a page, in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import re

# A cursor carries a version tag, so a future format can tell old cursors apart.
_PREFIX = b"u1:"
_CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ids are BIGINT: anything past it cannot come from this service.
MAX_ID = 2**63 - 1


class CursorError(ValueError):
    """A cursor this service did not hand out."""


def encode_cursor(last_id: int) -> str:
    """Return the cursor that resumes a listing after `last_id`."""
    if not 0 <= last_id <= MAX_ID:
        raise ValueError(f"id out of range: {last_id}")
    return base64.urlsafe_b64encode(_PREFIX + str(last_id).encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    """Return the id a cursor resumes after; raise CursorError for anything not made by encode_cursor."""
    if not _CURSOR_PATTERN.fullmatch(cursor):
        raise CursorError("cursor is not 1 to 64 URL-safe base64 characters")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("cursor is not URL-safe base64") from None
    if not raw.startswith(_PREFIX):
        raise CursorError("cursor does not hold an id")
    digits = raw[len(_PREFIX) :]
    # bytes.isdigit() accepts ASCII digits only (str.isdigit() would let "²" through to int()).
    if not digits.isdigit() or len(digits) > 19:
        raise CursorError("cursor does not hold an id")
    last_id = int(digits)
    # Only the canonical spelling (no leading zeros) is one this service handed out.
    if last_id > MAX_ID or str(last_id).encode() != digits:
        raise CursorError("cursor does not hold an id this service issued")
    return last_id
