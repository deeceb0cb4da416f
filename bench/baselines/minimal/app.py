"""A minimal users app with almost no validation: the hand-written baseline the users service is measured against."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from flask import Flask, request
from psycopg_pool import ConnectionPool

CONNINFO = os.environ["DATABASE_URL"]
# One connection per app thread, so a request never waits for the pool.
POOL_SIZE = int(os.environ.get("POOL_SIZE", "4"))

with psycopg.connect(CONNINFO, autocommit=True) as setup:
    # Every worker process runs this at start; the lock keeps two CREATEs from racing.
    setup.execute("SELECT pg_advisory_lock(1)")
    setup.execute(
        "CREATE TABLE IF NOT EXISTS users ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " name text NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )

pool = ConnectionPool(CONNINFO, min_size=POOL_SIZE, max_size=POOL_SIZE, open=True)
app = Flask(__name__)


def as_user(row: tuple[Any, ...]) -> dict[str, Any]:
    """Return one users row as JSON."""
    return {"id": row[0], "name": row[1], "created_at": row[2].isoformat()}


@app.post("/users")
def create_user() -> tuple[dict[str, Any], int]:
    """Insert a user."""
    name = request.get_json()["name"]
    with pool.connection() as conn:
        row = conn.execute("INSERT INTO users (name) VALUES (%s) RETURNING id, name, created_at", (name,)).fetchone()
    return as_user(row), 201


@app.get("/users")
def list_users() -> dict[str, Any]:
    """Return the first 50 users."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT id, name, created_at FROM users ORDER BY id LIMIT 50").fetchall()
    return {"items": [as_user(row) for row in rows]}
