"""Every error the service answers, as JSON: {"error": {"status", "code", "message"}}."""

from __future__ import annotations

import logging
import re
import threading
import time

from flask import Flask, Response, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# The seconds a client should wait before retrying while the database is away.
RETRY_AFTER_S = 1
_NOT_CODE_CHARS = re.compile(r"[^a-z0-9]+")
# Werkzeug's names, where a shorter or more current one reads better in a client's logs.
_CODES = {413: "payload_too_large", 500: "internal_error"}


class ApiError(Exception):
    """A request the service refuses, with the status, code and message the client gets."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Response:
    """Return the JSON error response every failure uses."""
    response = jsonify({"error": {"status": status, "code": code, "message": message}})
    response.status_code = status
    return response


class _OutageLog:
    """Log database outages once, then at most every few seconds, so an outage under load stays readable."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._suppressed = 0

    def warn(self, error: Exception) -> None:
        """Log this outage error now, or count it for the next report."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval_s:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        # The driver's first line names the cause (refused, timed out, shutting down); the rest is noise here.
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        log.warning("database unavailable: %s: %s%s", type(error).__name__, detail[0] if detail else "", more)


def register_error_handlers(app: Flask) -> None:
    """Make every HTTP error, database outage and unexpected exception answer in the JSON error shape."""
    outage_log = _OutageLog()

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # Client input never lands here: this is a bug, so keep the traceback.
        log.error("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message)

    @app.after_request
    def _close_after_a_refused_body(response: Response) -> Response:
        # A refused request's body may be unread and still arriving (a 413, or a 415 refused before
        # reading): answer and close, rather than let the server drop the connection under the client's
        # next request on it.
        if response.status_code >= 400 and _has_body():
            response.headers["Connection"] = "close"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _CODES.get(status) or _NOT_CODE_CHARS.sub("_", error.name.lower()).strip("_")
        response = error_response(status, code, _describe(error, status))
        # Keep what the exception says about itself, such as Allow on a 405.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    def _database_unavailable(error: Exception) -> Response:
        outage_log.warn(error)
        response = error_response(503, "database_unavailable", "the database is unavailable; retry shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    # OperationalError: refused, dropped or restarting server, statement timeout; InterfaceError: a dead
    # connection; TimeoutError: every pooled connection busy for DB_POOL_TIMEOUT seconds.
    for outage in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.register_error_handler(outage, _database_unavailable)

    @app.errorhandler(sa_exc.DBAPIError)
    def _database_error(error: sa_exc.DBAPIError) -> Response:
        if error.connection_invalidated:
            return _database_unavailable(error)
        return _unexpected(error)


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _describe(error: HTTPException, status: int) -> str:
    if status == 404:
        return f"no route matches {request.path[:200]}"
    if status == 405:
        allowed = ", ".join(getattr(error, "valid_methods", None) or ())
        return f"{request.method} is not allowed on {request.path[:200]}; allowed: {allowed}"
    if status == 413:
        return f"the body is larger than the {request.max_content_length} bytes this service accepts"
    return error.description or error.name
