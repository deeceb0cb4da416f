"""A project for the plugin's pytester tests: a compose file, a locustfile folder, and a prober that fakes Docker.

The fake replaces stackprobe.probe.run_probe only, so the plugin and stackprobe.api run as they are: the
marker's settings, the CLI's defaults and its checks all reach the RunSpec the fake records. It writes
report.json and report.html where a real run would, and judges by the memory asked: under 64 MiB the
service is "OOM-killed" and misses its SLO, otherwise it passes.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import stackprobe.cli

# In-process pytester runs drop the modules they imported when they end, and numpy (under scipy, which the
# prober uses) cannot be imported twice in one process: import the prober here, once, for all of them.
for _module in ("stackprobe.probe", *stackprobe.cli.COMMAND_MODULES):
    importlib.import_module(_module)

HERE = Path(__file__).resolve().parent
# A pytest plugin that prints, at the end of a session, which heavy modules that session imported.
MODULES_SEEN = "_modules_seen"

FAKE_PROBER = '''
import pytest

from stackprobe import probe
from stackprobe.report.model import Limits, Load, Report, Target

SPECS = []
FAIL_REASONS = [
    "1 OOM kill (the kernel's oom_kill counter)",
    "SLO not met: p95 < 200 ms (actual 850 ms)",
]


def fake_run_probe(spec, console, teardowns=None):
    SPECS.append(spec)
    oom = spec.memory_bytes is not None and spec.memory_bytes < 64 * 1024**2
    report = Report(
        target=Target(service=spec.service, project=f"stackprobe-fake-{len(SPECS)}"),
        load=Load(users=spec.users, duration_s=spec.duration_s),
        limits=Limits(memory_applied_bytes=spec.memory_bytes),
        oom_kills=1 if oom else 0,
        verdict="fail" if oom else "pass",
        reasons=list(FAIL_REASONS) if oom else [],
    )
    spec.out.mkdir(parents=True, exist_ok=True)
    (spec.out / "report.json").write_text(report.to_json())
    (spec.out / "report.html").write_text("<!doctype html><title>fake</title>")
    console.print(f"fake run of {spec.service}: verdict {report.verdict}")
    return report


@pytest.fixture(autouse=True)
def probe_specs(monkeypatch):
    """The RunSpecs the plugin handed to the prober in this test, in order."""
    monkeypatch.setattr(probe, "run_probe", fake_run_probe)
    SPECS.clear()
    return SPECS
'''


@pytest.fixture
def plugin_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder holding compose.yaml, loadtests/ and the fake prober's conftest.py."""
    pytester.makefile(".yaml", compose="services:\n  app:\n    image: example/app\n")
    (pytester.path / "loadtests").mkdir()
    (pytester.path / "loadtests" / "locustfile.py").write_text("# not run: the prober is a fake here\n")
    pytester.makeconftest(FAKE_PROBER)
    # stackprobe is already imported in this process, so pytest cannot rewrite the plugin's asserts and says so.
    pytester.makeini(
        "[pytest]\naddopts = -p no:cacheprovider\n"
        "filterwarnings =\n    error\n"
        "    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning\n"
    )
    return pytester


@pytest.fixture
def modules_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Arguments that load the _modules_seen plugin into a pytest subprocess."""
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    return ["-p", MODULES_SEEN]
