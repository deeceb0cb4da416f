"""Faults under load on the bundled stack: a schedule of a kill, a database restart and a pause, each
recovered from, explained and recorded, with no acknowledged write lost and the service serving after."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.probe.conftest import ProbeRun

pytestmark = pytest.mark.probe

SCHEMA = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())
# Each fault leaves its service time to recover plus a 5-s span before the next: a database restart at 4 s
# (once Locust sends), a pause from 15 s to 17 s, and last a kill at 24 s: after it the app is refused
# connections for 5-10 s on a busy 2-core machine (it starts again, then its port answers).
SCHEDULE = "restart db@4s; pause db@15s for 2s; kill app@24s"
RECOVERY_S = 15


def _explain(run: ProbeRun) -> str:
    return f"exit {run.exit_code}\n--- stdout ---\n{run.stdout[-4000:]}\n--- stderr ---\n{run.stderr[-3000:]}"


def test_a_kill_a_database_restart_and_a_pause_are_recovered_from_with_no_write_lost(run_stackprobe) -> None:
    run = run_stackprobe(
        "run", "--users", "10", "--spawn-rate", "10", "--duration", "45s", "--slo", "errors<1%",
        "--fault", SCHEDULE, "--recovery", f"{RECOVERY_S}s", "--read-each-write",
    )  # fmt: skip
    report = run.report
    jsonschema.validate(report, SCHEMA)
    faults = {f["action"]: f for f in report["faults"]}
    assert list(faults) == ["restart", "pause", "kill"], _explain(run)
    kill, restart, pause = faults["kill"], faults["restart"], faults["pause"]
    assert [(f["service"], f["at"], f["for"], f["done"], f["error"]) for f in report["faults"]] == [
        ("db", 4.0, None, True, None),
        ("db", 15.0, 2.0, True, None),
        ("app", 24.0, None, True, None),
    ], _explain(run)
    for fault in report["faults"]:
        assert fault["at"] <= fault["started"] < fault["at"] + 1.0
        recovery = fault["recovery"]
        assert recovery["status"] == "recovered", (fault, _explain(run))
        assert 0 <= recovery["recovered_s"] <= RECOVERY_S
        assert recovery["first_success_s"] is not None
        assert recovery["requests"] > 0, fault
    # The kill went to PID 1 from the host, so the app's restart policy (on-failure) brought it back: the
    # restart is explained, and the recovery is timed from the kill.
    assert (kill["signal"], kill["sent_via"], kill["recovery"]["reference"]) == ("SIGKILL", "host", "start")
    assert (report["restarts"], report["fault_effects"]["restarts_explained"]) == (1, 1)
    assert kill["recovery"]["errors_to_recovery"] > 0
    # docker restart stops then starts PostgreSQL: it lasts a moment; the pause lasts as scheduled and is
    # timed from its end.
    assert restart["ended"] > restart["started"]
    assert pause["undone_by"] == "schedule"
    # Undone at its scheduled end (at + for, on the load's clock), however long `docker pause` took to begin.
    assert pause["ended"] >= pause["at"] + 2.0
    assert pause["ended"] > pause["started"]
    assert (pause["recovery"]["reference"], pause["recovery"]["from_t"]) == ("end", pause["ended"])
    # Errors inside the faults' windows are left out of the SLO, which holds outside them.
    assert report["slo"]["excluded"]
    assert report["slo"]["passed"], _explain(run)
    # The service serves after the last fault: the last windows hold successes, and every write the load
    # had acknowledged is read back by the audit.
    load = report["series"]["load"]
    assert sum(r - f for r, f in zip(load["rps"][-6:-1], load["failures_per_s"][-6:-1], strict=True)) > 0
    writes = report["writes"]
    assert writes["acknowledged"] > 0
    assert writes["lost"] == 0, writes
    # --read-each-write: every write was read back alone, the listing the locustfile declares left aside.
    assert writes["listing"] is None
    assert writes["verified"] == writes["acknowledged"], writes
    assert (report["verdict"], run.exit_code) == ("pass", 0), _explain(run)
    assert "Faults (recovery allowance 15 s)" in run.stdout
