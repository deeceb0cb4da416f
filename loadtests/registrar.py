"""A registrar keeps the users directory: adds people, pages through the list, looks up whom they added."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from _users_api import (
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
from _write_log import write_log
from locust import FastHttpUser, between, task
from locust.contrib.fasthttp import ResponseContextManager

T = TypeVar("T")

# The audit reads every user back through the list, 500 (the service's largest page) at a time.
write_log.declare_scan(first_page_url(500), key="id")


# FastHttpUser (geventhttpclient), not HttpUser (requests): the generator shares two cores with the stack it
# loads, and bench/http_clients.py measured 0.24 ms of Locust's CPU per request with FastHttpUser against
# 0.93 ms with HttpUser, so one Locust process delivers about four times the load before it saturates.
class Registrar(FastHttpUser):
    """Add users, list them page by page, and read back users this registrar added.

    Per ten tasks: four adds, four browses (each a first page, then another page with odds of one in
    three, up to five pages) and two look-ups, so creates and first pages come 1:1 and deeper pages and
    look-ups make up a smaller share. Every response is judged on status and body.
    """

    # The load is set by the number of users (a closed model), not by a human pace, so there is almost
    # no think time. The short random pause keeps users spawned in the same instant out of lockstep and
    # caps a user near 40 requests/s when every request fails fast (e.g. while an OOM-killed service
    # restarts), so an outage cannot turn the generator into a busy loop.
    wait_time = between(0, 0.05)
    # A request unanswered for 10 s is a failure, not a 60-s stall that hides the rest of the run.
    network_timeout = 10.0
    connection_timeout = 5.0

    page_size = 20
    max_pages = 5
    next_page_odds = 1 / 3

    def on_start(self) -> None:
        """Start with nobody added; remember only the latest hundred for look-ups."""
        self.added: deque[User] = deque(maxlen=100)
        self.process = write_log.new_process()

    @task(4)
    def add_user(self) -> None:
        """POST /users with a fresh name; record the create in the write log before sending, then its outcome."""
        name = new_name()
        op = write_log.invoke(self.process, name, lookup=name_lookup_url(name))
        with self.client.post("/users", json={"name": name}, name="/users", catch_response=True) as response:
            headers = response.headers or {}
            user = self._judge(response, partial(judge_created, location=headers.get("Location"), sent_name=name))
            if user is None:
                status, failure = response.status_code, getattr(response, "error", None)
                error = f"HTTP {status}" if status else f"no response: {type(failure).__name__}"
                if create_outcome(status, headers.get("Retry-After"), failure) == "fail":
                    write_log.fail(op, self.process, name, status, error)
                else:
                    write_log.info(op, self.process, name, status, error)
        if user is not None:
            self.added.append(user)
            write_log.ok(op, self.process, name, f"/users/{user.id}", {"id": user.id, "name": user.name})

    @task(4)
    def browse(self) -> None:
        """Read the first page of users and sometimes follow `next` a few pages further."""
        url, label = first_page_url(self.page_size), "/users [first page]"
        after_id: int | None = None
        for _ in range(self.max_pages):
            with self.client.get(url, name=label, catch_response=True) as response:
                page = self._judge(response, partial(judge_page, limit=self.page_size, after_id=after_id))
            if page is None or page.next is None or not page.items or random.random() >= self.next_page_odds:
                return
            url, label, after_id = page.next, "/users [next page]", page.items[-1].id

    @task(2)
    def look_up_added_user(self) -> None:
        """GET /users/<id> of a user this registrar added (adding one first if there is none yet)."""
        if not self.added:
            self.add_user()
            return
        added = random.choice(self.added)
        with self.client.get(f"/users/{added.id}", name="/users/<id>", catch_response=True) as response:
            self._judge(response, partial(judge_fetched, expected=added))

    @staticmethod
    def _judge(response: ResponseContextManager, judge: Callable[[int, bytes | None], T]) -> T | None:
        """Mark the response a success if judge accepts it, else a failure with judge's reason."""
        try:
            verdict = judge(response.status_code, response.content)
        except Rejected as problem:
            error = getattr(response, "error", None)
            reason = str(problem)
            if response.status_code == 0 and error is not None:
                reason = f"no response: {type(error).__name__}"
            response.failure(reason)
            return None
        response.success()
        return verdict
