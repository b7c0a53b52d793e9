"""Progress output of a run: a live status line on a terminal, one plain line per cell elsewhere."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from typing import TextIO

from repro_matrix.model import CellRecord, Status
from repro_matrix.report.vocabulary import look

# On a live terminal these are worth a line of their own; the rest only update the status line.
_NOTABLE = {Status.REPRODUCED, Status.BROKEN, Status.OTHER_FAILURE, Status.SIGNATURE_EXIT_0,
            Status.CANNOT_TEST, Status.TIMEOUT}


def choose_mode(out: TextIO, quiet: bool, verbose: bool) -> str:
    """'quiet', 'live' (a terminal, not CI, not verbose) or 'lines'."""
    if quiet:
        return "quiet"
    if verbose or os.environ.get("CI") or not out.isatty():
        return "lines"
    return "live"


class Progress:
    """Thread-safe reporter of started and finished cells."""

    def __init__(self, out: TextIO, mode: str = "lines") -> None:
        self.out = out
        self.mode = mode
        self.total = 0
        self.done = 0
        self.counts: Counter[Status] = Counter()
        self.active: dict[str, float] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._status_shown = False

    def say(self, line: str) -> None:
        """A message that is always shown (except in quiet mode, where only errors are)."""
        if self.mode == "quiet":
            return
        with self._lock:
            self._clear_status()
            print(line, file=self.out, flush=True)
            self._draw_status()

    def cell_started(self, cell_id: str) -> None:
        with self._lock:
            self.active[cell_id] = time.monotonic()
            self._draw_status()

    def cell_finished(self, record: CellRecord, note: str = "") -> None:
        with self._lock:
            self.active.pop(record.cell.id, None)
            self.done += 1
            self.counts[record.status] += 1
            took = f" ({record.duration_s:.1f} s)" if record.duration_s is not None else ""
            line = (f"[{self.done:>4}{f'/{self.total}' if self.total else ''}] "
                    f"{record.cell.id}: {look(record.status).words}{note or took}")
            if self.mode == "lines" or (self.mode == "live" and record.status in _NOTABLE):
                self._clear_status()
                print(line, file=self.out, flush=True)
            self._draw_status()

    def close(self) -> None:
        with self._lock:
            self._clear_status()

    def status_line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.total or '?'} cells"]
        parts += [f"{look(status).words} {count}" for status, count in
                  sorted(self.counts.items(), key=lambda item: item[0].value)]
        parts.append(f"{_clock(elapsed)} elapsed")
        if self.total and self.done:
            parts.append(f"~{_clock(elapsed / self.done * (self.total - self.done))} left")
        if self.active:
            parts.append("now: " + ", ".join(sorted(self.active)[:3])
                         + (" …" if len(self.active) > 3 else ""))
        return " | ".join(parts)

    def _draw_status(self) -> None:
        if self.mode != "live":
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.out.write("\r\x1b[K" + self.status_line()[:width])
        self.out.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self._status_shown = False


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
