"""The users service under its 128 MiB limit: it answers, and it holds a short load without losing a write."""

import pytest
import requests


def test_users_service_answers_under_its_declared_limit(compose_stack):
    assert compose_stack.limits["app"].memory_bytes == 128 * 1024**2
    app = compose_stack.url("app")
    created = requests.post(f"{app}/users", json={"name": "Ada"}, timeout=5)
    assert created.status_code == 201
    assert requests.get(app + created.headers["Location"], timeout=5).json()["name"] == "Ada"


@pytest.mark.stackprobe(service="app", memory="128m", users=10, duration="10s")
def test_users_service_holds_128_mib_under_load(stackprobe):
    # A loose latency bound: here the load, the service and its database share two cores.
    report = stackprobe.run(slo="p95<1000ms,errors<1%")
    stackprobe.assert_pass(report)
    assert report.oom_kills == 0
    assert report.writes.lost == 0
