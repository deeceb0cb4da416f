"""Format report figures for people: bytes, milliseconds, percentages; None reads "n/a"."""

from __future__ import annotations

from stackprobe.report.model import SLO_UNITS, Load, Memory, Report, SloCheck, StepSearch

NA = "n/a"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(value: int | None) -> str:
    """Return a byte count in binary units, e.g. "256.0 MiB"; a negative limit (Docker's -1) is "unlimited"."""
    if value is None:
        return NA
    if value < 0:
        return "unlimited"
    if value < 1024:
        return f"{value} B"
    # The largest unit that keeps the figure at or above 1.
    power = min((int(value).bit_length() - 1) // 10, len(_UNITS) - 1)
    return f"{value / 1024**power:.1f} {_UNITS[power]}"


def format_ms(value: float | None) -> str:
    """Return a duration in milliseconds, e.g. "153.2 ms"."""
    return NA if value is None else f"{value:.1f} ms"


def format_percent(value: float | None, digits: int = 1) -> str:
    """Return a percentage that is already in percent, e.g. "42.0%"."""
    return NA if value is None else f"{value:.{digits}f}%"


def format_ratio(value: float | None, digits: int = 1) -> str:
    """Return a 0..1 ratio as a percentage, e.g. 0.42 -> "42.0%"."""
    return NA if value is None else format_percent(value * 100, digits)


def format_number(value: float | None, digits: int = 1) -> str:
    """Return a plain number, whole numbers without decimals."""
    if value is None:
        return NA
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def format_count(value: int | None) -> str:
    """Return a count, or "n/a"."""
    return NA if value is None else f"{value:,}"


def format_slo_value(metric: str, value: float | None) -> str:
    """Return an SLO threshold or actual with its metric's unit, e.g. "200 ms", "1%", "50 req/s"."""
    if value is None:
        return NA
    unit = SLO_UNITS.get(metric, "")
    text = f"{value:.4g}"
    return {"ms": f"{text} ms", "%": f"{text}%", "/s": f"{text} req/s"}.get(unit, text)


def format_check(check: SloCheck) -> str:
    """Return a check as "p95 < 200 ms (actual 340.2 ms)"."""
    threshold = format_slo_value(check.metric, check.threshold)
    actual = format_slo_value(check.metric, check.actual)
    return f"{check.metric} {check.op} {threshold} (actual {actual})"


def format_peak_memory(memory: Memory) -> str:
    """Return peak memory against its limit, e.g. "93.1 MiB of 128.0 MiB (72.7%)"."""
    peak = format_bytes(memory.peak_bytes)
    if memory.limit_bytes is not None:
        peak += f" of {format_bytes(memory.limit_bytes)} ({format_ratio(memory.peak_ratio)})"
    return peak


def format_t(value: float | None) -> str:
    """Return a time on the run's axis (seconds since the load started), e.g. "41.3 s"."""
    return NA if value is None else f"{value:.1f} s"


SAMPLED_PEAK_SOURCE = "docker stats samples"


def kernel_peak_source(cgroup_version: int | None) -> str:
    """Return the cgroup file a kernel high-water mark is read from, e.g. "cgroup v2 memory.peak"."""
    if cgroup_version == 1:
        return "cgroup v1 memory.max_usage_in_bytes"
    if cgroup_version == 2:
        return "cgroup v2 memory.peak"
    return "cgroup high-water mark"


def other_peaks(memory: Memory, cgroup_version: int | None) -> list[tuple[str, str]]:
    """Return the peak figures beside `peak_bytes` as (source, figure), leaving out the one it repeats.

    `peak_bytes` is the kernel's high-water mark when that was read, else the sampled peak: so a read mark
    shows the sampled peak beside it, and an unread one says so.
    """
    kernel, sampled = memory.peak_kernel_bytes, memory.peak_sampled_bytes
    if memory.peak_bytes is None and kernel is None and sampled is None:
        return []
    others: list[tuple[str, str]] = []
    if kernel is None:
        others.append((kernel_peak_source(cgroup_version), "not read"))
    elif kernel != memory.peak_bytes:
        others.append((kernel_peak_source(cgroup_version), format_bytes(kernel)))
    if kernel is not None or sampled != memory.peak_bytes:
        others.append((SAMPLED_PEAK_SOURCE, format_bytes(sampled) if sampled is not None else "none taken"))
    return others


def describe_peak_memory(memory: Memory, cgroup_version: int | None) -> str:
    """Return peak memory with its source and the other figure beside it.

    E.g. "110.2 MiB of 256.0 MiB (43.0%) — cgroup v1 memory.max_usage_in_bytes; docker stats samples: 12.1 MiB".
    """
    others = other_peaks(memory, cgroup_version)
    if memory.peak_bytes is None and not others:
        return NA
    text = f"{format_peak_memory(memory)} — {memory.peak_source or 'source not recorded'}"
    return "; ".join([text, *(f"{source}: {figure}" for source, figure in others)])


def oom_counts_disagree(report: Report) -> bool:
    """Return whether the kernel's OOM kill count and the engine's oom events differ."""
    return report.oom_kills != report.oom_events


def describe_oom_kills(report: Report) -> str:
    """Return OOM kills with their source and the engine's count beside, e.g. "1 — kernel …; engine oom events: 1"."""
    source = report.oom_kills_source or "source not recorded"
    return f"{report.oom_kills} — {source}; engine oom events: {report.oom_events}"


def describe_load(load: Load) -> str:
    """Return the load as asked, e.g. "loadtests: 20 users, spawn rate 2/s, steady, 60 s"."""
    shape = load.shape if load.shape is not None else "no shape (-u users at -r per second for -t)"
    return f"{load.locustfile}: {load.users} users, spawn rate {load.spawn_rate:g}/s, {shape}, {load.duration_s:g} s"


def describe_step_search(search: StepSearch) -> str:
    """Return the step shape's finding in one line, e.g. "40 users held p95<200ms; 50 broke it"."""
    slo = search.slo or "the SLO"
    if search.last_passing_users is None:
        held = f"no step held {slo}"
    else:
        held = f"{format_count(search.last_passing_users)} users held {slo}"
    if search.first_failing_users is not None:
        held += f"; {format_count(search.first_failing_users)} broke it"
    steps = len(search.steps)
    return f"{held} ({search.stop_reason or 'stopped'}, {steps} step{'s' if steps != 1 else ''})"
