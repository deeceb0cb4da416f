"""Live figures of one Compose project's containers, for a view that polls them (the Locust panel).

ContainerPanel finds the project, watches it with stackprobe's Watcher and turns what the watch has seen
so far into a JSON document and into rows of text. It imports no Locust: stackprobe.locust_ui hosts it in
Locust's web UI, and it is tested on its own.

Every figure names its source: memory now and CPU come from the engine's stats stream (the `docker stats`
formulas), the peak and the OOM kills from the container's cgroup (the kernel's high-water mark and
oom_kill counter), restarts from the engine's events and `RestartCount`.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from stackprobe.report.fmt import format_bytes
from stackprobe.watch import PROJECT_LABEL, ContainerEvent, ContainerSummary, Watcher, WatchResult

ENV_PROJECT = "STACKPROBE_PROJECT"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
# How long an unreachable engine, or a project not found, is left before the next try.
RETRY_S = 5.0
# A container whose latest stats sample is older than this is reported as not sampled, with its age.
STALE_S = 5.0
BAR_WIDTH = 10
# Summarising the watch costs time in Locust's process, which serves every open page from one loop.
CACHE_S = 1.0

MEMORY_SOURCE = "docker stats: usage less inactive page cache, about one sample a second"
CPU_SOURCE = "docker stats: percent of one core, the docker CLI's formula"
RESTARTS_SOURCE = "the engine's events (start after die, restart) and RestartCount"

Connect = Callable[[], docker.DockerClient]


@dataclass(frozen=True)
class ProjectChoice:
    """Which Compose project to watch: name (None when none could be chosen) and why, in words."""

    name: str | None
    reason: str


def compose_default_project(folder: Path, environ: Mapping[str, str]) -> str:
    """Return Compose's default project name for a folder.

    COMPOSE_PROJECT_NAME when set, else the folder's name lowercased, keeping only a-z, 0-9, _ and -
    (Compose's own normalisation, which also drops leading characters other than a letter or digit).
    """
    named = environ.get("COMPOSE_PROJECT_NAME", "").strip()
    if named:
        return named
    name = re.sub(r"[^a-z0-9_-]", "", folder.name.lower())
    return re.sub(r"^[^a-z0-9]+", "", name)


def choose_project(
    running: Mapping[str, str], folder: Path, environ: Mapping[str, str], named: str | None = None
) -> ProjectChoice:
    """Choose the project to watch.

    running: the running Compose projects, {name: project directory} (Compose's
    `com.docker.compose.project.working_dir` label). named: the --stackprobe-project option. Without it,
    STACKPROBE_PROJECT; else the one project running from `folder` (where `docker compose up` was run),
    or Compose's default name for the folder when several run from it. A ProjectChoice with name None
    says why none could be chosen.
    """
    explicit = named or environ.get(ENV_PROJECT, "").strip()
    if explicit:
        source = "--stackprobe-project" if named else ENV_PROJECT
        return ProjectChoice(explicit, f"named by {source}")
    here = str(folder.resolve())
    candidates = sorted(name for name, directory in running.items() if directory and _same_dir(directory, here))
    if len(candidates) == 1:
        return ProjectChoice(candidates[0], f"the Compose project running from {here}")
    default = compose_default_project(folder.resolve(), environ)
    if default in candidates:
        return ProjectChoice(default, f"Compose's default project of {here}, one of {len(candidates)} running there")
    if candidates:
        return ProjectChoice(
            None,
            f"several Compose projects run from {here} ({', '.join(candidates)}): name one with "
            f"--stackprobe-project or {ENV_PROJECT}",
        )
    return ProjectChoice(
        None,
        f"no Compose project runs from {here}: start it (docker compose up, make up) or name one with "
        f"--stackprobe-project or {ENV_PROJECT}",
    )


def _same_dir(directory: str, here: str) -> bool:
    try:
        return str(Path(directory).resolve()) == here
    except OSError:
        return False


def usage_bar(ratio: float | None, width: int = BAR_WIDTH) -> str:
    """Return a text bar of memory over its limit, e.g. "████░░░░ 52 %"; "" without a ratio."""
    if ratio is None:
        return ""
    filled = max(0, min(width, round(ratio * width)))
    return f"{'█' * filled}{'░' * (width - filled)} {ratio * 100:.0f} %"


def container_figures(
    summary: ContainerSummary, now_t: float, last_event: ContainerEvent | None = None
) -> dict[str, Any]:
    """Return one container's live figures: sizes in bytes, CPU in percent of one core, ages in seconds.

    now_t: the present on the watch's time axis (seconds since its t0). last_event: the container's latest
    engine event, which says it exited when its stats stopped.
    """
    memory = summary.memory_bytes[-1] if summary.memory_bytes else None
    cpu = summary.cpu_percent[-1] if summary.cpu_percent else None
    age = now_t - summary.t[-1] if summary.t else None
    limit = summary.limit_bytes
    if last_event is not None and last_event.action == "die":
        state = f"exited ({last_event.exit_code})" if last_event.exit_code is not None else "exited"
    elif age is None:
        state = "no stats sample yet"
    elif age > STALE_S:
        state = f"no stats sample for {age:.0f} s"
    else:
        state = "running"
    return {
        "name": summary.name,
        "service": summary.service,
        "state": state,
        "memory_bytes": memory,
        "limit_bytes": limit,
        "memory_ratio": memory / limit if memory is not None and limit else None,
        "peak_bytes": summary.peak_memory_bytes,
        "peak_source": summary.peak_source,
        "cpu_percent": cpu,
        "oom_kills": summary.oom_kills,
        "oom_kills_source": summary.oom_kills_source,
        "restarts": summary.restarts,
        "sample_age_s": age,
    }


def table_row(figures: Mapping[str, Any]) -> dict[str, str]:
    """Return a container's figures as the text cells of one table row (the keys of TABLE_COLUMNS)."""
    limit = figures["limit_bytes"]
    cpu = figures["cpu_percent"]
    return {
        "name": figures["name"],
        "service": figures["service"],
        "state": figures["state"],
        "memory": format_bytes(figures["memory_bytes"]),
        "limit": format_bytes(limit) if limit else "none",
        "use": usage_bar(figures["memory_ratio"]) or ("no limit" if not limit else ""),
        "peak": format_bytes(figures["peak_bytes"]),
        "cpu": "n/a" if cpu is None else f"{cpu:.1f} %",
        "oom_kills": str(figures["oom_kills"]),
        "restarts": str(figures["restarts"]),
    }


# The table's columns, key and title; the titles name each figure's source.
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Container"),
    ("service", "Service"),
    ("state", "State"),
    ("memory", "Memory (docker stats)"),
    ("limit", "Limit"),
    ("use", "Memory / limit"),
    ("peak", "Peak (cgroup high-water mark)"),
    ("cpu", "CPU (% of a core)"),
    ("oom_kills", "OOM kills (kernel counter)"),
    ("restarts", "Restarts"),
)


def message_row(text: str) -> dict[str, str]:
    """Return a table row that carries a message instead of a container."""
    return {key: "" for key, _ in TABLE_COLUMNS} | {"name": text}


class ContainerPanel:
    """The live state of one Compose project's containers, for a view that polls it.

    ContainerPanel(folder, named=None, environ=os.environ, connect=...): folder is where the default project
    is looked for; named the project given on the command line. refresh() connects to the engine, chooses
    the project and starts a Watcher on it, each retried at most every RETRY_S seconds while it fails;
    document() and rows() call it. Never raises for an engine that does not answer: the document says so.
    close() stops the watch. Safe to call from several threads (or greenlets).
    """

    def __init__(
        self,
        folder: Path,
        *,
        named: str | None = None,
        environ: Mapping[str, str] | None = None,
        connect: Connect | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        self._folder = folder
        self._named = named
        self._environ = dict(os.environ if environ is None else environ)
        self._connect = connect or (lambda: docker.from_env(timeout=5))
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._watcher: Watcher | None = None
        self._project: ProjectChoice | None = None
        self._engine_error: str | None = None
        self._next_try = 0.0
        self._closed = False
        self._cached: tuple[float, dict[str, Any]] | None = None

    def refresh(self) -> None:
        """Connect, choose the project and start watching it, unless done or tried less than RETRY_S ago."""
        with self._lock:
            if self._closed or self._watcher is not None or time.monotonic() < self._next_try:
                return
            self._next_try = time.monotonic() + self._retry_s
            if self._client is None:
                client = None
                try:
                    client = self._connect()
                    client.ping()
                except Exception as exc:  # docker's errors and requests' connection errors alike
                    self._engine_error = str(exc) or type(exc).__name__
                    if client is not None:
                        client.close()
                    return
                self._client, self._engine_error = client, None
            try:
                self._project = choose_project(self._running_projects(), self._folder, self._environ, self._named)
                if self._project.name is None:
                    return
                watcher = Watcher(self._client, self._project.name)
                watcher.start()
            except Exception as exc:  # the engine went away between two calls
                self._engine_error = str(exc) or type(exc).__name__
                self._client.close()
                self._client = None
                return
            self._watcher = watcher

    def _running_projects(self) -> dict[str, str]:
        assert self._client is not None
        found: dict[str, str] = {}
        for container in self._client.containers.list(filters={"label": PROJECT_LABEL}):
            labels = container.labels
            found.setdefault(labels.get(PROJECT_LABEL, ""), labels.get(WORKING_DIR_LABEL, ""))
        found.pop("", None)
        return found

    def document(self) -> dict[str, Any]:
        """Return the panel's JSON document, computed at most once per CACHE_S (every open page polls it).

        {"engine": "reachable" | "unreachable", "project": name or null, "project_reason": how it was
        chosen or why none was, "message": what to know (the engine's error, why no project was chosen,
        the watch's problems) or "", "containers": [container_figures() of each], "sources": {figure:
        source} for the figures whose source is the same for every container}.
        """
        now = time.monotonic()
        cached = self._cached
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        doc = self._document()
        self._cached = (now, doc)
        return doc

    def _document(self) -> dict[str, Any]:
        self.refresh()
        with self._lock:
            watcher, project, error = self._watcher, self._project, self._engine_error
        doc: dict[str, Any] = {
            "engine": "unreachable" if error is not None else "reachable",
            "project": project.name if project is not None else None,
            "project_reason": project.reason if project is not None else "",
            "message": "",
            "containers": [],
            "sources": {"memory": MEMORY_SOURCE, "cpu": CPU_SOURCE, "restarts": RESTARTS_SOURCE},
        }
        if error is not None:
            doc["message"] = f"Docker engine unreachable: {error}"
            return doc
        if watcher is None:
            doc["message"] = project.reason if project is not None else "not started"
            return doc
        result = watcher.so_far()
        now_t = time.monotonic() - watcher.t0
        doc["containers"] = containers_figures(result, now_t)
        if not doc["containers"]:
            doc["message"] = f"no running container in project {project.name if project else ''} yet"
        elif result.problems:
            doc["message"] = "; ".join(dict.fromkeys(result.problems))
        return doc

    def rows(self) -> list[dict[str, str]]:
        """Return the table's rows: one per container, or one row carrying the document's message."""
        doc = self.document()
        rows = [table_row(figures) for figures in doc["containers"]]
        if doc["message"] and (not rows or doc["engine"] == "unreachable"):
            rows.append(message_row(doc["message"]))
        return rows

    def close(self) -> None:
        """Stop the watch (about 1 s) and close the engine's client; later calls report nothing new."""
        with self._lock:
            self._closed = True
            watcher, client = self._watcher, self._client
        if watcher is not None:
            watcher.stop()
        if client is not None:
            client.close()


def containers_figures(result: WatchResult, now_t: float) -> list[dict[str, Any]]:
    """Return the figures of every container the watch has seen, ordered by service then name."""
    last: dict[str, ContainerEvent] = {}
    for event in result.events:
        if event.action in ("die", "start", "restart"):
            last[event.container_id] = event
    containers: Sequence[ContainerSummary] = [c for s in result.services.values() for c in s.containers]
    ordered = sorted(containers, key=lambda c: (c.service, c.name))
    return [container_figures(c, now_t, last.get(c.container_id)) for c in ordered]
