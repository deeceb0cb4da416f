"""Decisions read from merged Compose models (as `docker compose config --format json` prints them)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from stackprobe.compose_model import (
    AccessError,
    free_port_range,
    plan_access,
    replicas,
    service_profiles,
    shared_volumes,
)

PROJECT = "stackprobe-123-abcdef"


def model(services: dict[str, Any], volumes: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": PROJECT, "services": services, "volumes": volumes or {}}


def volume(source: str | None, target: str = "/data") -> dict[str, Any]:
    mount: dict[str, Any] = {"type": "volume", "target": target, "volume": {}}
    if source is not None:
        mount["source"] = source
    return mount


def allocate_from(start: int) -> Any:
    """An allocator that records how many ports were asked for and hands out a known range."""

    def allocate(count: int) -> int:
        allocate.asked.append(count)  # type: ignore[attr-defined]
        return start

    allocate.asked = []  # type: ignore[attr-defined]
    return allocate


# --- shared volumes ---------------------------------------------------------------------------------------


def test_fixed_name_and_external_volumes_are_shared_project_scoped_ones_are_not() -> None:
    services = {
        "db": {"volumes": [volume("pg"), volume("ext", "/ext"), volume("scoped", "/s")]},
        "app": {"volumes": [volume("by_project", "/p"), volume(None, "/anon")]},
    }
    volumes = {
        "pg": {"name": "pgdata"},
        "ext": {"name": "backups", "external": True},
        "scoped": {"name": f"{PROJECT}_scoped"},
        "by_project": {"name": f"{PROJECT}-cache"},  # name: ${COMPOSE_PROJECT_NAME}-cache
    }
    assert shared_volumes(model(services, volumes)) == ["backups", "pgdata"]


def test_an_external_volume_is_shared_even_when_named_after_the_project() -> None:
    volumes = {"ext": {"name": f"{PROJECT}_ext", "external": True}}
    assert shared_volumes(model({"app": {"volumes": [volume("ext")]}}, volumes)) == [f"{PROJECT}_ext"]


def test_binds_tmpfs_and_unmounted_volumes_are_not_counted() -> None:
    services = {
        "app": {
            "volumes": [
                {"type": "bind", "source": "/srv", "target": "/srv"},
                {"type": "tmpfs", "target": "/tmp"},
            ]
        }
    }
    assert shared_volumes(model(services, {"unused": {"name": "pgdata"}})) == []


def test_a_shared_volume_mounted_twice_is_named_once() -> None:
    services = {"a": {"volumes": [volume("pg")]}, "b": {"volumes": [volume("pg")]}}
    assert shared_volumes(model(services, {"pg": {"name": "pgdata"}})) == ["pgdata"]


# --- profiles and replicas --------------------------------------------------------------------------------


def test_service_profiles_are_read_from_the_all_profiles_model() -> None:
    services = {"app": {}, "adminer": {"profiles": ["tools", "debug"]}}
    assert service_profiles(model(services), "adminer") == ("tools", "debug")
    assert service_profiles(model(services), "app") == ()


def test_replicas_come_from_scale_or_deploy_replicas() -> None:
    assert replicas({}) == 1
    assert replicas({"scale": 3}) == 3
    assert replicas({"deploy": {"replicas": 2, "resources": {}}}) == 2


# --- how the target is reached ----------------------------------------------------------------------------


def test_published_ports_are_republished_on_loopback_fixed_ports() -> None:
    service = {
        "ports": [
            {"mode": "ingress", "host_ip": "0.0.0.0", "target": 5000, "published": "5000", "protocol": "tcp"},
            {"mode": "ingress", "target": 9090, "protocol": "tcp"},
        ]
    }
    access = plan_access(model({"app": service}), "app", allocate=allocate_from(41000))
    assert access.mode == "published"
    assert access.ports == ("127.0.0.1:41000:5000", "127.0.0.1:41001:9090")
    assert access.urls == ["http://127.0.0.1:41000"]
    assert access.container_port == 5000


def test_udp_ports_keep_their_protocol_and_the_url_goes_to_the_first_tcp_port() -> None:
    service = {
        "ports": [
            {"target": 53, "published": "53", "protocol": "udp"},
            {"target": 8080, "protocol": "tcp"},
        ]
    }
    access = plan_access(model({"dns": service}), "dns", allocate=allocate_from(42000))
    assert access.ports == ("127.0.0.1:42000:53/udp", "127.0.0.1:42001:8080")
    assert access.container_port == 8080
    assert access.urls == ["http://127.0.0.1:42001"]


def test_an_exposed_port_only_is_published_on_loopback() -> None:
    access = plan_access(
        model({"app": {"expose": ["9000-9001/udp", "8000/tcp"]}}), "app", allocate=allocate_from(43000)
    )
    assert (access.mode, access.ports, access.urls) == (
        "exposed",
        ("127.0.0.1:43000:8000",),
        ["http://127.0.0.1:43000"],
    )


def test_a_given_container_port_is_published_beside_the_files_own() -> None:
    service = {"ports": [{"target": 9090, "protocol": "tcp"}]}
    access = plan_access(model({"app": service}), "app", container_port=8000, allocate=allocate_from(44000))
    assert access.ports == ("127.0.0.1:44000:9090", "127.0.0.1:44001:8000")
    assert access.urls == ["http://127.0.0.1:44001"]


def test_a_service_with_no_known_port_is_refused() -> None:
    with pytest.raises(AccessError, match="neither publishes nor exposes a TCP port"):
        plan_access(model({"app": {"expose": ["53/udp"]}}), "app")


def test_host_networking_publishes_nothing_and_uses_the_services_own_port() -> None:
    service = {"network_mode": "host", "ports": [{"target": 8000, "published": "8000", "protocol": "tcp"}]}
    access = plan_access(model({"app": service}), "app", allocate=allocate_from(1))
    assert (access.mode, access.ports, access.urls) == ("host", None, ["http://127.0.0.1:8000"])
    assert plan_access(model({"app": {"network_mode": "host", "expose": ["7000"]}}), "app").urls == [
        "http://127.0.0.1:7000"
    ]


def test_replicas_with_host_networking_are_refused() -> None:
    service = {"network_mode": "host", "expose": ["8000"], "deploy": {"replicas": 2}}
    with pytest.raises(AccessError, match="2 replicas with network_mode: host"):
        plan_access(model({"app": service}), "app")


@pytest.mark.parametrize("mode", ["none", "service:db", "container:abc"])
def test_a_network_the_run_cannot_publish_on_is_refused(mode: str) -> None:
    with pytest.raises(AccessError, match="--url"):
        plan_access(model({"app": {"network_mode": mode, "expose": ["8000"]}}), "app")


def test_replicas_get_one_loopback_port_each_from_a_range() -> None:
    # A fixed host port was why `up` failed on replicas: the second replica found it taken.
    service = {
        "scale": 3,
        "ports": [
            {"host_ip": "127.0.0.1", "target": 8000, "published": "8000", "protocol": "tcp"},
            {"target": 9000, "protocol": "tcp"},
        ],
    }
    allocate = allocate_from(45000)
    access = plan_access(model({"web": service}), "web", allocate=allocate)
    assert allocate.asked == [6]  # one block of consecutive ports: 3 replicas x 2 container ports
    assert access.ports == ("127.0.0.1:45000-45002:8000", "127.0.0.1:45003-45005:9000")
    assert access.replicas == 3
    assert access.urls == ["http://127.0.0.1:45000", "http://127.0.0.1:45001", "http://127.0.0.1:45002"]


def test_zero_replicas_are_refused() -> None:
    with pytest.raises(AccessError, match="0 replicas"):
        plan_access(model({"web": {"scale": 0, "expose": ["80"]}}), "web")


def test_keeping_the_files_ports_refuses_a_fixed_port_replicas_cannot_share() -> None:
    service = {"deploy": {"replicas": 2}, "ports": [{"target": 8000, "published": "8000", "protocol": "tcp"}]}
    with pytest.raises(AccessError, match=r"2 replicas .* fixed host port\(s\) 8000"):
        plan_access(model({"web": service}), "web", keep_ports=True)


def test_keeping_the_files_ports_leaves_them_alone() -> None:
    ranged = {"deploy": {"replicas": 2}, "ports": [{"target": 8000, "published": "8000-8001", "protocol": "tcp"}]}
    access = plan_access(model({"web": ranged}), "web", keep_ports=True)
    assert (access.mode, access.ports, access.host_ports) == ("file", None, (8000, 8001))
    ephemeral = {"deploy": {"replicas": 2}, "ports": [{"target": 8000, "protocol": "tcp"}]}
    assert plan_access(model({"web": ephemeral}), "web", keep_ports=True).urls == []  # known after up only


def test_keeping_the_files_ports_needs_no_known_port() -> None:
    access = plan_access(model({"web": {}}), "web", keep_ports=True)
    assert (access.mode, access.container_port, access.urls) == ("file", None, [])


def test_an_unknown_service_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        plan_access(model({"app": {}}), "nope")


def test_free_port_range_is_consecutive_and_bindable() -> None:
    start = free_port_range(4)
    for port in range(start, start + 4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_free_port_range_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        free_port_range(0)
