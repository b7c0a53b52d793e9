"""Split a plan into deterministic, cost-balanced shards, and merge shard results back into one.

Cells that would share an image (same package, Python and version, across cases) stay in one
shard. Costs come from an earlier run's records where there are any (a cell that ran costs its
build-and-run time, one that could not install its attempts, an unavailable one almost nothing),
else from a flat estimate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from repro_matrix.errors import UsageError
from repro_matrix.model import Cell, CellRecord, Status

_SHARD = re.compile(r"^(\d+)/(\d+)$")
DEFAULT_COST_S = 8.0  # a cold cell: resolve, build and run


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    match = _SHARD.match(text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard: '{text}' is not K/N with 1 ≤ K ≤ N (for example 2/3)")
    return ShardSpec(int(match.group(1)), int(match.group(2)))


def expected_cost(record: CellRecord | None) -> float:
    """Seconds a cell is expected to take, from its last record when there is one."""
    if record is None:
        return DEFAULT_COST_S
    if record.status in (Status.UNAVAILABLE, Status.NOT_FOR_PYTHON):
        return 0.05
    if record.status is Status.CANNOT_INSTALL:
        return 6.0 * max(len(record.attempts), 1)
    return 3.0 + (record.duration_s or 0.0)


def image_group(cell: Cell, package_of: Mapping[str, str]) -> tuple[str, str, str]:
    return (package_of[cell.case_id], cell.python, cell.version)


def partition(cells: Sequence[Cell], package_of: Mapping[str, str], count: int,
              previous: Mapping[str, CellRecord] | None = None) -> list[list[Cell]]:
    """``count`` shards: greedy largest-cost-first onto the lightest shard, ties by name."""
    previous = previous or {}
    groups: dict[tuple[str, str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault(image_group(cell, package_of), []).append(cell)
    costed = sorted(((sum(expected_cost(previous.get(c.id)) for c in members), key, members)
                     for key, members in groups.items()),
                    key=lambda item: (-item[0], item[1]))
    shards: list[list[Cell]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for cost, _key, members in costed:
        lightest = min(range(count), key=lambda i: (loads[i], i))
        shards[lightest].extend(members)
        loads[lightest] += cost
    order = {cell.id: i for i, cell in enumerate(cells)}
    return [sorted(shard, key=lambda c: order[c.id]) for shard in shards]


def shard_loads(shards: Sequence[Sequence[Cell]],
                previous: Mapping[str, CellRecord] | None = None) -> list[float]:
    previous = previous or {}
    return [round(sum(expected_cost(previous.get(c.id)) for c in shard), 1) for shard in shards]


def merge_records(parts: Sequence[tuple[str, Mapping[str, object], Sequence[CellRecord]]],
                  ) -> tuple[dict[str, object], list[CellRecord]]:
    """One case's records from shard results ``(source, meta, records)``; refuses mixtures.

    Shards must come from the same matrix definition and harness version, must not overlap,
    and together must cover the plan they were cut from.
    """
    if not parts:
        raise UsageError("--merge: no shard results given")
    first_source, first_meta, _ = parts[0]
    for source, meta, _ in parts[1:]:
        for key in ("matrix_digest", "harness_version", "case"):
            if meta.get(key) != first_meta.get(key):
                raise UsageError(f"--merge: {source} and {first_source} differ in {key} "
                                 f"({meta.get(key)!r} vs {first_meta.get(key)!r}); merge "
                                 "only shards of one run")
    seen: dict[str, str] = {}
    merged: list[CellRecord] = []
    duplicates: list[str] = []
    for source, _, records in parts:
        for record in records:
            if record.cell.id in seen:
                duplicates.append(f"{record.cell.id} ({seen[record.cell.id]} and {source})")
                continue
            seen[record.cell.id] = source
            merged.append(record)
    if duplicates:
        raise UsageError(f"--merge: duplicated cells: {', '.join(duplicates[:5])}"
                         + (f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""))
    planned = first_meta.get("plan_cells")
    if isinstance(planned, list):
        missing = [cell_id for cell_id in planned if cell_id not in seen]
        if missing:
            raise UsageError(f"--merge: missing cells: {', '.join(missing[:5])}"
                             + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                             + "; a shard did not finish or was not given")
        order = {cell_id: i for i, cell_id in enumerate(planned)}
        merged.sort(key=lambda r: order.get(r.cell.id, len(order)))
    meta = {k: v for k, v in first_meta.items() if k not in ("shard",)}
    meta["merged_from"] = [source for source, _, _ in parts]
    return meta, merged
