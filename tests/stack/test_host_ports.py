"""The bundled stack's host ports move with APP_PORT, ADMINER_PORT and WEB_PORT, as the README and .env.example say.

A newcomer whose port 5000 is taken runs `APP_PORT=5050 make up`: Compose reads the variable from the
environment before .env, and the file publishes the app there, on 127.0.0.1 only.
"""

from __future__ import annotations

import secrets

import pytest

from stackprobe.stack import Stack, free_ports, unique_project_name
from tests.conftest import ROOT, read_env_file

pytestmark = pytest.mark.stack

VARIABLES = {"app": ("APP_PORT", 5000), "adminer": ("ADMINER_PORT", 8080), "web": ("WEB_PORT", 80)}


def test_each_port_variable_moves_its_services_published_port_on_127_0_0_1() -> None:
    ports = dict(zip(VARIABLES, free_ports(len(VARIABLES)), strict=True))
    env = {variable: str(ports[service]) for service, (variable, _) in VARIABLES.items()}
    env["POSTGRES_PASSWORD"] = secrets.token_urlsafe(8)
    stack = Stack([ROOT / "docker-compose.yml"], project=unique_project_name("stackprobe-test"), env=env)
    services = stack.config(all_profiles=True)["services"]
    for service, (_, target) in VARIABLES.items():
        (published,) = services[service]["ports"]
        assert (published["host_ip"], str(published["published"]), published["target"]) == (
            "127.0.0.1",
            str(ports[service]),
            target,
        ), service


def test_env_example_names_every_port_variable_with_the_files_default() -> None:
    example = read_env_file(ROOT / ".env.example")
    compose = (ROOT / "docker-compose.yml").read_text()
    for variable, _ in VARIABLES.values():
        assert variable in example
        assert f"${{{variable}:-{example[variable]}}}" in compose
