"""Write a run's checks as JUnit XML, the test report CI systems display (GitHub, GitLab, Jenkins).

One <testsuite> root (valid against the common junit-10.xsd of Jenkins' xunit plugin), one <testcase> per
check of stackprobe.report.checks: a failed check is a <failure>, one that could not be observed an <error>
(inconclusive), one that does not apply <skipped>. Each message names the figure and its source. Written
with junitparser.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

from junitparser import Error, Failure, Skipped, TestCase, TestSuite

from stackprobe.report.checks import Check, run_checks
from stackprobe.report.model import Report


def junit_suite(report: Report, report_html: Path | None = None) -> TestSuite:
    """Return the JUnit test suite of one run: a testcase per check, the run's facts as properties."""
    target = report.target
    properties = {
        "project": target.project,
        "service": target.service,
        "url": target.url,
        "verdict": report.verdict,
        "stackprobe_version": report.stackprobe_version,
    }
    if report_html is not None:
        properties["report_html"] = str(report_html)
    return build_suite(
        f"stackprobe run {target.project}/{target.service}",
        run_checks(report),
        properties=properties,
        seconds=report.duration_s,
        timestamp=report.started_at,
    )


def build_suite(
    name: str,
    checks: Iterable[Check],
    *,
    properties: dict[str, str],
    seconds: float,
    timestamp: str,
) -> TestSuite:
    """Return a suite of `checks` (classname "stackprobe.<group>"); `seconds` is the suite's time."""
    suite = TestSuite(name)
    # Properties first: some readers stop looking for them after the first testcase.
    for key, value in properties.items():
        suite.add_property(key, value)
    for check in checks:
        case = TestCase(check.name, classname=f"stackprobe.{check.group}", time=0.0)
        if check.status == "fail":
            case.result = [_result(Failure, check)]
        elif check.status == "inconclusive":
            case.result = [_result(Error, check)]
        elif check.status == "n/a":
            case.result = [Skipped(check.message)]
        else:
            case.system_out = check.message
        suite.add_testcase(case)
    suite.update_statistics()
    # After update_statistics, which sums the testcases' times: the checks are judged at once, the run took this.
    suite.time = round(seconds, 3)
    if timestamp:
        suite.timestamp = timestamp
    suite.hostname = socket.gethostname()
    return suite


def _result(kind: type[Failure] | type[Error], check: Check) -> Failure | Error:
    result = kind(check.message, check.status)
    result.text = check.message
    return result


def write_suite(suite: TestSuite, path: str | Path) -> Path:
    """Write a suite as a JUnit XML file (its parent folders made), and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suite.write(str(target), pretty=True)
    return target


def render_junit(report: Report, path: str | Path, report_html: Path | None = None) -> Path:
    """Write one run's JUnit XML to `path` and return it."""
    return write_suite(junit_suite(report, report_html), path)
