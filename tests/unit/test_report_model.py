"""The Report dataclasses, report.json's structure and its JSON Schema."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stackprobe.report import Report, load_schema, model
from stackprobe.report.model import ContainerSeries, Event

DATA = Path(__file__).parent / "data"

# The contract's top-level keys, in its order.
CONTRACT_KEYS = [
    "schema_version", "stackprobe_version", "started_at", "finished_at", "duration_s", "target", "load",
    "limits", "requests", "latency_ms", "memory", "cpu", "oom_kills", "oom_kills_source", "oom_events",
    "restarts", "target_exits", "events", "writes", "client_errors", "faults", "fault_effects", "slo", "baseline",
    "series", "cost", "problems", "verdict", "reasons",
]  # fmt: skip


@pytest.fixture
def report_data() -> dict[str, Any]:
    """A realistic report.json: a run whose service was OOM-killed and restarted."""
    return json.loads((DATA / "report_oom.json").read_text())


@pytest.fixture
def validator() -> jsonschema.Draft202012Validator:
    """A validator for report.json's schema, itself checked against draft 2020-12."""
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_report_serialises_with_the_contracts_keys_in_order() -> None:
    assert list(Report().to_dict()) == CONTRACT_KEYS


def test_report_sections_serialise_with_the_contracts_keys() -> None:
    data = Report(events=[Event(t=1.0, action="oom", container="c", service="s")]).to_dict()
    assert list(data["limits"]) == [
        "memory_requested_bytes", "memory_declared_bytes", "memory_applied_bytes", "memswap_applied_bytes",
        "memory_cgroup_bytes", "cgroup_version", "cpus_requested", "cpus_applied", "applied_matches", "problems",
        "notes", "others",
    ]  # fmt: skip
    assert list(data["latency_ms"]) == ["p50", "p95", "p99", "avg", "max"]
    assert list(data["events"][0]) == ["t", "action", "container", "service", "exit_code"]
    assert list(data["series"]) == ["load", "containers"]
    assert list(data["series"]["load"]) == [
        "source",
        "t",
        "users",
        "rps",
        "failures_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ]
    assert list(data["slo"]) == ["spec", "checks", "passed", "excluded", "scope"]
    assert list(data["writes"]) == [
        "applicable", "acknowledged", "verified", "lost", "unverified", "lost_examples", "unverified_examples",
        "gave_up", "indeterminate", "recovered", "not_applied", "unresolved", "failed", "failed_applied",
        "duplicated", "unresolved_examples", "failed_applied_examples", "duplicated_examples", "listing",
    ]  # fmt: skip
    assert list(data["memory"]) == [
        "peak_bytes", "peak_source", "peak_kernel_bytes", "peak_sampled_bytes", "limit_bytes", "peak_ratio",
        "idle_bytes", "frozen_at", "trend",
    ]  # fmt: skip
    assert list(data["cost"]) == [
        "prober_cpu_seconds", "prober_cpu_percent", "load_generator_cpu_percent", "load_generator_cpu_warning",
    ]  # fmt: skip


def test_report_reads_back_what_it_wrote(report_data: dict[str, Any]) -> None:
    report = Report.from_dict(report_data)
    assert isinstance(report.series.containers["probe-3f9a-users-1"], ContainerSeries)
    assert report.events[0].action == "oom"
    assert Report.from_json(report.to_json()) == report
    assert report.to_dict() == report_data


def test_from_dict_turns_json_integers_into_floats_where_floats_belong(report_data: dict[str, Any]) -> None:
    report_data["duration_s"] = 70
    assert Report.from_dict(report_data).duration_s == 70.0
    assert isinstance(Report.from_dict(report_data).duration_s, float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=1), "schema_version 1 is not 3"),
        (lambda d: d["memory"].update(peak_bytes="1 GiB"), r"report\.memory\.peak_bytes: expected int"),
        (lambda d: d["events"][0].update(action="boom"), r"report\.events\[0\]\.action: 'boom' is not one of"),
        (lambda d: d["events"][0].pop("t"), r"report\.events\[0\]: .*'t'"),
        (lambda d: d.update(oom_kills=True), r"report\.oom_kills: expected int, got True"),
        (lambda d: d["target"].update(host="x"), r"report\.target: unknown keys \['host'\]"),
        (lambda d: d["series"]["containers"].update(db=[]), r"report\.series\.containers\.db: expected an object"),
    ],
)
def test_from_dict_names_what_does_not_fit(report_data: dict[str, Any], change: Any, message: str) -> None:
    change(report_data)
    with pytest.raises(ValueError, match=message):
        Report.from_dict(report_data)


def test_non_finite_figures_serialise_as_null() -> None:
    report = Report()
    report.memory.peak_ratio = math.nan
    report.cpu.avg_percent = math.inf
    data = json.loads(report.to_json())
    assert (data["memory"]["peak_ratio"], data["cpu"]["avg_percent"]) == (None, None)


def test_a_realistic_report_satisfies_the_schema(
    report_data: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    assert list(validator.iter_errors(report_data)) == []


def test_a_default_report_satisfies_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    # What a run that failed before any load produces.
    assert list(validator.iter_errors(Report().to_dict())) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.pop("verdict"), "$"),
        (lambda d: d["limits"].pop("problems"), "$.limits"),
        (lambda d: d["memory"].update(peak_bytes=1.5), "$.memory.peak_bytes"),
        (lambda d: d["limits"].update(cgroup_version=3), "$.limits.cgroup_version"),
        (lambda d: d["events"][0].update(action="boom"), "$.events[0].action"),
        (lambda d: d["slo"]["checks"][0].update(op="=="), "$.slo.checks[0].op"),
        (
            lambda d: d["series"]["containers"]["probe-3f9a-users-1"].pop("limit_bytes"),
            "$.series.containers['probe-3f9a-users-1']",
        ),
        (lambda d: d["series"]["load"]["rps"].append("fast"), "$.series.load.rps[61]"),
        (lambda d: d.update(verdict="maybe"), "$.verdict"),
        (lambda d: d.update(extra=1), "$"),
    ],
)
def test_a_broken_report_fails_the_schema(
    report_data: dict[str, Any], validator: jsonschema.Draft202012Validator, change: Any, path: str
) -> None:
    broken = copy.deepcopy(report_data)
    change(broken)
    errors = list(validator.iter_errors(broken))
    assert [e.json_path for e in errors] == [path]


def test_schema_requires_every_field_of_the_model() -> None:
    schema = load_schema()

    def check(cls: type, node: dict[str, Any]) -> None:
        names = [model._json_name(f) for f in dataclasses.fields(cls)]
        assert node["required"] == names, cls.__name__
        assert sorted(node["properties"]) == sorted(names), cls.__name__

    props = schema["properties"]
    check(Report, schema)
    for key, cls in [
        ("target", model.Target), ("load", model.Load), ("limits", model.Limits), ("requests", model.Requests),
        ("latency_ms", model.Latency), ("memory", model.Memory), ("cpu", model.Cpu), ("writes", model.Writes),
        ("slo", model.Slo), ("series", model.Series), ("cost", model.Cost),
    ]:  # fmt: skip
        check(cls, props[key])
    check(model.Event, props["events"]["items"])
    check(model.FaultRecord, props["faults"]["items"])
    check(model.Recovery, props["faults"]["items"]["properties"]["recovery"])
    check(model.FaultEffects, props["fault_effects"])
    check(model.SloCheck, props["slo"]["properties"]["checks"]["items"])
    check(model.LoadSeries, props["series"]["properties"]["load"])
    check(model.ContainerSeries, props["series"]["properties"]["containers"]["additionalProperties"])
    step_search = props["load"]["properties"]["step_search"]["oneOf"][1]
    check(model.StepSearch, step_search)
    check(model.ClientErrors, props["client_errors"])
    check(model.OtherLimit, props["limits"]["properties"]["others"]["items"])
    check(model.MemoryTrend, props["memory"]["properties"]["trend"]["oneOf"][1])
    check(model.Failure, props["client_errors"]["properties"]["failures"]["items"])
    check(model.LocustException, props["client_errors"]["properties"]["exceptions"]["items"])
    check(model.Step, step_search["properties"]["steps"]["items"])
