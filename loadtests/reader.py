"""A reader only reads: pages at random depths of the whole table, look-ups of what it read, a few browses.

The read-heavy traffic `stackprobe grow` runs at each data size. It is loaded only when this file is
named itself: `locust -f loadtests/reader.py` (or `--locustfile`, `LOCUST_LOCUSTFILE`). Found in a folder
(`locust -f loadtests`, as `stackprobe run` and `make probe` load it), the class stays abstract, so the
default traffic remains the Registrar's alone. A config file naming this file is not read for the choice
(Locust reads config files after it imports the locustfiles): Locust then finds no User class and says so.
"""

from __future__ import annotations

import base64
import os
import random
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

from _users_api import Page, Rejected, User, first_page_url, judge_fetched, judge_page
from gevent.lock import Semaphore
from locust import FastHttpUser, between, task
from locust.contrib.fasthttp import ResponseContextManager

T = TypeVar("T")


def named_on_command_line(argv: Sequence[str], environ: Mapping[str, str], path: str = __file__) -> bool:
    """Tell whether `path` is named itself among Locust's locustfiles (-f, --locustfile, LOCUST_LOCUSTFILE).

    A folder that holds it does not count: only a file named on purpose makes its user class concrete.
    """
    values: list[str] = []
    args = list(argv)
    for index, arg in enumerate(args):
        if arg in ("-f", "--locustfile") and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith("--locustfile="):
            values.append(arg.partition("=")[2])
        elif arg.startswith("-f") and len(arg) > 2 and not arg.startswith("--"):
            values.append(arg[2:])
    if not values and environ.get("LOCUST_LOCUSTFILE"):
        values.append(environ["LOCUST_LOCUSTFILE"])
    here = Path(path).resolve()
    return any(Path(name.strip()).resolve() == here for value in values for name in value.split(",") if name.strip())


def cursor_after(user_id: int) -> str:
    """Return the `after` cursor that lists users from the one after `user_id`.

    The users service's cursor format (services/users/users/cursors.py): URL-safe base64 of "u1:<id>",
    unpadded. Forging it lets a reader land at any depth of the table instead of walking from its start.
    Should the format change, every jump is a 400 and the run shows it.
    """
    return base64.urlsafe_b64encode(f"u1:{user_id}".encode()).rstrip(b"=").decode("ascii")


# The highest id in the table, found once per Locust process by the first reader to start (the table does
# not change under a reader: it never writes).
_last_id: int | None = None
_finding = Semaphore()


# FastHttpUser (geventhttpclient), not HttpUser (requests): the generator shares two cores with the stack it
# loads, and bench/http_clients.py measured 0.24 ms of Locust's CPU per request with FastHttpUser against
# 0.93 ms with HttpUser, so one Locust process delivers about four times the load before it saturates.
class Reader(FastHttpUser):
    """Read the users directory all over: pages at random depths, look-ups of users seen, a few browses.

    Per ten tasks: five jumps (a page of 20 after a random id in the table), four look-ups (GET
    /users/<id> of a user seen on a page, checked against it) and one browse (the first page, then more
    with odds of one in three, up to five). No writes. Every response is judged on status and body.
    Stats names: `/users [jump]`, `/users/<id>`, `/users [first page]`, `/users [next page]`, and
    `/users [find the end]` for the few pages the first reader of a process reads to find the last id.
    """

    abstract = not named_on_command_line(sys.argv[1:], os.environ)
    # As the Registrar: the load is set by the number of users, the pause only keeps them out of lockstep.
    wait_time = between(0, 0.05)
    network_timeout = 10.0
    connection_timeout = 5.0

    page_size = 20
    max_pages = 5
    next_page_odds = 1 / 3

    def on_start(self) -> None:
        """Learn how far the table goes (once per process); start with no user seen."""
        global _last_id
        self.seen: deque[User] = deque(maxlen=200)
        with _finding:
            if _last_id is None:
                _last_id = self._find_last_id()

    @task(5)
    def jump(self) -> None:
        """GET a page after a random id of the table; remember its users for look-ups."""
        after = random.randrange(_last_id) if _last_id else 0
        url = f"{first_page_url(self.page_size)}&after={cursor_after(after)}"
        with self.client.get(url, name="/users [jump]", catch_response=True) as response:
            page = self._judge(response, partial(judge_page, limit=self.page_size, after_id=after))
        if page is not None:
            self.seen.extend(page.items)

    @task(4)
    def look_up(self) -> None:
        """GET /users/<id> of a user seen on a page (jumping first if none was), checked against the page."""
        if not self.seen:
            self.jump()
            return
        expected = random.choice(self.seen)
        with self.client.get(f"/users/{expected.id}", name="/users/<id>", catch_response=True) as response:
            self._judge(response, partial(judge_fetched, expected=expected))

    @task(1)
    def browse(self) -> None:
        """Read the first page and sometimes follow `next` a few pages further."""
        url, label = first_page_url(self.page_size), "/users [first page]"
        after_id: int | None = None
        for _ in range(self.max_pages):
            with self.client.get(url, name=label, catch_response=True) as response:
                page = self._judge(response, partial(judge_page, limit=self.page_size, after_id=after_id))
            if page is None or page.next is None or not page.items or random.random() >= self.next_page_odds:
                return
            url, label, after_id = page.next, "/users [next page]", page.items[-1].id

    def _find_last_id(self) -> int | None:
        """Return the highest id in the table (0: empty), or None when a request failed before any was seen.

        Pages of one after a guess: a user after x means the last id is above x. Doubling finds a bound,
        halving closes on it: about 2 log2(rows) small pages, once per process.
        """
        first = self._one_after(0)
        if first is None:
            return None
        if not first.items:
            return 0
        # Invariant: some id is above `low`, none is above `high`.
        low, high = 0, first.items[0].id
        while True:
            page = self._one_after(high)
            if page is None:
                return low or None
            if not page.items:
                break
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            page = self._one_after(middle)
            if page is None:
                return low or None
            low, high = (middle, high) if page.items else (low, middle)
        return high

    def _one_after(self, after: int) -> Page | None:
        url = f"{first_page_url(1)}&after={cursor_after(after)}"
        with self.client.get(url, name="/users [find the end]", catch_response=True) as response:
            return self._judge(response, partial(judge_page, limit=1, after_id=after))

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
