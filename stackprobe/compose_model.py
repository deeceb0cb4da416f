"""Decisions read from the merged Compose model (`docker compose config --format json`), without running Compose.

Every function here takes the model as Compose prints it: a dict with `name` (the project), `services`
(only those of the enabled profiles) and `volumes` (each with its resolved Docker `name`). Reading the
model rather than the user's YAML means interpolation, `extends`, merges and profiles are Compose's own.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

LOOPBACK = "127.0.0.1"


class AccessError(ValueError):
    """The target service cannot be reached from 127.0.0.1 as the model declares it; the message says why."""


def shared_volumes(model: Mapping[str, Any]) -> list[str]:
    """Return the Docker names of volumes that a service of `model` mounts and that outlive the project.

    A volume is shared when it is `external: true`, or when its `name:` does not contain the project's
    name (a fixed `name: pgdata` is the same Docker volume under any project name, so a run would write
    into, and Compose could remove, the user's own data). A volume with Compose's default name
    (`<project>_<key>`) or a `name:` built from `${COMPOSE_PROJECT_NAME}` belongs to the project alone:
    read the model under the run's own unique project name for this test to hold.

    Returns the names sorted, each once; [] when nothing shared is mounted. Volumes declared but mounted
    by no service of the model (for instance only by a service of a profile not enabled) do not count.
    Raises KeyError when `model` lacks `name` (it is not a model Compose printed).
    """
    project = str(model["name"])
    declared: Mapping[str, Any] = model.get("volumes") or {}
    shared: set[str] = set()
    for service in (model.get("services") or {}).values():
        for mount in service.get("volumes") or []:
            if not isinstance(mount, Mapping) or mount.get("type") != "volume" or not mount.get("source"):
                continue  # binds, tmpfs and anonymous volumes are not shared between projects
            key = str(mount["source"])
            volume = declared.get(key) or {}
            name = str(volume.get("name") or f"{project}_{key}")
            if volume.get("external") or project not in name:
                shared.add(name)
    return sorted(shared)


def service_profiles(model: Mapping[str, Any], service: str) -> tuple[str, ...]:
    """Return the Compose profiles a service belongs to (empty: it always runs).

    Read it from a model printed with every profile enabled (`Stack.config(all_profiles=True)`): with the
    default profiles a service in a profile is absent from the model. Enabling any one of the returned
    profiles (`Stack(profiles=[...])`) brings the service up. Raises KeyError when the service is absent.
    """
    return tuple(str(p) for p in model["services"][service].get("profiles") or ())


def replicas(service: Mapping[str, Any]) -> int:
    """Return how many containers Compose runs for a service: `scale`, else `deploy.replicas`, else 1."""
    scale = service.get("scale")
    if scale is None:
        scale = (service.get("deploy") or {}).get("replicas")
    return 1 if scale is None else int(scale)


@dataclass(frozen=True)
class Access:
    """How the run reaches one service from 127.0.0.1, decided before `up` (see plan_access).

    mode: "published" (the file publishes the port; the override republishes it on loopback),
    "exposed" (only `expose:` or a given container port; the override publishes it on loopback),
    "host" (`network_mode: host`; nothing is published, the service listens on the host itself),
    "file" (keep_ports: the file's own `ports:` are left as they are).
    ports: the `ports:` that replace the file's in the override (ServiceOverride(ports=...)); None: the
    override must not set `ports` at all (host networking, or the file's own mapping kept).
    host_ports: host ports on which `container_port` is reached, one per replica, ascending; () when only
    known after `up` (read them with Stack.urls). Which replica holds which port is Compose's choice.
    """

    service: str
    mode: str
    container_port: int | None  # None only in mode "file" when the model names no TCP port
    replicas: int
    ports: tuple[str, ...] | None
    host_ports: tuple[int, ...]

    @property
    def urls(self) -> list[str]:
        """Return `http://127.0.0.1:PORT` for each host port known before `up` (one per replica)."""
        return [f"http://{LOOPBACK}:{port}" for port in self.host_ports]


def free_port_range(count: int, *, attempts: int = 100) -> int:
    """Return the first of `count` consecutive TCP ports of 127.0.0.1 that nothing is bound to right now.

    The ports are free when checked, not reserved: publish them promptly. Raises ValueError when count < 1
    and OSError when no such run of ports was found in `attempts` tries.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    for _ in range(attempts):
        with ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind((LOOPBACK, 0))
            start = int(first.getsockname()[1])
            if start + count - 1 > 65535:
                continue
            try:
                for port in range(start + 1, start + count):
                    stack.enter_context(socket.socket()).bind((LOOPBACK, port))
            except OSError:
                continue
            return start
    raise OSError(f"found no {count} consecutive free TCP ports on {LOOPBACK} in {attempts} tries")


def plan_access(
    model: Mapping[str, Any],
    service: str,
    *,
    container_port: int | None = None,
    keep_ports: bool = False,
    allocate: Callable[[int], int] = free_port_range,
) -> Access:
    """Decide how the run reaches `service` of the merged `model` from 127.0.0.1, one URL per replica.

    - the file publishes ports (`ports:`): every entry is republished on 127.0.0.1, on fixed free host
      ports (fixed so that a container restarted after an OOM kill keeps its port);
    - only `expose:` (or nothing, with `container_port` given): that port is published on 127.0.0.1;
    - `network_mode: host`: nothing is published (Compose's host networking ignores or refuses `ports`);
      the URL is the service's own port on 127.0.0.1;
    - replicas (`scale` or `deploy.replicas` > 1): each published container port gets a range of as many
      consecutive host ports as replicas (`127.0.0.1:A-B:PORT`), one per replica. A single fixed host
      port is why `up` failed on such a service: the second replica found the port taken.

    container_port: the port to reach (default: the first TCP port of `ports:`, else of `expose:`).
    keep_ports: leave the file's `ports:` as they are (the user gave the URL); then a fixed host port
    narrower than the replicas is refused before Compose fails on it, and no TCP port need be known.
    allocate: returns the first of N consecutive free host ports (free_port_range; tests pass their own).

    Raises KeyError when the service is not in the model, and AccessError when it cannot be reached:
    no TCP port known, `network_mode: none` or another service's/container's network, zero replicas,
    replicas with host networking (they would all bind the same host port), or a fixed host port
    that cannot hold every replica.
    """
    definition = model["services"][service]
    count = replicas(definition)
    if count < 1:
        raise AccessError(f"service {service!r} is scaled to {count} replicas: nothing would answer")
    network_mode = str(definition.get("network_mode") or "")
    if network_mode == "none" or network_mode.startswith(("service:", "container:")):
        raise AccessError(
            f"service {service!r} has network_mode {network_mode!r}: stackprobe cannot publish its port; "
            "publish it where its network is defined and give the URL with --url"
        )
    entries = _port_entries(definition)
    exposed = _exposed_tcp_ports(definition)
    tcp_published = [target for target, protocol, _ in entries if protocol == "tcp"]
    port = container_port or next(iter(tcp_published + exposed), None)
    if keep_ports and network_mode != "host":
        kept = _kept_host_ports(service, entries, port, count)
        return Access(service, "file", port, count, ports=None, host_ports=kept)
    if port is None:
        raise AccessError(
            "it neither publishes nor exposes a TCP port: give its URL with --url, or add `expose:` to it"
        )

    if network_mode == "host":
        if count > 1:
            raise AccessError(
                f"service {service!r} runs {count} replicas with network_mode: host: each would listen on "
                f"port {port} of the host itself, and only one can"
            )
        return Access(service, "host", port, count, ports=None, host_ports=(port,))

    targets = [(target, protocol) for target, protocol, _ in entries]
    if (port, "tcp") not in targets:
        targets.append((port, "tcp"))
    start = allocate(len(targets) * count)
    ports: list[str] = []
    host_ports: tuple[int, ...] = ()
    for index, (target, protocol) in enumerate(targets):
        first = start + index * count
        span = str(first) if count == 1 else f"{first}-{first + count - 1}"
        suffix = "" if protocol == "tcp" else f"/{protocol}"
        ports.append(f"{LOOPBACK}:{span}:{target}{suffix}")
        if (target, protocol) == (port, "tcp"):
            host_ports = tuple(range(first, first + count))
    mode = "published" if entries else "exposed"
    return Access(service, mode, port, count, ports=tuple(ports), host_ports=host_ports)


def _port_entries(service: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """Return (container port, protocol, published host port or range or "") of each `ports:` entry, once each."""
    seen: dict[tuple[int, str], str] = {}
    for entry in service.get("ports") or []:
        if isinstance(entry, Mapping):
            target, protocol, published = (
                int(entry["target"]),
                str(entry.get("protocol") or "tcp"),
                entry.get("published"),
            )
        else:  # short syntax, as a model not printed by Compose may hold: [[IP:]HOST:]CONTAINER[/PROTO]
            spec, _, protocol = str(entry).partition("/")
            parts = spec.rsplit(":", 2)
            target, published, protocol = (
                int(parts[-1].split("-")[0]),
                parts[-2] if len(parts) > 1 else "",
                protocol or "tcp",
            )
        seen.setdefault((target, protocol), str(published or ""))
    return [(target, protocol, published) for (target, protocol), published in seen.items()]


def _exposed_tcp_ports(service: Mapping[str, Any]) -> list[int]:
    """Return the TCP container ports of `expose:` ("8000", "8000/tcp", "8000-8002": its first port)."""
    ports: list[int] = []
    for entry in service.get("expose") or []:
        spec, _, protocol = str(entry).partition("/")
        if (protocol or "tcp") == "tcp":
            ports.append(int(spec.split("-")[0]))
    return ports


def _kept_host_ports(
    service: str, entries: Sequence[tuple[int, str, str]], port: int | None, count: int
) -> tuple[int, ...]:
    """Check the file's own mapping can hold `count` replicas; return `port`'s host ports when fixed by it."""
    host_ports: tuple[int, ...] = ()
    for target, protocol, published in entries:
        if not published:
            continue  # an ephemeral host port: the engine picks one per replica
        low, _, high = published.partition("-")
        first, last = int(low), int(high or low)
        if last - first + 1 < count:
            raise AccessError(
                f"service {service!r} runs {count} replicas but its file publishes container port "
                f"{target}/{protocol} on fixed host port(s) {published}: only {last - first + 1} replica(s) can "
                "bind them; publish a range of as many host ports, or let stackprobe choose the ports (omit --url)"
            )
        if (target, protocol) == (port, "tcp") and last - first + 1 == count:
            host_ports = tuple(range(first, last + 1))
    return host_ports
