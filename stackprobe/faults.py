"""Faults under load: a schedule (`--fault`, `--faults FILE.toml`) and the executor that acts on it.

The grammar, one term per fault, terms separated by ";" (the flag repeats):

    kill SERVICE@T                  send --signal (default SIGKILL); the restart policy decides what follows
    restart SERVICE@T               `docker restart` (the stop signal, then SIGKILL after the stop timeout)
    stop SERVICE@T [for D]          `docker stop`, then `docker start` D seconds after T
    pause SERVICE@T [for D]         freeze its processes (cgroup freezer), then unpause
    disconnect SERVICE@T [for D]    take it off its networks, then connect it again with its aliases
    squeeze SERVICE@T to SIZE [for D]
                                    lower its memory limit in place (`docker update`, swap held equal),
                                    then restore the limit it had
    start / unpause / connect / release SERVICE@T
                                    end the open stop / pause / disconnect / squeeze of SERVICE at T

T and D are durations (20s, 1m30s, 500ms, or plain seconds); T counts from the load's start. A stop,
pause, disconnect or squeeze with neither `for` nor a closing term lasts to the load's end. Every fault
still in effect when the load ends (or the run is interrupted) is undone then, before the audit and the
teardown. A schedule file holds the same as TOML tables (read with the standard library's tomllib):

    [[fault]]
    action = "pause"      # any action above
    service = "db"
    at = "50s"            # or a number of seconds
    for = "5s"            # optional
    to = "64m"            # squeeze only

Validation (a UsageError naming the term, the CLI's exit 2): unknown action, a time or duration that does
not parse, `for` on kill/restart, `to` missing or misplaced, a closing term with nothing open, a fault
starting at or after the load's end or ending after it, two faults of one service overlapping in time;
against the compose model: an unknown service, and a squeeze of a service without a memory limit to
restore or to a size not below it.
"""

from __future__ import annotations

import itertools
import os
import re
import signal as signals
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackprobe.cgroup import locate_on_host
from stackprobe.report.model import FaultRecord, Report
from stackprobe.spec import UsageError, parse_bytes, parse_duration

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

# Actions that happen at one instant: the recovery is timed from their start.
POINT_ACTIONS = ("kill", "restart")
# Actions that last (for D, until their closing term, or to the load's end), each with its closing term.
CLOSING = {"stop": "start", "pause": "unpause", "disconnect": "connect", "squeeze": "release"}
ACTIONS = (*POINT_ACTIONS, *CLOSING)
OPENING = {close: open_ for open_, close in CLOSING.items()}
DEFAULT_SIGNAL = "SIGKILL"
DEFAULT_RECOVERY_S = 10.0
# How long stop() waits for a fault's thread to finish its engine call and its undo.
JOIN_TIMEOUT_S = 60.0

_TERM = re.compile(r"(?P<action>\S+)\s+(?P<service>[^\s@]+)\s*@\s*(?P<at>\S+)(?P<rest>.*)")


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: `action` on every container of `service`, `at_s` seconds after the load starts.

    for_s: how long it lasts, seconds (None: a point action, kill or restart, or one lasting to the load's
    end); size_bytes: the squeeze's memory limit, bytes (None for the other actions); text: the term as
    written (or its file's table), for messages.
    """

    action: str
    service: str
    at_s: float
    for_s: float | None = None
    size_bytes: int | None = None
    text: str = ""

    @property
    def lasting(self) -> bool:
        """Tell whether the fault lasts (and is undone), as stop, pause, disconnect and squeeze do."""
        return self.action in CLOSING

    def end_s(self, load_end_s: float) -> float:
        """Return when the fault is scheduled to end, seconds from the load's start."""
        if not self.lasting:
            return self.at_s
        return load_end_s if self.for_s is None else self.at_s + self.for_s


@dataclass(frozen=True)
class FaultSchedule:
    """The faults of one run, the signal a kill sends, and the recovery allowed after each (seconds)."""

    faults: tuple[Fault, ...] = ()
    signal: str = DEFAULT_SIGNAL
    recovery_s: float = DEFAULT_RECOVERY_S

    def __bool__(self) -> bool:
        return bool(self.faults)

    @property
    def services(self) -> tuple[str, ...]:
        """Return the services the schedule acts on, in order of first use."""
        return tuple(dict.fromkeys(f.service for f in self.faults))

    def check_fits(self, load_s: float) -> None:
        """Raise UsageError for a fault that starts at or after the load's end, ends after it, or overlaps
        another fault of its service."""
        for fault in self.faults:
            if fault.at_s >= load_s:
                raise UsageError(
                    f"fault {fault.text!r} starts at {fault.at_s:g} s, when the load ({load_s:g} s) has ended"
                )
            if fault.end_s(load_s) > load_s:
                raise UsageError(
                    f"fault {fault.text!r} ends at {fault.end_s(load_s):g} s, after the load ({load_s:g} s) has ended"
                )
        by_service: dict[str, list[Fault]] = {}
        for fault in self.faults:
            by_service.setdefault(fault.service, []).append(fault)
        for faults in by_service.values():
            ordered = sorted(faults, key=lambda f: (f.at_s, f.end_s(load_s)))
            for earlier, later in itertools.pairwise(ordered):
                if later.at_s <= earlier.end_s(load_s):
                    raise UsageError(
                        f"faults {earlier.text!r} and {later.text!r} overlap on service {later.service!r}: "
                        "one service takes one fault at a time"
                    )

    def check_services(self, services: Mapping[str, Any], memory_limits: Mapping[str, int | None]) -> None:
        """Raise UsageError for a fault on a service the compose model lacks, or a squeeze it cannot undo.

        services: the model's services by name; memory_limits: each service's memory limit in bytes as the
        run will apply it (None: unlimited).
        """
        for fault in self.faults:
            if fault.service not in services:
                raise UsageError(
                    f"fault {fault.text!r}: no service {fault.service!r} in the compose file; "
                    f"it has: {', '.join(services)}"
                )
            if fault.action == "squeeze":
                limit = memory_limits.get(fault.service)
                if limit is None:
                    raise UsageError(
                        f"fault {fault.text!r}: {fault.service} has no memory limit to squeeze and restore; "
                        f"give it one with --memory {fault.service}=SIZE"
                    )
                assert fault.size_bytes is not None
                if fault.size_bytes >= limit:
                    raise UsageError(
                        f"fault {fault.text!r}: squeeze to {fault.size_bytes} bytes is not below "
                        f"{fault.service}'s limit of {limit} bytes"
                    )


def parse_schedule(
    terms: Sequence[str] = (),
    files: Sequence[Path] = (),
    *,
    signal: str | None = None,
    recovery: str | None = None,
) -> FaultSchedule:
    """Parse --fault strings and --faults TOML files into one schedule; raise UsageError naming the problem.

    signal: a signal name or number for kill (default SIGKILL); recovery: the allowance after each fault,
    a duration (default 10 s). Closing terms (start, unpause, connect, release) end their service's open
    fault: its `for` becomes the time between them.
    """
    raw: list[tuple[str, str, float, float | None, int | None, str]] = []
    for text in terms:
        parts = [part.strip() for part in text.split(";")]
        if len(parts) > 1 and not parts[-1]:
            parts.pop()  # a trailing ';' ends the list
        if not all(parts):
            raise UsageError(f"--fault {text!r}: an empty term (a stray ';'?)")
        raw.extend(_parse_term(part) for part in parts)
    for path in files:
        raw.extend(_read_file(path))
    faults = _close(raw)
    kill_signal = _parse_signal(signal) if signal is not None else DEFAULT_SIGNAL
    if signal is not None and not any(f.action == "kill" for f in faults):
        raise UsageError("--signal is for kill, and the fault schedule has no kill")
    recovery_s = DEFAULT_RECOVERY_S
    if recovery is not None:
        try:
            recovery_s = parse_duration(recovery)
        except UsageError as exc:
            raise UsageError(f"--recovery: {exc}") from None
        if recovery_s <= 0:
            raise UsageError(f"--recovery {recovery!r}: the allowance must be above 0 s")
    return FaultSchedule(faults=tuple(faults), signal=kill_signal, recovery_s=recovery_s)


def _parse_signal(text: str) -> str:
    """Return a signal's name as the engine takes it (SIGTERM), from SIGTERM, TERM or 15."""
    cleaned = text.strip().upper()
    try:
        if cleaned.isdigit():
            return signals.Signals(int(cleaned)).name
        name = cleaned if cleaned.startswith("SIG") else f"SIG{cleaned}"
        return signals.Signals[name].name
    except (KeyError, ValueError):
        raise UsageError(f"--signal {text!r} is not a signal (expected e.g. SIGKILL, TERM or 15)") from None


def _parse_term(term: str) -> tuple[str, str, float, float | None, int | None, str]:
    """Parse one term into (action, service, at_s, for_s, size_bytes, text)."""
    match = _TERM.fullmatch(term)
    if match is None:
        raise UsageError(f"fault {term!r}: expected ACTION SERVICE@TIME [to SIZE] [for DURATION], e.g. kill app@20s")
    action = match["action"].lower()
    words = match["rest"].split()
    if len(words) % 2:
        raise UsageError(f"fault {term!r}: {words[-1]!r} needs a value (expected 'for 5s' or 'to 64m')")
    options: dict[str, str] = {}
    for key, value in zip(words[::2], words[1::2], strict=True):
        key = key.lower()
        if key not in ("for", "to") or key in options:
            raise UsageError(f"fault {term!r}: unexpected {key!r} (a fault takes at most one 'for' and one 'to')")
        options[key] = value
    return _checked(action, match["service"], match["at"], options.get("for"), options.get("to"), term)


def _checked(
    action: str, service: str, at: str, for_: str | None, to: str | None, text: str
) -> tuple[str, str, float, float | None, int | None, str]:
    known = (*ACTIONS, *OPENING)
    if action not in known:
        raise UsageError(f"fault {text!r}: unknown action {action!r}; actions: {', '.join(known)}")
    at_s = _duration(at, text, "time")
    for_s = None
    if for_ is not None:
        if action not in CLOSING:
            raise UsageError(f"fault {text!r}: {action} takes no 'for' (it happens at one instant)")
        for_s = _duration(for_, text, "'for'")
        if for_s <= 0:
            raise UsageError(f"fault {text!r}: 'for' must be above 0 s")
    size = None
    if action == "squeeze":
        if to is None:
            raise UsageError(f"fault {text!r}: squeeze needs 'to SIZE', e.g. squeeze app@30s to 64m")
        try:
            size = parse_bytes(to)
        except UsageError as exc:
            raise UsageError(f"fault {text!r}: {exc}") from None
    elif to is not None:
        raise UsageError(f"fault {text!r}: only squeeze takes 'to SIZE'")
    return action, service, at_s, for_s, size, text


def _duration(value: str, text: str, what: str) -> float:
    try:
        return parse_duration(value)
    except UsageError as exc:
        raise UsageError(f"fault {text!r}: the {what} is {exc}") from None


def _read_file(path: Path) -> list[tuple[str, str, float, float | None, int | None, str]]:
    """Read a schedule file's [[fault]] tables; UsageError names the file and the table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--faults {path}: cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--faults {path}: not TOML ({exc})") from None
    unknown = sorted(set(data) - {"fault"})
    if unknown:
        raise UsageError(f"--faults {path}: unknown keys {unknown}; faults go in [[fault]] tables")
    tables = data.get("fault", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"--faults {path}: 'fault' must be [[fault]] tables")
    read = []
    for number, table in enumerate(tables, start=1):
        where = f"{path} [[fault]] #{number}"
        extra = sorted(set(table) - {"action", "service", "at", "for", "to"})
        if extra:
            raise UsageError(f"--faults {where}: unknown keys {extra} (expected action, service, at, for, to)")
        for key in ("action", "service", "at"):
            if key not in table:
                raise UsageError(f"--faults {where}: '{key}' is missing")
        values = {key: _plain(table[key], where, key) for key in table}
        text = f"{values['action']} {values['service']}@{values['at']}" + "".join(
            f" {key} {values[key]}" for key in ("to", "for") if key in values
        )
        read.append(
            _checked(
                values["action"].lower(), values["service"], values["at"], values.get("for"), values.get("to"), text
            )
        )
    return read


def _plain(value: object, where: str, key: str) -> str:
    """Return a table's value as the grammar's text: strings as written, numbers as seconds or bytes."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"--faults {where}: '{key}' must be a string or a number, not {value!r}")
    return str(value)


def _close(raw: Sequence[tuple[str, str, float, float | None, int | None, str]]) -> list[Fault]:
    """Pair each closing term with its service's open fault, in time order; return the faults by start."""
    faults: list[Fault] = []
    open_: dict[str, int] = {}  # service -> index in faults of its open-ended lasting fault
    for action, service, at_s, for_s, size, text in sorted(raw, key=lambda r: r[2]):
        if action in OPENING:
            index = open_.pop(service, None)
            if index is None or faults[index].action != OPENING[action]:
                raise UsageError(f"fault {text!r}: {service} has no open {OPENING[action]} before it to end")
            opened = faults[index]
            if at_s <= opened.at_s:
                raise UsageError(f"fault {text!r}: it must come after {opened.text!r}")
            faults[index] = Fault(
                action=opened.action,
                service=service,
                at_s=opened.at_s,
                for_s=at_s - opened.at_s,
                size_bytes=opened.size_bytes,
                text=f"{opened.text}; {text}",
            )
            continue
        if action in CLOSING and for_s is None:
            open_[service] = len(faults)
        faults.append(Fault(action=action, service=service, at_s=at_s, for_s=for_s, size_bytes=size, text=text))
    return sorted(faults, key=lambda f: f.at_s)


@dataclass
class FaultOutcome:
    """What the executor did about one fault; times in seconds on the run's axis (since the load's start).

    started_t: when its action was sent to the engine; ended_t: when it was over (the undo returned, or
    for kill/restart the engine's answer); done: the action was carried out and, for a lasting fault,
    undone; error: the engine's refusal or why it was not done; containers: names acted on; undone_by:
    "schedule", "load end" (it lasted to the load's end) or "interrupted"; limit_before_bytes and
    memswap_before_bytes: a squeeze's limits before (restored by its undo); refused: the engine (the
    kernel, on cgroup v1 below the usage) refused a squeeze.
    """

    fault: Fault
    started_t: float | None = None
    ended_t: float | None = None
    done: bool = False
    error: str | None = None
    containers: list[str] = field(default_factory=list)
    undone_by: str | None = None
    limit_before_bytes: int | None = None
    memswap_before_bytes: int | None = None
    refused: bool = False
    # How a kill's signal was sent: "host" (to PID 1 from the engine's host) or "engine" (docker kill).
    sent_via: str | None = None
    # Engine endpoint settings of each container's networks, by container id then network name (disconnect).
    _networks: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _active: bool = field(default=False, repr=False)


Notify = Callable[[str], None]


class FaultExecutor:
    """Act on a schedule during the load, one thread per fault, on the run's own containers.

    FaultExecutor(client, project, schedule, t0): t0 is the load's start on the time.monotonic() clock, the
    time every fault's `at` counts from. start() starts the threads; stop(reason) cancels what has not
    started, undoes every fault still in effect (unpause, start, reconnect, restore the memory limit), waits
    for the threads and returns one FaultOutcome per fault, in the schedule's order. stop() is safe to call
    twice and must be called before the teardown, also when the run is interrupted. notify(text), when
    given, hears each action as it is done (from a fault's thread; it must not raise).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        project: str,
        schedule: FaultSchedule,
        t0: float,
        notify: Notify | None = None,
    ) -> None:
        self._client = client
        self._project = project
        self._schedule = schedule
        self._t0 = t0
        self._notify = notify
        self._cancel = threading.Event()
        self._reason = "load end"
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.outcomes = [FaultOutcome(fault=f) for f in schedule.faults]
        self._stopped = False

    def start(self) -> None:
        """Start one thread per fault; each waits for its time."""
        for outcome in self.outcomes:
            thread = threading.Thread(
                target=self._run, args=(outcome,), name=f"stackprobe-fault-{outcome.fault.action}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, reason: str = "load end") -> list[FaultOutcome]:
        """End the schedule: faults not yet started are skipped, faults in effect undone; return the outcomes.

        reason: "load end" or "interrupted", recorded in each outcome undone or skipped now.
        """
        if self._stopped:
            return self.outcomes
        self._reason = reason
        self._cancel.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for outcome in self.outcomes:
            # A thread stuck in an engine call past the deadline: undo from here, at worst twice.
            if outcome._active:
                self._undo(outcome, reason)
        self._stopped = True
        return self.outcomes

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _say(self, text: str) -> None:
        if self._notify is not None:
            self._notify(text)

    def _run(self, outcome: FaultOutcome) -> None:
        fault = outcome.fault
        if self._cancel.wait(max(0.0, fault.at_s - self._now())):
            first = "the run was interrupted" if self._reason == "interrupted" else "the load ended"
            outcome.error = f"not done: {first} first"
            return
        try:
            containers = self._containers(fault.service, running=True)
            if not containers:
                raise _FaultError(f"no running container of service {fault.service}")
            outcome.containers = [c.name for c in containers]
            outcome.started_t = self._now()
            self._act(outcome, containers)
        except _FaultError as exc:
            outcome.error = str(exc)
            outcome.ended_t = self._now()
            self._say(f"t={outcome.started_t or outcome.ended_t:.1f} s: {fault.text}: {exc}")
            return
        except Exception as exc:  # the engine's errors (docker.errors.APIError, requests' timeouts)
            outcome.error = _engine_words(exc)
            # The engine answered (an APIError carries its explanation): it refused the squeeze.
            outcome.refused = fault.action == "squeeze" and getattr(exc, "explanation", None) is not None
            outcome.ended_t = self._now()
            self._say(f"t={outcome.started_t or 0:.1f} s: {fault.text} failed: {outcome.error}")
            if outcome.containers and fault.lasting:
                # Part of it may have taken (one replica of two): put back what can be put back.
                outcome._active = True
                self._undo(outcome, "schedule", quiet=True)
                outcome.done = False
            return
        self._say(f"t={outcome.started_t:.1f} s: {fault.action} {fault.service} ({', '.join(outcome.containers)})")
        if not fault.lasting:
            outcome.ended_t = self._now()
            outcome.done = True
            return
        outcome._active = True
        # Until its end (scheduled from `at`, whenever the engine answered), or until the load ends.
        timeout = None if fault.for_s is None else max(0.0, fault.at_s + fault.for_s - self._now())
        cancelled = self._cancel.wait(timeout)
        self._undo(outcome, self._reason if cancelled else "schedule")

    def _undo(self, outcome: FaultOutcome, reason: str, *, quiet: bool = False) -> None:
        with self._lock:
            if not outcome._active:
                return
            outcome._active = False
        fault = outcome.fault
        errors = []
        for container in self._containers(fault.service, running=False):
            if outcome.containers and container.name not in outcome.containers:
                continue
            try:
                self._reverse(outcome, container)
            except Exception as exc:
                errors.append(f"{container.name}: {_engine_words(exc)}")
        outcome.ended_t = self._now()
        outcome.undone_by = reason
        if errors:
            outcome.error = "; ".join([*([outcome.error] if outcome.error else []), "not undone: " + "; ".join(errors)])
            outcome.done = False
        elif outcome.error is None:
            outcome.done = True
        if not quiet:
            self._say(f"t={outcome.ended_t:.1f} s: {fault.action} {fault.service} undone ({reason})")

    def _containers(self, service: str, *, running: bool) -> list[Container]:
        labels = [f"{PROJECT_LABEL}={self._project}", f"{SERVICE_LABEL}={service}"]
        found = self._client.containers.list(all=True, filters={"label": labels})
        if running:
            found = [c for c in found if c.status in ("running", "restarting")]
        return sorted(found, key=lambda c: c.name)

    def _act(self, outcome: FaultOutcome, containers: Sequence[Container]) -> None:
        fault = outcome.fault
        for container in containers:
            if fault.action == "kill":
                outcome.sent_via = self._kill(container)
            elif fault.action == "restart":
                container.restart()
            elif fault.action == "stop":
                container.stop()
            elif fault.action == "pause":
                container.pause()
            elif fault.action == "disconnect":
                self._disconnect(outcome, container)
            elif fault.action == "squeeze":
                host = container.attrs.get("HostConfig") or {}
                if outcome.limit_before_bytes is None:
                    outcome.limit_before_bytes = int(host.get("Memory") or 0) or None
                    outcome.memswap_before_bytes = int(host.get("MemorySwap") or 0) or None
                if outcome.limit_before_bytes is None:
                    raise _FaultError(f"{container.name} has no memory limit to restore afterwards")
                container.update(mem_limit=fault.size_bytes, memswap_limit=fault.size_bytes)

    def _kill(self, container: Container) -> str:
        """Send the kill signal to the container's PID 1 from the engine's host where it is visible ("host").

        The engine takes a `docker kill` as a stop asked for: it marks the container to exit for good, and
        no restart policy applies. A signal from the host reaches PID 1 as a crash or the OOM killer would,
        and the restart policy decides what follows. Where the engine's processes are not visible here (a
        VM, another host), the signal goes through the engine ("engine").
        """
        container.reload()
        pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
        if locate_on_host(pid, container_id=container.id) is not None:
            try:
                os.kill(pid, signals.Signals[self._schedule.signal])
                return "host"
            except PermissionError:
                pass
        container.kill(signal=self._schedule.signal)
        return "engine"

    def _disconnect(self, outcome: FaultOutcome, container: Container) -> None:
        container.reload()
        networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        names = [name for name in networks if name not in ("host", "none")]
        if not names:
            raise _FaultError(f"{container.name} is on no network that can be disconnected")
        saved = outcome._networks.setdefault(container.id, {})
        for name in names:
            saved[name] = dict(networks[name] or {})
            self._client.networks.get(name).disconnect(container)

    def _reverse(self, outcome: FaultOutcome, container: Container) -> None:
        fault = outcome.fault
        if fault.action == "stop":
            container.start()
        elif fault.action == "pause":
            container.reload()
            if container.status == "paused":
                container.unpause()
        elif fault.action == "disconnect":
            for name, endpoint in outcome._networks.get(container.id, {}).items():
                ipam = endpoint.get("IPAMConfig") or {}
                # The container's short id is an alias the engine adds by itself.
                aliases = [a for a in endpoint.get("Aliases") or [] if not container.id.startswith(a)]
                self._client.networks.get(name).connect(
                    container,
                    aliases=aliases or None,
                    links=endpoint.get("Links") or None,
                    ipv4_address=ipam.get("IPv4Address") or None,
                    ipv6_address=ipam.get("IPv6Address") or None,
                )
        elif fault.action == "squeeze" and outcome.limit_before_bytes is not None:
            container.update(mem_limit=outcome.limit_before_bytes, memswap_limit=outcome.memswap_before_bytes or -1)


class _FaultError(Exception):
    """A fault that cannot be done for a reason of the stack's own (no container, no network, no limit)."""


def _engine_words(exc: BaseException) -> str:
    """Return the engine's own message for an SDK error, else the exception's text."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return f"{exc.__class__.__name__}: {exc}"


def fault_records(outcomes: Sequence[FaultOutcome], schedule: FaultSchedule, report: Report) -> list[FaultRecord]:
    """Return the report's fault records from the executor's outcomes (recovery left to stackprobe.recovery).

    report: the run's report so far, whose events and container series tell what the kernel did under a
    squeeze: "refused" (the engine would not lower the limit), "oom_kill" (an oom event of the service
    between its start and 1 s after its end) or "reclaim" (the limit took; the sampled memory before and
    under it are given).
    """
    records = []
    for outcome in outcomes:
        fault = outcome.fault
        record = FaultRecord(
            action=fault.action,  # type: ignore[arg-type]
            service=fault.service,
            at=fault.at_s,
            for_=fault.for_s,
            signal=schedule.signal if fault.action == "kill" else None,
            sent_via=outcome.sent_via,  # type: ignore[arg-type]
            size_bytes=fault.size_bytes,
            done=outcome.done,
            error=outcome.error,
            started=None if outcome.started_t is None else round(outcome.started_t, 3),
            ended=None if outcome.ended_t is None else round(outcome.ended_t, 3),
            undone_by=outcome.undone_by,
            containers=list(outcome.containers),
            limit_before_bytes=outcome.limit_before_bytes,
        )
        if fault.action == "squeeze":
            record.kernel, record.kernel_detail = _squeeze_outcome(outcome, report)
        records.append(record)
    return records


def _squeeze_outcome(outcome: FaultOutcome, report: Report) -> tuple[str | None, str | None]:
    fault = outcome.fault
    if outcome.refused:
        return "refused", f"the engine refused the limit: {outcome.error}"
    if outcome.started_t is None:
        return None, None
    ended = outcome.ended_t if outcome.ended_t is not None else outcome.started_t
    ooms = [e.t for e in report.events if e.service == fault.service and e.action == "oom"]
    under = [t for t in ooms if outcome.started_t <= t <= ended + 1.0]
    if under:
        return "oom_kill", f"{len(under)} oom event(s) of {fault.service}, the first at t={under[0]:.1f} s"
    before: list[int] = []
    during: list[int] = []
    for series in report.series.containers.values():
        if series.service != fault.service:
            continue
        for t, value in zip(series.t, series.memory_bytes, strict=False):
            if t < outcome.started_t:
                before.append(value)
            elif t <= ended:
                during.append(value)
    words = f"the limit of {fault.size_bytes} bytes took, no OOM kill"
    if before and during:
        words += (
            f"; memory {before[-1] / 2**20:.1f} MiB before, {during[-1] / 2**20:.1f} MiB at its end "
            "(docker stats, less inactive page cache)"
        )
    return "reclaim", words
