"""stackprobe's pytest plugin: a Compose stack under its limits as a fixture, and probe runs inside tests.

Loaded by pytest through the `pytest11` entry point once stackprobe is installed. Every setting is a
fixture a conftest.py can override (as pytest-docker does it):

    stackprobe_compose_files   the compose files (default: the one Compose finds in pytest's rootdir)
    stackprobe_project         the Compose project name of compose_stack (unique per session)
    stackprobe_memory          memory limits compose_stack applies, by service (default: the declared ones)
    compose_stack              the stack up, healthy, its limits verified; torn down at the session's end
    stackprobe                 stackprobe.run(...) -> Report, files under tmp_path; assert_pass(report)

A marker `@pytest.mark.stackprobe(memory="128m", users=20, ...)` gives a test's runs their settings, and
the options `--stackprobe-out DIR` and `--stackprobe-keep-up` where their files go and whether stacks
stay up. Collecting tests costs nothing: the prober and the Docker SDK are imported only when a fixture
is used, and Locust never enters this process (stackprobe runs it as a subprocess).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stackprobe import api
from stackprobe.spec import UsageError

if TYPE_CHECKING:
    import docker

    from stackprobe.limits import AppliedLimits
    from stackprobe.report.model import Report, Verdict
    from stackprobe.stack import Stack

__all__ = ["ComposeStack", "RunRecord", "StackError", "Stackprobe", "running_stack"]

# The settings stackprobe.run and the marker take: those of stackprobe.api.run, but for where the files go
# and the console (the fixture's to choose: tmp_path or --stackprobe-out, and pytest's captured stdout).
RUN_SETTINGS = tuple(name for name in inspect.signature(api.run).parameters if name not in ("out", "console"))
# Runs made by the `stackprobe` fixture in one test, for the report section of a failed test.
_RUNS = pytest.StashKey[list["RunRecord"]]()
# Stacks left running under --stackprobe-keep-up: (project, command that removes it), for the summary.
_LEFT_UP = pytest.StashKey[list[tuple[str, str]]]()


class StackError(RuntimeError):
    """compose_stack could not give a stack up under its limits; the message says why and what to fix."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackprobe", "stackprobe: Compose stacks under memory limits, probed with Locust")
    group.addoption(
        "--stackprobe-out",
        metavar="DIR",
        default=None,
        help="write each probe's report.json and report.html under DIR/<test>/run-N (default: the test's tmp_path)",
    )
    group.addoption(
        "--stackprobe-keep-up",
        action="store_true",
        default=False,
        help="leave compose_stack and every probe's stack running afterwards; the summary says how to remove them",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "stackprobe(**settings): settings of the test's stackprobe.run calls (memory='128m', users=20, "
        "duration='30s', slo='p95<200ms', ...); the call's own arguments win",
    )
    config.stash[_LEFT_UP] = []


@dataclass(frozen=True)
class ComposeStack:
    """A running stack: its project, URLs, containers and the limits in force.

    urls: service -> ["http://127.0.0.1:PORT", ...], one per replica, for each service whose file publishes a
        port (republished on a free port of 127.0.0.1, so a stack already up on the file's ports is no bother).
    containers: service -> container names. limits: service -> stackprobe.limits.AppliedLimits of its first
        container (memory_bytes and memswap_bytes in bytes, cpus in CPUs, memory_cgroup_bytes from the cgroup).
    stack: the stackprobe.stack.Stack, for more Compose commands (stack.run("exec", "-T", "db", ...), logs()).
    """

    project: str
    compose_files: tuple[Path, ...]
    urls: dict[str, list[str]]
    containers: dict[str, list[str]]
    limits: dict[str, AppliedLimits]
    stack: Stack = field(repr=False)

    def url(self, service: str) -> str:
        """Return the first URL of a service ("http://127.0.0.1:PORT"); KeyError names the services that have one."""
        try:
            return self.urls[service][0]
        except KeyError:
            published = ", ".join(self.urls) or "none"
            raise KeyError(f"service {service!r} publishes no port; these do: {published}") from None


@contextmanager
def running_stack(
    compose_files: Sequence[Path],
    project: str,
    memory: Mapping[str, str | int] | None = None,
    *,
    keep_up: bool = False,
    build: bool = True,
    wait_timeout_s: int = 240,
) -> Iterator[ComposeStack]:
    """Bring a stack up under its declared limits (and `memory`, bytes or "128m" by service); verify them; tear down.

    The limits are verified as a probe run verifies them (stackprobe.limits.compare_limits): HostConfig and
    the cgroup agree with the limit declared or given, swap held equal, for every service with a limit.
    Teardown (Stack.down: containers, networks, the project's own volumes and built images) runs on any
    exit unless keep_up. Raises StackError: no engine (or one that fails to answer), a file Compose rejects,
    a service that never got healthy (with its logs), a limit not in force, a volume shared beyond the
    project, or a teardown that left something behind (with the command that removes it).
    """
    import docker.errors

    from stackprobe.compose_model import AccessError, plan_access, shared_volumes
    from stackprobe.limits import read_applied_limits
    from stackprobe.probe import declared_limits
    from stackprobe.spec import parse_bytes
    from stackprobe.stack import ComposeError, ServiceOverride, Stack

    stack = Stack(compose_files, project=project)
    try:
        model = stack.config()
    except ComposeError as exc:
        raise StackError(f"Compose rejects the stack: {exc.stderr}") from None
    services: dict[str, Any] = model["services"]
    if memory is not None and not isinstance(memory, Mapping):
        raise StackError(f"stackprobe_memory must give limits by service, e.g. {{'app': '128m'}}, not {memory!r}")
    given = {name: parse_bytes(str(size)) for name, size in (memory or {}).items()}
    unknown = sorted(set(given) - set(services))
    if unknown:
        raise StackError(f"stackprobe_memory names services not in the stack: {', '.join(unknown)}")
    shared = shared_volumes(model)
    if shared:
        raise StackError(
            f"the stack mounts volumes that outlive its project and may hold your data: {', '.join(shared)}; "
            "give them no fixed name: (and no external: true) in the files compose_stack runs"
        )
    accesses = {}
    overrides = {}
    for name, service in services.items():
        ports = None
        if service.get("ports"):
            try:
                accesses[name] = plan_access(model, name)
                ports = accesses[name].ports
            except AccessError:
                pass  # a port stackprobe cannot republish (another service's network): left as the file has it
        if ports is not None or name in given:
            overrides[name] = ServiceOverride(
                memory_bytes=given.get(name),
                ports=ports,
                uses_deploy_limits=declared_limits(service).uses_deploy_limits,
            )
    stack.overrides = overrides
    client = _docker_client()
    error: BaseException | None = None
    try:
        stack.up(build=build, wait_timeout=wait_timeout_s)
        containers: dict[str, list[str]] = {}
        applied: dict[str, list[AppliedLimits]] = {}
        for name in services:
            read = [read_applied_limits(client, cid) for cid in stack.container_ids(name)]
            containers[name] = [limits.container for limits in read]
            applied[name] = read
        problems = limit_problems(services, given, applied)
        if problems:
            raise StackError("limits not in force as declared or given:\n  - " + "\n  - ".join(problems))
        yield ComposeStack(
            project=project,
            compose_files=tuple(Path(f) for f in compose_files),
            urls={name: stack.urls(access) for name, access in accesses.items()},
            containers=containers,
            limits={name: read[0] for name, read in applied.items() if read},
            stack=stack,
        )
    except ComposeError as exc:
        error = StackError(str(exc))
        raise error from None
    except docker.errors.DockerException as exc:
        error = StackError(f"the engine failed to say what runs: {exc}")
        raise error from None
    except BaseException as exc:
        error = exc
        raise
    finally:
        client.close()
        if not keep_up:
            teardown = stack.down()
            if not teardown.ok:
                left = f"{teardown.message}\nremove what is left with: {teardown.leftover_command}"
                if error is None:
                    raise StackError(left)
                error.add_note(f"and the teardown did not finish: {left}")


def limit_problems(
    services: Mapping[str, Any], given: Mapping[str, int], applied: Mapping[str, Sequence[AppliedLimits]]
) -> list[str]:
    """Say, per container, how the limits in force differ from those declared in `services` or `given` (bytes).

    services: the merged model's services; applied: service -> the limits read from each of its containers.
    A service with no memory or CPU limit declared or given is not checked; one whose cgroup could not be
    read is a problem (its limit is not verified), as it makes a probe run inconclusive.
    """
    from stackprobe.limits import compare_limits
    from stackprobe.probe import declared_limits

    problems: list[str] = []
    for name, service in services.items():
        declared = declared_limits(service)
        memory = given.get(name, declared.memory_bytes)
        if memory is None and declared.cpus is None:
            continue
        if not applied.get(name):
            problems.append(f"{name}: no container to read its limits from")
        for limits in applied.get(name, ()):
            if not limits.cgroup_read:
                why = "; ".join(limits.notes) or "no reason given"
                problems.append(f"{name} ({limits.container}): cgroup not read, so no limit is verified ({why})")
            _, found = compare_limits(memory, declared.cpus, limits)
            problems += [f"{name} ({limits.container}): {problem}" for problem in found]
    return problems


def _docker_client() -> docker.DockerClient:
    """Return a client of a running engine, or raise StackError saying how to get one."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise StackError(f"no Docker engine answers ({exc}); start one (or `make provision` in stackprobe)") from None
    return client


@dataclass(frozen=True)
class RunRecord:
    """One probe run made by the `stackprobe` fixture: its Report and the folder of its files."""

    report: Report
    out: Path

    @property
    def html(self) -> Path:
        """The run's report.html."""
        return self.out / "report.html"


class Stackprobe:
    """The `stackprobe` fixture: probe runs for one test, with the marker's settings, and checks of their verdicts."""

    def __init__(
        self,
        compose_files: Callable[[], Sequence[Path]],
        settings: Mapping[str, Any],
        out: Path,
        keep_up: bool,
        runs: list[RunRecord],
        left_up: list[tuple[str, str]],
        properties: list[tuple[str, object]],
    ) -> None:
        self._compose_files = compose_files
        self.settings = dict(settings)
        self.out = out
        self.keep_up = keep_up
        self.runs = runs
        self._left_up = left_up
        self._properties = properties

    def run(self, **settings: Any) -> Report:
        """Probe the stack once, as stackprobe.api.run does; return the Report, its files in out/run-N.

        settings: those of stackprobe.api.run (service, memory, cpus, users, spawn_rate, rate, duration,
        shape, locustfile, warmup, slo, ...), over the marker's and this fixture's (compose files,
        --stackprobe-keep-up). A setting the run cannot take fails the test with the reason, as does a run
        that could not be made (no engine, a stack that never got healthy). Judge the report with assert_pass.
        """
        __tracebackhide__ = True
        merged = {"keep_up": self.keep_up, **self.settings, **settings}
        if "compose_files" not in merged:
            merged["compose_files"] = self._compose_files()
        unknown = sorted(set(merged) - set(RUN_SETTINGS))
        if unknown:
            known = ", ".join(RUN_SETTINGS)
            pytest.fail(f"stackprobe.run: unknown setting {', '.join(unknown)} (known: {known})", pytrace=False)
        out = self.out / f"run-{len(self.runs) + 1}"
        from stackprobe.probe import SetupError

        try:
            report = api.run(**merged, out=out)
        except (UsageError, SetupError) as exc:
            pytest.fail(f"stackprobe.run: {exc}", pytrace=False)
        self.runs.append(RunRecord(report, out))
        # A property of the test in JUnit XML (--junitxml), where CI shows it.
        self._properties.append(("stackprobe_report", str(out / "report.html")))
        if merged["keep_up"] and report.target.project:
            from stackprobe.stack import removal_command

            self._left_up.append((report.target.project, removal_command(report.target.project)))
        return report

    @property
    def last(self) -> Report:
        """The last run's Report; pytest.fail when this test made no run yet."""
        if not self.runs:
            pytest.fail("stackprobe: no run was made in this test (call stackprobe.run first)", pytrace=False)
        return self.runs[-1].report

    def assert_pass(self, report: Report | None = None) -> None:
        """Fail the test unless the run passed (default: the last run); the message lists the verdict's reasons."""
        __tracebackhide__ = True
        self.assert_verdict(report, "pass")

    def assert_verdict(self, report: Report | None, *expected: Verdict) -> None:
        """Fail the test unless the run's verdict is one of `expected`; the message lists its reasons and report."""
        __tracebackhide__ = True
        report = report if report is not None else self.last
        where = next((r.out for r in self.runs if r.report is report), None)
        api.assert_verdict(report, *expected, report_dir=where)


@pytest.fixture(scope="session")
def stackprobe_compose_files(pytestconfig: pytest.Config) -> list[Path]:
    """The compose files of the stack under test: the one Compose would pick in pytest's rootdir."""
    from stackprobe.spec import find_compose_file

    try:
        return [find_compose_file(pytestconfig.rootpath)]
    except UsageError as exc:
        pytest.fail(f"stackprobe: {exc}; or override the stackprobe_compose_files fixture", pytrace=False)


@pytest.fixture(scope="session")
def stackprobe_project() -> str:
    """A Compose project name of compose_stack's own, unique to this session (stackprobe-pytest-PID-HEX)."""
    from stackprobe.stack import unique_project_name

    return unique_project_name("stackprobe-pytest")


@pytest.fixture(scope="session")
def stackprobe_memory() -> dict[str, str | int]:
    """Memory limits compose_stack applies, by service ({"app": "128m"}); empty: each service's declared limit."""
    return {}


@pytest.fixture(scope="session")
def compose_stack(
    pytestconfig: pytest.Config,
    stackprobe_compose_files: Sequence[Path],
    stackprobe_project: str,
    stackprobe_memory: Mapping[str, str | int],
) -> Iterator[ComposeStack]:
    """The stack up and healthy under its declared (or stackprobe_memory's) limits, verified; torn down at the end."""
    keep_up = bool(pytestconfig.getoption("stackprobe_keep_up"))
    try:
        with running_stack(
            [Path(f) for f in stackprobe_compose_files], stackprobe_project, stackprobe_memory, keep_up=keep_up
        ) as running:
            yield running
    except (StackError, UsageError, FileNotFoundError) as exc:
        pytest.fail("\n".join([f"compose_stack: {exc}", *getattr(exc, "__notes__", ())]), pytrace=False)
    finally:
        if keep_up:
            from stackprobe.stack import removal_command

            pytestconfig.stash[_LEFT_UP].append((stackprobe_project, removal_command(stackprobe_project)))


@pytest.fixture
def stackprobe(request: pytest.FixtureRequest) -> Stackprobe:
    """Probe runs in this test: stackprobe.run(memory="128m", users=20, ...) returns the Report."""
    settings: dict[str, Any] = {}
    # The closest marker wins: a test's own over its class's over its module's.
    for marker in reversed(list(request.node.iter_markers("stackprobe"))):
        if marker.args:
            pytest.fail("@pytest.mark.stackprobe takes settings by name, e.g. memory='128m'", pytrace=False)
        settings.update(marker.kwargs)
    config = request.config
    out_option = config.getoption("stackprobe_out")
    if out_option:
        out = config.invocation_params.dir / out_option / _folder_name(request.node.nodeid)
    else:
        out = request.getfixturevalue("tmp_path") / "stackprobe"
    runs: list[RunRecord] = []
    request.node.stash[_RUNS] = runs
    return Stackprobe(
        # Looked up only when a run names no compose_files of its own.
        compose_files=lambda: [Path(f) for f in request.getfixturevalue("stackprobe_compose_files")],
        settings=settings,
        out=out,
        keep_up=bool(config.getoption("stackprobe_keep_up")),
        runs=runs,
        left_up=config.stash[_LEFT_UP],
        properties=request.node.user_properties,
    )


def _folder_name(nodeid: str) -> str:
    """Turn a test's node id into one folder name ("tests/test_x.py::test_y[1]" -> "tests_test_x.py__test_y_1_")."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", nodeid)[-150:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the reports of a failed test's probe runs to its output, under "stackprobe reports"."""
    report = yield
    runs = item.stash.get(_RUNS, None)
    if runs and call.when == "call" and report.failed:
        lines = [
            f"run-{n} ({record.report.target.service}): verdict {record.report.verdict}; "
            f"report {record.html} (report.json beside it)"
            for n, record in enumerate(runs, start=1)
        ]
        report.sections.append(("stackprobe reports", "\n".join(lines)))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left = config.stash.get(_LEFT_UP, [])
    if not left:
        return
    terminalreporter.section("stackprobe: stacks left running (--stackprobe-keep-up)")
    for project, command in left:
        terminalreporter.write_line(f"{project}: remove it with: {command}")
