"""Format report figures for people: bytes, milliseconds, percentages; None reads "n/a"."""

from __future__ import annotations

from stackprobe.report.model import (
    SLO_UNITS,
    Distributed,
    FaultRecord,
    Load,
    LoadWorker,
    Memory,
    MemoryTrend,
    Report,
    SloCheck,
    StepSearch,
    Writes,
)

NA = "n/a"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")

# Load shapes that hold the load level after the ramp-up, so a trend can be read "at this load" (None: the
# locustfile's own -u users at -r per second for -t).
CONSTANT_SHAPES = (None, "steady", "soak")


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
    return {"ms": f"{text} ms", "%": f"{text}%", "/s": f"{text} req/s", "MiB/min": f"{text} MiB/min"}.get(unit, text)


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
    text = f"{load.locustfile}: {load.users} users, spawn rate {load.spawn_rate:g}/s, {shape}, {load.duration_s:g} s"
    if load.arrival_rate is not None:
        achieved = NA if load.achieved_rate is None else f"{load.achieved_rate:.1f}/s"
        text += f"; open model: {load.arrival_rate:g} arrivals/s asked, {achieved} achieved"
    if load.distributed is not None:
        text += f"; Locust distributed over {load.distributed.workers_expected} workers"
    return text


def describe_generator(dist: Distributed) -> str:
    """Return the distributed generator in one line, e.g. "master 127.0.0.1:41234 (3 % CPU), 2 of 2 workers; bound"."""
    joined = len(dist.workers)
    text = (
        f"master {dist.master} ({format_percent(dist.master_cpu_percent, 0)} of a core), {joined} worker"
        f"{'s' if joined != 1 else ''} of {dist.workers_expected} expected ({dist.workers_started} started here)"
    )
    if dist.generator_bound:
        return text + "; the generator was the bottleneck (a process over 90 % of a core)"
    return text + "; no process over 90 % of a core"


def describe_worker(worker: LoadWorker) -> str:
    """Return one worker's requests and CPU with their sources, e.g. "5,911 requests; CPU 63 % (busiest 10 s 71 %)"."""
    parts = [f"{format_count(worker.requests)} requests ({format_count(worker.failures)} failed)"]
    if worker.local:
        parts.append(
            f"CPU {format_percent(worker.cpu_percent, 0)} of a core over its life, "
            f"{format_percent(worker.cpu_busiest_percent, 0)} over its busiest 10 s (measured)"
        )
    if worker.locust_cpu_percent_max is None:
        parts.append("Locust's heartbeats: no CPU figure yet (Locust's first comes after 20 s)")
    else:
        parts.append(f"Locust's heartbeats: {format_percent(worker.locust_cpu_percent_max, 0)} at most")
    if worker.cpu_warning:
        parts.append("Locust warned: above 90 %")
    if not worker.listener:
        parts.append("without stackprobe's listener")
    if worker.missing or worker.exit_code not in (None, 0):
        how = "heartbeats stopped" if worker.missing else f"exit code {worker.exit_code}"
        parts.append(f"lost during the run ({how})")
    where = "here" if worker.local else (worker.host or "elsewhere")
    return f"{where}, pid {worker.pid if worker.pid is not None else NA}: " + "; ".join(parts)


def short_worker_id(worker_id: str) -> str:
    """Return a Locust client id ("<hostname>_<32 hex digits>") cut to its hostname and 8 hex digits."""
    host, sep, unique = worker_id.rpartition("_")
    return f"{host}{sep}{unique[:8]}" if sep and len(unique) > 8 else worker_id


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


def format_duration(seconds: float | None) -> str:
    """Return a rough duration, e.g. "45 s", "14 min", "3.2 h", "2.5 days"."""
    if seconds is None:
        return NA
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def slope_digits(*values: float | None) -> int:
    """Return the decimals that show slopes of this size: 1 from 0.5 MiB/min up, finer below."""
    size = max((abs(v) for v in values if v is not None), default=0.0)
    return 1 if size >= 0.5 else 2 if size >= 0.05 else 3


def format_slope(value: float | None, sign: bool = True, digits: int | None = None) -> str:
    """Return a slope in MiB/min without its unit, e.g. "+0.8", "-0.04", "12.3"; finer when it is small."""
    if value is None:
        return NA
    if value == 0:
        return "0"
    places = slope_digits(value) if digits is None else digits
    return f"{value:{'+' if sign else ''}.{places}f}"


def format_trend_slope(trend: MemoryTrend, interval: bool = True) -> str:
    """Return a trend's slope and interval, e.g. "+0.8 MiB/min (95 % CI 0.5..1.1)", all to the same decimals."""
    digits = slope_digits(trend.slope_mib_per_min, trend.slope_low, trend.slope_high)
    slope = f"{format_slope(trend.slope_mib_per_min, digits=digits)} MiB/min"
    if not interval:
        return slope
    low = format_slope(trend.slope_low, sign=False, digits=digits)
    high = format_slope(trend.slope_high, sign=False, digits=digits)
    return f"{slope} ({trend.confidence * 100:g} % CI {low}..{high})"


def trend_growth(trend: MemoryTrend) -> str:
    """Return "growing", "falling" or "flat": where the slope's whole confidence interval lies."""
    if trend.slope_low is not None and trend.slope_low > 0:
        return "growing"
    if trend.slope_high is not None and trend.slope_high < 0:
        return "falling"
    return "flat"


def describe_trend(trend: MemoryTrend | None, load: Load | None = None) -> str:
    """Return the memory trend in one line, e.g.

    "+0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; the limit would be reached in about 3.2 h at this
    load", or "flat: +0.03 MiB/min (95 % CI -0.2..0.3) after 12 s warm-up".
    """
    if trend is None or trend.slope_mib_per_min is None:
        return "not fitted (fewer than 10 memory samples of the target after the warm-up)"
    warmup = f"{trend.warmup_s:.1f}".removesuffix(".0")
    text = f"{format_trend_slope(trend)} after {warmup} s warm-up"
    growth = trend_growth(trend)
    if growth != "growing":
        return f"{growth}: {text}"
    constant = load is None or load.shape in CONSTANT_SHAPES
    at = "at this load" if constant else f"if it went on (the load was not constant: {load.shape if load else ''})"
    if trend.time_to_limit_s is None:
        return f"{text}; no limit to reach"
    if trend.time_to_limit_s == 0:
        return f"{text}; the fitted line had reached the limit by the load's end"
    return f"{text}; the limit would be reached in about {format_duration(trend.time_to_limit_s)} {at}"


def trend_headline(report: Report) -> str | None:
    """Return "At this load the memory limit is reached in about 3.2 h (…)" when the trend says so, else None.

    Only for a load held constant (steady, soak, or no shape): a ramp's growth says nothing about one load.
    """
    trend = report.memory.trend
    if trend is None or trend.time_to_limit_s is None or trend_growth(trend) != "growing":
        return None
    if report.load.shape not in CONSTANT_SHAPES:
        return None
    slope = f"{format_trend_slope(trend, interval=False)} after the warm-up"
    if trend.time_to_limit_s == 0:
        return f"At this load memory reaches the limit: the fitted line is there by the load's end ({slope})"
    return f"At this load the memory limit is reached in about {format_duration(trend.time_to_limit_s)} ({slope})"


def describe_fault(fault: FaultRecord) -> str:
    """Return a fault as scheduled, in the grammar's words: "pause db@50s for 5s", "squeeze app@30s to 64 MiB"."""
    words = f"{fault.action} {fault.service}@{fault.at:g}s"
    if fault.size_bytes is not None:
        words += f" to {format_bytes(fault.size_bytes)}"
    if fault.for_ is not None:
        words += f" for {fault.for_:g}s"
    if fault.action == "kill" and fault.signal and fault.signal != "SIGKILL":
        words += f" ({fault.signal})"
    return words


def describe_fault_outcome(fault: FaultRecord) -> str:
    """Return what became of a fault in one line: when it ran, the kernel's answer, its recovery."""
    parts = []
    if fault.started is not None:
        span = f"t={fault.started:.1f}" + (
            f" to {fault.ended:.1f} s" if fault.ended is not None and fault.ended - fault.started >= 0.05 else " s"
        )
        parts.append(span)
    if fault.sent_via == "host":
        parts.append(f"{fault.signal} to PID 1 from the host")
    elif fault.sent_via == "engine":
        parts.append(f"{fault.signal} through the engine (docker kill: no restart policy applies)")
    if fault.kernel is not None:
        parts.append(f"kernel: {fault.kernel}")
    if not fault.done:
        parts.append(f"not done: {fault.error or 'no reason recorded'}")
    elif fault.error:
        parts.append(fault.error)
    recovery = fault.recovery
    if recovery is not None:
        parts.append(f"{format_count(recovery.requests)} requests, {format_count(recovery.errors)} errors during it")
        if recovery.first_success_s is not None:
            first = recovery.first_success_s
            parts.append(f"first success {first:.1f}-{first + 1:.1f} s after")
        if recovery.summary:
            parts.append(recovery.summary)
    return "; ".join(parts)


def listing_text(writes: Writes) -> str:
    """Say how the writes were read back through the declared listing (writes.listing must not be None)."""
    listing = writes.listing
    assert listing is not None
    pages = f"{format_count(listing.pages)} page{'' if listing.pages == 1 else 's'}"
    read = f"{format_count(listing.records)} records in {pages} of {listing.url}"
    if listing.problem is not None:
        return f"{read}; set aside: {listing.problem}; every write read back alone"
    alone = (writes.acknowledged or 0) - listing.verified
    checked = (
        f", {format_count(listing.spot_checked)} of its writes spot-checked alone, all as it showed"
        if listing.spot_checked
        else ""
    )
    return (
        f"{format_count(listing.verified)} verified on the listing ({read}{checked}), "
        f"{format_count(alone)} acknowledged read back alone"
    )
