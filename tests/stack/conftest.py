"""The bundled Compose stack, up once for the stack tests under a project name of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest
from docker.models.containers import Container

from stackprobe.stack import ServiceOverride, Stack, unique_project_name
from tests.conftest import ROOT
from tests.http_session import Session


@dataclass
class BundledStack:
    """A running bundled stack and where to reach its parts on 127.0.0.1."""

    stack: Stack
    app_url: str
    web_url: str
    adminer_url: str
    locust_url: str

    def container(self, service: str) -> Container:
        """Return the (single) container of a service, freshly inspected."""
        client = docker.from_env()
        try:
            return client.containers.get(self.stack.container_ids(service)[0])
        finally:
            client.close()


@pytest.fixture(scope="session")
def bundled_stack() -> Iterator[BundledStack]:
    """Bring up docker-compose.yml with every profile on ephemeral 127.0.0.1 ports; down -v after."""
    env = {}
    if not os.environ.get("POSTGRES_PASSWORD"):
        # A fresh clone has no .env: give this throwaway stack a throwaway password.
        env["POSTGRES_PASSWORD"] = secrets.token_urlsafe(16)
    stack = Stack(
        [ROOT / "docker-compose.yml"],
        project=unique_project_name("stackprobe-test"),
        profiles=["tools", "web", "loadgen"],
        overrides={
            "app": ServiceOverride(publish_ports=[5000]),
            "web": ServiceOverride(publish_ports=[80]),
            "adminer": ServiceOverride(publish_ports=[8080]),
            "master": ServiceOverride(publish_ports=[8089]),
        },
        env=env,
    )
    with stack.running(wait_timeout=240):
        yield BundledStack(
            stack=stack,
            app_url=f"http://127.0.0.1:{stack.port('app', 5000)}",
            web_url=f"http://127.0.0.1:{stack.port('web', 80)}",
            adminer_url=f"http://127.0.0.1:{stack.port('adminer', 8080)}",
            locust_url=f"http://127.0.0.1:{stack.port('master', 8089)}",
        )


@pytest.fixture(scope="module")
def http(bundled_stack: BundledStack) -> Iterator[Session]:
    """The test module's HTTP client (10 s timeout): paths go to the users service, full URLs anywhere."""
    with Session(bundled_stack.app_url, timeout_s=10) as session:
        yield session
