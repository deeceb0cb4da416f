"""The `stackprobe` command: flags in, a verdict and an exit code out.

Exit codes (one per kind of outcome; the README has the same table):
  0    pass: the SLO held, no OOM kill, restart or lost write, the limit in force, and the run saw it all
  1    fail: something was seen to go wrong (OOM kill, restart, lost write, SLO not met, ...)
  2    usage or set-up error: a message says what to fix; no report is written
  3    inconclusive: nothing was seen to go wrong, but the run could not observe all it reports on
  130  interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM, as CI runners cancel a job)
The stack is torn down first in every case.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from stackprobe import __version__
from stackprobe.baseline import DEFAULT_MAX_REGRESSION, gate_from_flags
from stackprobe.ci import LOOP_JSON, add_output_arguments, prepare_outputs, write_loop_outputs, write_run_outputs
from stackprobe.faults import FaultSchedule, parse_schedule
from stackprobe.load import default_pool_size
from stackprobe.spec import (
    DEFAULT_SLO,
    SHAPES,
    RunSpec,
    UsageError,
    find_compose_file,
    parse_duration,
    parse_master_bind,
    parse_memory_limits,
)
from stackprobe.stack import Teardown

if TYPE_CHECKING:
    from stackprobe.stack import Teardown

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 3, 130, 143
# Subcommands beyond run and status, each a module with `add_parser(commands)` (adds its subparser, whose
# defaults set `handler`) and a handler `(args, console) -> exit code` that raises UsageError/SetupError.
COMMAND_MODULES: tuple[str, ...] = (
    "stackprobe.grow",
    "stackprobe.sweep",
    "stackprobe.fit",
    "stackprobe.compare",
    "stackprobe.rerender",
)
# The file `locust` loads from the current folder when run without -f; `stackprobe run` does the same.
LOCUSTFILE = "locustfile.py"
EXIT_CODES = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}
EXIT_CODES_HELP = """exit codes:
  0    pass: SLO held; no OOM kill, restart or lost write; limit in force; the run saw it all
  1    fail: something was seen to go wrong (the report's reasons say what)
  2    usage or set-up error (a message says what to fix; no report is written)
  3    inconclusive: nothing seen to go wrong, but the run could not observe all it reports on
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); the stack is torn down first
"""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so every teardown on the way out runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    # A second SIGTERM (runners often send a few) must not cut the teardown the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="stackprobe",
        description="Load a Compose stack under a memory limit, watch its containers and report what the limit does.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"stackprobe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="bring a stack up under a limit, load it, watch it, report",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run)
    add_baseline_arguments(run)

    status = commands.add_parser(
        "status",
        help="show the running stacks of a compose file (make up's, run --keep-up's): containers, health, URLs, limits",
    )
    status.add_argument(
        "--compose-file", "-f", action="append", type=Path, help="compose file (repeatable); default: ./compose.yaml …"
    )
    status.add_argument(
        "--project", "-p", help="this Compose project only (default: Compose's own and every run --keep-up left)"
    )
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(commands)
    return parser


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """Add every `run` flag to a parser: loops of runs (sweep, fit, grow) take the same flags."""
    target = run.add_argument_group("target")
    target.add_argument(
        "--compose-file", "-f", action="append", type=Path, help="compose file (repeatable); default: ./compose.yaml …"
    )
    target.add_argument("--service", "-s", default="app", help="the service to load and watch (default: app)")
    target.add_argument("--url", help="base URL of the service (default: its published port on 127.0.0.1)")
    target.add_argument(
        "--profile", action="append", default=[], help="Compose profile to enable (repeatable), as docker compose"
    )
    target.add_argument(
        "--allow-shared-volumes",
        action="store_true",
        help="probe a stack that mounts named (name:) or external volumes; they are used but never removed",
    )
    limits = run.add_argument_group("limits (default: what the compose file declares)")
    limits.add_argument(
        "--memory",
        "-m",
        help="memory limit for the service, e.g. 128m, or per service, e.g. app=128m,db=256m; swap is held equal",
    )
    limits.add_argument("--cpus", type=positive_number, help="CPU limit for the service, e.g. 0.5")
    load = run.add_argument_group("load")
    load.add_argument(
        "--rate",
        type=positive_number,
        help="open model: arrivals per second (one arrival = one task run, started on schedule whether or not "
        "earlier ones have answered; latency counted from when it was due); default: the closed model (--users)",
    )
    load.add_argument(
        "--users",
        "-u",
        type=int,
        help="peak number of Locust users; with --rate, the pool (default: 20; max(20, rate))",
    )
    load.add_argument(
        "--spawn-rate",
        "-r",
        type=positive_number,
        help="users started per second (default: 10; with --rate, the pool at once)",
    )
    load.add_argument("--duration", "-t", default="60s", help="length of the load, e.g. 60s, 5m (default: 60s)")
    load.add_argument(
        "--shape", choices=SHAPES, help="load shape, for a locustfile that offers shapes (default: steady if it does)"
    )
    load.add_argument(
        "--locustfile",
        type=Path,
        help="locustfile or folder (default: ./locustfile.py, as locust finds it; else loadtests/ beside the stack)",
    )
    load.add_argument(
        "--warmup", help="memory trend: leave out this first part of the load, e.g. 12s (default: the first 20 %%)"
    )
    load.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Locust's distributed mode: a master and N worker processes on this machine, about one core each "
        "(default: 0, one Locust process)",
    )
    load.add_argument(
        "--master-bind",
        metavar="HOST:PORT",
        help="where the master listens, so that workers on other machines can join (with --expect-workers)",
    )
    load.add_argument(
        "--expect-workers",
        type=int,
        metavar="N",
        help="with --master-bind: start the load once N workers have joined, those of --workers included",
    )
    faults = run.add_argument_group('faults under load (see the README\'s "Faults under load")')
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SCHEDULE",
        help='faults during the load, times from its start, e.g. "kill app@20s; restart db@40s; '
        'pause db@50s for 5s; stop app@70s for 10s; disconnect db@90s for 5s; squeeze app@30s to 64m" (repeatable)',
    )
    faults.add_argument(
        "--faults",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="faults from a TOML file of [[fault]] tables (repeatable)",
    )
    faults.add_argument("--signal", help="the signal kill sends (default: SIGKILL)")
    faults.add_argument(
        "--recovery", help="the time each fault's service has to serve within the SLO again (default: 10s)"
    )
    verdict = run.add_argument_group("verdict and output")
    verdict.add_argument(
        "--slo", default=DEFAULT_SLO, help=f'service level objective (default: "{DEFAULT_SLO.replace("%", "%%")}")'
    )
    verdict.add_argument("--out", "-o", type=folder_path, default=Path("stackprobe-report"), help="report folder")
    verdict.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    verdict.add_argument(
        "--read-each-write",
        action="store_true",
        help="audit: read every acknowledged write back alone, not through the listing the write log declares "
        "(one request per write; the listing is spot-checked, this checks every write)",
    )
    verdict.add_argument("--no-build", action="store_true", help="do not build images before starting")
    add_output_arguments(verdict)


def add_baseline_arguments(run: argparse.ArgumentParser) -> None:
    """Add `run`'s baseline gate: --baseline BASE.json and --max-regression BOUNDS."""
    gate = run.add_argument_group("baseline gate (fails the run on a regression against an earlier run)")
    gate.add_argument(
        "--baseline",
        type=Path,
        metavar="BASE.json",
        help="an earlier run's report.json (or its folder), made with the same service, load and limits",
    )
    gate.add_argument(
        "--max-regression",
        metavar="BOUNDS",
        help="how far each figure may move the worse way, relative (p95:10%%, rps:-10%%) or absolute "
        f"(p95:+20ms, peak_memory:+8MiB, errors:+0.5pp); default with --baseline: "
        f'"{DEFAULT_MAX_REGRESSION.replace("%", "%%")}"',
    )


def positive_number(text: str) -> float:
    """argparse type: a finite number above 0 (argparse turns the ArgumentTypeError into exit 2 naming the flag)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text!r}")
    return value


# With --rate and no --users, the pool is max(20, rate) users: past this, say so rather than start them.
MAX_DEFAULT_POOL = 10_000


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """Turn parsed `run` flags into a RunSpec, or raise UsageError."""
    compose_files = tuple(args.compose_file or [find_compose_file(Path.cwd())])
    locustfile = args.locustfile or default_locustfile(Path.cwd(), compose_files[0])
    if args.locustfile is None and not locustfile.exists() and compose_files[0].is_file():
        raise UsageError(f"no locustfile: neither {Path.cwd() / LOCUSTFILE} nor {locustfile} exists; give --locustfile")
    memory, other_memory = parse_memory_limits(args.memory, args.service) if args.memory else (None, {})
    # With --rate the users are a pool that takes arrivals: big enough for the rate, all started at once.
    if args.rate and args.users is None and default_pool_size(args.rate) > MAX_DEFAULT_POOL:
        raise UsageError(
            f"--rate {args.rate:g} would take a pool of {default_pool_size(args.rate):,} users (max(20, rate)), "
            f"more than the {MAX_DEFAULT_POOL:,} started without asking: give --users for the pool"
        )
    users = args.users if args.users is not None else (default_pool_size(args.rate) if args.rate else 20)
    spawn_rate = args.spawn_rate if args.spawn_rate is not None else (float(users) if args.rate else 10.0)
    return RunSpec(
        compose_files=compose_files,
        service=args.service,
        url=args.url,
        memory_bytes=memory,
        other_memory=other_memory,
        cpus=args.cpus,
        users=users,
        spawn_rate=spawn_rate,
        rate=args.rate,
        duration_s=parse_duration(args.duration),
        shape=args.shape,
        locustfile=locustfile,
        slo=args.slo,
        out=args.out,
        keep_up=args.keep_up,
        read_each_write=bool(getattr(args, "read_each_write", False)),
        build=not args.no_build,
        warmup_s=parse_duration(args.warmup) if args.warmup else None,
        profiles=tuple(args.profile),
        allow_shared_volumes=args.allow_shared_volumes,
        faults=_schedule_from_args(args),
        workers=args.workers,
        master_bind=parse_master_bind(args.master_bind) if args.master_bind else None,
        expect_workers=args.expect_workers,
    )


def default_locustfile(cwd: Path, compose_file: Path) -> Path:
    """Return the locustfile a run loads when --locustfile is not given.

    `locustfile.py` in the current folder, as `locust` itself finds one when run without -f; else the
    `loadtests/` folder beside the (first) compose file, as the bundled stack keeps its scenarios.
    """
    here = cwd / LOCUSTFILE
    return here if here.is_file() else compose_file.resolve().parent / "loadtests"


def locustfile_origin(given: Path | None, used: Path, cwd: Path) -> str:
    """Say in words why a run loads `used`: the flag, the current folder's locustfile.py, or the default."""
    if given is not None:
        return "--locustfile"
    if used == cwd / LOCUSTFILE:
        return f"{LOCUSTFILE} in the current folder, as locust picks it; --locustfile to choose another"
    return f"the default: no {LOCUSTFILE} here, so loadtests/ beside the compose file"


def _status_files(given: Sequence[Path] | None) -> tuple[Path, ...] | None:
    """Return the compose files status looks at: those given, else the one here; None when there is none.

    Raises UsageError for a given file that is not one.
    """
    for path in given or ():
        if not path.is_file():
            what = "is a directory, not a compose file" if path.is_dir() else "not found"
            raise UsageError(f"compose file {what}: {path}")
    if given:
        return tuple(given)
    try:
        return (find_compose_file(Path.cwd()),)
    except UsageError:
        return None


def folder_path(text: str) -> Path:
    """Parse --out: a folder path; an empty one (which would mean the current folder) is refused (exit 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a folder name (an empty one would write into the current folder)")
    return Path(text)


def _schedule_from_args(args: argparse.Namespace) -> FaultSchedule | None:
    """Return the fault schedule of --fault/--faults (None without them), or raise UsageError."""
    if not args.fault and not args.faults:
        for flag in ("signal", "recovery"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag} goes with a fault schedule (--fault or --faults), and none was given")
        return None
    return parse_schedule(args.fault, args.faults, signal=args.signal, recovery=args.recovery)


def _teardown_words(teardowns: Sequence[Teardown], keep_up: bool) -> str:
    """Say what became of the stack: torn down only when the teardown said so."""
    if not teardowns:
        return "the stack was left running (--keep-up)" if keep_up else "no stack was left running"
    last = teardowns[-1]
    if last.ok:
        return "the stack was torn down"
    return f"the teardown did not finish ({last.message}); remove what is left with: {last.leftover_command}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C before any stack exists (while Python imports the Docker SDK, say): nothing to tear down.
        sys.stderr.write("stackprobe: interrupted before anything started\n")
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    errors = Console(stderr=True)
    # Imported here so `stackprobe --help` answers without loading the Docker SDK.
    from stackprobe.probe import SetupError, run_probe

    # Without a handler SIGTERM kills the process on the spot and leaves the stack running.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    teardowns: list[Teardown] = []
    keep_up = bool(getattr(args, "keep_up", False))
    try:
        if args.command == "status":
            from stackprobe.status import show_status

            return EXIT_PASS if show_status(_status_files(args.compose_file), args.project, console) else EXIT_FAIL
        if args.command in LOOP_JSON:
            prepare_outputs(args)
            code = int(args.handler(args, console))
            write_loop_outputs(args, console)
            return code
        if args.command != "run":
            return int(args.handler(args, console))
        spec = spec_from_args(args)
        gate = gate_from_flags(args.baseline, args.max_regression, spec)
        if gate is not None:
            spec = dataclasses.replace(spec, after_report=gate.apply)
        origin = locustfile_origin(args.locustfile, spec.locustfile, Path.cwd())
        console.print(f"Locustfile: {spec.locustfile} ({origin})", markup=False, highlight=False, soft_wrap=True)
        prepare_outputs(args)
        report = run_probe(spec, console, teardowns)
        write_run_outputs(report, args, console, report_html=spec.out / "report.html")
    except (UsageError, SetupError) as exc:
        # The message may quote Compose or a Dockerfile verbatim: never read it as rich markup.
        errors.print(f"[bold red]stackprobe:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except Terminated:
        errors.print(f"stackprobe: terminated; {_teardown_words(teardowns, keep_up)}", highlight=False)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        errors.print(f"stackprobe: interrupted; {_teardown_words(teardowns, keep_up)}", highlight=False)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_CODES[report.verdict]


if __name__ == "__main__":
    sys.exit(main())
