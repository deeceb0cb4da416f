"""Settings shared by every test: Docker availability and the images the tests run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"

# testcontainers reads these when it is imported: set them before any test module imports it.
# Ryuk's image cannot be pulled where no registry answers; cleanup relies on context managers instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# Traffic goes to 127.0.0.1 only, never to the bridge gateway testcontainers might pick.
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
# Where testcontainers believes it runs inside a container (/.dockerenv) it connects through the bridge
# gateway even with the override above; docker_host mode makes it use the engine's host, 127.0.0.1.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _docker_problem() -> str | None:
    """Return why the Docker engine cannot be used, or None when it answers."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"Docker engine not reachable: {exc}"
    return None


# Under pytest-xdist (`make test` runs two workers, --dist loadgroup) the tests of one group run on one
# worker, one after another: the stack tests share one session-scoped stack, and each probe test module
# keeps its module-scoped stacks and runs its loads one at a time. Other tests, and other probe modules,
# are spread over both workers.


@pytest.fixture(scope="session")
def docker_available() -> str | None:
    """Check the engine once per session; None means it answers."""
    return _docker_problem()


@pytest.fixture(autouse=True)
def _require_docker(request: pytest.FixtureRequest) -> None:
    """Fail (in CI) or skip (elsewhere) a test marked `docker` when no engine answers."""
    if request.node.get_closest_marker("docker") is None:
        return
    problem = request.getfixturevalue("docker_available")
    if problem is None:
        return
    if _in_ci():
        pytest.fail(f"{problem} (CI=true: Docker-backed tests must run, not skip)", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Keep each test's changes to os.environ from leaking into the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def project_containers(client: Any, project_prefix: str) -> list[str]:
    """Return the names of the containers whose Compose project starts with the prefix, stopped ones too.

    One list call and no inspect per container: under xdist another worker's teardown may remove a container
    between a list and its inspect, which docker-py's containers.list() then raises on (404).
    """
    listed = client.api.containers(all=True, filters={"label": "com.docker.compose.project"})
    return [
        item["Names"][0].lstrip("/")
        for item in listed
        if (item.get("Labels") or {}).get("com.docker.compose.project", "").startswith(project_prefix)
    ]


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """Read KEY=VALUE lines of the stack's .env file (written by provisioning); empty when absent."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="session")
def postgres_image() -> str:
    """The PostgreSQL image: POSTGRES_IMAGE from the environment or .env, else the official one."""
    return (
        os.environ.get("STACKPROBE_POSTGRES_IMAGE")
        or os.environ.get("POSTGRES_IMAGE")
        or read_env_file().get("POSTGRES_IMAGE")
        or "postgres:16"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark integration, stack and probe tests as needing Docker, so none can silently skip in CI.

    Also put the stack tests into one xdist group, and each probe module's tests into one of their own.
    """
    for item in items:
        if any(item.get_closest_marker(name) for name in ("integration", "stack", "probe")):
            item.add_marker(pytest.mark.docker)
        if item.get_closest_marker("stack") is not None:
            item.add_marker(pytest.mark.xdist_group("stack"))
        elif item.get_closest_marker("probe") is not None:
            item.add_marker(pytest.mark.xdist_group(f"probe-{item.path.stem}"))
