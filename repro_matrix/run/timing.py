"""Where a run's time goes: seconds and CPU seconds per stage, summed over the threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from repro_matrix import cpu

# In the order a cell meets them; "wait" is a cell waiting for a resolution running ahead of it.
STAGES = ("bases", "resolve", "download", "wait", "build", "run", "report")


class StageClock:
    """Thread-safe totals per stage: busy seconds, count, the harness's own CPU seconds in it
    (the threads that spent it) and its subprocesses' (uv, debootstrap). Stages overlap across
    threads, so busy time is not wall time: the sum can exceed the run's wall clock. CPU
    seconds are what the stage cost the machine; the engine's daemons and containers (builds,
    runs) are not in them."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._cpu: dict[str, float] = {}
        self._children: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        own, children = cpu.thread_seconds(), cpu.children_seconds()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started, cpu.thread_seconds() - own,
                     cpu.children_seconds() - children)

    def add(self, name: str, seconds: float, cpu_s: float = 0.0, children_s: float = 0.0) -> None:
        with self._mutex:
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
            self._counts[name] = self._counts.get(name, 0) + 1
            self._cpu[name] = self._cpu.get(name, 0.0) + cpu_s
            self._children[name] = self._children.get(name, 0.0) + children_s

    def totals(self) -> dict[str, dict[str, float]]:
        """{stage: {"s": busy seconds, "n": count, "cpu": the harness's CPU seconds, "sub":
        its subprocesses' CPU seconds}} in STAGES order (others after), for cells.json."""
        with self._mutex:
            names = [s for s in STAGES if s in self._seconds]
            names += sorted(set(self._seconds) - set(STAGES))
            return {name: {"s": round(self._seconds[name], 1), "n": self._counts[name],
                           "cpu": round(self._cpu[name], 1),
                           "sub": round(self._children[name], 1)}
                    for name in names}


def describe(totals: Mapping[str, Mapping[str, float]], jobs: int) -> str:
    """One line: busy seconds per stage (and how many times each ran), over ``jobs`` threads,
    then the CPU seconds of the harness and its subprocesses per stage, where any."""
    if not totals:
        return ""
    parts = [f"{name} {entry['s']:.0f} s ({int(entry['n'])}×)" for name, entry in totals.items()]
    line = f"time by stage, summed over {jobs} job(s): " + ", ".join(parts)
    spent = [f"{name} {entry.get('cpu', 0) + entry.get('sub', 0):.0f} s"
             for name, entry in totals.items() if entry.get("cpu", 0) + entry.get("sub", 0) >= 0.5]
    if spent:
        line += "; CPU of the harness and its subprocesses: " + ", ".join(spent)
    return line
