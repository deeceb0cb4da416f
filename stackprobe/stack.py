"""A Compose stack driven through the `docker compose` CLI, under a project name of its own.

Compose has no Python API and its CLI is what users run, so every call here is an argv list given to
`docker compose -p NAME -f user.yml [-f override.yml] ...`. The user's files are never edited: limits
and ports go into an override file that lives in a temporary directory for the stack's lifetime.

Teardown removes only what the run owns: the project's containers with their anonymous volumes, its
networks, the volumes named after its own project name, and the images Compose built and named after it.
A volume with a fixed `name:` or `external: true`, or an image tagged by the file's `image:`, is never
removed, whoever created it (see Stack.down).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackprobe.compose_model import Access

COMPOSE = ("docker", "compose")
# The label Compose puts on every container, network, volume and image it creates for a project.
PROJECT_LABEL = "com.docker.compose.project"
IMAGE_TAG_FORMAT = "{{.Repository}}:{{.Tag}}"


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
    # The exact `ports:` entries that replace the file's (compose_model.Access.ports, e.g. a host port range
    # "127.0.0.1:41000-41001:8000" for two replicas); when set, publish_ports and host_ports are not used.
    ports: Sequence[str] | None = None

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
        if self.ports is not None:
            service["ports"] = _Override(self.ports)
        elif self.publish_ports:
            service["ports"] = _Override(
                [f"127.0.0.1:{self.host_ports.get(port, '')}:{port}" for port in self.publish_ports]
            )
        return service


class _Override(list):  # type: ignore[type-arg]
    """A sequence that replaces, rather than extends, the user's (Compose's `!override` tag)."""


@dataclass(frozen=True)
class Teardown:
    """What Stack.down() did, in words a user can act on.

    ok: True only when no container or network of the project is left and every volume and image the run
        owns was removed; only then may a caller say the stack was torn down.
    message: a one-line summary when ok; else Compose's (or Docker's) own words and what is left.
    leftover_command: "" when ok; else a shell command that removes what is left (never a shared volume).
    removed_volumes, removed_images: Docker names of what was removed besides containers and networks.
    kept_volumes: volumes labelled with the project but left in place because their name is not the
        project's own (a fixed `name:` the run created): the user's to keep or remove.
    """

    ok: bool
    message: str
    leftover_command: str = ""
    removed_volumes: tuple[str, ...] = ()
    removed_images: tuple[str, ...] = ()
    kept_volumes: tuple[str, ...] = ()


@dataclass
class Stack:
    """One Compose project: up with a health wait, inspection, and down that always runs."""

    compose_files: Sequence[Path]
    # None: Compose's own default (the `name:` in the file, else the directory's name), as `make up` uses.
    project: str | None = field(default_factory=unique_project_name)
    overrides: Mapping[str, ServiceOverride] = field(default_factory=dict)
    profiles: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # The result of the last down(), kept here too: a Ctrl-C or SIGTERM held during teardown is delivered
    # once it has ended and may raise out of down(); a caller unwinding from it reads the result here.
    teardown: Teardown | None = field(default=None, init=False)
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

    def command(self, *args: str, profiles: Sequence[str] | None = None, override: bool = True) -> list[str]:
        """Return the full `docker compose` argv for this project.

        profiles: the profiles to enable for this one command (default: the stack's own).
        override: include the override file (False: the user's files alone, as a user would type).
        """
        argv = [*COMPOSE, "--project-directory", str(self.project_dir)]
        if self.project is not None:
            argv += ["--project-name", self.project]
        for path in self.compose_files:
            argv += ["--file", str(path)]
        override_path = self.override_file() if override else None
        if override_path is not None:
            argv += ["--file", str(override_path)]
        for profile in self.profiles if profiles is None else profiles:
            argv += ["--profile", profile]
        return [*argv, *args]

    def run(
        self,
        *args: str,
        action: str | None = None,
        timeout: float | None = 600,
        profiles: Sequence[str] | None = None,
    ) -> str:
        """Run a compose command; return its stdout, or raise ComposeError with its stderr.

        Compose runs in a process group of its own, killed whole when this call is interrupted or times
        out: no Compose process outlives the call to create containers after teardown has looked.
        """
        env = {**os.environ, **self.env}
        try:
            code, stdout, stderr = _run_in_own_session(self.command(*args, profiles=profiles), env, timeout)
        except OSError as exc:
            raise ComposeError(action or args[0], f"cannot run docker: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ComposeError(action or args[0], f"timed out after {timeout} s") from exc
        if code != 0:
            raise ComposeError(action or args[0], stderr or stdout)
        return stdout

    def config(self, *, all_profiles: bool = False) -> dict[str, Any]:
        """Return the merged, interpolated model Compose would run; ComposeError when it rejects it.

        The model holds only the services of the enabled profiles; all_profiles=True enables every profile
        for this one call (`--profile "*"`), to find the profile a service belongs to (service_profiles).
        """
        profiles = ["*"] if all_profiles else None
        return json.loads(self.run("config", "--format", "json", action="config", profiles=profiles))

    def up(self, *, build: bool = True, wait_timeout: int = 180, services: Sequence[str] = ()) -> None:
        """Create and start the stack, and wait until every service is running and healthy."""
        args = ["up", "--detach", "--wait", "--wait-timeout", str(wait_timeout), "--remove-orphans"]
        if build:
            args.append("--build")
        try:
            self.run(*args, *services, action="up", timeout=wait_timeout + 600)
        except ComposeError as exc:
            raise ComposeError("up", exc.stderr, logs=self.logs(tail=30)) from None

    def down(self, *, volumes: bool = True, images: bool = True, timeout_s: float = 120) -> Teardown:
        """Remove what the run created; never raises on a failed removal: the result says what is left.

        In order: the project's containers with their anonymous volumes (`compose rm --stop --force
        --volumes`), its networks and orphans (`compose down --remove-orphans`, never `--volumes`), then
        through the Docker CLI the volumes labelled with the project whose name contains the project name,
        and the images Compose built and named `<project>-<service>` (a file's own `image:` tag is kept,
        which `down --rmi local` would remove). A volume with a fixed `name:` or `external: true` is thus
        never removed. With project=None (Compose's default name: the user's own project) only containers
        and networks are removed. volumes=False / images=False keep those too.

        Every command runs in a session of its own, so the terminal's Ctrl-C does not reach it, and on the
        main thread SIGINT and SIGTERM are held until teardown ends, then delivered once each to the
        handlers in place before: a second Ctrl-C cannot cut teardown short, and is not lost either. The
        result is also stored in self.teardown before that delivery. timeout_s bounds each Compose step
        (a step that runs over is killed, and the result says so). The override's folder is removed in
        every case.
        """
        try:
            with _signals_held():
                self.teardown = self._teardown(volumes=volumes, images=images, timeout_s=timeout_s)
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None
        return self.teardown

    def _teardown(self, *, volumes: bool, images: bool, timeout_s: float) -> Teardown:
        env = {**os.environ, **self.env}
        errors: list[str] = []
        for args in (
            ("rm", "--stop", "--force", *(["--volumes"] if volumes else [])),  # anonymous volumes go with -v
            ("down", "--remove-orphans", "--timeout", "10"),  # never --volumes: it removes by name
        ):
            code, _, stderr = _run_detached(self.command(*args), env, timeout_s)
            if code != 0:
                errors.append(f"docker compose {args[0]}: {_last_lines(stderr)}")
        project = self.project or self._default_project_name()
        if project is None:  # Compose cannot name the project: nothing can be checked
            command = shlex.join(self.command("down", "--remove-orphans", override=False))
            return Teardown(False, "; ".join(errors) or "Compose could not name the project", command)
        # Volumes and images only of a project name the run chose: under Compose's default it is the user's.
        volumes = volumes and self.project is not None
        images = images and self.project is not None
        volumes_tried: list[str] = []
        images_tried: list[str] = []
        kept: list[str] = []
        if volumes:
            labelled, problem = _labelled_volumes(project, env)
            volumes_tried, kept = labelled.owned, labelled.other
            errors += problem + _docker_remove(["volume", "rm"], volumes_tried, env)
        if images:
            images_tried, problem = _built_images(project, env)
            errors += problem + _docker_remove(["image", "rm"], images_tried, env)

        left = _Leftovers.look(project, env, volumes=volumes, images=images)
        removed_volumes = () if left.volumes is None else tuple(v for v in volumes_tried if v not in left.volumes)
        removed_images = () if left.images is None else tuple(i for i in images_tried if i not in left.images)
        if left.nothing:
            summary = f"project {project}: containers and networks removed"
            if removed_volumes:
                summary += f"; volumes removed: {', '.join(removed_volumes)}"
            if removed_images:
                summary += f"; images removed: {', '.join(removed_images)}"
            if kept:
                summary += f"; volumes kept (a name of their own, not the project's): {', '.join(kept)}"
            return Teardown(True, summary, "", removed_volumes, removed_images, tuple(kept))
        reason = "; ".join(errors + left.errors) or "no command reported an error"
        message = f"teardown of project {project} incomplete: {reason}; left: {left.describe()}"
        return Teardown(False, message, left.command(), removed_volumes, removed_images, tuple(kept))

    def _default_project_name(self) -> str | None:
        """Return the name Compose gives the project (project=None), or None when Compose cannot say."""
        try:
            return str(self.config()["name"])
        except (ComposeError, KeyError, ValueError):
            return None

    def logs(self, *services: str, tail: int = 50) -> str:
        """Return the last lines each container printed (empty when there is none)."""
        try:
            return self.run("logs", "--no-color", "--tail", str(tail), *services, action="logs", timeout=60)
        except ComposeError:
            return ""

    def port(self, service: str, container_port: int, *, index: int | None = None) -> int:
        """Return the host port on which a service's container port is published.

        index: the replica (1, 2, ...; default: the first). Raises ComposeError when it is not published.
        """
        args = ["port", *(["--index", str(index)] if index is not None else []), service, str(container_port)]
        out = self.run(*args, action="port").strip()
        match = re.search(r":(\d+)$", out.splitlines()[0] if out else "")
        if not match:
            raise ComposeError("port", f"{service}:{container_port} is not published ({out!r})")
        return int(match.group(1))

    def urls(self, access: Access) -> list[str]:
        """Return `http://127.0.0.1:PORT` of each replica of access.service in replica order (1, 2, ...).

        Read from the running containers, since Compose alone chooses which replica holds which port of
        a range; with host networking, the planned URL. Raises ComposeError when a port is not published.
        """
        if access.mode == "host":
            return access.urls
        if access.container_port is None:
            raise ComposeError("port", f"no container port of {access.service} is known: give its URL")
        return [
            f"http://127.0.0.1:{self.port(access.service, access.container_port, index=index)}"
            for index in range(1, access.replicas + 1)
        ]

    def container_ids(self, service: str | None = None) -> list[str]:
        """Return the ids of the project's containers, of one service or all."""
        args = ["ps", "--quiet", "--all"]
        if service:
            args.append(service)
        return self.run(*args, action="ps").split()

    @contextmanager
    def running(self, *, build: bool = True, wait_timeout: int = 180) -> Iterator[Stack]:
        """Bring the stack up for the length of a with-block; tear it down on any exit.

        Raises ComposeError after a with-block that ended normally when teardown left something behind.
        """
        try:
            self.up(build=build, wait_timeout=wait_timeout)
            yield self
        finally:
            teardown = self.down()
        if not teardown.ok:
            raise ComposeError("down", f"{teardown.message}\nremove what is left with: {teardown.leftover_command}")


def removal_command(project: str) -> str:
    """Return shell commands that remove what a run left under `project` (after --keep-up), by down()'s rules.

    Containers (with their anonymous volumes) and networks labelled with the project, volumes labelled with
    it and named after it, and images named `<project>-<service>`: never a volume with a name of its own,
    which `docker compose -p NAME down --volumes` may remove. Commands are joined with "; ".
    """
    commands = _Leftovers(project, None, None, None, None, []).command()
    # The run's override file (Stack.override_file) stays for as long as the stack it started.
    if re.fullmatch(r"stackprobe-[a-z0-9_-]+", project):  # only a name a run chose: never a user's folders
        commands += f"; rm -rf -- {shlex.quote(tempfile.gettempdir())}/{project}-*"
    return commands


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (main thread only); then deliver each once, in arrival order.

    The handlers in place before the block are restored first, so a held Ctrl-C then raises
    KeyboardInterrupt, a held SIGTERM runs the caller's handler (or ends the process under SIG_DFL, or
    nothing under SIG_IGN). Every held signal reaches its handler; if handlers raise, the first exception
    is raised. Off the main thread signals cannot be handled, and the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, frame: object) -> None:
        if signum not in held:
            held.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        first: BaseException | None = None
        for signum in held:  # each handler runs, even after one raised; the first exception is raised
            try:
                signal.raise_signal(signum)
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first


def _run_in_own_session(argv: Sequence[str], env: Mapping[str, str], timeout_s: float | None) -> tuple[int, str, str]:
    """Run argv in a session of its own (the terminal's Ctrl-C does not reach it); return (code, stdout, stderr).

    On a timeout (subprocess.TimeoutExpired) or any exception while waiting (a KeyboardInterrupt), the
    whole process group is killed and reaped before the exception propagates. OSError: argv cannot run.
    """
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env), start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except BaseException as exc:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            exc.stdout, exc.stderr = stdout, stderr
        raise
    return process.returncode, stdout, stderr


def _run_detached(argv: Sequence[str], env: Mapping[str, str], timeout_s: float) -> tuple[int, str, str]:
    """Run argv as _run_in_own_session does, but report a failure to start or a timeout as an exit code."""
    try:
        return _run_in_own_session(argv, env, timeout_s)
    except OSError as exc:
        return 127, "", f"cannot run {argv[0]}: {exc}"
    except subprocess.TimeoutExpired as exc:
        return -9, str(exc.stdout or ""), f"{exc.stderr or ''}\n(killed after {timeout_s:g} s)"


@dataclass(frozen=True)
class _Leftovers:
    """What still carries a project's label after teardown; None: Docker could not list that kind."""

    project: str
    containers: list[str] | None
    networks: list[str] | None
    volumes: list[str] | None  # only those named after the project ([] when not looked for)
    images: list[str] | None  # only `<project>-<service>` ([] when not looked for)
    errors: list[str]

    @classmethod
    def look(cls, project: str, env: Mapping[str, str], *, volumes: bool, images: bool) -> _Leftovers:
        """List what is left of `project`; volumes and images only when asked."""
        label = f"label={PROJECT_LABEL}={project}"
        containers, e1 = _docker_lines(["ps", "--all", "--quiet", "--filter", label], env)
        networks, e2 = _docker_lines(["network", "ls", "--quiet", "--filter", label], env)
        labelled, e3 = _labelled_volumes(project, env) if volumes else (_LabelledVolumes([], []), [])
        built, e4 = _built_images(project, env) if images else ([], [])
        return cls(
            project,
            None if e1 else containers,
            None if e2 else networks,
            None if e3 else labelled.owned,
            None if e4 else built,
            e1 + e2 + e3 + e4,
        )

    @property
    def nothing(self) -> bool:
        """Whether every kind was listed and none is left."""
        return all(kind == [] for kind in (self.containers, self.networks, self.volumes, self.images))

    def describe(self) -> str:
        """Say what is left, e.g. "2 container(s), volume(s) p_data"; "unknown ..." for what Docker did not list."""
        parts = []
        for noun, items in (("container(s)", self.containers), ("network(s)", self.networks)):
            parts.append(f"unknown {noun}" if items is None else f"{len(items)} {noun}" if items else "")
        for noun, items in (("volume(s)", self.volumes), ("image(s)", self.images)):
            parts.append(f"unknown {noun}" if items is None else f"{noun} {', '.join(items)}" if items else "")
        return ", ".join(p for p in parts if p)

    def command(self) -> str:
        """Return shell commands that remove what is left, by the project's label, never a shared volume."""
        label = f"label={PROJECT_LABEL}={self.project}"
        commands = []
        if self.containers != []:
            commands.append(f"docker ps -aq --filter {label} | xargs -r docker rm -f -v")
        if self.networks != []:
            commands.append(f"docker network ls -q --filter {label} | xargs -r docker network rm")
        if self.volumes is None:
            project = shlex.quote(self.project)
            commands.append(f"docker volume ls -q --filter {label} | grep -F -- {project} | xargs -r docker volume rm")
        elif self.volumes:
            commands.append(shlex.join(["docker", "volume", "rm", *self.volumes]))
        if self.images is None:
            prefix = shlex.quote(f"^{self.project}-")  # Compose names hold only [a-z0-9_-]: nothing to escape
            listing = f"docker image ls --filter {label} --format {shlex.quote(IMAGE_TAG_FORMAT)}"
            commands.append(f"{listing} | grep -e {prefix} | xargs -r docker image rm")
        elif self.images:
            commands.append(shlex.join(["docker", "image", "rm", *self.images]))
        return "; ".join(commands)


@dataclass(frozen=True)
class _LabelledVolumes:
    """Volumes carrying a project's label: those named after the project, and those with a name of their own."""

    owned: list[str]
    other: list[str]


def _labelled_volumes(project: str, env: Mapping[str, str]) -> tuple[_LabelledVolumes, list[str]]:
    """Return the volumes labelled with `project`, split by whether their name contains the project name.

    Compose labels every volume it creates, including one with a fixed `name:` that did not exist yet; only
    a name built from the project's (`<project>_<key>`, or `${COMPOSE_PROJECT_NAME}` in `name:`) makes the
    volume the project's own. Returns the errors in Docker's words as the second item.
    """
    names, problem = _docker_lines(["volume", "ls", "--quiet", "--filter", f"label={PROJECT_LABEL}={project}"], env)
    return _LabelledVolumes([n for n in names if project in n], [n for n in names if project not in n]), problem


def _built_images(project: str, env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Return the `<project>-<service>:TAG` images Compose built for `project` (and the errors, if any).

    An image the file names with `image:` keeps that name and is not listed, even though Compose labels it
    with the project too: it is the user's tag (`down --rmi local` would remove it).
    """
    listing = ["image", "ls", "--filter", f"label={PROJECT_LABEL}={project}", "--format", IMAGE_TAG_FORMAT]
    tags, problem = _docker_lines(listing, env)
    return [tag for tag in tags if tag.startswith(f"{project}-")], problem


def _docker_remove(command: Sequence[str], names: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Run `docker COMMAND NAMES...` when there is a name; return [] or [its error in Docker's words]."""
    if not names:
        return []
    code, _, stderr = _run_detached(["docker", *command, *names], env, 60)
    return [] if code == 0 else [f"docker {' '.join(command)}: {_last_lines(stderr)}"]


def _docker_lines(args: Sequence[str], env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Run `docker ARGS`; return (its non-empty output lines, [] or [the error in Docker's words])."""
    code, stdout, stderr = _run_detached(["docker", *args], env, 60)
    if code != 0:
        return [], [f"docker {' '.join(args[:2])}: {_last_lines(stderr)}"]
    return [line.strip() for line in stdout.splitlines() if line.strip()], []


def _last_lines(text: str, count: int = 5) -> str:
    """Return the last non-empty lines of a command's output, joined: its own words, not pages of progress."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(no output)"


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
