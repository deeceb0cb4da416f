"""The override file, the Compose command lines and teardown, without running Compose or Docker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from stackprobe.stack import ServiceOverride, Stack, free_ports, removal_command, to_yaml, unique_project_name


def test_override_holds_swap_equal_to_the_memory_limit() -> None:
    service = ServiceOverride(memory_bytes=134217728).to_compose()
    assert service == {"mem_limit": 134217728, "memswap_limit": 134217728}


def test_override_sets_deploy_limits_when_the_file_uses_them() -> None:
    service = ServiceOverride(memory_bytes=67108864, cpus=0.5, uses_deploy_limits=True).to_compose()
    assert service["deploy"] == {"resources": {"limits": {"memory": "67108864", "cpus": "0.5"}}}
    assert service["mem_limit"] == service["memswap_limit"] == 67108864


def test_published_ports_replace_the_files_own_with_loopback_ephemeral_ones() -> None:
    text = to_yaml({"services": {"app": ServiceOverride(publish_ports=[5000]).to_compose()}})
    assert text == 'services:\n  app:\n    ports: !override\n      - "127.0.0.1::5000"\n'


def test_published_ports_with_a_host_port_keep_it() -> None:
    override = ServiceOverride(publish_ports=[5000, 8080], host_ports={5000: 41234})
    assert override.to_compose()["ports"] == ["127.0.0.1:41234:5000", "127.0.0.1::8080"]


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_yaml_quotes_strings_and_keeps_numbers() -> None:
    assert to_yaml({"a": "1", "b": 1, "c": None, "d": True, "e": []}) == 'a: "1"\nb: 1\nc: null\nd: true\ne: []\n'


def test_project_names_are_unique() -> None:
    assert len({unique_project_name() for _ in range(50)}) == 50


def test_command_names_project_files_override_and_profiles(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    stack = Stack([compose], project="p1", overrides={"app": ServiceOverride(memory_bytes=67108864)}, profiles=["web"])
    stack.env = {"PATH": str(tmp_path / "no-docker-here")}  # down() below must not reach a real engine
    try:
        argv = stack.command("up")
        override = stack.override_file()
        assert override is not None
        assert argv == [
            "docker", "compose", "--project-directory", str(tmp_path), "--project-name", "p1",
            "--file", str(compose), "--file", str(override), "--profile", "web", "up",
        ]  # fmt: skip
        assert "memswap_limit: 67108864" in override.read_text()
    finally:
        stack.down()  # also removes the override's folder, even though nothing was started
    assert not override.exists()


def test_missing_compose_file_is_reported_before_compose_runs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="compose file not found"):
        Stack([tmp_path / "nope.yml"])


def test_ports_given_whole_replace_the_files_own() -> None:
    override = ServiceOverride(ports=["127.0.0.1:41000-41001:8000"], publish_ports=[5000])
    text = to_yaml({"services": {"web": override.to_compose()}})
    assert text == 'services:\n  web:\n    ports: !override\n      - "127.0.0.1:41000-41001:8000"\n'


def test_no_ports_given_leaves_the_files_own_alone() -> None:
    assert "ports" not in ServiceOverride(memory_bytes=67108864, ports=None).to_compose()


def test_command_takes_profiles_for_one_call_and_can_leave_the_override_out(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    stack = Stack([compose], project="p1", overrides={"app": ServiceOverride(cpus=1)}, profiles=["web"])
    try:
        argv = stack.command("config", profiles=["*"], override=False)
        assert argv == [
            "docker", "compose", "--project-directory", str(tmp_path), "--project-name", "p1",
            "--file", str(compose), "--profile", "*", "config",
        ]  # fmt: skip
    finally:
        shutil.rmtree(stack.override_file().parent)  # type: ignore[union-attr]


# --- teardown, against a stand-in `docker` that records each call and answers from a script ----------------

FAKE_DOCKER = """#!{python}
import json, os, signal, sys, time
from pathlib import Path

here = Path(__file__).parent
argv = sys.argv[1:]
with open(here / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": argv, "sid": os.getsid(0)}}) + "\\n")
if argv[0] == "compose":
    i = 1
    while argv[i].startswith("--"):
        i += 2
    key = "compose " + argv[i]
else:
    key = " ".join(argv[:2])
replies = json.loads((here / "script.json").read_text()).get(key, [{{}}])
counter = here / ("count-" + key.replace(" ", "-"))
n = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(n + 1))
reply = replies[min(n, len(replies) - 1)]
for name in reply.get("signal_parent", []):
    os.kill(os.getppid(), getattr(signal, name))
time.sleep(reply.get("sleep", 0))
sys.stdout.write(reply.get("stdout", ""))
sys.stderr.write(reply.get("stderr", ""))
sys.exit(reply.get("code", 0))
"""


class FakeDocker:
    """A `docker` executable on a PATH of its own: `script` says what each command answers, `calls` what ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        executable = folder / "docker"
        executable.write_text(FAKE_DOCKER.format(python=sys.executable))
        executable.chmod(0o755)
        self.script({})

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": str(self.folder)}

    def script(self, replies: dict[str, list[dict[str, Any]]]) -> None:
        (self.folder / "script.json").write_text(json.dumps(replies))

    def calls(self) -> list[dict[str, Any]]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


@pytest.fixture
def fake_docker(tmp_path: Path) -> FakeDocker:
    return FakeDocker(tmp_path / "bin")


def _stack(tmp_path: Path, fake: FakeDocker, project: str | None = "stackprobe-1-abc") -> Stack:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    return Stack([compose], project=project, overrides={"app": ServiceOverride(cpus=1)}, env=fake.env)


def _after_compose(argv: list[str]) -> list[str]:
    """The compose subcommand and its arguments, without the global options before it."""
    i = 1
    while argv[i].startswith("--"):
        i += 2
    return argv[i:]


P = "stackprobe-1-abc"
LABEL = f"label=com.docker.compose.project={P}"


def test_down_removes_only_what_is_named_after_the_project(tmp_path: Path, fake_docker: FakeDocker) -> None:
    fake_docker.script({
        # Labelled with the project: one named after it, one a fixed name the run created.
        "volume ls": [{"stdout": f"{P}_db-data\npgdata\n"}, {"stdout": "pgdata\n"}],
        # Built by Compose and named after the project, and the file's own `image:` tag (labelled too).
        "image ls": [{"stdout": f"{P}-worker:latest\nacme/app:dev\n"}, {"stdout": "acme/app:dev\n"}],
    })  # fmt: skip
    stack = _stack(tmp_path, fake_docker)
    override_dir = stack.override_file().parent  # type: ignore[union-attr]

    teardown = stack.down()

    argvs = fake_docker.argvs()
    compose = [_after_compose(a) for a in argvs if a[0] == "compose"]
    assert compose == [["rm", "--stop", "--force", "--volumes"], ["down", "--remove-orphans", "--timeout", "10"]]
    assert ["volume", "rm", f"{P}_db-data"] in argvs
    assert ["image", "rm", f"{P}-worker:latest"] in argvs
    removals = [a for a in argvs if a[1] == "rm"]
    assert not any("pgdata" in a or "acme/app:dev" in a for a in removals)
    assert ["volume", "ls", "--quiet", "--filter", LABEL] in argvs
    assert teardown == stack.teardown
    assert teardown.ok, teardown
    assert teardown.removed_volumes == (f"{P}_db-data",)
    assert teardown.removed_images == (f"{P}-worker:latest",)
    assert teardown.kept_volumes == ("pgdata",)
    assert "pgdata" in teardown.message
    assert not override_dir.exists()


def test_down_never_passes_volumes_or_rmi_to_compose(tmp_path: Path, fake_docker: FakeDocker) -> None:
    _stack(tmp_path, fake_docker).down()
    for argv in fake_docker.argvs():
        if argv[0] == "compose" and "down" in argv:
            assert "--volumes" not in argv
            assert "-v" not in argv
            assert "--rmi" not in argv


def test_failed_down_says_so_in_composes_words_with_the_command_that_finishes_it(
    tmp_path: Path, fake_docker: FakeDocker
) -> None:
    fake_docker.script({
        "compose down": [{"code": 1, "stderr": "Network x Removing\nError response from daemon: network in use\n"}],
        "network ls": [{"stdout": "0a1b2c\n"}],
        "volume ls": [{"stdout": f"{P}_db-data\n"}],
        "volume rm": [{"code": 1, "stderr": f"Error response from daemon: remove {P}_db-data: volume is in use\n"}],
    })  # fmt: skip
    stack = _stack(tmp_path, fake_docker)
    override_dir = stack.override_file().parent  # type: ignore[union-attr]

    teardown = stack.down()

    assert not teardown.ok
    assert "Error response from daemon: network in use" in teardown.message
    assert "volume is in use" in teardown.message
    assert "1 network(s)" in teardown.message
    assert teardown.leftover_command == (
        f"docker network ls -q --filter {LABEL} | xargs -r docker network rm; docker volume rm {P}_db-data"
    )
    assert teardown.removed_volumes == ()
    assert not override_dir.exists()


def test_down_without_docker_is_not_ok_and_names_the_command_for_everything(tmp_path: Path) -> None:
    stack = _stack(tmp_path, FakeDocker(tmp_path / "unused"))
    stack.env = {"PATH": str(tmp_path / "nowhere")}
    override_dir = stack.override_file().parent  # type: ignore[union-attr]

    teardown = stack.down()

    assert not teardown.ok
    assert "cannot run docker" in teardown.message
    assert f"docker ps -aq --filter {LABEL} | xargs -r docker rm -f -v" in teardown.leftover_command
    assert "pgdata" not in teardown.leftover_command
    # Volumes by the same rule as down's own: labelled with the project and named after it.
    assert f"grep -F -- {P} | xargs -r docker volume rm" in teardown.leftover_command
    assert not override_dir.exists()


def test_down_under_composes_default_project_name_keeps_volumes_and_images(
    tmp_path: Path, fake_docker: FakeDocker
) -> None:
    fake_docker.script({"compose config": [{"stdout": json.dumps({"name": "myapp", "services": {}})}]})
    teardown = _stack(tmp_path, fake_docker, project=None).down()
    argvs = fake_docker.argvs()
    assert teardown.ok, teardown
    assert ["ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project=myapp"] in argvs
    assert not [a for a in argvs if a[0] in {"volume", "image"}]


def test_down_runs_every_command_in_a_session_of_its_own(tmp_path: Path, fake_docker: FakeDocker) -> None:
    _stack(tmp_path, fake_docker).down()
    sessions = {call["sid"] for call in fake_docker.calls()}
    assert os.getsid(0) not in sessions


def test_ctrl_c_and_sigterm_during_down_wait_for_it_then_arrive(tmp_path: Path, fake_docker: FakeDocker) -> None:
    # Both signals come while Compose stops the containers (a second Ctrl-C, a runner's repeated SIGTERM).
    fake_docker.script({"compose rm": [{"signal_parent": ["SIGINT", "SIGTERM"], "sleep": 0.3}]})
    terms: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        terms.append(signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    stack = _stack(tmp_path, fake_docker)
    try:
        with pytest.raises(KeyboardInterrupt):
            stack.down()
        handler_after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stack.teardown is not None
    assert stack.teardown.ok  # teardown ran to its end before the Ctrl-C was delivered
    assert fake_docker.argvs()[-1][:2] == ["image", "ls"]  # its last look, after Compose's down
    assert terms == [signal.SIGTERM]  # delivered once, to the handler in place before down
    assert handler_after is on_sigterm
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_step_that_hangs_is_killed_and_reported(tmp_path: Path, fake_docker: FakeDocker) -> None:
    fake_docker.script({"compose rm": [{"sleep": 30}], "ps --all": [{"stdout": "0a1b2c\n"}]})
    teardown = _stack(tmp_path, fake_docker).down(timeout_s=0.5)
    assert not teardown.ok
    assert "docker compose rm:" in teardown.message
    assert "killed after 0.5 s" in teardown.message
    assert "1 container(s)" in teardown.message


def test_removal_command_for_a_stack_left_up_follows_downs_rules() -> None:
    assert removal_command(P).split("; ") == [
        f"docker ps -aq --filter {LABEL} | xargs -r docker rm -f -v",
        f"docker network ls -q --filter {LABEL} | xargs -r docker network rm",
        f"docker volume ls -q --filter {LABEL} | grep -F -- {P} | xargs -r docker volume rm",
        f"docker image ls --filter {LABEL} --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep -e '^stackprobe-1-abc-'"
        " | xargs -r docker image rm",
        f"rm -rf -- {tempfile.gettempdir()}/{P}-*",
    ]
