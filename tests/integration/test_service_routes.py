"""Every route of the users service against a real PostgreSQL, through the Flask test client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import Engine, create_engine, inspect, text
from users import create_app
from users.openapi import openapi_document

pytestmark = pytest.mark.integration

_REGISTRY = Registry().with_resource("urn:users", Resource.from_contents(openapi_document(), DRAFT202012))


def assert_matches_schema(body: Any, schema: str) -> None:
    """Check a response body against a schema of the OpenAPI document."""
    Draft202012Validator({"$ref": f"urn:users#/components/schemas/{schema}"}, registry=_REGISTRY).validate(body)


def create(client: FlaskClient, name: str) -> dict[str, Any]:
    """Create a user through the API and return it."""
    response = client.post("/users", json={"name": name})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_create_answers_201_with_the_user_and_its_location(client: FlaskClient) -> None:
    before = datetime.now(UTC)
    response = client.post("/users", json={"name": "  Ana Souza  "})
    assert response.status_code == 201
    user = response.get_json()
    assert_matches_schema(user, "User")
    assert user["name"] == "Ana Souza"
    assert response.headers["Location"] == f"/users/{user['id']}"
    created_at = datetime.fromisoformat(user["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_created_user_is_stored_as_answered(client: FlaskClient, clean_db: Engine) -> None:
    user = create(client, "Grace Hopper")
    with clean_db.connect() as connection:
        row = connection.execute(text("SELECT id, name FROM users")).one()
    assert tuple(row) == (user["id"], "Grace Hopper")


def test_fetching_a_created_user_returns_the_same_user(client: FlaskClient) -> None:
    user = create(client, "Linus")
    response = client.get(f"/users/{user['id']}")
    assert response.status_code == 200
    assert response.get_json() == user


@pytest.mark.parametrize("name", ["李", "zoë", "søren 🚀", "x" * 80, "é" * 80, "O'Brien; DROP TABLE users; --"])
def test_names_round_trip_exactly(client: FlaskClient, name: str) -> None:
    user = create(client, name)
    assert client.get(f"/users/{user['id']}").get_json()["name"] == name


def test_unknown_user_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/users/424242")
    assert response.status_code == 404
    assert response.get_json()["error"] == {
        "status": 404,
        "code": "user_not_found",
        "message": "no user with id 424242",
    }


def test_empty_table_lists_no_items_and_no_next_page(client: FlaskClient) -> None:
    response = client.get("/users")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "next": None}


def test_list_returns_users_in_id_order_matching_the_schema(client: FlaskClient) -> None:
    created = [create(client, f"user {i}") for i in range(5)]
    page = client.get("/users").get_json()
    assert_matches_schema(page, "UserPage")
    assert page == {"items": created, "next": None}


def test_health_and_readiness_answer_with_the_database_up(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ready"})


def test_readiness_creates_the_schema_in_an_empty_database(make_database: Callable[[str], str]) -> None:

    url = make_database("empty")
    app = create_app({"DATABASE_URL": url})
    try:
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        app.extensions["users.db"].engine.dispose()
    engine = create_engine(url)
    try:
        columns = {column["name"]: column for column in inspect(engine).get_columns("users")}
    finally:
        engine.dispose()
    assert set(columns) == {"id", "name", "created_at"}
    assert columns["name"]["type"].length == 80
    assert columns["created_at"]["type"].timezone is True
    assert columns["created_at"]["default"] == "now()"


def test_rejected_writes_store_nothing(client: FlaskClient, clean_db: Engine) -> None:
    for body in ({}, {"name": ""}, {"name": "x" * 81}, {"name": 7}, {"name": "a\x00b"}):
        assert client.post("/users", json=body).status_code == 400
    with clean_db.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0


def test_openapi_document_is_served(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert {"/users", "/users/{id}", "/healthz", "/readyz", "/openapi.json"} <= set(document["paths"])
