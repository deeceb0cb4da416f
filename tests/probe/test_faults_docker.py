"""The fault executor against real containers: each action done and undone, a kill the restart policy
answers, a squeeze the kernel refuses or applies, and every fault undone when the run is interrupted."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container

from stackprobe.faults import FaultExecutor, FaultOutcome, parse_schedule
from tests.probe.test_watch_docker import Project

pytestmark = pytest.mark.probe

MIB = 1024 * 1024
SLEEP = ["python3", "-c", "import time\nwhile True: time.sleep(1)"]
# Holds 40 MiB of anonymous memory, which a cgroup without swap cannot reclaim.
HOLD_40M = ["python3", "-c", "import time\nb = bytearray(40 * 2**20)\nwhile True: time.sleep(1)"]
STRICT_64M = {"mem_limit": "64m", "memswap_limit": "64m"}


@pytest.fixture
def project(client: docker.DockerClient, python_image: str) -> Iterator[Project]:
    """Return a fresh Compose-labelled project; its containers and network are removed whatever happens."""
    made = Project(client, python_image)
    made.name = f"spfault{secrets.token_hex(4)}"
    try:
        yield made
    finally:
        made.remove_all()
        for network in client.networks.list(names=[f"{made.name}_default"]):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


def run_schedule(client: docker.DockerClient, project: Project, schedule: str, seconds: float) -> list[FaultOutcome]:
    """Run a schedule from now for `seconds`, then stop it as the load's end does."""
    executor = FaultExecutor(client, project.name, parse_schedule([schedule]), t0=time.monotonic())
    executor.start()
    time.sleep(seconds)
    return executor.stop("load end")


def fresh(container: Container) -> Container:
    container.reload()
    return container


def test_each_action_is_done_and_undone_on_the_projects_own_containers(
    client: docker.DockerClient, project: Project
) -> None:
    network = client.networks.create(f"{project.name}_default", labels={"com.docker.compose.project": project.name})
    paused = project.run("paused", SLEEP)
    cut = project.run("cut", SLEEP, network=network.name)
    network.disconnect(cut)
    network.connect(cut, aliases=["cut-alias"])
    stopped = project.run("stopped", SLEEP, stop_signal="SIGKILL")
    killed = project.run("killed", SLEEP, restart_policy={"Name": "on-failure"})
    outcomes = run_schedule(
        client,
        project,
        "pause paused@0.2s for 1s; disconnect cut@0.2s for 1s; stop stopped@0.2s for 1s; kill killed@0.2s",
        2.5,
    )
    assert [(o.fault.action, o.done, o.error) for o in outcomes] == [
        ("pause", True, None),
        ("disconnect", True, None),
        ("stop", True, None),
        ("kill", True, None),
    ]
    for outcome in outcomes:
        assert outcome.started_t is not None
        assert outcome.ended_t is not None
        assert 0.2 <= outcome.started_t < 1.0
        if outcome.fault.lasting:
            assert outcome.undone_by == "schedule"
            assert outcome.ended_t >= 1.2
    assert fresh(paused).status == "running"
    endpoint = fresh(cut).attrs["NetworkSettings"]["Networks"][network.name]
    assert "cut-alias" in endpoint["Aliases"]
    assert fresh(stopped).status == "running"
    # A SIGKILL from the host is a crash to the engine: on-failure restarts it.
    assert outcomes[3].sent_via == "host"
    deadline = time.monotonic() + 10
    while fresh(killed).attrs["RestartCount"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed.attrs["RestartCount"] == 1
    assert killed.attrs["State"]["ExitCode"] == 0 or killed.status == "running"


def test_an_interrupted_run_undoes_a_fault_meant_to_last_to_the_end_and_skips_what_had_not_started(
    client: docker.DockerClient, project: Project
) -> None:
    paused = project.run("paused", SLEEP)
    executor = FaultExecutor(
        client, project.name, parse_schedule(["pause paused@0.1s; kill paused@30s"]), t0=time.monotonic()
    )
    executor.start()
    deadline = time.monotonic() + 5
    while fresh(paused).status != "paused" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert paused.status == "paused"
    pause, kill = executor.stop("interrupted")
    assert (pause.done, pause.undone_by) == (True, "interrupted")
    assert fresh(paused).status == "running"
    assert (kill.done, kill.started_t, kill.error) == (False, None, "not done: the run was interrupted first")


def test_a_squeeze_below_what_the_service_holds_meets_the_kernel_and_a_release_restores_the_limit(
    client: docker.DockerClient, project: Project
) -> None:
    holder = project.run("holder", HOLD_40M, **STRICT_64M)
    roomy = project.run("roomy", SLEEP, **STRICT_64M)
    time.sleep(1.0)  # the holder has allocated its 40 MiB
    executor = FaultExecutor(
        client,
        project.name,
        parse_schedule(["squeeze holder@0.1s to 24m for 1s; squeeze roomy@0.1s to 48m for 1.5s"]),
        t0=time.monotonic(),
    )
    executor.start()
    time.sleep(0.9)
    # While the roomy one is squeezed, the engine holds the new limit with swap equal to it.
    host = fresh(roomy).attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (48 * MIB, 48 * MIB)
    time.sleep(1.5)
    squeezed_holder, squeezed_roomy = executor.stop("load end")
    assert (squeezed_roomy.done, squeezed_roomy.error, squeezed_roomy.limit_before_bytes) == (True, None, 64 * MIB)
    for container in (holder, roomy):
        host = fresh(container).attrs["HostConfig"]
        assert (host["Memory"], host["MemorySwap"]) == (64 * MIB, 64 * MIB), container.name
    info = client.info()
    if info.get("CgroupVersion") == "1":
        # cgroup v1 cannot reclaim 40 MiB of anonymous memory without swap: it refuses the limit.
        assert squeezed_holder.refused
        assert not squeezed_holder.done
        assert squeezed_holder.error
        assert fresh(holder).status == "running"
    else:
        # cgroup v2 reclaims what it can, then OOM-kills.
        assert fresh(holder).attrs["State"]["OOMKilled"] or holder.status != "running"
