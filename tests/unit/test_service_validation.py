"""Client input checks: names and pagination values, each refusal a 400 naming the problem."""

from __future__ import annotations

from typing import Any

import pytest
from users.errors import ApiError
from users.validation import DEFAULT_LIMIT, MAX_LIMIT, parse_after, parse_limit, validate_name


def _refusal(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call(*args)
    assert raised.value.status == 400
    return raised.value


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Ada", "Ada"),
        ("  Ana Souza \t\n", "Ana Souza"),
        ("李", "李"),
        ("zoë 🚀", "zoë 🚀"),
        ("x" * 80, "x" * 80),
        ("  " + "y" * 80 + "  ", "y" * 80),
    ],
)
def test_valid_name_is_trimmed(sent: str, stored: str) -> None:
    assert validate_name({"name": sent}) == stored


def test_length_is_counted_in_characters_not_bytes() -> None:
    assert validate_name({"name": "é" * 80}) == "é" * 80
    assert _refusal(validate_name, {"name": "é" * 81}).code == "name_too_long"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_name"),
        ({"nom": "Ada"}, "missing_name"),
        ({"name": ""}, "empty_name"),
        ({"name": " \t\n "}, "empty_name"),
        ({"name": "x" * 81}, "name_too_long"),
        ({"name": None}, "invalid_name"),
        ({"name": 42}, "invalid_name"),
        ({"name": True}, "invalid_name"),
        ({"name": ["Ada"]}, "invalid_name"),
        ({"name": {"first": "Ada"}}, "invalid_name"),
        ({"name": "Ada\x00Lovelace"}, "invalid_name"),
        ({"name": "Ada\nLovelace"}, "invalid_name"),
        ({"name": "Ada\x85Lovelace"}, "invalid_name"),
        ({"name": "Ada\x7f"}, "invalid_name"),
        ({"name": "Ada\ud800"}, "invalid_name"),
        (["name"], "invalid_body"),
        ("Ada", "invalid_body"),
        (None, "invalid_body"),
        (42, "invalid_body"),
    ],
)
def test_unusable_body_or_name_is_refused_with_its_code(body: Any, code: str) -> None:
    error = _refusal(validate_name, body)
    assert error.code == code
    assert error.message


def test_too_long_message_says_the_limit_and_the_length() -> None:
    assert _refusal(validate_name, {"name": "x" * 95}).message == "name must be at most 80 characters, got 95"


@pytest.mark.parametrize(("raw", "limit"), [(None, DEFAULT_LIMIT), ("1", 1), ("50", 50), ("500", MAX_LIMIT)])
def test_limit_in_range_is_taken(raw: str | None, limit: int) -> None:
    assert parse_limit(raw) == limit


@pytest.mark.parametrize(
    "raw", ["", "0", "501", "1000000", "9" * 50, "-1", "+5", " 5", "5 ", "1.5", "1e2", "abc", "\uff15", "1_0"]
)
def test_limit_out_of_range_or_not_a_plain_integer_is_refused(raw: str) -> None:
    assert _refusal(parse_limit, raw).code == "invalid_limit"


def test_absent_cursor_starts_at_the_beginning() -> None:
    assert parse_after(None) == 0


@pytest.mark.parametrize("raw", ["", "%%%garbage", "not-a-cursor", "MTIz"])
def test_bad_cursor_is_refused(raw: str) -> None:
    assert _refusal(parse_after, raw).code == "invalid_cursor"
