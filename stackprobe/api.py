"""stackprobe from Python: one probe run as a function call, and a check of its verdict.

    from stackprobe.api import assert_verdict, run

    report = run("compose.yaml", service="app", memory="128m", users=20, duration="30s", slo="p95<200ms")
    assert_verdict(report, "pass")

`run` takes the settings `stackprobe run` takes, under the same names and with the same defaults (the
CLI's own parser supplies them, so the two never drift apart), and returns the Report (stackprobe.report.
model.Report) after writing report.json and report.html into `out`. Nothing here imports Locust: the
load runs in a subprocess, as from the command line. Importing this module loads neither the Docker SDK
nor the prober; `run` does, when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stackprobe.spec import DEFAULT_SLO, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from stackprobe.report.model import Report, Verdict

__all__ = ["UsageError", "VerdictError", "assert_verdict", "run", "verdict_message"]

# A size: "128m" or bytes; per service: {"app": "128m", "db": "256m"} (the same as --memory app=128m,db=256m).
Memory = str | int | Mapping[str, str | int]


class VerdictError(AssertionError):
    """A run's verdict is not the one expected; the message lists the verdict's reasons."""


def run(
    compose_files: str | Path | Sequence[str | Path] | None = None,
    *,
    service: str = "app",
    url: str | None = None,
    profiles: Sequence[str] = (),
    allow_shared_volumes: bool = False,
    memory: Memory | None = None,
    cpus: float | None = None,
    rate: float | None = None,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration: str | float = "60s",
    shape: str | None = None,
    locustfile: str | Path | None = None,
    warmup: str | float | None = None,
    slo: str = DEFAULT_SLO,
    out: str | Path = "stackprobe-report",
    keep_up: bool = False,
    build: bool = True,
    console: Console | None = None,
) -> Report:
    """Probe a Compose stack as `stackprobe run` does; return its Report (report.json and report.html in `out`).

    compose_files: one file or several (default: the one Compose finds in the working directory).
    memory: the target's limit ("128m", or bytes), or limits by service ({"app": "128m", "db": "256m"});
        default: what the compose file declares. cpus: CPUs (e.g. 0.5).
    duration, warmup: "30s", "2m" or seconds. users, spawn_rate, rate, shape, locustfile, slo, profiles,
        url, allow_shared_volumes, keep_up, build: as the flags of `stackprobe run` (see its --help).
    console: where the progress and the summary go (default: a console on stdout, which pytest captures).

    Raises UsageError (a setting to fix, before anything starts) and stackprobe.probe.SetupError (no engine,
    a stack Compose rejects or that never got healthy). The stack is torn down before either propagates,
    unless keep_up. A run that fails or is inconclusive returns its Report: judge it with assert_verdict.
    """
    from stackprobe.cli import build_parser, spec_from_args
    from stackprobe.probe import run_probe

    # The CLI's parser gives every default, so a setting not named here means what its flag's default means.
    args = build_parser().parse_args(["run"])
    args.compose_file = _paths(compose_files)
    args.service = service
    for name, value in (("service", service), ("url", url), ("shape", shape), ("slo", slo)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{name}={value!r}: expected text")
    if isinstance(profiles, str) or not all(isinstance(p, str) for p in profiles):
        raise UsageError(f"profiles={profiles!r}: expected a list of profile names")
    args.url = url
    args.profile = list(profiles)
    args.allow_shared_volumes = allow_shared_volumes
    args.memory = _memory_flag(memory)
    args.cpus = _number("cpus", cpus, float)
    args.rate = _number("rate", rate, float)
    args.users = _number("users", users, int)
    args.spawn_rate = _number("spawn_rate", spawn_rate, float)
    args.duration = _duration_flag("duration", duration)
    args.shape = shape
    args.locustfile = Path(locustfile) if locustfile is not None else None
    args.warmup = _duration_flag("warmup", warmup) if warmup is not None else None
    args.slo = slo
    args.out = Path(out)
    args.keep_up = keep_up
    args.no_build = not build
    spec = spec_from_args(args)
    if console is None:
        from rich.console import Console

        console = Console()
    return run_probe(spec, console)


def verdict_message(report: Report, expected: Sequence[str], report_dir: str | Path | None = None) -> str:
    """Say which verdict a run got instead of `expected`, with each of its reasons and where its report is."""
    wanted = " or ".join(repr(v) for v in expected)
    lines = [f"stackprobe verdict {report.verdict!r}, expected {wanted} ({_describe(report)})"]
    if report.reasons:
        lines.append("reasons:")
        lines += [f"  - {reason}" for reason in report.reasons]
    else:
        lines.append("reasons: none given")
    if report_dir is not None:
        lines.append(f"report: {Path(report_dir) / 'report.html'} (and report.json beside it)")
    return "\n".join(lines)


def assert_verdict(report: Report, *expected: Verdict, report_dir: str | Path | None = None) -> None:
    """Raise VerdictError (an AssertionError) unless the run's verdict is one of `expected` (default: "pass").

    Its message names the verdict, lists every reason the run gave, and, with report_dir, the report's path.
    """
    __tracebackhide__ = True
    wanted = expected or ("pass",)
    unknown = [v for v in wanted if v not in ("pass", "fail", "inconclusive")]
    if unknown:
        raise UsageError(f"not a verdict: {', '.join(map(repr, unknown))} (expected pass, fail or inconclusive)")
    if report.verdict not in wanted:
        raise VerdictError(verdict_message(report, wanted, report_dir))


def _describe(report: Report) -> str:
    """Name the run in a few words: target, limit and load, for the first line of a verdict message."""
    parts = [f"service {report.target.service or '?'}"]
    limit = report.limits.memory_applied_bytes
    if limit:
        parts.append(f"memory limit {limit / 1024**2:g} MiB")
    if report.load.users:
        parts.append(f"{report.load.users} users for {report.load.duration_s:g} s")
    return ", ".join(parts)


def _paths(files: str | Path | Sequence[str | Path] | None) -> list[Path] | None:
    if files is None:
        return None
    if isinstance(files, str | Path):
        return [Path(files)]
    return [Path(f) for f in files]


def _memory_flag(memory: Memory | None) -> str | None:
    """Turn `memory` into the text --memory takes ("128m", "134217728" or "app=128m,db=256m")."""
    if memory is None:
        return None
    if isinstance(memory, Mapping):
        if not memory:
            return None
        return ",".join(f"{name}={_size(name, size)}" for name, size in memory.items())
    return _size("memory", memory)


def _size(name: str, size: object) -> str:
    if isinstance(size, bool) or not isinstance(size, str | int):
        raise UsageError(f"{name}={size!r}: a size is text like '128m' or a number of bytes")
    return str(size)


def _duration_flag(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{name}={value!r}: a duration is text like '30s' or a number of seconds")
    return str(value)


def _number(name: str, value: object, kind: type[int] | type[float]) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise UsageError(f"{name}={value!r}: expected {'a whole number' if kind is int else 'a number'}")
    return kind(value)
