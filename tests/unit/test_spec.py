"""Sizes, durations and the checks a RunSpec makes before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.spec import RunSpec, UsageError, find_compose_file, parse_bytes, parse_duration, parse_memory_limits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128m", 134217728),
        ("128M", 134217728),
        ("128MiB", 134217728),
        ("128mb", 134217728),
        ("1g", 1073741824),
        ("1.5g", 1610612736),
        ("67108864", 67108864),
    ],
)
def test_sizes_use_binary_units_like_docker(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "128x", "-5m", "m128"])
def test_malformed_size_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not a size"):
        parse_bytes(text)


def test_size_below_the_engine_minimum_is_refused() -> None:
    with pytest.raises(UsageError, match="minimum of 6 MiB"):
        parse_bytes("4m")


@pytest.mark.parametrize(
    ("text", "expected"), [("60s", 60), ("2m", 120), ("1h30m", 5400), ("500ms", 0.5), ("45", 45), ("1m30s", 90)]
)
def test_durations_parse_to_seconds(text: str, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "10x", "1m garbage"])
def test_malformed_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration(text)


def test_compose_file_is_found_in_composes_own_order(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    assert find_compose_file(tmp_path).name == "compose.yaml"


def test_missing_compose_file_names_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no compose file .*docker-compose.yml"):
        find_compose_file(tmp_path)


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "loadtests").mkdir()
    return tmp_path


def _spec(stack_dir: Path, **changes: object) -> RunSpec:
    fields: dict = {"compose_files": (stack_dir / "compose.yaml",), "locustfile": stack_dir / "loadtests"}
    return RunSpec(**{**fields, **changes})


def test_valid_spec_is_accepted(stack_dir: Path) -> None:
    assert _spec(stack_dir, users=5, shape="spike").users == 5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shape": "zigzag"}, "unknown shape"),
        ({"users": 0}, "--users"),
        ({"spawn_rate": 0}, "--spawn-rate"),
        ({"duration_s": 0.5}, "--duration"),
        ({"cpus": 0}, "--cpus"),
        ({"url": "http://10.0.0.5:5000"}, "127.0.0.1"),
        ({"url": "http://example.com"}, "127.0.0.1"),
        ({"locustfile": Path("/no/such/locustfile.py")}, "locustfile not found"),
    ],
)
def test_invalid_spec_is_a_usage_error(stack_dir: Path, changes: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _spec(stack_dir, **changes)


def test_loopback_urls_are_accepted(stack_dir: Path) -> None:
    assert _spec(stack_dir, url="http://localhost:8000").url == "http://localhost:8000"
    assert _spec(stack_dir, url="http://127.0.0.1:5000/api").url == "http://127.0.0.1:5000/api"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128m", (128 << 20, {})),
        ("app=128m", (128 << 20, {})),
        ("app=128m,db=256m", (128 << 20, {"db": 256 << 20})),
        ("db=256m", (None, {"db": 256 << 20})),
        (" db = 1g , 64m ", (64 << 20, {"db": 1 << 30})),
    ],
)
def test_memory_takes_a_bare_size_for_the_target_or_sizes_per_service(text: str, expected: object) -> None:
    assert parse_memory_limits(text, "app") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app=128m,app=64m", "given twice"),
        ("128m,app=64m", "given twice"),
        ("db=", "empty term"),
        ("=64m", "names no service"),
        ("app=128m,", "empty term"),
        ("db=lots", "not a size"),
    ],
)
def test_a_bad_memory_list_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_memory_limits(text, "app")
