"""JSON for the app through orjson: a page of users serialises several times faster than with the stdlib."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """Flask's JSON provider, backed by orjson (datetimes become ISO 8601 strings)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise `obj` to a JSON string."""
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text; raise ValueError (orjson.JSONDecodeError) on anything that is not JSON."""
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        """Return an application/json response, encoded once, straight to bytes."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(orjson.dumps(obj), mimetype="application/json")
