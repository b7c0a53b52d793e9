"""Bisect mode: find where a bug starts and stops with a logarithmic number of cell runs.

Pure search logic over a ``probe(version) -> state`` callable, so it is tested without Docker.
States are the verdict's AFFECTED / UNAFFECTED / UNDETERMINED. The search assumes one affected
interval in PEP 440 order, checks that assumption with the probes it makes anyway plus one
neighbour on each side of each boundary, and reports a history that breaks it instead of
bisecting into a wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from repro_matrix.verdict.derive import AFFECTED, UNAFFECTED, UNDETERMINED

Probe = Callable[[str], str]


@dataclass
class BisectResult:
    """What the search saw for one Python."""

    states: dict[str, str] = field(default_factory=dict)
    introduced: str | None = None
    fixed: str | None = None
    non_monotonic: bool = False
    note: str = ""

    @property
    def runs(self) -> int:
        return len(self.states)


class _Exhausted(Exception):
    """The probe budget ran out before the search could conclude."""


def probe_budget(count: int, hints: int = 0) -> int:
    """⌈log2 n⌉ + 3 probes per boundary, two boundaries, plus two probes per hint (and, on top,
    the probes that cross untestable runs at either end of the history)."""
    return 2 * (max(count - 1, 1).bit_length() + 3) + 2 * hints


class _Search:
    def __init__(self, versions: Sequence[str], probe: Probe, budget: int) -> None:
        self.versions = list(versions)
        self.probe = probe
        self.budget = budget
        self.result = BisectResult()

    def state(self, index: int) -> str:
        version = self.versions[index]
        if version not in self.result.states:
            if len(self.result.states) >= self.budget:
                raise _Exhausted
            self.result.states[version] = self.probe(version)
        return self.result.states[version]

    def decisive_near(self, index: int, low: int, high: int) -> int | None:
        """A decisive index in [low, high] near ``index``: the first one at or after it, else
        the first one before it."""
        found = self.first_decisive(index, high, 1)
        return found if found is not None else self.first_decisive(index - 1, low, -1)

    def first_decisive(self, start: int, stop: int, step: int) -> int | None:
        """The first decisive index from ``start`` towards ``stop`` (inclusive, ``step`` ±1).

        Untestable releases come in runs (an interpreter too new or too old for a stretch of
        history), so the run is galloped over in doubling jumps and its end found by halving:
        a logarithmic number of probes where a scan would probe every release of the run.
        """
        if (stop - start) * step < 0:
            return None
        if self.state(start) != UNDETERMINED:
            return start
        undetermined, jump = start, 1
        while True:
            candidate = start + jump * step
            if (stop - candidate) * step <= 0:
                candidate = stop
            if candidate == undetermined:
                return None
            if self.state(candidate) != UNDETERMINED:
                break
            undetermined, jump = candidate, jump * 2
        while abs(candidate - undetermined) > 1:
            middle = (candidate + undetermined) // 2
            if self.state(middle) != UNDETERMINED:
                candidate = middle
            else:
                undetermined = middle
        return candidate

    def closest(self, wanted: str, low: int, high: int, side: int) -> int:
        """Among probes in [low, high] in state ``wanted``: the highest (side -1) or the
        lowest (side 1); ``low`` or ``high`` themselves when none."""
        known = [i for i in range(low, high + 1)
                 if self.result.states.get(self.versions[i]) == wanted]
        if not known:
            return low if side < 0 else high
        return max(known) if side < 0 else min(known)

    def boundary(self, low: int, high: int, wanted: str) -> int:
        """First index in (low, high] whose state is ``wanted``, given low is not and high is."""
        while high - low > 1:
            mid = self.decisive_near((low + high) // 2, low + 1, high - 1)
            if mid is None:
                break
            if self.state(mid) == wanted:
                high = mid
            else:
                low = mid
        return high


def bisect_versions(versions: Sequence[str], probe: Probe,
                    hints: Sequence[str] = ()) -> BisectResult:
    """Search ``versions`` (PEP 440 order); ``hints`` are versions worth probing first.

    Gives up (and says so) rather than exceed the probe budget: where most releases cannot be
    tested, a bisection is no cheaper than the full matrix.
    """
    search = _Search(versions, probe, probe_budget(len(versions), len(hints)))
    try:
        return _bisect(search, hints)
    except _Exhausted:
        search.result.introduced = search.result.fixed = None
        search.result.note = (f"gave up after {search.budget} probes without finding both "
                              "boundaries (untestable releases, or no affected one among the "
                              "probes); run the full matrix for this Python")
        return search.result


def _bisect(search: _Search, hints: Sequence[str]) -> BisectResult:
    versions = search.versions
    result = search.result
    last = len(versions) - 1
    if last < 0:
        return result
    oldest = search.first_decisive(0, last, 1)
    newest = search.first_decisive(last, 0, -1)
    # Crossing untestable runs at the ends is not part of the boundary search: those probes
    # (logarithmic in each run's length) come on top of the budget.
    search.budget += max(result.runs - 2, 0)
    if oldest is None or newest is None:
        result.note = "no release could be tested"
        return result
    affected = _find_affected(search, oldest, newest, hints)
    if affected is None:
        # Not an agreement with anything: no boundary lies among the releases decided here.
        crossed = (f"; releases before {versions[oldest]} decided nothing on this Python"
                   if oldest > 0 else "")
        result.note = (f"nothing to find: no affected release among {result.runs} probes"
                       f"{crossed} (a short affected interval between them would show only in "
                       "the full matrix)")
        return result
    start = oldest
    if search.state(oldest) != AFFECTED:
        # Start from the closest probes already made on each side, not from the ends.
        start = search.boundary(search.closest(UNAFFECTED, oldest, affected, -1),
                                search.closest(AFFECTED, oldest, affected, 1), AFFECTED)
        result.introduced = versions[start]
    else:
        result.introduced = versions[oldest]
    if search.state(newest) == AFFECTED:
        end = None
    else:
        end = search.boundary(search.closest(AFFECTED, affected, newest, -1),
                              search.closest(UNAFFECTED, affected, newest, 1), UNAFFECTED)
        result.fixed = versions[end]
    _confirm(search, start, end)
    return result


def _find_affected(search: _Search, oldest: int, newest: int,
                   hints: Sequence[str]) -> int | None:
    """Any affected index: the ends, the hints, then midpoints level by level."""
    for index in (oldest, newest):
        if search.state(index) == AFFECTED:
            return index
    for hint in hints:
        if hint in search.versions:
            index = search.versions.index(hint)
            for candidate in (index - 1, index):
                if oldest <= candidate <= newest and search.state(candidate) == AFFECTED:
                    return candidate
    segments = [(oldest, newest)]
    try:
        return _midpoints(search, segments)
    except _Exhausted:
        # Every probe so far was unaffected: with no hint left to try, "none found" is the
        # answer the budget allows (a full matrix may still find a short interval).
        return None


def _midpoints(search: _Search, segments: list[tuple[int, int]]) -> int | None:
    """Probe midpoints level by level until one is affected."""
    while segments:
        next_segments = []
        for low, high in segments:
            if high - low < 2:
                continue
            mid = search.decisive_near((low + high) // 2, low + 1, high - 1)
            if mid is None:
                continue
            if search.state(mid) == AFFECTED:
                return mid
            next_segments += [(low, mid), (mid, high)]
        segments = next_segments
    return None


def _confirm(search: _Search, start: int, end: int | None) -> None:
    """Probe one more release outside each boundary, and check every probe fits one interval."""
    result = search.result
    for index in (start - 2, start - 1, *(() if end is None else (end, end + 1))):
        if 0 <= index < len(search.versions):
            search.state(index)
    pattern = "".join("A" if result.states[v] == AFFECTED else "U" for v in search.versions
                      if result.states.get(v, UNDETERMINED) != UNDETERMINED)
    if not re.fullmatch(r"U*A+U*", pattern):
        result.non_monotonic = True
        result.note = ("the probes do not fit one affected interval (the history is not "
                       "monotonic in version order); run the full matrix for this Python")
