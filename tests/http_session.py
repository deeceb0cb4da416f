"""The HTTP client of the integration and stack tests: a `requests.Session` that always sets a timeout.

Each test module opens one Session (a module-scoped fixture, closed after the module) and sends every
request through it; a test that sends from several threads gives each thread a Session of its own, since a
Session is not documented as safe to share between threads.
"""

from __future__ import annotations

from typing import Any

import requests

# Seconds to connect, and then to wait for each read from the socket (requests' timeout): a service that
# hangs fails the test instead of stalling the suite.
TIMEOUT_S = 15.0


class Session(requests.Session):
    """A requests.Session that sets a timeout on every request, resolves paths against a base URL, and does
    not follow redirects (a test sees the status the service answered).

    base_url: "http://127.0.0.1:PORT" (no trailing slash) that a URL starting with "/" is appended to; ""
    to take full URLs only. timeout_s: seconds, used when a call gives no `timeout` of its own.
    """

    def __init__(self, base_url: str = "", *, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Send a request as requests.Session does, with this session's timeout and base URL by default."""
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", self.timeout_s)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url, *args, **kwargs)

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:
        """GET without following a redirect (requests' get follows them unless told not to)."""
        kwargs.setdefault("allow_redirects", False)
        return super().get(url, **kwargs)
