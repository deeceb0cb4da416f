"""The override file and the Compose command lines, without running Compose."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stackprobe.stack import ServiceOverride, Stack, free_ports, to_yaml, unique_project_name


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
