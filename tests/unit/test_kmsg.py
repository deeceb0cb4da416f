"""The kernel's log of OOM kills: /dev/kmsg records parsed into the cgroup each kill was charged to."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.kmsg import KernelLog, KernelOomKill, parse_record

CGROUPFS = (
    "6,73402,14194555796,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=fe13a6,mems_allowed=0,"
    "oom_memcg=/docker/fe13a6,task_memcg=/docker/fe13a6,task=python3,pid=4242,uid=0"
)
SYSTEMD = (
    "6,9,5000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
    "oom_memcg=/system.slice/docker-5e2f0c.scope,task_memcg=/system.slice/docker-5e2f0c.scope,task=node,pid=7,uid=1000"
)


@pytest.mark.parametrize(
    ("record", "kill"),
    [
        (CGROUPFS, KernelOomKill(at=14194.555796, memcg="/docker/fe13a6", pid=4242)),
        (SYSTEMD, KernelOomKill(at=5.0, memcg="/system.slice/docker-5e2f0c.scope", pid=7)),
    ],
)
def test_an_oom_kill_line_gives_its_time_cgroup_and_pid(record: str, kill: KernelOomKill) -> None:
    assert parse_record(record) == kill


@pytest.mark.parametrize(
    "record",
    [
        "3,73403,14194555801,-;Memory cgroup out of memory: Killed process 4242 (python3) total-vm:1kB",
        "6,1,2,-;eth0: link up",
        "oom-kill:task_memcg=/docker/x,pid=1",  # no record header
        "6,1,soon,-;oom-kill:task_memcg=/docker/x,task=a,pid=1,uid=0",  # no timestamp
    ],
)
def test_other_or_malformed_records_are_not_kills(record: str) -> None:
    assert parse_record(record) is None


def test_a_log_that_cannot_be_opened_says_why_and_counts_nothing(tmp_path: Path) -> None:
    log = KernelLog(str(tmp_path / "no-such-kmsg"))
    log.start()
    log.stop()
    assert not log.available
    assert log.error is not None
    assert "No such file" in log.error
    assert log.kills_for("fe13a6") == []
