"""The two-axis verdict: per Python and package release (a row), where along the axis (the
dependency's releases) the pair works, breaks or is declared incompatible, in words and JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from repro_matrix import pythons as py
from repro_matrix.model import Status

# A cell's state along the axis. UNDECIDED: it ran (or was meant to) and decided nothing.
WORKS = "works"
BROKEN = "broken"
DECLARED = "declared_incompatible"
UNDECIDED = "undecided"
# How the three answers rank along a row: a row that behaves rises to "works" and falls again
# (declared incompatible, broken, works, broken, declared incompatible, each part optional).
_LEVEL = {DECLARED: 0, BROKEN: 1, WORKS: 2}
_WORDS = {WORKS: "works", BROKEN: "broken", DECLARED: "declared incompatible"}


def axis_state(status: Status) -> str:
    """A cell's status as the axis reads it (a bug case's reproduced counts as broken)."""
    if status.unaffected:
        return WORKS
    if status.affected:
        return BROKEN
    return DECLARED if status is Status.DECLARED_INCOMPATIBLE else UNDECIDED


@dataclass(frozen=True)
class AxisObservation:
    """The facts the grid needs from a cell."""

    python: str
    version: str
    axis_version: str
    status: Status


@dataclass(frozen=True)
class Segment:
    """Neighbouring decided cells of one row in one state, oldest to newest axis release;
    ``cells`` counts those that ran (fewer than the releases spanned after a bisection)."""

    state: str
    first: str
    last: str
    cells: int


@dataclass(frozen=True)
class WorksRange:
    """Axis releases a package release works with: ``spec`` in PEP 440 terms, its upper
    bound the next decided release (none when it works up to the newest planned one)."""

    first: str
    last: str
    spec: str


@dataclass(frozen=True)
class Row:
    """One package release on one Python along the axis, and its boundaries."""

    python: str
    version: str
    segments: tuple[Segment, ...]
    works: tuple[WorksRange, ...]
    first_broken_above: str | None
    declared_incompatible_below: str | None
    declared_incompatible_from: str | None
    monotonic: bool
    # (status value, axis releases) of the cells that decided nothing.
    undecided: tuple[tuple[str, tuple[str, ...]], ...]
    words: str
    short: str

    @property
    def key(self) -> tuple[str, ...]:
        """What the per-Python verdict groups neighbouring rows by."""
        if not self.monotonic:
            return ("not monotonic",)
        if not self.segments:
            return ("undecided",)
        if not self.works:
            return ("never",)
        if self.first_broken_above:
            return ("breaks", self.first_broken_above)
        return ("no break", self.segments[-1].last)


@dataclass(frozen=True)
class PythonGrid:
    """One Python's rows, oldest package release first, and its verdict in words."""

    python: str
    rows: tuple[Row, ...]
    verdict: str


@dataclass(frozen=True)
class Grid:
    """The verdict of a case with an axis: per Python, each row's boundaries."""

    package: str
    axis_package: str
    versions: tuple[str, ...]
    axis_versions: tuple[str, ...]
    per_python: tuple[PythonGrid, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package, "axis_package": self.axis_package,
            "versions": list(self.versions), "axis_versions": list(self.axis_versions),
            "per_python": {grid.python: {"verdict": grid.verdict,
                                         "rows": [_row_json(row) for row in grid.rows]}
                           for grid in self.per_python},
        }

    def headline(self) -> str:
        """Per Python the verdict words, Pythons that agree named together."""
        groups: dict[str, list[str]] = {}
        for grid in self.per_python:
            groups.setdefault(grid.verdict, []).append(grid.python)
        if not groups:
            return "No cell ran."
        lead = "Every Python agrees. " if len(groups) == 1 and len(self.per_python) > 1 else ""
        return lead + " ".join(f"{_pythons(names)}: {words}" for words, names in groups.items())


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "version": row.version,
        "segments": [{"state": s.state, "from": s.first, "to": s.last, "cells": s.cells}
                     for s in row.segments],
        "works": [{"from": w.first, "to": w.last, "spec": w.spec} for w in row.works],
        "first_broken_above": row.first_broken_above,
        "declared_incompatible_below": row.declared_incompatible_below,
        "declared_incompatible_from": row.declared_incompatible_from,
        "monotonic": row.monotonic,
        "undecided": [{"status": status, "axis_versions": list(versions)}
                      for status, versions in row.undecided],
        "words": row.words,
    }


def _pythons(names: Sequence[str]) -> str:
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Python {joined}"


def version_key(text: str) -> tuple[int, Version, str]:
    """PEP 440 order, anything unparsable last (by its text)."""
    try:
        return (0, Version(text), "")
    except InvalidVersion:
        return (1, Version("0"), text)


def span(versions: Sequence[str]) -> str:
    """A run of releases: its only one, or its first and last joined by an en dash."""
    return versions[0] if len(versions) == 1 else f"{versions[0]}–{versions[-1]}"


def spans(chosen: Iterable[str], order: Sequence[str]) -> str:
    """Releases as runs of neighbours in ``order``, each a ``span``, comma-separated."""
    position = {v: i for i, v in enumerate(order)}
    runs: list[list[str]] = []
    for version in sorted(set(chosen), key=lambda v: position.get(v, len(position))):
        if runs and position.get(version, -2) == position.get(runs[-1][-1], -9) + 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(span(run) for run in runs)


# ---- one row --------------------------------------------------------------------------------


def segments_of(states: Mapping[str, str], order: Sequence[str]) -> tuple[Segment, ...]:
    """The row's decided cells (``states`` by axis release, in ``order``) merged into runs of
    one state; releases that did not run between two cells of one state belong to the run."""
    found: list[Segment] = []
    for version in order:
        state = states.get(version, UNDECIDED)
        if state == UNDECIDED:
            continue
        if found and found[-1].state == state:
            found[-1] = Segment(state, found[-1].first, version, found[-1].cells + 1)
        else:
            found.append(Segment(state, version, version, 1))
    return tuple(found)


def is_monotonic(segments: Sequence[Segment]) -> bool:
    """Whether the row rises to "works" and falls again, once: declared incompatible, broken,
    works, broken, declared incompatible (each part optional; no "works" at all is allowed)."""
    levels = [_LEVEL[s.state] for s in segments]
    peak = levels.index(max(levels)) if levels else 0
    rising = all(a < b for a, b in zip(levels[:peak], levels[1:peak + 1]))
    falling = all(a > b for a, b in zip(levels[peak:], levels[peak + 1:]))
    return rising and falling


def analyse_row(python: str, version: str, statuses: Mapping[str, Status],
                order: Sequence[str], axis_package: str) -> Row:
    """The boundaries of one row: ``statuses`` by axis release (the cells that exist), ``order``
    the planned axis releases oldest first."""
    order = list(order) or sorted(statuses, key=version_key)
    states = {v: axis_state(s) for v, s in statuses.items()}
    segments = segments_of(states, order)
    decided = [v for v in order if states.get(v, UNDECIDED) != UNDECIDED]
    works = []
    for segment in segments:
        if segment.state != WORKS:
            continue
        later = decided[decided.index(segment.last) + 1:]
        after = order[order.index(segment.last) + 1:]
        between = after[:after.index(later[0])] if later else after
        if any(v in statuses for v in between):
            # Cells that decided nothing follow: the range is known up to its last cell only.
            spec = (f"=={segment.first}" if segment.first == segment.last
                    else f">={segment.first},<={segment.last}")
        elif later:
            spec = f">={segment.first},<{later[0]}"
        else:
            spec = f">={segment.first}"
        works.append(WorksRange(segment.first, segment.last, spec))
    kinds = [s.state for s in segments]
    first_works = kinds.index(WORKS) if WORKS in kinds else None
    last_works = len(kinds) - 1 - kinds[::-1].index(WORKS) if WORKS in kinds else None
    above = segments[last_works + 1:] if last_works is not None else ()
    first_broken = next((s.first for s in above if s.state == BROKEN), None)
    below_declared = (segments[1].first if first_works and segments[0].state == DECLARED
                      else None)
    from_declared = (segments[-1].first if last_works is not None and above
                     and segments[-1].state == DECLARED else None)
    undecided: dict[str, list[str]] = {}
    for axis_version in order:
        if states.get(axis_version) == UNDECIDED:
            undecided.setdefault(statuses[axis_version].value, []).append(axis_version)
    monotonic = is_monotonic(segments) and len(works) <= 1
    not_decided = ", ".join(f"{spans(versions, order)} ({status.replace('_', ' ')})"
                            for status, versions in undecided.items())
    if segments:
        words, short = _row_words(segments, works, monotonic, axis_package, decided,
                                  first_works)
        words += f"; not decided: {not_decided}" if not_decided else ""
    else:
        words, short = f"nothing decided: {not_decided or 'no cell ran'}", "nothing decided"
    return Row(python, version, segments, tuple(works), first_broken, below_declared,
               from_declared, monotonic,
               tuple((status, tuple(versions)) for status, versions in undecided.items()),
               words, short)


def _row_words(segments: Sequence[Segment], works: Sequence[WorksRange], monotonic: bool,
               axis: str, decided: Sequence[str], first_works: int | None) -> tuple[str, str]:
    """The boundary in words ("works with dep >=2.2.2,<3.0.0; first dep that breaks: 3.0.0;
    declared incompatible below 2.2.2") and its short form for the picture."""
    listed = ", ".join(f"{_WORDS[s.state]} {_extent(s)}" for s in segments)
    if not monotonic:
        return (f"not monotonic along {axis} (run the full grid for this row): {listed}",
                "not monotonic")
    if first_works is None:
        if len(segments) == 1:
            state = _WORDS[segments[0].state]
            return (f"{state} with every decided {axis} release ({_extent(segments[0])})",
                    f"{state} with all")
        return f"works with no {axis} release: {listed}", "never works"
    (found,) = works
    parts = [f"works with {axis} {found.spec}"]
    above = segments[first_works + 1:]
    below = segments[:first_works]
    short = f"works {found.spec}"
    if not above:
        parts.append(f"no {axis} release up to {decided[-1]} breaks it")
    for k, segment in enumerate(above):
        if segment.state == BROKEN:
            parts.append(f"first {axis} that breaks: {segment.first}" if k == 0
                         else f"broken from {segment.first}")
            if k == 0:
                short += f"; breaks from {segment.first}"
        else:
            parts.append(f"declared incompatible from {segment.first}")
    for k, segment in enumerate(reversed(below)):
        limit = (below[len(below) - k].first if k else found.first)
        parts.append(f"{_WORDS[segment.state]} below {limit}")
    return "; ".join(parts), short


def _extent(segment: Segment) -> str:
    return span([segment.first, segment.last] if segment.first != segment.last
                else [segment.first])


# ---- the grid -------------------------------------------------------------------------------


def python_verdict(rows: Sequence[Row], package: str, axis: str) -> str:
    """One Python's rows in a sentence: neighbouring rows that break at the same axis release
    (or never, or not at all) named together."""
    groups: list[tuple[tuple[str, ...], list[Row]]] = []
    for row in rows:
        if groups and groups[-1][0] == row.key:
            groups[-1][1].append(row)
        else:
            groups.append((row.key, [row]))
    breaks, others = [], []
    for key, members in groups:
        names = span([members[0].version, members[-1].version] if len(members) > 1
                     else [members[0].version])
        if key[0] == "breaks":
            breaks.append(f"{key[1]} for {names}")
        elif key[0] == "no break":
            others.append(f"no {axis} release up to {key[1]} breaks {package} {names}")
        elif key[0] == "never":
            others.append(f"{package} {names} works with no tested {axis} release")
        elif key[0] == "undecided":
            others.append(f"{package} {names}: nothing decided")
        else:
            others.append(f"{package} {names}: not monotonic along {axis} (see the grid)")
    clauses = ([f"the first {axis} that breaks {package} is " + ", ".join(breaks)] if breaks
               else [])
    clauses += others
    if not clauses:
        return "no cell ran."
    return "; ".join(clauses) + "."


def derive_grid(observations: Sequence[AxisObservation], package: str, axis_package: str,
                versions: Sequence[str] = (), axis_versions: Sequence[str] = ()) -> Grid:
    """Every row's boundaries and each Python's verdict; ``versions`` and ``axis_versions`` are
    the planned releases (default: those observed)."""
    rows_order = sorted({*versions, *(o.version for o in observations)}, key=version_key)
    columns = sorted({*axis_versions, *(o.axis_version for o in observations)}, key=version_key)
    by_python: dict[str, dict[str, dict[str, Status]]] = {}
    for obs in observations:
        by_python.setdefault(obs.python, {}).setdefault(obs.version, {})[obs.axis_version] = \
            obs.status
    grids = []
    for python in sorted(by_python, key=py.sort_key):
        cells = by_python[python]
        rows = tuple(analyse_row(python, version, cells[version], columns, axis_package)
                     for version in rows_order if version in cells)
        grids.append(PythonGrid(python, rows, python_verdict(rows, package, axis_package)))
    return Grid(package, axis_package, tuple(rows_order), tuple(columns), tuple(grids))
