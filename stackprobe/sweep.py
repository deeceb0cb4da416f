"""`stackprobe sweep`: one full run per point of a grid of limits (and per repeat), then one comparison.

Each run is a whole `stackprobe run` (run_probe) with its own report under OUT/runs/<label>/, printed to
a quiet console while the sweep shows its own progress (which point, which repeat, time left). A run that
fails, is inconclusive or hits a set-up error stays in the table with its reason, and the sweep goes on.
Then sweep.json (schema: report/sweep.schema.json), sweep.html (one self-contained page) and a console
table. RunLoop, the loop of quiet runs with a progress display, is shared with `stackprobe fit`.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from stackprobe import __version__, cli
from stackprobe.report.comparison import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    LoopLoad,
    LoopTarget,
    RunRow,
    Sweep,
    SweepFinding,
    SweepGrid,
    SweepPoint,
    row_from_error,
    row_from_report,
    write_json,
)
from stackprobe.spec import UsageError, parse_bytes

if TYPE_CHECKING:
    from stackprobe.spec import RunSpec

KIB, MIB, GIB = 1024, 1024**2, 1024**3
EXIT_SETUP = 2
# Before the first run ends, a run is guessed at its load plus this much for start, audit and teardown.
RUN_OVERHEAD_GUESS_S = 10.0
EXIT_HELP = """exit codes:
  0    every run passed
  1    a run failed (the table and sweep.json give each run's reasons)
  2    usage or set-up error; or every run hit a set-up error (sweep.json says which)
  3    no run failed, but some were inconclusive (or hit a set-up error)
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); the stack is torn down first, sweep.json is written
"""


def memory_label(memory_bytes: int) -> str:
    """Return a memory limit as a folder-name part: "mem-64m", "mem-1g", "mem-1536k", "mem-100000b"."""
    for unit, suffix in ((GIB, "g"), (MIB, "m"), (KIB, "k")):
        if memory_bytes % unit == 0:
            return f"mem-{memory_bytes // unit}{suffix}"
    return f"mem-{memory_bytes}b"


def cpu_label(cpus: float) -> str:
    """Return a CPU limit as a folder-name part: "cpu-0.5", "cpu-2"."""
    return f"cpu-{cpus:g}"


def sweep_label(memory_bytes: int | None, cpus: float | None, repeat: int, repeats: int) -> str:
    """Return a run's folder name: "mem-64m", "mem-64m-cpu-0.5-r2" (-rN only when a point runs more than once)."""
    parts = []
    if memory_bytes is not None:
        parts.append(memory_label(memory_bytes))
    if cpus is not None:
        parts.append(cpu_label(cpus))
    if repeats > 1:
        parts.append(f"r{repeat}")
    return "-".join(parts) or "run"


def split_memory_terms(text: str, target: str) -> tuple[list[str], dict[str, int]]:
    """Split --memory into the target's terms (as written) and other services' fixed limits (bytes).

    A bare term ("64m", "32m..512m") or one naming the target ("app=64m") is the target's; a term naming
    another service ("db=256m") holds that service at that limit in every run, as `run --memory` does.
    Raises UsageError for an empty term, a term naming no service, or another service named twice.
    """
    target_terms: list[str] = []
    others: dict[str, int] = {}
    for raw in text.split(","):
        term = raw.strip()
        name, sep, value = term.rpartition("=")
        service = name.strip() if sep else target
        if not term or not value.strip() or not service:
            raise UsageError(f"--memory {text!r}: an empty term, or one naming no service (e.g. 64m or db=256m)")
        if service == target:
            target_terms.append(value.strip())
        elif service in others:
            raise UsageError(f"--memory {text!r}: service {service!r} is given twice")
        else:
            others[service] = parse_bytes(value)
    return target_terms, others


def parse_memory_list(terms: Sequence[str]) -> list[int]:
    """Parse the target's memory limits ("64m", "96m", ...) into bytes; UsageError on a bad or repeated one."""
    return _distinct([parse_bytes(term) for term in terms], "--memory", ",".join(terms))


def parse_cpus_list(text: str) -> list[float]:
    """Parse --cpus' comma-separated CPU limits ("0.25,0.5,1"); UsageError on a bad or repeated one."""
    from stackprobe.fit import parse_cpus

    return _distinct([parse_cpus(part) for part in text.split(",") if part.strip()], "--cpus", text)


def _distinct(values: list, flag: str, text: str) -> list:
    if not values:
        raise UsageError(f"{flag}: no value in {text!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"{flag}: a limit is given twice in {text!r}")
    return values


def format_seconds(seconds: float) -> str:
    """Return a duration for a progress line: "45 s", "3 min 05 s", "1 h 02 min"."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RunProgress:
    """The loop's own progress display: which run, which point and repeat, runs and time left, each result."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: int | None = None

    @contextmanager
    def live(self, total: int | None) -> Iterator[None]:
        """Show the display while the loop runs; `total` runs (None: not known in advance, as in a fit)."""
        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn("{task.fields[left]}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as progress:
            self._progress = progress
            self._task = progress.add_task("starting", total=total, left="")
            try:
                yield
            finally:
                self._progress = self._task = None

    def before(self, description: str, *, runs_left: int, seconds_left: float | None) -> None:
        """Say which run starts, how many are left (this one included) and about how long they take."""
        left = f"{runs_left} run{'s' if runs_left != 1 else ''} left"
        left += f", about {format_seconds(seconds_left)}" if seconds_left is not None else ""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description, left=left)
        else:
            self.console.print(Text(f"{description} ({left})"))

    def after(self, row: RunRow) -> None:
        """Print one line with the finished run's verdict and key figures."""
        from stackprobe.report.comparison_console import describe_row

        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            self._progress.console.print(describe_row(row))
        else:
            self.console.print(describe_row(row))


class RunLoop:
    """Runs of one sweep or fit: each a quiet run_probe into OUT/runs/<label>/, its row kept, set-up errors too.

    The loop's own outputs (`output_names`, e.g. sweep.json and sweep.html in OUT) are deleted when it
    starts, so an earlier loop's never passes for this one.
    """

    def __init__(self, base: RunSpec, console: Console, output_names: tuple[str, str]) -> None:
        self.base = base
        self.console = console
        self.root = base.out
        self.output_names = output_names
        self.rows: list[RunRow] = []
        self.progress = RunProgress(console)
        self.leftovers: list[str] = []
        for name in output_names:
            (self.root / name).unlink(missing_ok=True)

    @staticmethod
    def base_spec(args: argparse.Namespace, other_memory: dict[str, int] | None = None) -> RunSpec:
        """Return the RunSpec every run starts from: the run flags as given, the target's limits left to the
        loop, other services held at `other_memory` (bytes by service).

        Raises UsageError for --keep-up (each run's stack would stay up beside the next) and for any run
        flag spec_from_args refuses.
        """
        if getattr(args, "keep_up", False):
            raise UsageError("--keep-up keeps one run's stack; a loop of runs tears each one down before the next")
        flags = copy.copy(args)
        flags.memory = None
        flags.cpus = None
        return replace(cli.spec_from_args(flags), keep_up=False, other_memory=dict(other_memory or {}))

    def run(
        self,
        label: str,
        *,
        memory_bytes: int | None,
        cpus: float | None,
        repeat: int,
        phase: str | None = None,
        retry: bool = False,
    ) -> RunRow:
        """Make one full run under these limits; return its row (verdict "error" for a set-up error).

        UsageError (a flag or file to fix) and interrupts propagate: they would end every run the same way.
        """
        from stackprobe.probe import SetupError, run_probe

        run_dir = self.root / "runs" / label
        spec = replace(self.base, memory_bytes=memory_bytes, cpus=cpus, out=run_dir)
        teardowns: list = []
        began = time.monotonic()
        try:
            report = run_probe(spec, Console(quiet=True), teardowns)
        except SetupError as exc:
            row = row_from_error(
                str(exc),
                label=label,
                memory_bytes=memory_bytes,
                cpus=cpus,
                repeat=repeat,
                wall_s=time.monotonic() - began,
                phase=phase,
                retry=retry,
            )
        else:
            row = row_from_report(
                report,
                label=label,
                memory_bytes=memory_bytes,
                cpus=cpus,
                repeat=repeat,
                run_dir=run_dir,
                root=self.root,
                wall_s=time.monotonic() - began,
                phase=phase,
                retry=retry,
            )
        finally:
            self._check_teardown(label, teardowns)
        self.rows.append(row)
        self.progress.after(row)
        return row

    def _check_teardown(self, label: str, teardowns: Sequence) -> None:
        """Say at once when a run's stack was not fully removed: its containers still hold memory."""
        for teardown in teardowns:
            if not teardown.ok:
                message = f"{label}: the teardown did not finish ({teardown.message}); remove what is left with: "
                self.leftovers.append(message + teardown.leftover_command)
                self.console.print(Text(self.leftovers[-1], style="bold red"))

    def write(self, data: dict, html: str) -> list[Path]:
        """Write the loop's JSON and HTML into OUT; nothing when no run was made."""
        if not self.rows:
            return []
        json_path, html_path = (self.root / name for name in self.output_names)
        write_json(data, json_path)
        html_path.write_text(html, encoding="utf-8")
        return [json_path, html_path]

    def finish(self, console: Console) -> None:
        """Name the loop's files and repeat what a teardown left behind."""
        paths = ", ".join(str(self.root / name) for name in self.output_names)
        console.print(Text(f"{paths}; each run's report in {self.root / 'runs'}"))
        for leftover in self.leftovers:
            console.print(Text(leftover, style="bold red"))


def loop_target(spec: RunSpec) -> LoopTarget:
    """Return what every run of a loop probed."""
    return LoopTarget(
        compose_files=[str(f) for f in spec.compose_files],
        service=spec.service,
        other_memory_bytes=dict(spec.other_memory),
    )


def loop_load(spec: RunSpec) -> LoopLoad:
    """Return the load every run of a loop applied, as asked."""
    return LoopLoad(
        locustfile=str(spec.locustfile),
        users=spec.users,
        spawn_rate=spec.spawn_rate,
        duration_s=spec.duration_s,
        shape=spec.shape,
        arrival_rate=spec.rate,
    )


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `stackprobe sweep` with every `run` flag, its --memory and --cpus taking lists."""
    parser = commands.add_parser(
        "sweep",
        help="one run per memory and/or CPU limit (a grid when both), then one comparison of them all",
        description=(
            "Run the stack once per limit (and per --repeat), each with its own report under "
            "OUT/runs/<label>/, then compare them: sweep.json, sweep.html and a table. A run that fails, is "
            "inconclusive or hits a set-up error stays in the table with its reason; the sweep goes on."
        ),
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve",
    )
    cli.add_run_arguments(parser)
    group = parser.add_argument_group("sweep")
    group.add_argument(
        "--memory",
        "-m",
        help="memory limits of the target, comma-separated, e.g. 64m,96m,128m; SERVICE=SIZE terms (db=256m) hold "
        "another service at one limit in every run",
    )
    group.add_argument("--cpus", help="CPU limits of the target, comma-separated, e.g. 0.25,0.5,1")
    group.add_argument("--repeat", type=int, default=1, help="runs per point (default 1)")
    parser.set_defaults(handler=handle)


def grid_from_args(args: argparse.Namespace) -> tuple[SweepGrid, dict[str, int]]:
    """Read sweep's own flags into its grid and the other services' fixed limits; UsageError names what is wrong."""
    terms, others = split_memory_terms(args.memory, args.service) if args.memory else ([], {})
    if not terms and not args.cpus:
        raise UsageError("sweep needs limits to sweep: e.g. --memory 64m,96m,128m and/or --cpus 0.25,0.5,1")
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    grid = SweepGrid(
        memory_bytes=parse_memory_list(terms) if terms else None,
        cpus=parse_cpus_list(args.cpus) if args.cpus else None,
        repeat=args.repeat,
    )
    return grid, others


def handle(args: argparse.Namespace, console: Console) -> int:
    """Run `stackprobe sweep`; return 0 (all passed), 1 (a run failed) or 3 (some inconclusive).

    Raises SetupError (exit 2) when every run hit a set-up error; sweep.json then says which.
    """
    from stackprobe.probe import SetupError

    grid, others = grid_from_args(args)
    base = RunLoop.base_spec(args, others)
    loop = RunLoop(base, console, output_names=("sweep.json", "sweep.html"))
    points = [(m, c) for m in (grid.memory_bytes or [None]) for c in (grid.cpus or [None])]
    total = len(points) * grid.repeat
    started_at = datetime.now(UTC)
    complete = False
    try:
        with loop.progress.live(total):
            for memory, cpus in points:
                for repeat in range(1, grid.repeat + 1):
                    done = len(loop.rows)
                    mean = sum(r.wall_s for r in loop.rows) / done if done else base.duration_s + RUN_OVERHEAD_GUESS_S
                    loop.progress.before(
                        f"run {done + 1}/{total}: {describe_point(memory, cpus)}, repeat {repeat} of {grid.repeat}",
                        runs_left=total - done,
                        seconds_left=(total - done) * mean,
                    )
                    loop.run(
                        sweep_label(memory, cpus, repeat, grid.repeat), memory_bytes=memory, cpus=cpus, repeat=repeat
                    )
        complete = True
    finally:
        sweep = build_sweep(grid, base, loop.rows, started_at, complete=complete)
        loop.write(sweep.to_dict(), sweep_html(sweep))
    show_sweep(sweep, console)
    loop.finish(console)
    if sweep.exit_code == EXIT_SETUP:
        first = loop.rows[0].error if loop.rows else ""
        raise SetupError(f"every run of the sweep hit a set-up error; the first: {first}")
    return sweep.exit_code


def describe_point(memory_bytes: int | None, cpus: float | None) -> str:
    """Return a point for people: "memory 64.0 MiB, 0.5 CPUs"; a limit not swept is the file's own."""
    from stackprobe.report.fmt import format_bytes

    memory = "memory as declared" if memory_bytes is None else f"memory {format_bytes(memory_bytes)}"
    return memory if cpus is None else f"{memory}, {cpus:g} CPUs"


def point_verdict(rows: Sequence[RunRow]) -> str:
    """Return a point's verdict: fail if a run failed, pass if every run passed, error if every run hit a
    set-up error, inconclusive otherwise."""
    verdicts = [row.verdict for row in rows]
    if "fail" in verdicts:
        return "fail"
    if verdicts and all(v == "pass" for v in verdicts):
        return "pass"
    if verdicts and all(v == "error" for v in verdicts):
        return "error"
    return "inconclusive"


def build_sweep(
    grid: SweepGrid,
    base: RunSpec,
    rows: Sequence[RunRow],
    started_at: datetime,
    *,
    complete: bool = True,
) -> Sweep:
    """Put the runs of a sweep, each point's tally and what was found across them into sweep.json's structure."""
    finished_at = datetime.now(UTC)
    points: list[SweepPoint] = []
    for memory in grid.memory_bytes or [None]:
        for cpus in grid.cpus or [None]:
            at = [row for row in rows if row.memory_bytes == memory and row.cpus == cpus]
            if not at:
                continue
            points.append(
                SweepPoint(
                    memory_bytes=memory,
                    cpus=cpus,
                    runs=len(at),
                    passed=sum(r.verdict == "pass" for r in at),
                    failed=sum(r.verdict == "fail" for r in at),
                    inconclusive=sum(r.verdict == "inconclusive" for r in at),
                    errors=sum(r.verdict == "error" for r in at),
                    verdict=point_verdict(at),  # type: ignore[arg-type]
                )
            )
    counts = {v: sum(r.verdict == v for r in rows) for v in ("pass", "fail", "inconclusive", "error")}
    if counts["fail"]:
        verdict, exit_code = "fail", EXIT_FAIL
    elif rows and counts["pass"] == len(rows):
        verdict, exit_code = "pass", EXIT_PASS
    else:
        verdict, exit_code = "inconclusive", EXIT_INCONCLUSIVE
    if rows and counts["error"] == len(rows):
        exit_code = EXIT_SETUP
    if not complete:
        # Stopped by Ctrl-C or SIGTERM: the runs made are kept, but the sweep as asked never passed.
        exit_code = cli.EXIT_INTERRUPTED
        if verdict == "pass":
            verdict = "inconclusive"
    sweep = Sweep(
        stackprobe_version=__version__,
        started_at=started_at.isoformat(),
        finished_at=finished_at.isoformat(),
        duration_s=round((finished_at - started_at).total_seconds(), 3),
        complete=complete,
        target=loop_target(base),
        load=loop_load(base),
        slo=base.slo,
        grid=grid,
        runs=list(rows),
        points=points,
        findings=sweep_findings(grid, points, rows),
        counts=counts,
        verdict=verdict,  # type: ignore[arg-type]
        exit_code=exit_code,
    )
    sweep.summary = sweep_summary(sweep)
    return sweep


def sweep_findings(grid: SweepGrid, points: Sequence[SweepPoint], rows: Sequence[RunRow]) -> list[SweepFinding]:
    """Along each swept axis, for each value of the other: where every run held from, and where runs failed."""
    findings: list[SweepFinding] = []
    axes: list[tuple[str, Sequence[float | None]]] = []
    if grid.memory_bytes:
        axes.append(("memory_bytes", grid.cpus or [None]))
    if grid.cpus:
        axes.append(("cpus", grid.memory_bytes or [None]))
    for axis, others in axes:
        other_axis = "cpus" if axis == "memory_bytes" else "memory_bytes"
        for other in others:
            line = sorted(
                (p for p in points if getattr(p, other_axis) == other),
                key=lambda p: getattr(p, axis),
            )
            if not line:
                continue
            finding = SweepFinding(axis=axis, fixed=other)  # type: ignore[arg-type]
            for point in reversed(line):
                if point.verdict != "pass":
                    break
                finding.lowest_holding = getattr(point, axis)
            failing = [getattr(p, axis) for p in line if p.verdict == "fail"]
            finding.highest_failing = max(failing) if failing else None
            finding.oom_at = [
                getattr(p, axis)
                for p in line
                if any((r.oom_kills or 0) > 0 for r in rows if r.memory_bytes == p.memory_bytes and r.cpus == p.cpus)
            ]
            findings.append(finding)
    return findings


def _describe_axis_value(axis: str, value: float | None) -> str:
    from stackprobe.report.fmt import format_bytes

    if value is None:
        return "as declared"
    return format_bytes(int(value)) if axis == "memory_bytes" else f"{value:g} CPUs"


def sweep_summary(sweep: Sweep) -> list[str]:
    """Return what the sweep found, in sentences, for the console and the page."""
    counts = sweep.counts
    total = len(sweep.runs)
    tally = ", ".join(
        f"{counts[v]} {word}"
        for v, word in (
            ("pass", "passed"),
            ("fail", "failed"),
            ("inconclusive", "inconclusive"),
            ("error", "set-up errors"),
        )
        if counts.get(v)
    )
    lines = [f"{total} run{'s' if total != 1 else ''}: {tally or 'none made'}"]
    if not sweep.complete:
        lines.append("the sweep was stopped before its last run")
    for finding in sweep.findings:
        name = "memory" if finding.axis == "memory_bytes" else "CPU"
        other = "cpus" if finding.axis == "memory_bytes" else "memory_bytes"
        where = ""
        if finding.fixed is not None:
            other_name = "" if finding.axis == "memory_bytes" else "memory "
            where = f" (at {other_name}{_describe_axis_value(other, finding.fixed)})"
        if finding.lowest_holding is not None:
            held = _describe_axis_value(finding.axis, finding.lowest_holding)
            text = f"{name}{where}: every run passed from {held} up"
        else:
            text = f"{name}{where}: the highest limit swept did not pass in every run"
        if finding.highest_failing is not None:
            text += f"; the highest with a failed run: {_describe_axis_value(finding.axis, finding.highest_failing)}"
        if finding.oom_at:
            text += "; OOM kills at " + ", ".join(_describe_axis_value(finding.axis, v) for v in finding.oom_at)
        lines.append(text)
    return lines


def sweep_html(sweep: Sweep) -> str:
    """Return sweep.html's text."""
    from stackprobe.report.comparison_page import sweep_page

    return sweep_page(sweep)


def show_sweep(sweep: Sweep, console: Console) -> None:
    """Print the sweep's table and findings."""
    from stackprobe.report.comparison_console import render_sweep_console

    render_sweep_console(sweep, console)
