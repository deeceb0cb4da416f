"""The workers bench's load: one static page, as fast as each user can ask for it."""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class PageReader(FastHttpUser):
    """Ask for the page again as soon as it has come back."""

    wait_time = constant(0)

    @task
    def page(self) -> None:
        """GET /, which must answer 200."""
        with self.client.get("/", name="GET /", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
