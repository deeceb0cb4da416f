"""What a correct answer from the users service looks like (the API in the team contract).

Each judge takes a status and a body and returns what the traffic needs next, or raises Rejected with a
short message. Messages never contain ids or names: Locust groups failures by message, so they must
stay a small, readable set. Nothing here imports Locust.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

MAX_NAME_LENGTH = 80
_FIRST_NAMES = ("ada", "grace", "linus", "zoë", "józef", "søren", "ana maría", "李", "amélie", "yusuf")


class Rejected(Exception):
    """A response that breaks the users API contract."""


@dataclass(frozen=True)
class User:
    """A stored user as the service returns it."""

    id: int
    name: str
    created_at: str


@dataclass(frozen=True)
class Page:
    """One page of GET /users: its users and the relative URL of the next page, if any."""

    items: list[User]
    next: str | None


def new_name() -> str:
    """Return a unique-ish, valid name (1..80 chars, some non-ASCII so encoding round trips are checked)."""
    # uuid4 draws from os.urandom, so forked Locust workers never repeat each other's names.
    return f"{random.choice(_FIRST_NAMES)} {uuid.uuid4().hex[:12]}"


def first_page_url(limit: int) -> str:
    """Return the URL of the first page of the users list."""
    return f"/users?limit={limit}"


def name_lookup_url(name: str) -> str:
    """Return the relative URL that lists the users named exactly `name` (how an audit finds a create)."""
    return f"/users?name={quote(name, safe='')}"


def create_outcome(status: int, retry_after: str | None, error: BaseException | None = None) -> Literal["fail", "info"]:
    """Say what a create that was not acknowledged did: "fail" (nothing was written) or "info" (unknown).

    Definite rejections: a 4xx (429 included), a 503 with Retry-After (the service's answer while its
    database is away), and a refused connection (the request never left). Unknown: no response otherwise (a
    timeout, a reset or closed connection: the request may have been served), any other 5xx (a 500 or a
    proxy's 502/504 may come after the row was written) and a 2xx with a wrong body.
    """
    if 400 <= status < 500 or (status == 503 and retry_after):
        return "fail"
    if status == 0 and isinstance(error, ConnectionRefusedError):
        return "fail"
    return "info"


def judge_created(status: int, body: bytes | None, location: str | None, sent_name: str) -> User:
    """Return the user a POST /users created: 201, a full user body with our name, Location /users/<id>."""
    _expect_status(status, 201, body)
    user = _user(_json(body), "created user")
    if user.name != sent_name:
        raise Rejected("created user: name differs from the one sent")
    if location is None:
        raise Rejected("created user: no Location header")
    if urlsplit(location).path != f"/users/{user.id}":
        raise Rejected("created user: Location does not point at /users/<id>")
    return user


def judge_page(status: int, body: bytes | None, limit: int, after_id: int | None = None) -> Page:
    """Return a page of GET /users: 200, items ordered by id (after the previous page), and `next`."""
    _expect_status(status, 200, body)
    document = _json(body)
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise Rejected("users page: no items list")
    if "next" not in document:
        raise Rejected("users page: no next key")
    items = [_user(item, "users page item") for item in document["items"]]
    if len(items) > limit:
        raise Rejected("users page: more items than the limit")
    ids = [user.id for user in items]
    if ids != sorted(set(ids)):
        raise Rejected("users page: ids not strictly ascending")
    if after_id is not None and ids and ids[0] <= after_id:
        raise Rejected("users page: next page repeats or precedes the previous page")
    next_url = document["next"]
    if next_url is not None and not (isinstance(next_url, str) and next_url.startswith("/users?")):
        raise Rejected("users page: next is neither null nor a /users? URL")
    return Page(items, next_url)


def judge_fetched(status: int, body: bytes | None, expected: User) -> User:
    """Return the user GET /users/<id> answered: 200 and the same id and name that were created."""
    _expect_status(status, 200, body)
    user = _user(_json(body), "fetched user")
    if user.id != expected.id:
        raise Rejected("fetched user: id differs from the one requested")
    if user.name != expected.name:
        raise Rejected("fetched user: name differs from the one created")
    return user


def _expect_status(status: int, expected: int, body: bytes | None) -> None:
    if status == expected:
        return
    if status == 0:
        raise Rejected("no response")
    code = None
    try:
        error = json.loads(body or b"").get("error", {})
        code = error.get("code") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        pass
    detail = f" ({code})" if isinstance(code, str) else ""
    raise Rejected(f"expected {expected}, got {status}{detail}")


def _json(body: bytes | None) -> Any:
    try:
        return json.loads(body or b"")
    except ValueError:
        raise Rejected("body is not JSON") from None


def _user(document: Any, what: str) -> User:
    if not isinstance(document, dict):
        raise Rejected(f"{what}: not a JSON object")
    user_id, name, created_at = document.get("id"), document.get("name"), document.get("created_at")
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        raise Rejected(f"{what}: id is not an integer")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise Rejected(f"{what}: name is not a 1..80 character string")
    if not isinstance(created_at, str):
        raise Rejected(f"{what}: created_at missing")
    try:
        datetime.fromisoformat(created_at)
    except ValueError:
        raise Rejected(f"{what}: created_at is not ISO 8601") from None
    return User(user_id, name, created_at)
