"""One probe run, start to end: stack up under the limits, load and watch, audit, report, tear down."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from stackprobe import __version__, cpu_debug
from stackprobe.audit import AuditResult, audit_write_log, writes_section
from stackprobe.compose_model import Access, AccessError, plan_access, service_profiles, shared_volumes
from stackprobe.faults import FaultExecutor, FaultOutcome, fault_records
from stackprobe.history import write_history
from stackprobe.limits import (
    AppliedLimits,
    compare_limits,
    limits_section,
    read_applied_limits,
    swap_description,
)
from stackprobe.load import (
    LoadError,
    LoadPlan,
    LoadResult,
    check_locustfile,
    distributed_section,
    read_step_result,
    run_load,
)
from stackprobe.locuststats import (
    WindowStats,
    read_errors,
    read_totals,
    read_window_stats,
    read_windows,
    read_windows_latency,
)
from stackprobe.recovery import explain_effects, measure_recovery, request_rules, slo_outside_faults
from stackprobe.report import render_console, render_html, render_json
from stackprobe.report.fmt import format_bytes
from stackprobe.report.model import (
    SCHEMA_VERSION,
    ClientErrors,
    Failure,
    LocustException,
    OtherLimit,
    Report,
    StepSearch,
    step_search_from_dict,
)
from stackprobe.report.verdict import judge
from stackprobe.slo import evaluate_slo, parse_slo, request_slo
from stackprobe.spec import RunSpec, UsageError
from stackprobe.stack import ComposeError, ServiceOverride, Stack, Teardown, removal_command
from stackprobe.trend import target_trend
from stackprobe.watch import Watcher, WatchResult

# Idle samples taken before the load starts, so the report can tell idle memory from memory under load.
IDLE_SAMPLE_TIMEOUT_S = 5.0
REPORT_FILES = ("report.json", "report.html")
# A target without a healthcheck is loaded only once its URL answers (any HTTP status), within this bound.
URL_WAIT_S = 60.0
# The live lines on a terminal are redrawn by a thread of rich's at this rate (rich's defaults, 12.5 a second
# for a spinner and 10 for a progress bar, cost the prober about 2 % of a core over a run). The spinner turns
# one frame per redraw: SPINNER_SPEED of its own 80-ms frames.
STATUS_REFRESH_PER_S = 5.0
SPINNER_SPEED = 0.4


class SetupError(RuntimeError):
    """The run could not start (no engine, a compose file Compose rejects, a stack that never got healthy)."""


@dataclass(frozen=True)
class DeclaredLimits:
    """What a service's compose definition declares, and where it declares it."""

    memory_bytes: int | None
    cpus: float | None
    uses_deploy_limits: bool


def declared_limits(service: Mapping[str, Any]) -> DeclaredLimits:
    """Read the memory and CPU limits a service's merged compose model declares."""
    deploy_limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = deploy_limits.get("memory") or service.get("mem_limit")
    cpus = deploy_limits.get("cpus") or service.get("cpus")
    return DeclaredLimits(
        memory_bytes=int(memory) if memory else None,
        cpus=float(cpus) if cpus else None,
        uses_deploy_limits=bool(deploy_limits),
    )


@dataclass
class _Target:
    """What the run learned about its target before `up`: limits, how to reach it, its health, its load."""

    declared: DeclaredLimits
    access: Access
    has_healthcheck: bool
    shape: str | None


def run_probe(spec: RunSpec, console: Console, teardowns: list[Teardown] | None = None) -> Report:
    """Run one probe as the spec says; write the report files; return the report.

    Raises UsageError (a flag or file the user must fix) or SetupError (the run could not be made); either
    way no report file is left in spec.out, never an earlier run's. A stack whose target is OOM-killed or
    exits while it starts is a run that failed, not a set-up error: its report says so. The teardown's
    outcome is appended to `teardowns` (when given) even when the run raises, so that the caller says
    "torn down" only when it was.
    """
    _prepare_out(spec.out)
    try:
        parse_slo(spec.slo)
    except ValueError as exc:
        raise UsageError(f"--slo: {exc}") from None
    stack = Stack(spec.compose_files, profiles=spec.profiles)
    with _client() as client:
        model = _compose_model(stack)
        services = model["services"]
        if spec.service not in services:
            hidden = _profiles_of(stack, spec.service)
            if hidden:
                raise UsageError(
                    f"service {spec.service!r} is in Compose profile {', '.join(hidden)}: add --profile {hidden[0]}"
                )
            raise UsageError(f"service {spec.service!r} is not in the compose file; it has: {', '.join(services)}")
        shared = shared_volumes(model)
        if shared and not spec.allow_shared_volumes:
            raise UsageError(
                "the stack mounts volumes that outlive this run's project and may hold your data: "
                f"{', '.join(shared)}. The probe would write into them. Give --allow-shared-volumes to probe it "
                "anyway (they are used, never removed), or give the volumes no fixed name: "
                "(not while another stack of the same files is running on them)"
            )
        target = _plan_target(spec, model)
        unknown = sorted(set(spec.other_memory) - set(services))
        if unknown:
            raise UsageError(f"--memory names services not in the compose file: {', '.join(unknown)}")
        if spec.faults:
            spec.faults.check_services(services, _memory_limits(spec, services, target))
        stack.overrides = {
            spec.service: ServiceOverride(
                memory_bytes=spec.memory_bytes,
                cpus=spec.cpus,
                ports=target.access.ports,
                uses_deploy_limits=target.declared.uses_deploy_limits,
            ),
            **{
                name: ServiceOverride(
                    memory_bytes=limit, uses_deploy_limits=declared_limits(services[name]).uses_deploy_limits
                )
                for name, limit in spec.other_memory.items()
            },
        }
        _compose_model(stack)  # Compose checks the override against the user's file before anything starts
        try:
            return _run(spec, stack, client, target, console, teardowns)
        finally:
            cpu_debug.finish()  # STACKPROBE_DEBUG_CPU: where the prober's own CPU went


def _memory_limits(spec: RunSpec, services: Mapping[str, Any], target: _Target) -> dict[str, int | None]:
    """Return each service's memory limit in bytes as the run applies it (None: unlimited)."""
    limits = {
        name: spec.other_memory.get(name) or declared_limits(service).memory_bytes for name, service in services.items()
    }
    limits[spec.service] = spec.memory_bytes or target.declared.memory_bytes
    return limits


def _prepare_out(out: Path) -> None:
    """Make the report folder writable and empty of an earlier report, or raise UsageError before anything starts.

    An earlier run's report in the same folder must never pass for this run's, whatever happens next.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            (out / name).unlink(missing_ok=True)
        probe = out / ".stackprobe-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write reports there ({exc.strerror or exc})") from None


def _profiles_of(stack: Stack, service: str) -> tuple[str, ...]:
    """Return the profiles a service hidden by them belongs to, () when it is not in the file at all."""
    try:
        return service_profiles(stack.config(all_profiles=True), service)
    except (ComposeError, KeyError):
        return ()


def _plan_target(spec: RunSpec, model: Mapping[str, Any]) -> _Target:
    """Decide, before anything starts, how the target is limited, reached and loaded; UsageError if it cannot."""
    service = model["services"][spec.service]
    try:
        access = plan_access(model, spec.service, keep_ports=spec.url is not None)
    except AccessError as exc:
        raise UsageError(f"service {spec.service!r}: {exc}") from None
    healthcheck = service.get("healthcheck") or {}
    return _Target(
        declared=declared_limits(service),
        access=access,
        has_healthcheck=bool(healthcheck.get("test")) and not healthcheck.get("disable"),
        shape=_resolve_shape(spec),
    )


def _resolve_shape(spec: RunSpec) -> str | None:
    """Return the load shape the run will use (None: the locustfile's plain -u/-r/-t), or raise UsageError.

    A locustfile that, like loadtests/, leaves concrete only the shape LOCUST_SHAPE names offers shapes;
    one with a shape class of its own uses it whatever --shape says; one with none has no shape.
    """
    try:
        own = check_locustfile(spec.locustfile, "")
        if own.shape_classes:
            if spec.shape is not None:
                raise UsageError(
                    f"--shape {spec.shape}: {spec.locustfile} has a load shape of its own "
                    f"({', '.join(own.shape_classes)}), which Locust uses whatever --shape says"
                )
            return own.shape_classes[0]
        asked = spec.shape or "steady"
        offered = check_locustfile(spec.locustfile, asked)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    if offered.shape_classes:
        return asked
    if spec.shape is not None:
        raise UsageError(
            f"--shape {spec.shape}: {spec.locustfile} offers no load shape (no LoadTestShape class for "
            "LOCUST_SHAPE); drop --shape to run its users as they are, or use the bundled loadtests/"
        )
    return None


@dataclass
class _Observed:
    """What one run observed, filled in as it goes; None where the run did not get that far."""

    url: str = ""
    applied: AppliedLimits | None = None
    # Limits of the other services given in --memory app=...,db=..., read once the stack is up.
    others_applied: dict[str, AppliedLimits | None] = field(default_factory=dict)
    plan: LoadPlan | None = None
    load: LoadResult | None = None
    load_wall_start: float | None = None
    audit: AuditResult | None = None
    startup_failure: ComposeError | None = None
    # What the fault executor did, one outcome per scheduled fault (empty: no schedule, or no load).
    faults: list[FaultOutcome] = field(default_factory=list)


def _run(
    spec: RunSpec,
    stack: Stack,
    client: docker.DockerClient,
    target: _Target,
    console: Console,
    teardowns: list[Teardown] | None,
) -> Report:
    started_at = datetime.now(UTC)
    cpu_before = cpu_debug.process_cpu_seconds()
    cpu_debug.begin("watch start, stack up")
    spec.out.mkdir(parents=True, exist_ok=True)
    seen = _Observed()
    # Watching starts before `up`: an OOM kill or an exit while the stack starts is part of the run.
    watcher = Watcher(client, stack.project)
    watcher.start()
    try:
        try:
            with _status(console, f"Starting {', '.join(map(str, spec.compose_files))} as project {stack.project} …"):
                stack.up(build=spec.build, wait_timeout=spec.wait_timeout_s)
        except ComposeError as exc:
            seen.startup_failure = exc
            seen.applied = _applied_if_any(client, stack, spec.service)
        else:
            _load_and_audit(spec, stack, client, target, watcher, console, seen)
    except LoadError as exc:
        raise SetupError(str(exc)) from None
    finally:
        # The watch runs through the audit, and stops (with a grace for late events) before the teardown;
        # a second Ctrl-C while it stops must not skip the teardown.
        try:
            cpu_debug.phase("watch stop")
            watch = watcher.stop()
        finally:
            cpu_debug.phase("teardown")
            _tear_down(spec, stack, console, teardowns)
            cpu_debug.phase("report")
    if seen.startup_failure is not None and not _died_while_starting(watch, spec.service):
        raise SetupError(str(seen.startup_failure))
    report = _build_report(
        spec=spec,
        stack=stack,
        target=target,
        seen=seen,
        watch=watch,
        started_at=started_at,
        prober_cpu_seconds=cpu_debug.process_cpu_seconds() - cpu_before,
    )
    cpu_debug.phase("render")
    if spec.after_report is not None:
        spec.after_report(report)
    render_json(report, spec.out / "report.json")
    render_html(report, spec.out / "report.html")
    render_console(report, console)
    console.print(f"Report: {spec.out / 'report.json'}, {spec.out / 'report.html'}", highlight=False, soft_wrap=True)
    return report


def _load_and_audit(
    spec: RunSpec,
    stack: Stack,
    client: docker.DockerClient,
    target: _Target,
    watcher: Watcher,
    console: Console,
    seen: _Observed,
) -> None:
    """With the stack up: wait for the target's URL, read its limits, load it, then audit its writes."""
    seen.url = url = spec.url or stack.urls(target.access)[0]
    if spec.url is not None or not target.has_healthcheck:
        # Compose's --wait only knows "running" without a healthcheck: load sent before the service listens
        # would fail with "connection refused" and blame the service.
        with _status(console, f"Waiting for {url} to answer …"):
            wait_until_answers(url)
    seen.applied = applied = read_applied_limits(client, stack.container_ids(spec.service)[0])
    for name in spec.other_memory:
        seen.others_applied[name] = _applied_if_any(client, stack, name)
    console.print(f"Target {spec.service} at {url}; {_describe_applied(applied)}", highlight=False)
    if spec.before_load is not None:
        spec.before_load(stack.project or "", url)
    seen.plan = plan = LoadPlan(
        locustfile=spec.locustfile.resolve(),
        host=url,
        users=spec.users,
        spawn_rate=spec.spawn_rate,
        duration_s=spec.duration_s,
        shape=target.shape or "",
        # The step shape judges requests only; the memory slope is the report's to judge.
        slo=request_slo(spec.slo),
        out=spec.out.resolve(),
        rate=spec.rate,
        workers=spec.workers,
        master_bind=spec.master_bind,
        expect_workers=spec.expect_workers,
    )
    if plan.remote_workers:
        command = plan.remote_worker_command()
        console.print(f"Waiting for {plan.remote_workers} Locust workers from elsewhere: {command}", markup=False)
    cpu_debug.phase("idle samples")
    watcher.wait_for_samples(IDLE_SAMPLE_TIMEOUT_S)
    cpu_debug.phase("load")
    seen.load_wall_start = time.time()
    watcher.mark_load_start()
    if not spec.faults:
        seen.load = _load_with_progress(plan, watcher, spec.service, console)
    else:
        executor = FaultExecutor(
            client,
            stack.project or "",
            spec.faults,
            t0=watcher.t0,
            notify=lambda text: console.print(f"fault: {text}", highlight=False, markup=False),
        )
        executor.start()
        try:
            seen.load = _load_with_progress(plan, watcher, spec.service, console)
        except BaseException:
            # Undo every fault (unpause, start, reconnect, restore limits) before the teardown.
            seen.faults = executor.stop("interrupted")
            raise
        seen.faults = executor.stop("load end")
    cpu_debug.phase("audit")
    with _status(console, "Auditing acknowledged writes …"):
        seen.audit = audit_write_log(url, plan.write_log, use_listing=not spec.read_each_write)
    cpu_debug.phase("history")
    if seen.load_wall_start is not None:
        try:
            write_history(plan.write_log, plan.history, start=seen.load_wall_start)
        except (OSError, ValueError) as exc:  # the report stands without it; say why it is missing
            console.print(f"history.jsonl not written: {exc}", markup=False, highlight=False)


def _applied_if_any(client: docker.DockerClient, stack: Stack, service: str) -> AppliedLimits | None:
    """Read the target's limits after a failed `up`, when it has a container at all."""
    try:
        ids = stack.container_ids(service)
        return read_applied_limits(client, ids[0]) if ids else None
    except (ComposeError, docker.errors.DockerException):
        return None


def _died_while_starting(watch: WatchResult, service: str) -> bool:
    """Tell whether the target was OOM-killed or exited while the stack started (a result, not a set-up error)."""
    summary = watch.services.get(service)
    killed = summary is not None and summary.oom_kills > 0
    return killed or any(e.service == service and e.action in ("die", "oom") for e in watch.events)


def _tear_down(spec: RunSpec, stack: Stack, console: Console, teardowns: list[Teardown] | None) -> None:
    """Remove what the run made (unless --keep-up), and say truthfully whether it is gone."""
    if spec.keep_up:
        # soft_wrap: the command must stay one pasteable line whatever the terminal's width.
        console.print(
            f"Left running; to remove it: {removal_command(stack.project or '')}", highlight=False, soft_wrap=True
        )
        return
    try:
        with _status(console, "Tearing the stack down …"):
            stack.down()
    finally:
        # A Ctrl-C held during the teardown is raised by down() once it ended: its outcome is known anyway.
        teardown = stack.teardown
        if teardowns is not None and teardown is not None:
            teardowns.append(teardown)
        if teardown is not None and teardown.ok:
            console.print(f"Torn down: project {stack.project} ({teardown.message})", highlight=False)
        if teardown is not None and not teardown.ok:
            # Text, not markup: Compose's words may hold brackets.
            console.print(
                Text.assemble(
                    ("Teardown incomplete: ", "bold red"),
                    teardown.message,
                    f"\nRemove what is left with: {teardown.leftover_command}",
                )
            )


def _build_report(
    *,
    spec: RunSpec,
    stack: Stack,
    target: _Target,
    seen: _Observed,
    watch: WatchResult,
    started_at: datetime,
    prober_cpu_seconds: float,
) -> Report:
    """Put every measurement of the run into one Report, then judge it."""
    cpus_expected = spec.cpus if spec.cpus is not None else target.declared.cpus
    finished_at = datetime.now(UTC)
    load, plan, audit = seen.load, seen.plan, seen.audit
    applied = seen.applied or AppliedLimits(
        container="", memory_bytes=None, memswap_bytes=None, cpus=None, cgroup_version=None
    )
    problems = watch.problems_for(spec.service)
    if not applied.cgroup_read:
        why = "; ".join(applied.notes) or "the target had no running container"
        problems.append(f"the target's cgroup was not read, so the limit in force is not verified ({why})")
    summary = watch.services.get(spec.service)
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stackprobe_version": __version__,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "target": {
            "compose_files": [str(f) for f in spec.compose_files],
            "project": stack.project or "",
            "service": spec.service,
            "url": seen.url,
        },
        "load": {
            "locustfile": str(spec.locustfile),
            "users": spec.users,
            "spawn_rate": spec.spawn_rate,
            "duration_s": spec.duration_s,
            "shape": target.shape,
            "step_search": None,
            "locust_exit_code": load.exit_code if load else None,
            "overran": load.overran if load else None,
            "arrival_rate": spec.rate,
            "achieved_rate": load.achieved_rate if load else None,
            "distributed": distributed_section(plan, load) if plan and load else None,
        },
        "limits": limits_section(
            applied,
            memory_requested_bytes=spec.memory_bytes,
            memory_declared_bytes=target.declared.memory_bytes,
            cpus_requested=cpus_expected,
        ),
        "memory": watch.memory_section(spec.service),
        "cpu": watch.cpu_section(spec.service),
        "oom_kills": summary.oom_kills if summary else 0,
        "oom_kills_source": summary.oom_kills_source if summary else "",
        "oom_events": summary.oom_events if summary else 0,
        "restarts": summary.restarts if summary else 0,
        "target_exits": _target_exits(watch, spec.service, seen),
        "events": watch.events_section(),
        "writes": writes_section(audit),
        "series": {"containers": watch.containers_series()},
        "cost": {
            "prober_cpu_seconds": round(prober_cpu_seconds, 3),
            "prober_cpu_percent": round(100 * prober_cpu_seconds / max(load.wall_s if load else 0, 1e-9), 2),
            "load_generator_cpu_percent": round(load.cpu_percent, 2) if load else None,
            "load_generator_cpu_warning": bool(load and load.cpu_warning),
        },
    }
    if seen.startup_failure is not None:
        # Compose's progress lines come first; its last line says what went wrong.
        lines = [line.strip() for line in seen.startup_failure.stderr.splitlines() if line.strip()]
        problems.append(f"the stack did not start: {lines[-1] if lines else 'Compose gave no reason'}")
    report = Report.from_dict(data)
    report.limits.others = [
        _other_limit(name, limit, seen.others_applied.get(name)) for name, limit in spec.other_memory.items()
    ]
    if plan is not None and load is not None and seen.load_wall_start is not None:
        _add_locust_figures(report, plan, seen.load_wall_start, problems)
        if load.unhandled_exception:
            problems.append(f"Locust logged an error it did not expect (a shape or event handler raised): {plan.log}")
    report.problems = problems
    report.memory.trend = target_trend(report, warmup_s=spec.warmup_s, load_duration_s=spec.duration_s)
    if spec.faults:
        windows = _window_stats(plan, seen.load_wall_start)
        _add_faults(report, spec, seen.faults, windows)
        report.slo = slo_outside_faults(spec.slo, report, windows, spec.faults.recovery_s)
    else:
        report.slo = evaluate_slo(spec.slo, report)
    report.verdict, report.reasons = judge(report)
    return report


def _window_stats(plan: LoadPlan | None, start: float | None) -> list[WindowStats]:
    """Return the load's 1-s windows with their histograms ([] when the load left none)."""
    if plan is None or start is None:
        return []
    try:
        return read_window_stats(plan.windows, start=start)
    except (FileNotFoundError, ValueError):
        return []


def _add_faults(report: Report, spec: RunSpec, outcomes: list[FaultOutcome], windows: list[WindowStats]) -> None:
    """Put the faults, their recovery figures and what they explain into the report."""
    assert spec.faults is not None
    report.faults = fault_records(outcomes, spec.faults, report)
    rules = request_rules(spec.slo)
    spans = {
        i: (f.started, f.ended if f.ended is not None else f.started)
        for i, f in enumerate(report.faults)
        if f.started is not None
    }
    for i, fault in enumerate(report.faults):
        others = [span for j, span in spans.items() if j != i]
        fault.recovery = measure_recovery(
            windows, fault, allowance_s=spec.faults.recovery_s, rules=rules, others=others
        )
    report.fault_effects = explain_effects(report, spec.faults.recovery_s)


def _other_limit(service: str, asked: int, applied: AppliedLimits | None) -> OtherLimit:
    """Compare the memory limit asked for a service other than the target with the one in force."""
    if applied is None:
        return OtherLimit(service=service, memory_requested_bytes=asked, problems=["its container was not read"])
    matches, problems = compare_limits(asked, None, applied)
    return OtherLimit(
        service=service,
        memory_requested_bytes=asked,
        memory_applied_bytes=applied.memory_bytes,
        applied_matches=matches,
        problems=problems,
    )


def _add_locust_figures(report: Report, plan: LoadPlan, start: float, problems: list[str]) -> None:
    """Put Locust's totals, its 1-s windows and what its clients saw into the report."""
    report.load.step_search = _step_search(plan)
    totals = read_totals(plan.csv_prefix)
    report.requests, report.latency_ms = totals.requests, totals.latency
    if plan.rate is not None:
        # The open model times each request from when its arrival was due (coordinated omission corrected);
        # Locust's own figures time it from when it was sent.
        report.latency_ms = read_windows_latency(plan.windows)
    try:
        report.series.load = read_windows(plan.windows, start=start)
    except FileNotFoundError:
        problems.append("Locust's 1-s windows were not recorded: latency over time is unknown")
    try:
        failures, exceptions = read_errors(plan.errors, start=start)
    except FileNotFoundError:
        problems.append("Locust's failures and exceptions were not recorded with their times")
        return
    report.client_errors = ClientErrors(
        failures=[Failure(**f) for f in failures],
        exceptions=[
            LocustException(
                message=e["message"],
                count=e["count"],
                traceback=e["traceback"],
                first_t=e["first_t"],
                last_t=e["last_t"],
            )
            for e in exceptions
        ],
    )
    report.requests.exceptions = sum(e.count for e in report.client_errors.exceptions)


def _target_exits(watch: WatchResult, service: str, seen: _Observed) -> list[str]:
    """Name the target's containers that stopped and were not started again, with their last exit."""
    stopped = set(watch.stopped_containers(service))
    starting = seen.startup_failure is not None
    last = {}
    for event in watch.events:
        if event.service == service and event.action == "die" and (starting or event.container in stopped):
            last[event.container] = event
    when = "while the stack started" if starting else "at t={:.1f} s"
    return [f"{name} exited with code {e.exit_code} {when.format(e.t)}" for name, e in last.items()]


def wait_until_answers(url: str, timeout_s: float = URL_WAIT_S) -> None:
    """Poll `url` until it answers any HTTP status; raise SetupError when nothing has within timeout_s seconds.

    For a target without a healthcheck (Compose's --wait then only waits for "running") and for a --url:
    load sent before the service listens fails with "connection refused" and blames the service.
    """
    parts = urlsplit(url)
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while True:
        connection = http.client.HTTPConnection(parts.netloc, timeout=min(5.0, timeout_s))
        try:
            connection.request("GET", parts.path or "/")
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException) as exc:
            last_error = f"{exc.__class__.__name__}: {exc}"
        finally:
            connection.close()
        if time.monotonic() >= deadline:
            raise SetupError(f"nothing answered at {url} within {timeout_s:.0f} s ({last_error})")
        time.sleep(0.25)


def _step_search(plan: LoadPlan) -> StepSearch | None:
    """Return the step shape's finding from Locust's output, when it printed a well-formed one."""
    summary = read_step_result(plan.log)
    if summary is None:
        return None
    try:
        return step_search_from_dict(summary)
    except ValueError:
        # A locustfile of the user's own may print anything; a line that does not fit is not a result.
        return None


def _load_with_progress(plan: LoadPlan, watcher: Watcher, service: str, console: Console) -> LoadResult:
    """Run the load with a progress bar showing time and the service's memory."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[memory]}"),
    )
    if not _is_live(console):
        return run_load(plan)  # the bar is transient: outside a terminal it would never show
    # Redrawn when the elapsed second changes (as shown, and as often as the memory is sampled) from the
    # load's ticks, rather than ten times a second by a thread of its own: each redraw costs a few ms.
    with Progress(*columns, console=console, transient=True, auto_refresh=False) as progress:
        label = f"Locust {plan.shape or 'no shape'}, {plan.users} users"
        task = progress.add_task(label, total=plan.duration_s, memory="")
        shown = [-1]

        def tick(elapsed: float) -> None:
            if int(elapsed) == shown[0]:
                return
            shown[0] = int(elapsed)
            snapshot = watcher.latest().get(service)
            memory = ""
            if snapshot is not None:
                memory = f"{service} {format_bytes(snapshot.memory_bytes)}"
                if snapshot.limit_bytes:
                    memory += f" of {format_bytes(snapshot.limit_bytes)}"
            progress.update(task, completed=min(elapsed, plan.duration_s), memory=memory, refresh=True)

        return run_load(plan, on_tick=tick)


def _is_live(console: Console) -> bool:
    """Tell whether the console shows live lines (a spinner, a progress bar): a terminal that is not dumb."""
    return console.is_terminal and not console.is_dumb_terminal


def _status(console: Console, text: str) -> AbstractContextManager[object]:
    """Show a spinner with `text` while the block runs, on a terminal; elsewhere (a file, a CI log) nothing.

    rich's status is transient, so it never shows outside a terminal; skipping it there spares its thread.
    """
    if not _is_live(console):
        return nullcontext()
    return console.status(text, speed=SPINNER_SPEED, refresh_per_second=STATUS_REFRESH_PER_S)


def _describe_applied(applied: AppliedLimits) -> str:
    if applied.memory_bytes is None:
        return "no memory limit applied"
    return f"memory limit {format_bytes(applied.memory_bytes)} applied ({swap_description(applied)})"


def _docker_client() -> docker.DockerClient:
    """Return a client of a running engine, or raise SetupError saying how to get one."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SetupError(
            f"no Docker engine answers ({exc}); start one, or run `make provision` to install and start it"
        ) from None
    return client


def _compose_model(stack: Stack) -> dict[str, Any]:
    try:
        return stack.config()
    except ComposeError as exc:
        raise SetupError(f"Compose rejects the stack: {exc.stderr}") from None


@contextmanager
def _client() -> Iterator[docker.DockerClient]:
    client = _docker_client()
    try:
        yield client
    finally:
        client.close()
