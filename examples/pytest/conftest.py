"""Point stackprobe's fixtures at the stack under test.

Without this file they use the compose file in pytest's rootdir (compose.yaml, docker-compose.yml, ...
as Compose picks it). Every fixture of the plugin can be overridden here the same way.
"""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def stackprobe_compose_files() -> list[Path]:
    """The bundled stack: the users service on PostgreSQL, app limited to 128 MiB."""
    return [Path(__file__).resolve().parents[2] / "docker-compose.yml"]
