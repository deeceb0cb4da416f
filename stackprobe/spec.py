"""What one probe run is asked to do (RunSpec), and the parsing of its sizes and durations."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackprobe.faults import FaultSchedule
    from stackprobe.report.model import Report

SHAPES = ("steady", "ramp", "spike", "step", "soak")
DEFAULT_SLO = "p95<200ms,errors<1%"
# The files `docker compose` itself looks for, in its own order of preference.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


class UsageError(ValueError):
    """A flag or setting the user must fix; the CLI prints it and exits with code 2."""


def parse_bytes(text: str) -> int:
    """Parse a Docker-style size ("128m", "1.5g", "64MiB", "134217728") into bytes, binary units."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise UsageError(f"not a size: {text!r} (expected e.g. 128m, 1g, 64MiB or a number of bytes)")
    value = float(match.group(1)) * _BYTE_UNITS[match.group(2)]
    # The engine refuses limits under 6 MB; saying so here beats Compose's error later.
    if value < 6 * 1024**2:
        raise UsageError(f"memory limit {text!r} is below the engine's minimum of 6 MiB")
    return int(value)


def parse_memory_limits(text: str, target: str) -> tuple[int | None, dict[str, int]]:
    """Parse --memory: "128m" (the target) or "app=128m,db=256m"; return (target's bytes, other services' bytes).

    A bare size is the target's limit; `SERVICE=SIZE` terms name services, the target among them or not.
    Raises UsageError for a bad size, an empty term or a service named twice.
    """
    target_bytes: int | None = None
    others: dict[str, int] = {}
    seen: set[str] = set()
    for term in text.split(","):
        name, sep, size = term.strip().rpartition("=")
        if not term.strip() or (sep and not size.strip()):
            raise UsageError(f"--memory {text!r}: empty term (expected e.g. 128m or app=128m,db=256m)")
        service = name.strip() if sep else target
        if not service:
            raise UsageError(f"--memory {text!r}: a term {term.strip()!r} names no service before '='")
        if service in seen:
            raise UsageError(f"--memory {text!r}: service {service!r} is given twice")
        seen.add(service)
        limit = parse_bytes(size)
        if service == target:
            target_bytes = limit
        else:
            others[service] = limit
    return target_bytes, others


def parse_duration(text: str) -> float:
    """Parse a duration ("60s", "2m", "1h30m", "500ms", or a bare number of seconds) into seconds."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return float(cleaned)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise UsageError(f"not a duration: {text!r} (expected e.g. 60s, 2m, 1h30m)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def parse_master_bind(text: str) -> tuple[str, int]:
    """Parse --master-bind "HOST:PORT" ("0.0.0.0:5557", "[::]:5557") into (host, port); raise UsageError."""
    match = re.fullmatch(r"\s*(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):(\d+)\s*", text)
    port = int(match.group(2)) if match else 0
    if not match or not 1 <= port <= 65535:
        raise UsageError(f"--master-bind {text!r} is not HOST:PORT (e.g. 0.0.0.0:5557 or 10.0.0.5:5557)")
    return match.group(1).strip("[]"), port


def find_compose_file(directory: Path) -> Path:
    """Return the compose file Compose would pick in a directory, or raise UsageError."""
    for name in COMPOSE_FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise UsageError(f"no compose file in {directory} (looked for {', '.join(COMPOSE_FILE_NAMES)}); use --compose-file")


@dataclass(frozen=True)
class RunSpec:
    """Everything one probe run needs: the target, the limits asked, the load, the SLO, the output."""

    compose_files: tuple[Path, ...]
    service: str = "app"
    url: str | None = None
    memory_bytes: int | None = None
    # Memory limits for services other than the target (--memory app=128m,db=256m), bytes by service.
    other_memory: dict[str, int] = field(default_factory=dict)
    cpus: float | None = None
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    # None: not asked for; the locustfile's steady shape if it offers shapes, else Locust's plain -u/-r/-t.
    shape: str | None = None
    locustfile: Path = Path("loadtests")
    slo: str = DEFAULT_SLO
    out: Path = Path("stackprobe-report")
    keep_up: bool = False
    build: bool = True
    # Read every acknowledged write back alone, leaving aside a listing the write log declares.
    read_each_write: bool = False
    wait_timeout_s: int = 240
    profiles: tuple[str, ...] = ()
    allow_shared_volumes: bool = False
    # The open model: arrivals per second (one arrival = one task run, started on schedule); None: closed
    # model, where --users alone sets the load.
    rate: float | None = None
    # The memory trend leaves out this first part of the load, seconds; None: the first 20 %.
    warmup_s: float | None = None
    # Locust's distributed mode: worker processes started on this machine beside a master (0: one Locust
    # process); where the master listens for workers from other machines (None: 127.0.0.1, a free port);
    # how many workers it waits for in all, those started here included (None: workers).
    workers: int = 0
    master_bind: tuple[str, int] | None = None
    expect_workers: int | None = None
    # Called as before_load(project, url) once the stack is up and its target answers, before idle memory is
    # sampled and the load starts: a loop of runs prepares the stack here (grow seeds its data). What it
    # raises ends the run, after the teardown, as run_probe's own exception.
    before_load: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)
    # Called as after_report(report) once the run's report is judged, before it is written or printed: the
    # baseline gate adds the base run beside it and judges it again. What it raises ends the run, no report.
    after_report: Callable[[Report], None] | None = field(default=None, compare=False, repr=False)
    # Faults acted on during the load (--fault, --faults), with the kill signal and the recovery allowance;
    # None: none. Checked against the load's length here, against the compose model once it is read.
    faults: FaultSchedule | None = None

    def __post_init__(self) -> None:
        for path in self.compose_files:
            if not path.is_file():
                what = "is a directory, not a compose file" if path.is_dir() else "not found"
                raise UsageError(f"compose file {what}: {path}")
        if not self.locustfile.exists():
            raise UsageError(f"locustfile not found: {self.locustfile} (use --locustfile)")
        if self.shape is not None and self.shape not in SHAPES:
            raise UsageError(f"unknown shape {self.shape!r}; choose one of {', '.join(SHAPES)}")
        if self.users < 1:
            raise UsageError("--users must be at least 1")
        if self.rate is not None and not 0 < self.rate < float("inf"):
            raise UsageError("--rate must be a number of arrivals per second above 0")
        if self.rate is not None and self.shape not in (None, "steady"):
            raise UsageError(
                f"--rate and --shape {self.shape} do not go together: a shape changes the users, not the rate"
            )
        if self.spawn_rate <= 0:
            raise UsageError("--spawn-rate must be above 0")
        if self.duration_s < 1:
            raise UsageError("--duration must be at least 1s")
        if self.workers < 0:
            raise UsageError("--workers must be 0 or more")
        if self.expect_workers is not None:
            if self.master_bind is None:
                raise UsageError(
                    "--expect-workers needs --master-bind HOST:PORT, the address workers from elsewhere connect to"
                )
            if self.expect_workers < max(1, self.workers):
                raise UsageError(
                    f"--expect-workers {self.expect_workers} must be at least 1 and at least --workers "
                    f"{self.workers} (it counts the workers started here too)"
                )
        if self.master_bind is not None and self.expect_workers is None and self.workers == 0:
            raise UsageError("--master-bind needs --expect-workers N (or --workers N): how many workers to wait for")
        if self.warmup_s is not None and self.warmup_s >= self.duration_s:
            raise UsageError("--warmup must be shorter than --duration")
        if self.faults:
            self.faults.check_fits(self.duration_s)
        if self.cpus is not None and self.cpus <= 0:
            raise UsageError("--cpus must be above 0")
        if self.url is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", self.url):
            raise UsageError(f"--url {self.url!r} is not a URL (expected e.g. http://127.0.0.1:8000)")
        if self.url is not None and not re.fullmatch(r"https?://(127\.0\.0\.1|localhost)(:\d+)?(/.*)?", self.url):
            # Load goes to this machine's loopback only, never to another host.
            raise UsageError(f"--url must point at 127.0.0.1 or localhost, not {self.url!r}")
