"""The OpenAPI document describes every route the app serves, with its error responses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from users import create_app
from users.openapi import openapi_document

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def app() -> Flask:
    """An app whose database is never reached by these tests."""
    return create_app({"DATABASE_URL": "postgresql+psycopg://users:unused@127.0.0.1:9/users"})


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", "{id}", rule)


def test_served_document_is_the_openapi_document(app: Flask) -> None:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == openapi_document()
    assert response.get_json()["openapi"].startswith("3.")


def test_every_route_and_method_is_documented(app: Flask) -> None:
    paths = openapi_document()["paths"]
    served = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - IMPLICIT_METHODS
    }
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert served == documented


def test_every_operation_documents_its_failures() -> None:
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert {"405", "500"} <= set(operation["responses"]), (method, path)
            if path not in {"/healthz", "/openapi.json"}:
                assert "503" in operation["responses"], (method, path)
    users = openapi_document()["paths"]["/users"]
    assert {"400", "413", "415"} <= set(users["post"]["responses"])
    assert "400" in users["get"]["responses"]
    assert "404" in openapi_document()["paths"]["/users/{id}"]["get"]["responses"]


def test_every_reference_resolves() -> None:
    document = openapi_document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(document):
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_error_bodies_match_the_documented_error_schema(app: Flask) -> None:
    registry = Registry().with_resource("urn:users", Resource.from_contents(openapi_document(), DRAFT202012))
    validator = Draft202012Validator({"$ref": "urn:users#/components/schemas/Error"}, registry=registry)
    client = app.test_client()
    for response in (client.get("/nowhere"), client.delete("/users"), client.post("/users", json={})):
        validator.validate(response.get_json())
