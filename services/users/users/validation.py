"""Checks on client input, each raising an ApiError (400) that names the problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .cursors import CursorError, decode_cursor
from .errors import ApiError
from .models import MAX_NAME_LENGTH

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# C0/C1 control characters (NUL would be refused by PostgreSQL: a 500 if it got there) and lone
# surrogates (valid in JSON escapes, not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LIMIT_DIGITS = re.compile(r"[0-9]{1,6}")
_MISSING = object()


def validate_name(body: Any) -> str:
    """Return the trimmed name of a POST /users body; raise ApiError if the body or its name is unusable."""
    if not isinstance(body, Mapping):
        raise ApiError(400, "invalid_body", 'the body must be a JSON object like {"name": "Ada"}')
    value = body.get("name", _MISSING)
    if value is _MISSING:
        raise ApiError(400, "missing_name", 'the body has no "name"')
    if not isinstance(value, str):
        raise ApiError(400, "invalid_name", f"name must be a string, not {_json_type(value)}")
    name = value.strip()
    if not name:
        raise ApiError(400, "empty_name", "name must not be empty or only whitespace")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(400, "name_too_long", f"name must be at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if _UNSTORABLE.search(name):
        raise ApiError(400, "invalid_name", "name must not contain control characters or unpaired surrogates")
    return name


def parse_limit(raw: str | None) -> int:
    """Return the page size from the `limit` query value (default 50); raise ApiError unless 1..500."""
    if raw is None:
        return DEFAULT_LIMIT
    # A plain ASCII check first: int() would also take " 7", "+7", "7_0" and other scripts' digits.
    if _LIMIT_DIGITS.fullmatch(raw) and 1 <= (limit := int(raw)) <= MAX_LIMIT:
        return limit
    raise ApiError(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw[:20]!r}")


def parse_after(raw: str | None) -> int:
    """Return the id to list after from the `after` cursor (0 when absent); raise ApiError for a bad cursor."""
    if raw is None:
        return 0
    try:
        return decode_cursor(raw)
    except CursorError as exc:
        raise ApiError(400, "invalid_cursor", f"after is not a cursor from a previous page: {exc}") from None


def parse_name_filter(raw: str | None) -> str | None:
    """Return the exact name to list from the `name` query value (None when absent); raise ApiError if unusable."""
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_NAME_LENGTH or _UNSTORABLE.search(raw):
        raise ApiError(
            400, "invalid_name", f"name must be 1 to {MAX_NAME_LENGTH} characters without control characters"
        )
    return raw


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"
