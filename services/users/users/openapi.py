"""The OpenAPI 3 document of the service, served at GET /openapi.json."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint

from .models import MAX_NAME_LENGTH
from .validation import DEFAULT_LIMIT, MAX_LIMIT

bp = Blueprint("openapi", __name__)

_ERROR_RESPONSES = {
    "BadRequest": "The request is malformed or a value is out of range (see error.code).",
    "NotFound": "No such user or route.",
    "MethodNotAllowed": "The route exists but not with this method (see the Allow header).",
    "PayloadTooLarge": "The body is larger than the service accepts.",
    "UnsupportedMediaType": "The body is not sent as application/json.",
    "ServiceUnavailable": "The database is unavailable; retry after the Retry-After seconds.",
    "InternalError": "An unexpected error, logged by the service.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _errors(*names: str) -> dict[str, Any]:
    codes = {
        "BadRequest": "400",
        "NotFound": "404",
        "MethodNotAllowed": "405",
        "PayloadTooLarge": "413",
        "UnsupportedMediaType": "415",
        "ServiceUnavailable": "503",
        "InternalError": "500",
    }
    return {codes[name]: _ref(name) for name in (*names, "MethodNotAllowed", "InternalError")}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document describing every route and its error responses."""
    user_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "format": "int64"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "users",
            "version": "1.0.0",
            "description": "A directory of users on PostgreSQL, listed with keyset pagination.",
        },
        "paths": {
            "/users": {
                "post": {
                    "operationId": "createUser",
                    "summary": "Create a user",
                    "requestBody": {"required": True, "content": _json("NewUser")},
                    "responses": {
                        "201": {
                            "description": "Created",
                            "headers": {"Location": {"description": "/users/{id}", "schema": {"type": "string"}}},
                            "content": _json("User"),
                        },
                        **_errors("BadRequest", "PayloadTooLarge", "UnsupportedMediaType", "ServiceUnavailable"),
                    },
                },
                "get": {
                    "operationId": "listUsers",
                    "summary": "List users by ascending id, one page at a time",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "description": "The opaque cursor of a previous page's `next` URL.",
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        },
                        {
                            "name": "name",
                            "in": "query",
                            "description": "Only the users of exactly this name.",
                            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        },
                    ],
                    "responses": {
                        "200": {"description": "A page of users", "content": _json("UserPage")},
                        **_errors("BadRequest", "ServiceUnavailable"),
                    },
                },
            },
            "/users/{id}": {
                "get": {
                    "operationId": "getUser",
                    "summary": "Get one user",
                    "parameters": [user_id],
                    "responses": {
                        "200": {"description": "The user", "content": _json("User")},
                        **_errors("NotFound", "ServiceUnavailable"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process answers (the database is not consulted)",
                    "responses": {
                        "200": {"description": "Alive", "content": _json("Status")},
                        **_errors(),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: the database answers and the schema exists",
                    "responses": {
                        "200": {"description": "Ready", "content": _json("Status")},
                        **_errors("ServiceUnavailable"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "The OpenAPI document", "content": {"application/json": {}}},
                        **_errors(),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "NewUser": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {
                            "type": "string",
                            "description": "Trimmed of surrounding whitespace; no control characters.",
                            "minLength": 1,
                            "maxLength": MAX_NAME_LENGTH,
                        }
                    },
                },
                "User": {
                    "type": "object",
                    "required": ["id", "name", "created_at"],
                    "properties": {
                        "id": {"type": "integer", "format": "int64"},
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
                "UserPage": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
                        "next": {
                            "type": ["string", "null"],
                            "description": "The URL of the next page, or null on the last page.",
                        },
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}},
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["status", "code", "message"],
                            "properties": {
                                "status": {"type": "integer"},
                                "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            },
            "responses": {
                name: {"description": description, "content": _json("Error")}
                for name, description in _ERROR_RESPONSES.items()
            },
        },
    }


@bp.get("/openapi.json")
def serve_openapi() -> dict[str, Any]:
    """Serve the OpenAPI document."""
    return openapi_document()
