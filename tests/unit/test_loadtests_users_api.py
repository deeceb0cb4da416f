"""How the load test judges the users service's answers: a 2xx with the wrong body is a failure."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from loadtests._users_api import (
    Page,
    Rejected,
    User,
    create_outcome,
    first_page_url,
    judge_created,
    judge_fetched,
    judge_page,
    name_lookup_url,
    new_name,
)

CREATED_AT = "2026-11-27T18:59:02.230485+00:00"


def _body(document: Any) -> bytes:
    return json.dumps(document).encode()


def _user(user_id: int = 7, name: str = "zoë 1a2b") -> dict[str, Any]:
    return {"id": user_id, "name": name, "created_at": CREATED_AT}


def test_new_names_are_valid_and_differ() -> None:
    names = {new_name() for _ in range(1000)}
    assert len(names) == 1000
    assert all(1 <= len(name.strip()) <= 80 and name == name.strip() for name in names)


def test_first_page_asks_for_the_page_size() -> None:
    assert first_page_url(20) == "/users?limit=20"


def test_created_user_is_returned_from_a_correct_201() -> None:
    user = judge_created(201, _body(_user()), location="/users/7", sent_name="zoë 1a2b")
    assert user == User(7, "zoë 1a2b", CREATED_AT)


def test_absolute_location_to_the_same_user_is_accepted() -> None:
    user = judge_created(201, _body(_user()), location="http://127.0.0.1:5000/users/7", sent_name="zoë 1a2b")
    assert user.id == 7


@pytest.mark.parametrize(
    ("status", "body", "location", "problem"),
    [
        (200, _body(_user()), "/users/7", "expected 201, got 200"),
        (400, _body({"error": {"status": 400, "code": "invalid_name", "message": "x"}}), None,
         "expected 201, got 400 (invalid_name)"),
        (503, b"<html>down</html>", None, "expected 201, got 503"),
        (0, None, None, "no response"),
        (201, b"not json", "/users/7", "body is not JSON"),
        (201, _body([_user()]), "/users/7", "not a JSON object"),
        (201, _body({"name": "zoë 1a2b", "created_at": CREATED_AT}), "/users/7", "id is not an integer"),
        (201, _body({**_user(), "id": "7"}), "/users/7", "id is not an integer"),
        (201, _body({**_user(), "id": True}), "/users/7", "id is not an integer"),
        (201, _body({**_user(), "created_at": None}), "/users/7", "created_at missing"),
        (201, _body({**_user(), "created_at": "yesterday"}), "/users/7", "created_at is not ISO 8601"),
        (201, _body({**_user(), "name": "someone else"}), "/users/7", "name differs"),
        (201, _body({**_user(), "name": ""}), "/users/7", "1..80 character"),
        (201, _body(_user()), None, "no Location header"),
        (201, _body(_user()), "/users/8", "Location does not point"),
    ],
)  # fmt: skip
def test_wrong_create_answers_are_rejected(status: int, body: bytes | None, location: str | None, problem: str) -> None:
    with pytest.raises(Rejected, match=re.escape(problem)):
        judge_created(status, body, location=location, sent_name="zoë 1a2b")


def test_page_with_items_and_next_is_returned() -> None:
    body = _body({"items": [_user(3), _user(5)], "next": "/users?limit=2&after=5"})
    page = judge_page(200, body, limit=2, after_id=1)
    assert page == Page([User(3, "zoë 1a2b", CREATED_AT), User(5, "zoë 1a2b", CREATED_AT)], "/users?limit=2&after=5")


def test_last_page_has_null_next() -> None:
    assert judge_page(200, _body({"items": [], "next": None}), limit=20).next is None


@pytest.mark.parametrize(
    ("document", "after_id", "problem"),
    [
        ({"next": None}, None, "no items list"),
        ({"items": {}, "next": None}, None, "no items list"),
        ({"items": []}, None, "no next key"),
        ({"items": [_user(1), _user(2), _user(3)], "next": None}, None, "more items than the limit"),
        ({"items": [_user(5), _user(3)], "next": None}, None, "not strictly ascending"),
        ({"items": [_user(5), _user(5)], "next": None}, None, "not strictly ascending"),
        ({"items": [_user(4), _user(6)], "next": None}, 4, "repeats or precedes"),
        ({"items": [], "next": "http://elsewhere/users?after=1"}, None, "neither null nor a /users"),
        ({"items": [{"id": 1}], "next": None}, None, "users page item: name"),
    ],
)
def test_wrong_pages_are_rejected(document: dict[str, Any], after_id: int | None, problem: str) -> None:
    with pytest.raises(Rejected, match=problem):
        judge_page(200, _body(document), limit=2, after_id=after_id)


def test_fetched_user_must_be_the_one_created() -> None:
    created = User(7, "zoë 1a2b", CREATED_AT)
    assert judge_fetched(200, _body(_user()), expected=created) == created
    with pytest.raises(Rejected, match="name differs from the one created"):
        judge_fetched(200, _body(_user(name="zoe 1a2b")), expected=created)
    with pytest.raises(Rejected, match="id differs"):
        judge_fetched(200, _body(_user(8)), expected=created)
    with pytest.raises(Rejected, match=r"expected 200, got 404 \(not_found\)"):
        judge_fetched(404, _body({"error": {"status": 404, "code": "not_found", "message": "gone"}}), created)


def test_rejection_messages_never_carry_ids_or_names() -> None:
    """Locust groups failures by message, so a message with an id would make one row per request."""
    created = User(123456, "zoë 1a2b", CREATED_AT)
    messages = []
    for call in (
        lambda: judge_fetched(200, _body(_user(654321)), expected=created),
        lambda: judge_fetched(200, _body(_user(123456, "other")), expected=created),
        lambda: judge_created(201, _body(_user(123456)), location="/users/999999", sent_name="zoë 1a2b"),
    ):
        with pytest.raises(Rejected) as error:
            call()
        messages.append(str(error.value))
    assert not any(token in message for message in messages for token in ("123456", "654321", "999999", "zoë"))


@pytest.mark.parametrize(
    ("status", "retry_after", "error", "outcome"),
    [
        (400, None, None, "fail"),
        (429, None, None, "fail"),
        (503, "1", None, "fail"),
        (0, None, ConnectionRefusedError(), "fail"),
        (0, None, TimeoutError(), "info"),
        (0, None, ConnectionResetError(), "info"),
        (503, None, None, "info"),
        (500, None, None, "info"),
        (504, None, None, "info"),
        (201, None, None, "info"),
    ],
)
def test_a_create_not_acknowledged_is_refused_only_when_nothing_can_have_been_written(
    status: int, retry_after: str | None, error: BaseException | None, outcome: str
) -> None:
    assert create_outcome(status, retry_after, error) == outcome


def test_the_name_lookup_url_quotes_the_whole_name() -> None:
    assert name_lookup_url("ana maría&x=1") == "/users?name=ana%20mar%C3%ADa%26x%3D1"
