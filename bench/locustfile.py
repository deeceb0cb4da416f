"""The bench's load: each user creates a user and lists the first page, 1:1, with no pause between requests.

It runs against the users service and both baselines, whose response bodies differ, so it judges
status codes alone: 201 for a create, 200 for a list.
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, task

# Unique across the users of one run, short enough for every app's name column.
_names = itertools.count()
_prefix = f"bench-{os.getpid()}"


class CreateAndList(FastHttpUser):
    """Create a user, then list the first page."""

    wait_time = constant(0)

    @task
    def create_then_list(self) -> None:
        """POST /users, then GET /users."""
        with self.client.post(
            "/users", json={"name": f"{_prefix}-{next(_names)}"}, name="POST /users", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"expected 201, got {response.status_code}")
        with self.client.get("/users", name="GET /users", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
