"""The HTTP API: users, health and readiness."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, request
from sqlalchemy import Row, bindparam, insert, select, text
from werkzeug.exceptions import RequestEntityTooLarge

from .cursors import MAX_ID, encode_cursor
from .db import get_db, get_engine
from .errors import ApiError
from .models import User
from .validation import parse_after, parse_limit, parse_name_filter, validate_name

bp = Blueprint("users", __name__)

# Built once: SQLAlchemy caches their compiled form, and psycopg prepares them after a few runs.
_COLUMNS = (User.id, User.name, User.created_at)
_INSERT_USER = insert(User).values(name=bindparam("name")).returning(*_COLUMNS)
_SELECT_USER = select(*_COLUMNS).where(User.id == bindparam("id"))
# Keyset pagination: constant cost per page however deep, and one row more than asked to know if more follow.
_SELECT_PAGE = select(*_COLUMNS).where(User.id > bindparam("after")).order_by(User.id).limit(bindparam("fetch"))
_SELECT_NAMED_PAGE = (
    select(*_COLUMNS)
    .where(User.name == bindparam("name"), User.id > bindparam("after"))
    .order_by(User.id)
    .limit(bindparam("fetch"))
)
_PING = text("SELECT 1")


def user_json(row: Row[Any]) -> dict[str, Any]:
    """Return the JSON-ready form of a user row (the JSON provider writes created_at as ISO 8601)."""
    # Positional access: several times cheaper than by name, and this runs for every row of every page.
    return {"id": row[0], "name": row[1], "created_at": row[2]}


@bp.post("/users")
def create_user() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a user from {"name": ...}; answer 201 with the user and its Location."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    name = validate_name(_json_body())
    with get_engine().connect() as connection:
        row = connection.execute(_INSERT_USER, {"name": name}).one()
    return user_json(row), 201, {"Location": f"/users/{row.id}"}


@bp.get("/users")
def list_users() -> dict[str, Any]:
    """List users by ascending id, one page at a time; `next` is the URL of the following page or null.

    With `name`, only the users of exactly that name (an index makes it a look-up, not a scan).
    """
    limit = parse_limit(request.args.get("limit"))
    after = parse_after(request.args.get("after"))
    name = parse_name_filter(request.args.get("name"))
    parameters: dict[str, Any] = {"after": after, "fetch": limit + 1}
    query = _SELECT_PAGE
    if name is not None:
        query, parameters["name"] = _SELECT_NAMED_PAGE, name
    with get_engine().connect() as connection:
        rows = connection.execute(query, parameters).all()
    next_url = None
    if len(rows) > limit:
        del rows[limit:]
        named = "" if name is None else f"&name={quote(name, safe='')}"
        next_url = f"/users?limit={limit}{named}&after={encode_cursor(rows[-1].id)}"
    return {"items": [user_json(row) for row in rows], "next": next_url}


@bp.get("/users/<int:user_id>")
def get_user(user_id: int) -> dict[str, Any]:
    """Return one user, or 404."""
    if user_id <= MAX_ID:
        with get_engine().connect() as connection:
            row = connection.execute(_SELECT_USER, {"id": user_id}).one_or_none()
        if row is not None:
            return user_json(row)
    raise ApiError(404, "user_not_found", f"no user with id {user_id}")


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer 200 while the process serves requests; the database is not consulted."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, str]:
    """Answer 200 when the database answers and the schema exists, 503 otherwise."""
    database = get_db()
    with database.engine.connect() as connection:
        connection.execute(_PING)
    database.ensure_schema()
    return {"status": "ready"}


def _json_body() -> Any:
    # A declared Content-Length over MAX_CONTENT_LENGTH is refused (413) before anything is read.
    data = request.get_data(cache=False)
    limit = request.max_content_length
    # A chunked body is cut at the limit, not refused: one byte more from the server says if it went on.
    streamed_to_the_limit = request.content_length is None and limit is not None and len(data) >= limit
    if streamed_to_the_limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    try:
        return current_app.json.loads(data)
    except (ValueError, RecursionError):
        # ValueError covers bad syntax, bad UTF-8 and too deep nesting; RecursionError the same from a
        # recursive parser, should the provider be one.
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
