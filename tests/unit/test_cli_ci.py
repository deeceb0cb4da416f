"""`stackprobe compare`, `stackprobe report` and run's CI flags, from the command line as users type them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stackprobe import cli
from stackprobe.report import Report, load_report
from stackprobe.spec import RunSpec

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def stackprobe(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the stackprobe command in a subprocess, as CI would, and return what it printed and its exit code."""
    environ = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    environ.update({"COLUMNS": "120", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "stackprobe", *map(str, args)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stackprobe_here(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the command line in this process (no interpreter start-up): exit code, stdout, stderr."""
    code = cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def doctored(tmp_path: Path) -> Path:
    """The passing run with its p95 tripled and its peak memory up 20 %: a regression beyond the defaults."""
    data = json.loads((DATA / "report_pass.json").read_text())
    data["latency_ms"]["p95"] *= 3
    data["memory"]["peak_bytes"] = int(data["memory"]["peak_bytes"] * 1.2)
    path = tmp_path / "regressed" / "report.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_compare_passes_equal_reports_and_a_rerun_within_the_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = stackprobe_here(capsys, "compare", DATA / "report_pass.json", DATA / "report_pass.json")
    assert code == 0
    assert "WITHIN BOUNDS" in out
    code, out, _ = stackprobe_here(capsys, "compare", DATA / "report_pass.json", DATA / "report_pass_rerun.json")
    assert code == 0, out


def test_compare_fails_on_a_doctored_regression_naming_each_figure(doctored: Path, tmp_path: Path) -> None:
    result = stackprobe(
        "compare", DATA / "report_pass.json", doctored.parent, "--junit", tmp_path / "junit.xml", "--summary-md",
        tmp_path / "summary.md",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "REGRESSED" in result.stdout
    assert "regression against the base run: p95 30.0 ms against 10.0 ms" in result.stdout
    assert "regression against the base run: peak_memory" in result.stdout
    failed = [
        c.get("name")
        for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
        if c.find("failure") is not None
    ]
    assert failed == ["p95 within +10% of the base run", "peak_memory within +5% of the base run"]
    assert "| p95 | 10.0 ms | 30.0 ms | +200.0% |" in (tmp_path / "summary.md").read_text()


def test_compare_holds_only_the_figures_named_in_max_regression(
    doctored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = stackprobe_here(
        capsys, "compare", DATA / "report_pass.json", doctored, "--max-regression", "rps:-10%"
    )
    assert code == 0, out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-regression", "p95:ten"], "not a bound for p95"),
        (["--max-regression", "rps:+10%"], "rps regresses when it falls"),
    ],
)
def test_compare_with_bad_bounds_exits_2_with_a_message(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = stackprobe_here(capsys, "compare", DATA / "report_pass.json", DATA / "report_pass.json", *args)
    assert code == 2
    assert words in err


def test_compare_of_an_unreadable_or_mismatched_base_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = stackprobe_here(capsys, "compare", tmp_path, DATA / "report_pass.json")
    assert code == 2
    assert "no report.json there" in err
    code, _, err = stackprobe_here(capsys, "compare", DATA / "report_oom.json", DATA / "report_pass.json")
    assert code == 2
    assert "the base run was made differently: target service (users in the base run, app here)" in " ".join(
        err.split()
    )


def test_report_renders_the_page_and_console_again_and_exits_with_the_verdict(tmp_path: Path) -> None:
    shutil.copy(DATA / "report_oom.json", tmp_path / "report.json")
    result = stackprobe("report", tmp_path, "--junit", tmp_path / "junit.xml")
    assert result.returncode == 1, result.stderr
    assert "verdict: FAIL" in result.stdout
    assert "1 OOM kill" in result.stdout
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "probe-3f9a" in page
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "5"


def test_report_of_a_passing_run_exits_0_and_appends_the_github_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(DATA / "report_pass.json", tmp_path / "report.json")
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err = stackprobe_here(capsys, "report", tmp_path / "report.json")
    assert code == 0, err
    assert summary.read_text().startswith("### stackprobe stackprobe-12924-dc4865/app: pass")


def test_report_of_something_that_is_no_report_exits_2(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"schema_version": 2, "verdict": "maybe"}')
    result = stackprobe("report", tmp_path)
    assert result.returncode == 2
    assert "not a stackprobe report.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_run_parses_the_ci_flags_and_the_baseline_gate() -> None:
    args = cli.build_parser().parse_args(
        ["run", "--junit", "j.xml", "--summary-md", "s.md", "--baseline", "b.json", "--max-regression", "p95:10%"]
    )
    assert (args.junit, args.summary_md, args.baseline, args.max_regression) == (
        Path("j.xml"), Path("s.md"), Path("b.json"), "p95:10%",
    )  # fmt: skip


def test_the_baseline_gate_is_for_run_only() -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sweep", "--memory", "64m", "--baseline", "b.json"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--max-regression", "p95:10%"], "--max-regression needs --baseline"),
        (["--baseline", "nowhere.json"], "nowhere.json: no report.json there"),
        (["--baseline", str(DATA / "report_pass.json"), "--duration", "10s"], "duration in seconds (30 in the base"),
        (["--baseline", str(DATA / "report_pass.json"), "--max-regression", "p95:"], "expected METRIC:BOUND"),
    ],
)
def test_run_refuses_an_unusable_baseline_before_anything_starts(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["run", "-f", str(ROOT / "docker-compose.yml"), "--memory", "72m", "--duration", "30s", *args])
    assert code == cli.EXIT_USAGE
    assert words in capsys.readouterr().err


def test_run_applies_the_gate_before_the_report_is_written_and_then_writes_the_ci_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's part of a run: the stack and the load are not under test here, so run_probe returns a
    recorded report after calling the spec's after_report hook as the real one does before writing."""
    seen: list[Path] = []

    def recorded_run(spec: RunSpec, console: object, teardowns: object) -> Report:
        report = load_report(DATA / "report_pass_rerun.json")
        report.latency_ms.p95 = 40.0
        spec.after_report(report)
        seen.append(spec.out)
        return report

    import stackprobe.probe

    monkeypatch.setattr(stackprobe.probe, "run_probe", recorded_run)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    junit = tmp_path / "junit.xml"
    junit.write_text("<testsuite name='stale' tests='0' failures='0' errors='0'/>")
    code = cli.main(
        [
            "run", "-f", str(ROOT / "docker-compose.yml"), "--memory", "72m", "--duration", "30s",
            "--out", str(tmp_path / "out"), "--baseline", str(DATA / "report_pass.json"), "--junit", str(junit),
        ]
    )  # fmt: skip
    assert code == cli.EXIT_FAIL
    assert seen == [tmp_path / "out"]
    root = ET.parse(junit).getroot()
    assert root.get("name") != "stale"
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["p95 within +10% of the base run", "verdict"]
    assert "CI outputs:" in capsys.readouterr().out


def test_sweep_fit_and_grow_take_the_ci_flags() -> None:
    parser = cli.build_parser()
    for command in (["sweep", "--memory", "64m,96m"], ["fit", "--memory", "32m..128m"], ["grow", "--rows", "1k"]):
        args = parser.parse_args([*command, "--junit", "j.xml", "--summary-md", "s.md"])
        assert (args.junit, args.summary_md) == (Path("j.xml"), Path("s.md"))


def test_an_output_that_is_not_a_regular_file_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    shutil.copy(DATA / "report_pass.json", tmp_path / "report.json")
    code, _, err = stackprobe_here(capsys, "report", tmp_path, "--summary-md", fifo)
    assert code == 2
    assert "not a regular file" in err
    assert fifo.exists()
    assert not fifo.is_file()


@pytest.mark.parametrize("flag", ["--junit", "--summary-md"])
def test_an_output_that_is_the_commands_own_input_is_refused_and_the_input_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    base = tmp_path / "keep" / "report.json"
    base.parent.mkdir()
    shutil.copy(DATA / "report_pass.json", base)
    before = base.read_bytes()
    code, _, err = stackprobe_here(capsys, "compare", base.parent, DATA / "report_pass.json", flag, base)
    assert code == 2
    assert "reads or writes itself" in err
    code, _, _ = stackprobe_here(capsys, "report", base.parent, flag, base.parent / "report.html")
    assert code == 2
    assert base.read_bytes() == before


def test_a_summary_file_that_is_the_step_summary_keeps_earlier_steps_and_gets_the_summary_once(
    tmp_path: Path,
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("### an earlier step\n")
    shutil.copy(DATA / "report_pass.json", tmp_path / "report.json")
    run = stackprobe("report", tmp_path, "--summary-md", summary, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == 0, run.stderr
    text = summary.read_text()
    assert text.startswith("### an earlier step\n")
    assert text.count("### stackprobe") == 1


@pytest.mark.parametrize("content", ["[]", "null", '"a string"', '{"schema_version": 3, "memory": []}'])
def test_a_base_of_the_wrong_json_shape_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    base = tmp_path / "base.json"
    base.write_text(content)
    code, _, err = stackprobe_here(capsys, "compare", base, DATA / "report_pass.json")
    assert code == 2
    assert "not a stackprobe report.json" in err


def test_an_empty_out_folder_is_refused() -> None:
    with pytest.raises(SystemExit) as raised:
        cli.build_parser().parse_args(["run", "--out", ""])
    assert raised.value.code == 2
