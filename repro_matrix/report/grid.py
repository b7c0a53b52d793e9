"""What the markdown, HTML and SVG reports share about a case with an axis: per Python a grid of
package releases (rows) by axis releases (columns), identical neighbouring rows and columns
collapsed into ranges, as a heat map does."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.version import Version

from repro_matrix import pythons as py
from repro_matrix.model import CaseMeta, CellRecord, Status
from repro_matrix.report.vocabulary import look, plural, run_words
from repro_matrix.verdict import causes
from repro_matrix.verdict.grid import (
    UNDECIDED,
    Grid,
    Row,
    axis_state,
    span,
    spans,
    version_key,
)


@dataclass(frozen=True)
class Block:
    """The cells of one row range by one column range: one status (None: none ran and none
    can be inferred), how many ran, and the cell that stands for them (the newest row's, at the
    lowest column: where a change shows)."""

    status: Status | None
    cells: int
    representative: CellRecord | None
    size: int = 0  # the cells the block spans (rows by columns)

    @property
    def inferred(self) -> bool:
        """No cell of the block ran: a bisection infers its status from both sides."""
        return self.status is not None and self.cells == 0


@dataclass(frozen=True)
class GridLayout:
    """One Python's collapsed grid: row ranges, column ranges, a block at each crossing, and
    the boundary words of each row range."""

    python: str
    rows: tuple[tuple[str, ...], ...]
    columns: tuple[tuple[str, ...], ...]
    blocks: tuple[tuple[Block, ...], ...]
    words: tuple[str, ...]
    short: tuple[str, ...]

    @property
    def row_labels(self) -> list[str]:
        return [span(list(r) if len(r) < 2 else [r[0], r[-1]]) for r in self.rows]

    @property
    def column_labels(self) -> list[str]:
        return [span(list(c) if len(c) < 2 else [c[0], c[-1]]) for c in self.columns]


def _runs(keys: Sequence[tuple[object, ...]]) -> list[range]:
    """Index ranges of equal neighbouring keys."""
    found: list[range] = []
    for i, key in enumerate(keys):
        if found and keys[found[-1].start] == key:
            found[-1] = range(found[-1].start, i + 1)
        else:
            found.append(range(i, i + 1))
    return found


def layout(records: Sequence[CellRecord], grid: Grid, python: str,
           collapse: bool = True) -> GridLayout:
    """The grid of one Python; ``collapse`` merges identical neighbouring rows and columns."""
    mine = [r for r in records if r.cell.python == python]
    by_key = {(r.cell.version, r.cell.axis_version): r for r in mine}
    row_words = {row.version: row for python_grid in grid.per_python
                 if python_grid.python == python for row in python_grid.rows}
    versions = [v for v in grid.versions if any(r.cell.version == v for r in mine)]
    columns = list(grid.axis_versions)

    filled = {(v, a): status for v in versions
              for a, status in inferred_row(by_key, v, columns).items()}
    row_keys = [tuple(filled.get((v, a)) for a in columns) for v in versions]
    column_keys = [tuple(filled.get((v, a)) for v in versions) for a in columns]
    row_runs = (_runs(row_keys) if collapse
                else [range(i, i + 1) for i in range(len(versions))])
    column_runs = (_runs(column_keys) if collapse
                   else [range(j, j + 1) for j in range(len(columns))])
    blocks = []
    for rows in row_runs:
        line = []
        for cols in column_runs:
            found = [by_key[(versions[i], columns[j])] for i in rows for j in cols
                     if (versions[i], columns[j]) in by_key]
            representative = (max(found, key=lambda r: (version_key(r.cell.version),
                                                        -columns.index(r.cell.axis_version)))
                              if found else None)
            line.append(Block(filled.get((versions[rows.start], columns[cols.start])),
                              len(found), representative, len(rows) * len(cols)))
        blocks.append(tuple(line))
    empty = Row(python, "", (), (), None, None, None, True, (), "no cell ran", "")
    shown = [row_words.get(versions[rows.start], empty) for rows in row_runs]
    return GridLayout(
        python=python,
        rows=tuple(tuple(versions[i] for i in rows) for rows in row_runs),
        columns=tuple(tuple(columns[j] for j in cols) for cols in column_runs),
        blocks=tuple(blocks), words=tuple(row.words for row in shown),
        short=tuple(row.short for row in shown))


def inferred_row(by_key: Mapping[tuple[str, str], CellRecord], version: str,
                 columns: Sequence[str]) -> dict[str, Status]:
    """One row's statuses along the axis: the cells that ran, and those a bisection did not run
    between two decided cells in one state (that state's status, as the row's words read them);
    none before the first decided cell, after the last, or between two states."""
    ran = {a: by_key[(version, a)].status for a in columns if (version, a) in by_key}
    decided = [a for a in columns if a in ran and axis_state(ran[a]) != UNDECIDED]
    found = dict(ran)
    for left, right in zip(decided, decided[1:]):
        if axis_state(ran[left]) != axis_state(ran[right]):
            continue
        for axis_version in columns[columns.index(left) + 1:columns.index(right)]:
            found.setdefault(axis_version, ran[left])
    return found


def layouts(records: Sequence[CellRecord], grid: Grid) -> list[GridLayout]:
    """Each Python's collapsed grid, in Python order, skipping Pythons whose every cell is
    unavailable (no base image: a grid that says nothing)."""
    shown = []
    for python in sorted({r.cell.python for r in records}, key=py.sort_key):
        mine = [r for r in records if r.cell.python == python]
        if all(r.status is Status.UNAVAILABLE for r in mine):
            continue
        shown.append(layout(records, grid, python))
    return shown


def unavailable_pythons(records: Sequence[CellRecord]) -> list[str]:
    return [p for p in sorted({r.cell.python for r in records}, key=py.sort_key)
            if all(r.status is Status.UNAVAILABLE for r in records if r.cell.python == p)]


def cell_words(record: CellRecord, package: str) -> str:
    """"py3.11 pkg 2.2.2 + dep 3.0.0" (or "py3.11 2.2.2" without an axis)."""
    cell = record.cell
    if not cell.axis_package:
        return f"py{cell.python} {cell.version}"
    return f"py{cell.python} {package} {cell.version} + {cell.axis_package} {cell.axis_version}"


def where(members: Sequence[CellRecord], grid: Grid) -> str:
    """Which cells, per Python: package release ranges by axis release ranges, neighbouring
    rows with the same axis releases named together (one range of rows by those releases)."""
    by_python: dict[str, dict[str, list[str]]] = {}
    for record in members:
        by_python.setdefault(record.cell.python, {}).setdefault(
            record.cell.version, []).append(record.cell.axis_version)
    phrases: dict[str, list[str]] = {}
    for python in sorted(by_python, key=py.sort_key):
        rows = by_python[python]
        ordered = sorted(rows, key=version_key)
        parts: list[tuple[list[str], str]] = []
        for version in ordered:
            columns = spans(rows[version], grid.axis_versions)
            if parts and parts[-1][1] == columns and _neighbours(parts[-1][0][-1], version,
                                                                  grid.versions):
                parts[-1][0].append(version)
            else:
                parts.append(([version], columns))
        text = "; ".join(f"{span([vs[0], vs[-1]] if len(vs) > 1 else vs)} × {columns}"
                         for vs, columns in parts)
        phrases.setdefault(text, []).append(f"py{python}")
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in phrases.items())


def _neighbours(first: str, second: str, order: Sequence[str]) -> bool:
    try:
        return order.index(second) == order.index(first) + 1
    except ValueError:
        return False


def pair_cause(record: CellRecord, package: str) -> str:
    """``causes.cause`` with the cell's own pins masked ("pkg==…", "dep==…"): a
    resolver's refusal names them, and cells refused for the same declared requirement belong
    in one group."""
    text = causes.cause(record)
    cell = record.cell
    for name, version in ((package, cell.version), (cell.axis_package, cell.axis_version)):
        if name and version:
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}=={re.escape(version)}(?![\w.])",
                          f"{name}==…", text, flags=re.IGNORECASE)
    return text


def cause_groups(records: Sequence[CellRecord], statuses: Sequence[Status],
                 package: str) -> list[causes.Group]:
    """Cells of the given statuses grouped by status and ``pair_cause``, biggest first, each
    group's cells in grid order (Python, row, column)."""
    wanted = set(statuses)
    found: dict[tuple[Status, str], list[CellRecord]] = {}
    for record in records:
        if record.status in wanted:
            found.setdefault((record.status, pair_cause(record, package)), []).append(record)
    ordered = sorted(found.items(), key=lambda item: (-len(item[1]), item[0][0].value,
                                                      item[0][1]))
    return [causes.Group(status, text, tuple(sorted(
        members, key=lambda r: (py.sort_key(r.cell.python), Version(r.cell.version),
                                version_key(r.cell.axis_version)))))
        for (status, text), members in ordered]


def facts(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """What was planned and when it ran, for a case with an axis."""
    versions = len(meta.versions or {r.cell.version for r in records})
    axis = len(meta.axis_versions or {r.cell.axis_version for r in records})
    pythons = len(meta.pythons or {r.cell.python for r in records})
    planned = versions * axis * pythons
    ran = f"{len(records)} run" + (f" (bisect on {meta.axis_package})" if meta.bisect else "")
    return (f"Package `{meta.package}` × `{meta.axis_package}`: {plural(versions, 'release')} × "
            f"{plural(axis, f'{meta.axis_package} release')} × {plural(pythons, 'Python')} = "
            f"{plural(planned, 'cell')} planned; {ran}; {run_words(meta, records)}.")


# A grid's answers, counted first: the pair works, broke, or is excluded by its declarations.
_ANSWERS = (Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE)


def legend_order(records: Sequence[CellRecord]) -> list[Status]:
    """The statuses the cells hold, a grid's answers first."""
    present = {r.status for r in records}
    ordered = [*_ANSWERS, *(s for s in Status if s not in _ANSWERS)]
    return [s for s in ordered if s in present]


def coverage(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """Per Python: cells run out of those planned, and how many of each status."""
    versions = len(meta.versions or {r.cell.version for r in records})
    axis = len(meta.axis_versions or {r.cell.axis_version for r in records})
    parts, untested = [], []
    for python in sorted({r.cell.python for r in records}, key=py.sort_key):
        mine = [r for r in records if r.cell.python == python]
        if all(r.status is Status.UNAVAILABLE for r in mine):
            untested.append(python)
            continue
        counts: dict[Status, int] = {}
        for record in mine:
            counts[record.status] = counts.get(record.status, 0) + 1
        what = ", ".join(f"{look(s).words} {counts[s]}" for s in legend_order(mine))
        bisect = " (bisect)" if python in meta.bisect else ""
        parts.append(f"Python {python}: {len(mine)} of {plural(versions * axis, 'cell')} "
                     f"run{bisect}: {what}")
    if untested:
        joined = ", ".join(untested)
        parts.append(f"not tested: Python {joined} (unavailable: no base image)")
    return "; ".join(parts) + "."
