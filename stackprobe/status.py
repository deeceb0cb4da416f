"""`stackprobe status`: the running stacks of a compose file, with each container's state, URLs and limits.

A compose file can be up under several Compose projects at once: the one `make up` (`docker compose up`)
started under Compose's own project name, and each one `stackprobe run --keep-up` left under a project
name of its own (`stackprobe-<pid>-<hex>`, see stack.unique_project_name). Compose labels every container
with its project and the absolute paths of the files it was started from; status finds the stacks by
those labels, and judges each one against the files it was started from (a run's override included, so
the limit it asked for is the one expected).

URLs are printed on lines of their own, never inside a table cell: a table narrowed to an 80-column
terminal, or to a CI log's default width, would cut them to `http://…`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docker.models.containers import Container
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stackprobe.limits import compare_limits, read_applied_limits
from stackprobe.probe import SetupError, _client, declared_limits
from stackprobe.report.fmt import format_bytes
from stackprobe.stack import PROJECT_LABEL, ComposeError, Stack, removal_command

# Labels Compose puts on every container it creates: its service, and the files its project was read from
# (absolute paths, comma-separated, in the order given).
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
# The project names `stackprobe run` gives its stacks (stack.unique_project_name's default prefix).
RUN_PROJECT = re.compile(r"stackprobe-(\d+)-[0-9a-f]{6}")
# How a line holding a URL, a path or a command is printed: as it is (no markup: "[::1]" is not a tag), and
# never wrapped, so it stays whole and pasteable at any terminal width and in a CI log.
_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}
# Addresses a port is published on that mean "every interface": reached at 127.0.0.1 on this host.
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class ServiceStatus:
    """One container of a stack as status shows it.

    name: the container's name; service: its Compose service; state: "running (healthy)" and the like;
    urls: `http://HOST:PORT` of each published port (HOST 127.0.0.1 for a port published on every
    interface); declared_bytes: the memory limit the project's files declare (None: none);
    applied_bytes, swap_bytes: HostConfig.Memory and MemorySwap (None: unlimited); in_force: "yes",
    "no limit declared", or "NO: " and what differs; holds: False only when a declared limit is not in force.
    """

    name: str
    service: str
    state: str
    urls: tuple[str, ...]
    declared_bytes: int | None
    applied_bytes: int | None
    swap_bytes: int | None
    in_force: str
    holds: bool = True


@dataclass(frozen=True)
class ProjectStatus:
    """One Compose project of the compose file: its name, the files it was started from, its containers.

    files: the config files its containers carry (a run's override among them); missing: those of them
    that no longer exist (the limits are then judged against the files that do).
    """

    project: str
    files: tuple[Path, ...]
    services: tuple[ServiceStatus, ...]
    missing: tuple[Path, ...] = ()
    # "kept": a `stackprobe run --keep-up` left it (its process has ended); "running": a run whose process
    # is still alive (it tears its stack down itself); None: not a stack `stackprobe run` started.
    run: Literal["kept", "running"] | None = None

    @property
    def holds(self) -> bool:
        """Tell whether every declared limit is in force."""
        return all(s.holds for s in self.services)


def run_of(project: str, pid_alive: Callable[[int], bool] | None = None) -> Literal["kept", "running"] | None:
    """Tell whether `stackprobe run` started a project, and whether that run is still going.

    A run names its project `stackprobe-<pid>-<hex>` after its own process id: "running" while a process of
    that id lives on this host (pid_alive, default: a signal-0 probe), else "kept" (left by --keep-up);
    None for any other project name.
    """
    match = RUN_PROJECT.fullmatch(project)
    if match is None:
        return None
    return "running" if (pid_alive or _pid_alive)(int(match.group(1))) else "kept"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def config_files(labels: Mapping[str, str]) -> tuple[Path, ...]:
    """Return the compose files a container's project was started from, as its Compose labels list them."""
    return tuple(Path(p) for p in labels.get(CONFIG_FILES_LABEL, "").split(",") if p)


def projects_of(
    labels: Iterable[Mapping[str, str]], compose_files: Sequence[Path], *, runs_anywhere: bool = False
) -> dict[str, tuple[Path, ...]]:
    """Return the Compose projects among containers' labels that run one of compose_files, with their files.

    labels: each container's labels; compose_files: absolute paths. runs_anywhere: also every project a
    `stackprobe run` started, whatever its files. Sorted by project name.
    """
    wanted = {Path(f) for f in compose_files}
    found: dict[str, tuple[Path, ...]] = {}
    for container_labels in labels:
        project = container_labels.get(PROJECT_LABEL)
        if not project or project in found:
            continue
        files = config_files(container_labels)
        if wanted.intersection(files) or (runs_anywhere and RUN_PROJECT.fullmatch(project)):
            found[project] = files
    return dict(sorted(found.items()))


def published_urls(ports: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Return `http://HOST:PORT` of each host binding in a container's NetworkSettings.Ports, once each.

    A binding on every interface (0.0.0.0, ::) is given as 127.0.0.1; an IPv6 address in brackets.
    """
    urls: list[str] = []
    for bindings in (ports or {}).values():
        for binding in bindings or []:
            host = binding.get("HostIp") or ""
            host = "127.0.0.1" if host in _ANY_ADDRESS else (f"[{host}]" if ":" in host else host)
            url = f"http://{host}:{binding['HostPort']}"
            if url not in urls:
                urls.append(url)
    return tuple(urls)


def service_status(container: Container, declared: Mapping[str, Any], client: Any) -> ServiceStatus:
    """Read one container's state, URLs and applied limits, and judge them against its declared service."""
    state = container.attrs["State"]
    health = (state.get("Health") or {}).get("Status")
    limits = declared_limits(declared)
    applied = read_applied_limits(client, container)
    matches, problems = compare_limits(limits.memory_bytes, limits.cpus, applied)
    if limits.memory_bytes is None:
        in_force, holds = "no limit declared", True
    else:
        in_force, holds = ("yes" if matches else "NO: " + "; ".join(problems)), matches
    return ServiceStatus(
        name=container.name or container.id or "?",
        service=container.labels.get(SERVICE_LABEL, "?"),
        state=state["Status"] + (f" ({health})" if health else ""),
        urls=published_urls(container.attrs["NetworkSettings"]["Ports"]),
        declared_bytes=limits.memory_bytes,
        applied_bytes=applied.memory_bytes,
        swap_bytes=applied.memswap_bytes,
        in_force=in_force,
        holds=holds,
    )


def render_status(projects: Sequence[ProjectStatus], console: Console) -> None:
    """Print each project: a heading, a table of its containers and limits, then one line per URL.

    Nothing is cut at any width: table cells fold rather than end in "…", and URLs and commands are
    printed unwrapped on lines of their own, whole and pasteable in a terminal or a CI log.
    """
    for number, project in enumerate(projects):
        if number:
            console.print()
        heading = f"Compose project {project.project}"
        if project.run == "kept":
            heading += " (left running by stackprobe run --keep-up)"
        elif project.run == "running":
            heading += " (a stackprobe run in progress: it removes its stack when it ends)"
        console.print(Text(heading, style="bold"), soft_wrap=True)
        if project.missing:
            gone = ", ".join(map(str, project.missing))
            console.print(f"(its files {gone} are gone: limits judged by the others)", **_PLAIN)
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for column in ("service", "state", "declared", "applied", "swap", "in force"):
            table.add_column(column, overflow="fold")
        for row in project.services:
            cells = (
                row.service,
                row.state,
                format_bytes(row.declared_bytes) if row.declared_bytes else "-",
                format_bytes(row.applied_bytes) if row.applied_bytes else "unlimited",
                format_bytes(row.swap_bytes) if row.swap_bytes else "unlimited",
                row.in_force,
            )
            table.add_row(*(Text(cell) for cell in cells))
        console.print(table)
        for row in project.services:
            for url in row.urls:
                console.print(f"{row.service}: {url}", **_PLAIN)
        if project.run == "kept":
            console.print(f"Remove it with: {removal_command(project.project)}", **_PLAIN)


def show_status(compose_files: Sequence[Path] | None, project: str | None, console: Console) -> bool:
    """Print the running stacks of compose_files; return whether each declared limit is in force.

    compose_files: the files (None: none was given or found here; then every stack a `stackprobe run`
    left is shown). project: show that Compose project alone; None: Compose's own project for the files
    (as `make up` starts it) and every other project running them (`run --keep-up`). False when no
    container was found. Raises SetupError when no engine answers or Compose rejects the files.
    """
    files = tuple(Path(f).resolve() for f in compose_files or ())
    with _client() as client:
        # The engine's container list carries each container's labels: no inspect per container.
        labels = [c.get("Labels") or {} for c in client.api.containers(all=True, filters={"label": PROJECT_LABEL})]
        if project is not None:
            found = {
                project: next((config_files(each) for each in labels if each.get(PROJECT_LABEL) == project), files)
            }
        else:
            found = projects_of(labels, files, runs_anywhere=not files)
            if files:
                # Compose's own project for the files first: the one `make up` starts.
                default = str(_model(Stack(files, project=None))["name"])
                found = {default: found.get(default, files), **found}
        projects = [_project_status(client, name, own, files) for name, own in found.items()]
    shown = [p for p in projects if p.services]
    render_status(shown, console)
    if not shown and projects:
        start = "start it with `make up` or `docker compose up`"
        console.print(f"No container of project {projects[0].project} is running ({start}).", **_PLAIN)
    if not found:
        console.print("No compose file here and no stack left by stackprobe run: give --compose-file.")
    return bool(shown) and all(p.holds for p in shown)


def _model(stack: Stack) -> dict[str, Any]:
    """Return the stack's merged model with every profile enabled (a run may have enabled some)."""
    try:
        return stack.config(all_profiles=True)
    except ComposeError as exc:
        raise SetupError(f"Compose rejects the stack: {exc.stderr}") from None


def _project_status(client: Any, project: str, own_files: Sequence[Path], files: Sequence[Path]) -> ProjectStatus:
    """Read one project's containers; judge them by the files it was started from that still exist (else `files`)."""
    missing = tuple(f for f in own_files if not f.is_file())
    containers = client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    if not containers:
        return ProjectStatus(project, tuple(own_files), (), missing, run_of(project))
    existing = tuple(f for f in own_files if f.is_file()) or tuple(files)
    declared = _model(Stack(existing, project=project))["services"] if existing else {}
    rows = sorted(
        (service_status(c, declared.get(c.labels.get(SERVICE_LABEL, ""), {}), client) for c in containers),
        key=lambda s: s.name,
    )
    return ProjectStatus(project, tuple(own_files), tuple(rows), missing, run_of(project))
