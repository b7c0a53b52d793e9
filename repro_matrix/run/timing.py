"""Where a run's time goes: seconds per stage, summed over the threads that spent them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# In the order a cell meets them; "wait" is a cell waiting for a resolution running ahead of it.
STAGES = ("bases", "resolve", "download", "wait", "build", "run", "report")


class StageClock:
    """Thread-safe totals of (seconds, count) per stage. Stages overlap across threads, so the
    totals are busy time, not wall time: their sum can exceed the run's wall clock."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - started)

    def add(self, name: str, seconds: float) -> None:
        with self._mutex:
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
            self._counts[name] = self._counts.get(name, 0) + 1

    def totals(self) -> dict[str, dict[str, float]]:
        """{stage: {"s": seconds, "n": count}} in STAGES order (others after), for cells.json."""
        with self._mutex:
            names = [s for s in STAGES if s in self._seconds]
            names += sorted(set(self._seconds) - set(STAGES))
            return {name: {"s": round(self._seconds[name], 1), "n": self._counts[name]}
                    for name in names}


def describe(totals: Mapping[str, Mapping[str, float]], jobs: int) -> str:
    """One line: busy seconds per stage (and how many times each ran), over ``jobs`` threads."""
    if not totals:
        return ""
    parts = [f"{name} {entry['s']:.0f} s ({int(entry['n'])}×)" for name, entry in totals.items()]
    return f"time by stage, summed over {jobs} job(s): " + ", ".join(parts)
