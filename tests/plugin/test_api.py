"""stackprobe.api: settings turned into the RunSpec `stackprobe run` would build, and verdict checks (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe import api, probe
from stackprobe.report.model import Limits, Load, Report, Target
from stackprobe.spec import RunSpec, UsageError
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list[RunSpec]:
    """The RunSpecs api.run hands to the prober, which is replaced by one that returns an empty report."""
    seen: list[RunSpec] = []

    def fake_run_probe(spec: RunSpec, console: object, teardowns: object = None) -> Report:
        seen.append(spec)
        return Report(verdict="pass")

    monkeypatch.setattr(probe, "run_probe", fake_run_probe)
    return seen


def test_run_builds_the_spec_stackprobe_run_would_from_the_same_settings(specs: list[RunSpec], tmp_path: Path) -> None:
    api.run(COMPOSE, memory={"app": "128m", "db": 268435456}, users=5, duration=12, warmup="2s", out=tmp_path)
    spec = specs[0]
    assert spec.compose_files == (COMPOSE,)
    assert (spec.memory_bytes, spec.other_memory) == (128 * 1024**2, {"db": 256 * 1024**2})
    assert (spec.users, spec.spawn_rate, spec.duration_s, spec.warmup_s) == (5, 10.0, 12.0, 2.0)
    assert spec.locustfile == ROOT / "loadtests"  # the CLI's default: loadtests/ beside the stack
    assert (spec.slo, spec.out, spec.keep_up, spec.build) == ("p95<200ms,errors<1%", tmp_path, False, True)


def test_run_with_a_rate_takes_the_clis_pool_of_users(specs: list[RunSpec], tmp_path: Path) -> None:
    api.run([str(COMPOSE)], rate=50, out=tmp_path)
    assert (specs[0].rate, specs[0].users, specs[0].spawn_rate) == (50.0, 50, 50.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"memory": "12x"}, "not a size: '12x'"),
        ({"memory": 1.5}, "memory=1.5: a size is text like '128m' or a number of bytes"),
        ({"users": 2.5}, "users=2.5: expected a whole number"),
        ({"cpus": "half"}, "cpus='half': expected a number"),
        ({"duration": None}, "duration=None: a duration is text like '30s' or a number of seconds"),
        ({"memory": {"app": "128m", "web": "1m"}}, "memory limit '1m' is below the engine's minimum of 6 MiB"),
        ({"compose_files": "missing.yaml"}, "compose file not found: missing.yaml"),
        ({"service": ["app"]}, ": expected text"),
        ({"profiles": "tools"}, "profiles='tools': expected a list of profile names"),
    ],
)
def test_a_bad_setting_raises_usage_error_before_anything_runs(
    specs: list[RunSpec], tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        api.run(**{"compose_files": COMPOSE, "out": tmp_path, **settings})  # type: ignore[arg-type]
    assert specs == []


def _report(verdict: str, reasons: list[str]) -> Report:
    return Report(
        target=Target(service="app"),
        load=Load(users=20, duration_s=30),
        limits=Limits(memory_applied_bytes=64 * 1024**2),
        verdict=verdict,  # type: ignore[arg-type]
        reasons=reasons,
    )


def test_assert_verdict_names_the_verdict_every_reason_and_the_report() -> None:
    report = _report("inconclusive", ["inconclusive: the event stream did not cover the run", "no request made"])
    with pytest.raises(AssertionError) as caught:
        api.assert_verdict(report, report_dir=Path("/reports/run-1"))
    assert str(caught.value) == (
        "stackprobe verdict 'inconclusive', expected 'pass' (service app, memory limit 64 MiB, 20 users for 30 s)\n"
        "reasons:\n"
        "  - inconclusive: the event stream did not cover the run\n"
        "  - no request made\n"
        "report: /reports/run-1/report.html (and report.json beside it)"
    )


def test_assert_verdict_passes_when_the_verdict_is_one_expected() -> None:
    api.assert_verdict(_report("pass", []))
    api.assert_verdict(_report("fail", ["1 OOM kill"]), "fail", "inconclusive")


def test_assert_verdict_refuses_a_verdict_that_does_not_exist() -> None:
    with pytest.raises(UsageError, match="not a verdict: 'passed'"):
        api.assert_verdict(_report("pass", []), "passed")  # type: ignore[arg-type]
