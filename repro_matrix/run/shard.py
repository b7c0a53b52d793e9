"""Split a plan into deterministic, cost-balanced shards, and merge shard results back into one.

Cells that would share an image (same package, Python and version, and axis pin, across cases)
stay in one shard. Costs come from an earlier run's records where there are any (a cell that ran
costs its build-and-run time, one that could not install its attempts, an unavailable one almost
nothing), else from a flat estimate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repro_matrix import store
from repro_matrix.errors import UsageError
from repro_matrix.model import Cell, CellRecord, Status
from repro_matrix.run.record import previous_records, stored_records
from repro_matrix.spec import plan

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
    if record.status is Status.DECLARED_INCOMPATIBLE:  # resolved only, never built
        return 1.5 * max(len(record.attempts), 1)
    return 3.0 + (record.duration_s or 0.0)


def image_group(cell: Cell, package_of: Mapping[str, str]) -> tuple[str, str, str, str]:
    """Cells that would share an image: one package release on one Python (with one axis
    pin, when their case has an axis)."""
    return (package_of[cell.case_id], cell.python, cell.version, cell.axis_requirement)


def partition(cells: Sequence[Cell], package_of: Mapping[str, str], count: int,
              previous: Mapping[str, CellRecord] | None = None) -> list[list[Cell]]:
    """``count`` shards: greedy largest-cost-first onto the lightest shard, ties by name."""
    previous = previous or {}
    groups: dict[tuple[str, str, str, str], list[Cell]] = {}
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


def partition_cells(case_plans: Sequence[plan.CasePlan], count: int, cost_from: Path | None,
               ) -> tuple[list[list[Cell]], dict[str, CellRecord]]:
    previous: dict[str, CellRecord] = {}
    for cp in case_plans:
        if cost_from is not None:
            previous.update(previous_records(cost_from, cp.case.id))
    cells = [cell for cp in case_plans for cell in cp.cells]
    package_of = {cp.case.id: cp.case.package for cp in case_plans}
    return partition(cells, package_of, count, previous), previous


def shard_plans(case_plans: Sequence[plan.CasePlan], spec: ShardSpec,
                cost_from: Path | None) -> tuple[plan.CasePlan, ...]:
    """The plans narrowed to shard ``spec``; every job computes the same split from the same
    plan and the same cost source."""
    shards = partition_cells(case_plans, spec.count, cost_from)[0]
    keep = {cell.id for cell in shards[spec.index - 1]}
    return tuple(replace(cp, cells=tuple(c for c in cp.cells if c.id in keep))
                 for cp in case_plans)


def shard_matrix(case_plans: Sequence[plan.CasePlan], count: int,
                 cost_from: Path | None) -> list[dict[str, Any]]:
    """The shard list in the form a CI job matrix's ``include`` takes."""
    shards, previous = partition_cells(case_plans, count, cost_from)
    return [{"shard": f"{i}/{count}", "index": i, "cells": len(shard), "expected_s": load}
            for i, (shard, load) in enumerate(zip(shards, shard_loads(shards, previous)), 1)]


def merge_results(sources: Sequence[Path], results: Path) -> list[str]:
    """Merge shard folders into ``results``: one cells.json per case; refuses mixtures."""
    case_ids = sorted({p.parent.name for source in sources for p in source.glob("*/cells.json")})
    if not case_ids:
        raise UsageError(f"--merge: no cells.json under {', '.join(map(str, sources))}")
    for case_id in case_ids:
        parts = []
        for source in sources:
            path = store.case_dir(source, case_id) / "cells.json"
            if path.exists():
                meta, records = store.read_cells(path)
                parts.append((str(source), meta, records))
        meta, records = merge_records(parts)
        # Into whatever the folder already holds, by the same rules as a run.
        stored_meta, stored = stored_records(results, case_id)
        for record in records:
            if store.supersedes(record, stored.get(record.cell.id)):
                stored[record.cell.id] = record
        store.write_cells(results, case_id, store.cell_order(list(stored.values())),
                          store.merge_meta(stored_meta, meta))
    return case_ids
