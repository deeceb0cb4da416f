"""Every error the users service answers is JSON naming the problem; bad input never reaches the database.

The app here points at a port where nothing listens: a request that touched the database would get a 503,
so each 4xx below also shows the request was refused before any database access.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from users import create_app
from users.drain import DRAIN_MAX_BYTES

from stackprobe.stack import free_ports

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def app() -> Flask:
    """The app, configured for a database that refuses connections."""
    return create_app(
        {
            "DATABASE_URL": f"postgresql+psycopg://users:unused@127.0.0.1:{free_ports(1)[0]}/users",
            "DB_CONNECT_TIMEOUT": 1,
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of that app."""
    return app.test_client()


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"status", "code", "message"}
    assert error["status"] == status
    assert re.fullmatch(r"[a-z0-9_]+", error["code"])
    assert error["message"]
    return error


BAD_REQUESTS = [
    # (method, path, request kwargs, status, code)
    ("POST", "/users", {"data": b"{not json", "headers": JSON}, 400, "malformed_json"),
    ("POST", "/users", {"data": b"", "headers": JSON}, 400, "malformed_json"),
    ("POST", "/users", {"data": b'{"name": "\xff\xfe"}', "headers": JSON}, 400, "malformed_json"),
    ("POST", "/users", {"data": b"[" * 15000, "headers": JSON}, 400, "malformed_json"),
    ("POST", "/users", {"data": b'{"name": NaN}', "headers": JSON}, 400, "malformed_json"),
    ("POST", "/users", {"data": b"name=Ada", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    ("POST", "/users", {"data": b'{"name": "Ada"}'}, 415, "unsupported_media_type"),
    ("POST", "/users", {"data": b"name=Ada", "content_type": "application/x-www-form-urlencoded"}, 415, None),
    ("POST", "/users", {"json": {}}, 400, "missing_name"),
    ("POST", "/users", {"json": {"name": ""}}, 400, "empty_name"),
    ("POST", "/users", {"json": {"name": "   "}}, 400, "empty_name"),
    ("POST", "/users", {"json": {"name": "x" * 81}}, 400, "name_too_long"),
    ("POST", "/users", {"json": {"name": 42}}, 400, "invalid_name"),
    ("POST", "/users", {"json": {"name": None}}, 400, "invalid_name"),
    ("POST", "/users", {"json": {"name": "a\x00b"}}, 400, "invalid_name"),
    ("POST", "/users", {"json": ["name"]}, 400, "invalid_body"),
    ("POST", "/users", {"data": b"x" * 20_000, "headers": JSON}, 413, "payload_too_large"),
    ("GET", "/users?limit=abc", {}, 400, "invalid_limit"),
    ("GET", "/users?limit=0", {}, 400, "invalid_limit"),
    ("GET", "/users?limit=501", {}, 400, "invalid_limit"),
    ("GET", "/users?limit=-5", {}, 400, "invalid_limit"),
    ("GET", "/users?limit=", {}, 400, "invalid_limit"),
    ("GET", "/users?after=%%%garbage", {}, 400, "invalid_cursor"),
    ("GET", "/users?after=MTIz", {}, 400, "invalid_cursor"),
    ("GET", "/users?limit=10&after=", {}, 400, "invalid_cursor"),
    ("GET", "/users/not-a-number", {}, 404, "not_found"),
    ("GET", "/users/-1", {}, 404, "not_found"),
    ("GET", "/users/99999999999999999999", {}, 404, "user_not_found"),
    ("GET", "/no/such/route", {}, 404, "not_found"),
    ("DELETE", "/users", {}, 405, "method_not_allowed"),
    ("PUT", "/users/1", {}, 405, "method_not_allowed"),
    ("POST", "/healthz", {}, 405, "method_not_allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    BAD_REQUESTS,
    ids=[f"{m} {p[:30]} {s}" for m, p, _, s, _ in BAD_REQUESTS],
)
def test_bad_request_is_refused_with_a_json_error_before_the_database(
    client: FlaskClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: str | None
) -> None:
    error = _error(client.open(path, method=method, **kwargs), status)
    if code is not None:
        assert error["code"] == code


def test_method_not_allowed_lists_the_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/users")
    _error(response, 405)
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["Allow"].split(",")}


def test_too_large_body_says_the_limit(client: FlaskClient) -> None:
    error = _error(client.post("/users", data=b"x" * 20_000, headers=JSON), 413)
    assert "16384 bytes" in error["message"]


def test_health_answers_without_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/readyz", {}),
        ("GET", "/users", {}),
        ("GET", "/users/1", {}),
        ("POST", "/users", {"json": {"name": "A"}}),
    ],
)
def test_database_unreachable_is_a_503_with_retry_after(
    client: FlaskClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = client.open(path, method=method, **kwargs)
    assert _error(response, 503)["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_outage_is_logged_once_not_per_request(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="users.errors"):
        for _ in range(5):
            assert client.get("/readyz").status_code == 503
    outage_lines = [record for record in caplog.records if "database unavailable" in record.getMessage()]
    assert len(outage_lines) == 1
    assert "unused" not in outage_lines[0].getMessage()  # the password never reaches a log


def test_unexpected_exception_is_a_logged_json_500(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    app.add_url_rule("/explode", view_func=explode)
    with caplog.at_level(logging.ERROR, logger="users.errors"):
        response = app.test_client().get("/explode")
    assert _error(response, 500)["code"] == "internal_error"
    assert "boom" not in response.get_data(as_text=True)
    assert any(record.exc_info and record.exc_info[0] is RuntimeError for record in caplog.records)


# A body refused unread (413 on its declared length, 415 on its type) is read to its end before the answer,
# within DRAIN_MAX_BYTES: a client that writes the whole body before reading would otherwise meet a reset.
@pytest.mark.parametrize(
    ("size", "content_type", "status"),
    [
        (2_000_000, "application/json", 413),
        (DRAIN_MAX_BYTES, "application/json", 413),
        (2_000_000, "text/plain", 415),
        (20_000, "application/json", 413),
    ],
)
def test_a_refused_body_is_read_to_its_end_before_the_answer(
    client: FlaskClient, size: int, content_type: str, status: int
) -> None:
    stream = io.BytesIO(b"x" * size)
    response = client.post("/users", input_stream=stream, content_length=size, content_type=content_type)
    _error(response, status)
    assert stream.tell() == size


@pytest.mark.parametrize(
    ("size", "headers"),
    [
        (DRAIN_MAX_BYTES + 1, JSON),  # more than is worth reading: answered and closed at once
        (2_000_000, {**JSON, "Expect": "100-continue"}),  # the client sends nothing before it is told to
    ],
    ids=["beyond-the-bound", "expect-100-continue"],
)
def test_a_refused_body_is_left_unread_when_reading_it_would_not_help(
    client: FlaskClient, size: int, headers: dict[str, str]
) -> None:
    stream = io.BytesIO(b"x" * size)
    _error(client.post("/users", input_stream=stream, content_length=size, headers=headers), 413)
    assert stream.tell() == 0
