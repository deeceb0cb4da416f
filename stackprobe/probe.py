"""One probe run, start to end: stack up under the limits, load and watch, audit, report, tear down."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stackprobe import __version__
from stackprobe.audit import AuditResult, audit_writes, read_write_log
from stackprobe.limits import AppliedLimits, compare_limits, limits_section, read_applied_limits
from stackprobe.load import LoadError, LoadPlan, LoadResult, read_step_result, run_load
from stackprobe.locuststats import read_history, read_totals
from stackprobe.report import render_console, render_html, render_json
from stackprobe.report.fmt import format_bytes
from stackprobe.report.model import Report, StepSearch, step_search_from_dict
from stackprobe.report.verdict import judge
from stackprobe.slo import evaluate_slo, parse_slo
from stackprobe.spec import RunSpec, UsageError
from stackprobe.stack import ComposeError, ServiceOverride, Stack, free_ports
from stackprobe.watch import Watcher, WatchResult

# Idle samples taken before the load starts, so the report can tell idle memory from memory under load.
IDLE_SAMPLE_TIMEOUT_S = 5.0


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


def container_ports(service: Mapping[str, Any]) -> list[int]:
    """Return the container ports a service publishes, in the file's order."""
    return [int(port["target"]) for port in service.get("ports") or []]


def run_probe(spec: RunSpec, console: Console) -> Report:
    """Run one probe as the spec says; write the report files; return the report."""
    try:
        parse_slo(spec.slo)
    except ValueError as exc:
        raise UsageError(f"--slo: {exc}") from None
    stack = Stack(spec.compose_files)
    with _client() as client:
        services = _compose_model(stack)["services"]
        if spec.service not in services:
            raise UsageError(f"service {spec.service!r} is not in the compose file; it has: {', '.join(services)}")
        declared = declared_limits(services[spec.service])
        ports = container_ports(services[spec.service])
        if spec.url is None and not ports:
            raise UsageError(f"service {spec.service!r} publishes no port: give its URL with --url")
        published = ports if spec.url is None else []
        stack.overrides = {
            spec.service: ServiceOverride(
                memory_bytes=spec.memory_bytes,
                cpus=spec.cpus,
                publish_ports=published,
                # Fixed host ports: an ephemeral one would change when an OOM kill restarts the container,
                # and Locust would load a port nothing listens on for the rest of the run.
                host_ports=dict(zip(published, free_ports(len(published)), strict=True)),
                uses_deploy_limits=declared.uses_deploy_limits,
            )
        }
        _compose_model(stack)  # Compose checks the override against the user's file before anything starts
        return _run(spec, stack, client, declared, ports, console)


def _run(
    spec: RunSpec,
    stack: Stack,
    client: docker.DockerClient,
    declared: DeclaredLimits,
    ports: Sequence[int],
    console: Console,
) -> Report:
    started_at = datetime.now(UTC)
    cpu_before = _own_cpu_seconds()
    spec.out.mkdir(parents=True, exist_ok=True)
    try:
        with console.status(f"Starting {', '.join(map(str, spec.compose_files))} as project {stack.project} …"):
            stack.up(build=spec.build, wait_timeout=spec.wait_timeout_s)
        url = spec.url or f"http://127.0.0.1:{stack.port(spec.service, ports[0])}"
        container_id = stack.container_ids(spec.service)[0]
        applied = read_applied_limits(client, container_id)
        console.print(f"Target {spec.service} at {url}; {_describe_applied(applied)}", highlight=False)
        plan = LoadPlan(
            locustfile=spec.locustfile.resolve(),
            host=url,
            users=spec.users,
            spawn_rate=spec.spawn_rate,
            duration_s=spec.duration_s,
            shape=spec.shape,
            slo=spec.slo,
            out=spec.out.resolve(),
        )
        with Watcher(client, stack.project) as watcher:
            watcher.wait_for_samples(IDLE_SAMPLE_TIMEOUT_S)
            load_wall_start = time.time()
            watcher.mark_load_start()
            load = _load_with_progress(plan, watcher, spec.service, console)
        watch = watcher.result
        with console.status("Auditing acknowledged writes …"):
            audit = audit_writes(url, read_write_log(plan.write_log))
    except (ComposeError, LoadError) as exc:
        raise SetupError(str(exc)) from None
    finally:
        if spec.keep_up:
            console.print(f"Left running: docker compose -p {stack.project} down --volumes  (to remove it)")
        else:
            with console.status("Tearing the stack down …"):
                stack.down()
    report = _build_report(
        spec=spec,
        stack=stack,
        url=url,
        declared=declared,
        applied=applied,
        plan=plan,
        load=load,
        load_wall_start=load_wall_start,
        watch=watch,
        audit=audit,
        started_at=started_at,
        prober_cpu_seconds=_own_cpu_seconds() - cpu_before,
    )
    render_json(report, spec.out / "report.json")
    render_html(report, spec.out / "report.html")
    render_console(report, console)
    console.print(f"Report: {spec.out / 'report.json'}, {spec.out / 'report.html'}", highlight=False)
    return report


def _build_report(
    *,
    spec: RunSpec,
    stack: Stack,
    url: str,
    declared: DeclaredLimits,
    applied: AppliedLimits,
    plan: LoadPlan,
    load: LoadResult,
    load_wall_start: float,
    watch: WatchResult,
    audit: AuditResult,
    started_at: datetime,
    prober_cpu_seconds: float,
) -> Report:
    """Put every measurement of the run into one Report, then judge it."""
    totals = read_totals(plan.csv_prefix)
    cpus_expected = spec.cpus if spec.cpus is not None else declared.cpus
    finished_at = datetime.now(UTC)
    data: dict[str, Any] = {
        "schema_version": 1,
        "stackprobe_version": __version__,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "target": {
            "compose_files": [str(f) for f in spec.compose_files],
            "project": stack.project,
            "service": spec.service,
            "url": url,
        },
        "load": {
            "locustfile": str(spec.locustfile),
            "users": spec.users,
            "spawn_rate": spec.spawn_rate,
            "duration_s": spec.duration_s,
            "shape": spec.shape,
        },
        "limits": limits_section(
            applied,
            memory_requested_bytes=spec.memory_bytes,
            memory_declared_bytes=declared.memory_bytes,
            cpus_requested=cpus_expected,
        ),
        "memory": watch.memory_section(spec.service),
        "cpu": watch.cpu_section(spec.service),
        "oom_kills": watch.oom_kills,
        "restarts": watch.restarts,
        "events": watch.events_section(),
        "writes": {
            "applicable": audit.applicable,
            "acknowledged": audit.acknowledged,
            "verified": audit.verified,
            "lost": audit.lost,
            "lost_examples": audit.lost_examples,
        },
        "series": {"containers": watch.containers_series()},
        "cost": {
            "prober_cpu_seconds": round(prober_cpu_seconds, 3),
            "prober_cpu_percent": round(100 * prober_cpu_seconds / max(load.wall_s, 1e-9), 2),
            "load_generator_cpu_percent": round(load.cpu_percent, 2),
        },
    }
    report = Report.from_dict(data)
    report.load.step_search = _step_search(plan)
    report.requests, report.latency_ms = totals.requests, totals.latency
    report.series.load = read_history(plan.csv_prefix, start=load_wall_start)
    report.slo = evaluate_slo(spec.slo, report)
    report.verdict, report.reasons = judge(report)
    return report


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
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"Locust {plan.shape}, {plan.users} users", total=plan.duration_s, memory="")

        def tick(elapsed: float) -> None:
            snapshot = watcher.latest().get(service)
            memory = ""
            if snapshot is not None:
                memory = f"{service} {format_bytes(snapshot.memory_bytes)}"
                if snapshot.limit_bytes:
                    memory += f" of {format_bytes(snapshot.limit_bytes)}"
            progress.update(task, completed=min(elapsed, plan.duration_s), memory=memory)

        return run_load(plan, on_tick=tick)


def _describe_applied(applied: AppliedLimits) -> str:
    if applied.memory_bytes is None:
        return "no memory limit applied"
    swap = "strict" if applied.memswap_bytes == applied.memory_bytes else "swap allowed"
    return f"memory limit {format_bytes(applied.memory_bytes)} applied ({swap})"


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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


def show_status(compose_files: Sequence[Path], project: str | None, console: Console) -> bool:
    """Print a running stack's containers, health, URLs and limits; return whether the limits are in force."""
    stack = Stack(compose_files, project=project)
    model = _compose_model(stack)
    stack.project = model["name"]
    with _client() as client:
        table = Table(title=f"Compose project {stack.project}")
        for column in ("service", "state", "URL", "memory declared", "applied", "swap", "in force"):
            table.add_column(column)
        all_in_force = True
        ids = stack.container_ids()
        if not ids:
            console.print(f"No container of project {stack.project} is running (try `make up`).")
            return False
        for container in sorted((client.containers.get(i) for i in ids), key=lambda c: c.name):
            service = container.labels.get("com.docker.compose.service", "?")
            declared = declared_limits(model["services"].get(service, {}))
            state = container.attrs["State"]
            health = (state.get("Health") or {}).get("Status")
            urls = [
                f"http://{b['HostIp']}:{b['HostPort']}"
                for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values()
                for b in bindings or []
            ]
            applied = read_applied_limits(client, container)
            matches, problems = compare_limits(declared.memory_bytes, declared.cpus, applied)
            if declared.memory_bytes is None:
                verdict = "no limit declared"
            else:
                verdict = "yes" if matches else "NO: " + "; ".join(problems)
                all_in_force &= matches
            table.add_row(
                service,
                state["Status"] + (f" ({health})" if health else ""),
                ", ".join(urls) or "-",
                format_bytes(declared.memory_bytes) if declared.memory_bytes else "-",
                format_bytes(applied.memory_bytes) if applied.memory_bytes else "unlimited",
                format_bytes(applied.memswap_bytes) if applied.memswap_bytes else "unlimited",
                verdict,
            )
        console.print(table)
    return all_in_force


@contextmanager
def _client() -> Iterator[docker.DockerClient]:
    client = _docker_client()
    try:
        yield client
    finally:
        client.close()
