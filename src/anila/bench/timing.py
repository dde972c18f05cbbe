"""Robust per-call timing and per-call allocation counts, the two measurements of the speed benchmark.

:func:`time_per_call` calibrates how many calls fill one round of at least ``min_round_s`` seconds, runs
``rounds`` such rounds and returns the median per-call time (the median is robust to the other processes
of a shared machine). On a GPU each round is timed with CUDA events and synchronised once at its end, so
the host never waits inside a round. :func:`profile_call` runs one call under ``torch.profiler`` and counts
the aten operators it launches, the allocations it makes and the peak memory it holds above its start.

>>> timing = time_per_call(lambda: torch.ones(100).sum(), torch.device("cpu"), rounds=3, min_round_s=0.01)
>>> timing.median_s > 0
True
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median over rounds, and the fastest and slowest round."""

    median_s: float
    min_s: float
    max_s: float
    calls_per_round: int
    per_round_s: tuple[float, ...]

    @classmethod
    def of(cls, per_round_s: list[float], calls_per_round: int) -> Timing:
        return cls(median_s=statistics.median(per_round_s), min_s=min(per_round_s), max_s=max(per_round_s),
                   calls_per_round=calls_per_round, per_round_s=tuple(per_round_s))

    def as_dict(self) -> dict[str, object]:
        return {"median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s,
                "calls_per_round": self.calls_per_round, "per_round_s": list(self.per_round_s)}


def median_ratio(a: Timing, b: Timing) -> float:
    """Median over rounds of ``a / b`` for two timings taken in the same interleaved rounds: a slow phase of
    a shared machine slows both members of a pair, so the paired ratio is steadier than a ratio of medians."""
    return statistics.median(x / y for x, y in zip(a.per_round_s, b.per_round_s, strict=True))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = ("wall", "process")


def _round_s(fn: Callable[[], object], calls: int, device: torch.device, clock: str = "wall") -> float:
    """Time of ``calls`` back-to-back calls: on CUDA by the device's events; on CPU by the wall clock, or by
    this process's CPU time (``clock="process"``), which other processes on a shared machine do not inflate."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    now = time.process_time if clock == "process" else time.perf_counter
    begin = now()
    for _ in range(calls):
        fn()
    return now() - begin


def time_per_call(fn: Callable[[], object], device: torch.device, *, rounds: int = 5, min_round_s: float = 0.2,
                  warmup: int = 2, clock: str = "wall") -> Timing:
    """Median seconds per call of ``fn`` over ``rounds`` rounds of at least ``min_round_s`` seconds each.

    ``warmup`` untimed calls come first (allocator caches, lazy initialisation, compilation)."""
    return time_interleaved({"fn": fn}, device, rounds=rounds, min_round_s=min_round_s, warmup=warmup,
                            clock=clock)["fn"]


def time_interleaved(fns: dict[str, Callable[[], object]], device: torch.device, *, rounds: int = 5,
                     min_round_s: float = 0.2, warmup: int = 2, clock: str = "wall") -> dict[str, Timing]:
    """Time several functions in interleaved rounds (round 1 of each, then round 2 of each, ...).

    Each function is warmed up, then calibrated to fill ``min_round_s`` per round; returns a :class:`Timing`
    per name whose ``per_round_s`` line up across names (see :func:`median_ratio`). ``clock``: ``wall`` or
    ``process`` (CPU time of this process: steady on a shared machine when torch runs one thread)."""
    if rounds < 1 or warmup < 0 or min_round_s <= 0 or clock not in CLOCKS:
        raise ValueError(f"rounds must be >= 1, warmup >= 0, min_round_s > 0 and clock one of {CLOCKS}; got "
                         f"{rounds}, {warmup}, {min_round_s}, {clock!r}")
    calls = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        synchronize(device)
        one = max(_round_s(fn, 1, device, clock), 1e-7)
        calls[name] = max(1, int(min_round_s / one))
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            per_round[name].append(_round_s(fn, calls[name], device, clock) / calls[name])
    return {name: Timing.of(per_round[name], calls[name]) for name in fns}


@dataclass(frozen=True)
class CallProfile:
    """What one call launches: top-level aten operators (forward, backward and the rest), the operators that
    allocate memory, and the peak of the memory held above the call's start (bytes, CPU allocator; counted at
    operator granularity, so a peak inside one operator is seen as that operator's net allocation)."""

    operators: int
    allocations: int
    peak_bytes: int

    def as_dict(self) -> dict[str, int]:
        return {"operators": self.operators, "allocations": self.allocations, "peak_bytes": self.peak_bytes}


def profile_call(fn: Callable[[], object]) -> CallProfile:
    """Run ``fn`` once under the CPU profiler (after one warm-up call) and count what it does."""
    fn()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    operators = sum(1 for e in events if e.name.startswith("aten::") and e.cpu_parent is None)
    allocations = sum(1 for e in events if e.self_cpu_memory_usage > 0)
    held, peak = 0, 0
    for e in events:
        held += e.self_cpu_memory_usage
        peak = max(peak, held)
    return CallProfile(operators=operators, allocations=allocations, peak_bytes=peak)
