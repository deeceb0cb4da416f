"""STACKPROBE_DEBUG_CPU: the prober's own CPU by thread, threads that ended before the report included."""

from __future__ import annotations

import threading
import time

import pytest

from stackprobe import cpu_debug
from stackprobe.cpu_debug import CpuLedger, kind


def _burn(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def test_a_thread_that_ended_before_the_report_is_counted_whole_under_its_kind() -> None:
    ledger = CpuLedger()
    ledger.install()
    try:
        worker = threading.Thread(target=_burn, args=(0.05,), name="stackprobe-audit-3")
        worker.start()
        worker.join()
    finally:
        ledger.uninstall()
    spent, count = ledger.threads()["stackprobe-audit-3"]
    assert count == 1
    assert 0.05 <= spent < 1.0
    assert any(line.endswith("stackprobe-audit-*") for line in ledger.lines())


def test_the_main_threads_share_starts_with_the_ledger_and_phases_split_it() -> None:
    ledger = CpuLedger()
    ledger.phase("first")
    _burn(0.03)
    ledger.phase("second")
    spent, _ = ledger.threads()["MainThread"]
    assert 0.03 <= spent < time.thread_time()  # not the process's whole life
    phases = [line.split() for line in ledger.lines() if line.endswith(("first", "second"))]
    assert [row[-1] for row in phases] == ["first", "second"]
    assert float(phases[0][1]) >= 0.03  # the main thread's CPU in the first phase


@pytest.mark.parametrize(
    ("label", "folded"),
    [
        ("stackprobe-stats-stackprobe-1-ab12-app-1", "stackprobe-stats-*"),
        ("stackprobe-events-tail-stackprobe-1-ab12", "stackprobe-events-tail-*"),
        ("stackprobe-events-stackprobe-1-ab12", "stackprobe-events-*"),
        ("stackprobe-audit-12", "stackprobe-audit-*"),
        ("stackprobe-kmsg", "stackprobe-kmsg"),
        ("MainThread", "MainThread"),
    ],
)
def test_thread_names_that_vary_by_run_fold_into_one_kind(label: str, folded: str) -> None:
    assert kind(label) == folded


def test_without_the_variable_nothing_is_patched_or_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(cpu_debug.ENV, raising=False)
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
    assert cpu_debug.begin("run") is None
    assert threading.Thread._bootstrap_inner is bootstrap  # type: ignore[attr-defined]
    cpu_debug.phase("load")
    cpu_debug.finish()
    assert capsys.readouterr().err == ""


def test_with_the_variable_the_breakdown_goes_to_stderr_and_the_patch_is_undone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(cpu_debug.ENV, "1")
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
    assert cpu_debug.begin("run") is not None
    cpu_debug.phase("load")
    cpu_debug.finish()
    assert threading.Thread._bootstrap_inner is bootstrap  # type: ignore[attr-defined]
    err = capsys.readouterr().err
    assert err.startswith("prober CPU: ")
    assert "by phase" in err
    assert err.rstrip().endswith("load")
