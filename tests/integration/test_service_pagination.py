"""Keyset pagination: a walk along `next` sees every row once, in order, whatever the table holds."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from users.cursors import encode_cursor

pytestmark = pytest.mark.integration


def insert_rows(engine: Engine, count: int) -> list[int]:
    """Insert `count` users straight in PostgreSQL; return all ids in the table, ascending."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (name) SELECT 'bulk ' || g FROM generate_series(1, :count) AS g"), {"count": count}
        )
        return list(connection.execute(text("SELECT id FROM users ORDER BY id")).scalars())


def walk(client: FlaskClient, first: str) -> tuple[list[int], int]:
    """Follow `next` from `first` to the end; return the ids seen in order and the number of pages."""
    ids: list[int] = []
    pages = 0
    url: str | None = first
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        ids += [item["id"] for item in page["items"]]
        pages += 1
        url = page["next"]
        assert pages <= 10_000, "pagination does not end"
    return ids, pages


@pytest.mark.parametrize(("rows", "limit"), [(1234, 100), (200, 100), (1, 50), (499, 500), (500, 500), (501, 500)])
def test_walk_sees_every_row_once_in_order(client: FlaskClient, clean_db: Engine, rows: int, limit: int) -> None:
    expected = insert_rows(clean_db, rows)
    ids, pages = walk(client, f"/users?limit={limit}")
    assert ids == expected
    # No trailing empty page when the count is a multiple of the limit.
    assert pages == math.ceil(rows / limit)


def test_default_page_is_fifty_and_next_keeps_the_limit(client: FlaskClient, clean_db: Engine) -> None:
    insert_rows(clean_db, 120)
    page = client.get("/users").get_json()
    assert len(page["items"]) == 50
    query = parse_qs(urlsplit(page["next"]).query)
    assert query["limit"] == ["50"]
    assert urlsplit(page["next"]).path == "/users"


def test_limit_is_capped_at_five_hundred(client: FlaskClient, clean_db: Engine) -> None:
    insert_rows(clean_db, 600)
    assert len(client.get("/users?limit=500").get_json()["items"]) == 500
    response = client.get("/users?limit=501")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_limit"


def test_walk_is_stable_when_rows_are_added_and_removed_meanwhile(client: FlaskClient, clean_db: Engine) -> None:
    insert_rows(clean_db, 300)
    first = client.get("/users?limit=100").get_json()
    seen = [item["id"] for item in first["items"]]
    with clean_db.begin() as connection:
        # The cursor's own row disappears, and rows arrive at the end.
        connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": seen[-1]})
        connection.execute(text("INSERT INTO users (name) SELECT 'late ' || g FROM generate_series(1, 50) AS g"))
    rest, _ = walk(client, first["next"])
    assert not set(seen) & set(rest)
    assert rest == sorted(rest)
    with clean_db.connect() as connection:
        remaining = list(connection.execute(text("SELECT id FROM users WHERE id > :id ORDER BY id"), {"id": seen[-1]}))
    assert rest == [row.id for row in remaining]


def test_cursor_past_the_end_gives_an_empty_last_page(client: FlaskClient, clean_db: Engine) -> None:
    insert_rows(clean_db, 10)
    page = client.get(f"/users?after={encode_cursor(10**12)}").get_json()
    assert page == {"items": [], "next": None}


def test_a_name_filter_lists_exactly_the_users_of_that_name_and_its_next_keeps_it(
    client: FlaskClient, clean_db: Engine
) -> None:
    insert_rows(clean_db, 30)
    for name in ("zoë 1", "zoë 1", "zoë 1", "zoë 10"):
        assert client.post("/users", json={"name": name}).status_code == 201
    first = client.get("/users", query_string={"name": "zoë 1", "limit": 2}).get_json()
    rest = client.get(first["next"]).get_json()
    assert [u["name"] for u in first["items"] + rest["items"]] == ["zoë 1"] * 3
    assert rest["next"] is None
    assert client.get("/users", query_string={"name": "nobody"}).get_json() == {"items": [], "next": None}


def test_a_name_filter_that_no_user_could_have_is_a_400(client: FlaskClient, clean_db: Engine) -> None:
    response = client.get("/users", query_string={"name": "x" * 81})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_name"
