"""A Compose stack driven through the `docker compose` CLI, under a project name of its own.

Compose has no Python API and its CLI is what users run, so every call here is an argv list given to
`docker compose -p NAME -f user.yml [-f override.yml] ...`. The user's files are never edited: limits
and ports go into an override file that lives in a temporary directory for the stack's lifetime.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPOSE = ("docker", "compose")


class ComposeError(RuntimeError):
    """Compose refused a command; the message carries Compose's own words."""

    def __init__(self, action: str, stderr: str, logs: str = "") -> None:
        self.action = action
        self.stderr = stderr.strip()
        self.logs = logs
        message = f"docker compose {action} failed: {self.stderr or '(no output)'}"
        if logs:
            message += f"\n--- last container logs ---\n{logs}"
        super().__init__(message)


def unique_project_name(prefix: str = "stackprobe") -> str:
    """Return a Compose project name no other run on this engine will pick."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports of 127.0.0.1 that nothing listens on right now."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


@dataclass
class ServiceOverride:
    """What stackprobe changes in one service: its limits and where its ports are published."""

    memory_bytes: int | None = None
    cpus: float | None = None
    # Container ports to publish on 127.0.0.1 instead of the file's own mapping: on the host port given in
    # host_ports, else on an ephemeral one. An ephemeral port is chosen anew when the container restarts.
    publish_ports: Sequence[int] = ()
    host_ports: Mapping[int, int] = field(default_factory=dict)
    # Whether the user's file declares its limit under deploy.resources: the override must then set
    # the same key, since Compose refuses distinct values in mem_limit and deploy.resources.limits.
    uses_deploy_limits: bool = False

    def to_compose(self) -> dict[str, Any]:
        """Return this override as a Compose service mapping."""
        service: dict[str, Any] = {}
        if self.memory_bytes is not None:
            service["mem_limit"] = self.memory_bytes
            # Swap equal to the limit: a strict limit, not twice the limit as the engine defaults to.
            service["memswap_limit"] = self.memory_bytes
        if self.cpus is not None:
            service["cpus"] = self.cpus
        if self.uses_deploy_limits and (self.memory_bytes is not None or self.cpus is not None):
            limits: dict[str, Any] = {}
            if self.memory_bytes is not None:
                limits["memory"] = str(self.memory_bytes)
            if self.cpus is not None:
                limits["cpus"] = str(self.cpus)
            service["deploy"] = {"resources": {"limits": limits}}
        if self.publish_ports:
            service["ports"] = _Override(
                [f"127.0.0.1:{self.host_ports.get(port, '')}:{port}" for port in self.publish_ports]
            )
        return service


class _Override(list):  # type: ignore[type-arg]
    """A sequence that replaces, rather than extends, the user's (Compose's `!override` tag)."""


@dataclass
class Stack:
    """One Compose project: up with a health wait, inspection, and down that always runs."""

    compose_files: Sequence[Path]
    # None: Compose's own default (the `name:` in the file, else the directory's name), as `make up` uses.
    project: str | None = field(default_factory=unique_project_name)
    overrides: Mapping[str, ServiceOverride] = field(default_factory=dict)
    profiles: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    _tmpdir: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.compose_files = [Path(f).resolve() for f in self.compose_files]
        for path in self.compose_files:
            if not path.is_file():
                raise FileNotFoundError(f"compose file not found: {path}")

    @property
    def project_dir(self) -> Path:
        """The project directory: Compose's default, the first file's folder (where .env is read)."""
        return self.compose_files[0].parent

    def override_file(self) -> Path | None:
        """Write the override file (once) and return its path; None when nothing is overridden."""
        if not self.overrides:
            return None
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix=f"{self.project or 'stackprobe'}-"))
        path = self._tmpdir / "stackprobe.override.yml"
        if not path.exists():
            services = {name: o.to_compose() for name, o in self.overrides.items()}
            path.write_text(to_yaml({"services": services}))
        return path

    def command(self, *args: str) -> list[str]:
        """Return the full `docker compose` argv for this project."""
        argv = [*COMPOSE, "--project-directory", str(self.project_dir)]
        if self.project is not None:
            argv += ["--project-name", self.project]
        for path in self.compose_files:
            argv += ["--file", str(path)]
        override = self.override_file()
        if override is not None:
            argv += ["--file", str(override)]
        for profile in self.profiles:
            argv += ["--profile", profile]
        return [*argv, *args]

    def run(self, *args: str, action: str | None = None, timeout: float | None = 600) -> str:
        """Run a compose command; return its stdout, or raise ComposeError with its stderr."""
        env = {**os.environ, **self.env}
        try:
            done = subprocess.run(
                self.command(*args), capture_output=True, text=True, env=env, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise ComposeError(action or args[0], f"cannot run docker: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(action or args[0], f"timed out after {timeout} s") from exc
        if done.returncode != 0:
            raise ComposeError(action or args[0], done.stderr or done.stdout)
        return done.stdout

    def config(self) -> dict[str, Any]:
        """Return the merged, interpolated model Compose would run; ComposeError when it rejects it."""
        return json.loads(self.run("config", "--format", "json", action="config"))

    def up(self, *, build: bool = True, wait_timeout: int = 180, services: Sequence[str] = ()) -> None:
        """Create and start the stack, and wait until every service is running and healthy."""
        args = ["up", "--detach", "--wait", "--wait-timeout", str(wait_timeout), "--remove-orphans"]
        if build:
            args.append("--build")
        try:
            self.run(*args, *services, action="up", timeout=wait_timeout + 600)
        except ComposeError as exc:
            raise ComposeError("up", exc.stderr, logs=self.logs(tail=30)) from None

    def down(self, *, volumes: bool = True) -> None:
        """Remove the project's containers, networks and (by default) volumes; never raises."""
        args = ["down", "--remove-orphans", "--timeout", "10"]
        if volumes:
            args.append("--volumes")
        try:
            self.run(*args, action="down", timeout=180)
        except ComposeError:
            pass
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    def logs(self, *services: str, tail: int = 50) -> str:
        """Return the last lines each container printed (empty when there is none)."""
        try:
            return self.run("logs", "--no-color", "--tail", str(tail), *services, action="logs", timeout=60)
        except ComposeError:
            return ""

    def port(self, service: str, container_port: int) -> int:
        """Return the host port on which a service's container port is published."""
        out = self.run("port", service, str(container_port), action="port").strip()
        match = re.search(r":(\d+)$", out.splitlines()[0] if out else "")
        if not match:
            raise ComposeError("port", f"{service}:{container_port} is not published ({out!r})")
        return int(match.group(1))

    def container_ids(self, service: str | None = None) -> list[str]:
        """Return the ids of the project's containers, of one service or all."""
        args = ["ps", "--quiet", "--all"]
        if service:
            args.append(service)
        return self.run(*args, action="ps").split()

    @contextmanager
    def running(self, *, build: bool = True, wait_timeout: int = 180) -> Iterator[Stack]:
        """Bring the stack up for the length of a with-block; tear it down on any exit."""
        try:
            self.up(build=build, wait_timeout=wait_timeout)
            yield self
        finally:
            self.down()


def to_yaml(value: Any, indent: int = 0) -> str:
    """Render plain dicts, lists and scalars as block YAML (enough for an override file)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            tag = "!override " if isinstance(item, _Override) else ""
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}: {tag}".rstrip())
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {tag}{_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}-")
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return "\n".join(lines) + ("\n" if indent == 0 else "")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))  # a JSON string is a valid double-quoted YAML scalar
