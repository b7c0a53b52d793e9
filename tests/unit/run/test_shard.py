"""Sharding is deterministic, balanced by cost, keeps image groups together; merging refuses
mixtures, duplicates and gaps."""

from __future__ import annotations

import pytest

from repro_matrix.errors import UsageError
from repro_matrix.model import Attempt, Cell, CellRecord, Status
from repro_matrix.run.shard import merge_records, parse_shard, partition, shard_loads

CELLS = [Cell(case, py, f"1.{v}") for case in ("a", "b") for py in ("3.9", "3.11")
         for v in range(10)]
PACKAGE = {"a": "pkg", "b": "pkg"}


def test_shards_cover_every_cell_once_and_are_deterministic() -> None:
    shards = partition(CELLS, PACKAGE, 3)
    assert sorted(c.id for s in shards for c in s) == sorted(c.id for c in CELLS)
    assert shards == partition(CELLS, PACKAGE, 3)


def test_cells_sharing_an_image_stay_in_one_shard() -> None:
    shards = partition(CELLS, PACKAGE, 3)
    where = {(c.python, c.version): i for i, s in enumerate(shards) for c in s}
    for i, shard in enumerate(shards):
        for cell in shard:
            assert where[(cell.python, cell.version)] == i


def test_balance_follows_cost_not_count() -> None:
    previous = {c.id: CellRecord(c, Status.CANNOT_INSTALL, "", attempts=(Attempt("x", "f"),) * 5)
                for c in CELLS if c.version == "1.0"}
    previous.update({c.id: CellRecord(c, Status.UNAVAILABLE, "") for c in CELLS
                     if c.python == "3.11" and c.version != "1.0"})
    shards = partition(CELLS, PACKAGE, 2, previous)
    loads = shard_loads(shards, previous)
    assert max(loads) - min(loads) <= max(loads) * 0.5
    assert len(shards[0]) != len(shards[1])


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1-3", ""])
def test_bad_shard_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def _part(source: str, cells: list[Cell], **meta: object) -> tuple[str, dict[str, object],
                                                                   list[CellRecord]]:
    base: dict[str, object] = {"matrix_digest": "m", "harness_version": "1", "case": "a",
                               "plan_cells": [c.id for c in CELLS[:4]]}
    base.update(meta)
    return source, base, [CellRecord(c, Status.NOT_REPRODUCED, "") for c in cells]


def test_merge_restores_plan_order() -> None:
    meta, records = merge_records([_part("s2", CELLS[2:4]), _part("s1", CELLS[0:2])])
    assert [r.cell.id for r in records] == [c.id for c in CELLS[:4]]
    assert meta["merged_from"] == ["s2", "s1"]


@pytest.mark.parametrize(("parts", "message"), [
    ([_part("s1", CELLS[0:2]), _part("s2", CELLS[1:4])], "duplicated cells: a/py3.9/1.1"),
    ([_part("s1", CELLS[0:2]), _part("s2", CELLS[2:3])], "missing cells: a/py3.9/1.3"),
    ([_part("s1", CELLS[0:2]), _part("s2", CELLS[2:4], matrix_digest="other")],
     "differ in matrix_digest"),
    ([_part("s1", CELLS[0:2]), _part("s2", CELLS[2:4], harness_version="2")],
     "differ in harness_version"),
])
def test_merge_refuses_mixtures(parts: list[tuple[str, dict[str, object], list[CellRecord]]],
                                message: str) -> None:
    with pytest.raises(UsageError, match=message):
        merge_records(parts)


AXIS_CELLS = [Cell("a", py, v, "dep", d) for py in ("3.9", "3.11") for v in ("1.0", "1.1")
              for d in ("2.0", "3.0")]


def test_axis_cells_of_one_image_stay_together_and_each_pin_is_its_own_image() -> None:
    shards = partition([*AXIS_CELLS, *(Cell("b", c.python, c.version, "dep", c.axis_version)
                                       for c in AXIS_CELLS)], {"a": "pkg", "b": "pkg"}, 3)
    where: dict[tuple[str, str, str], int] = {}
    for i, shard in enumerate(shards):
        for cell in shard:
            assert where.setdefault((cell.python, cell.version, cell.axis_version), i) == i
    assert sum(1 for s in shards if s) == 3  # eight images, not four, to spread


def test_merge_of_axis_shards_restores_plan_order() -> None:
    plan_cells = [c.id for c in AXIS_CELLS]
    first, second = AXIS_CELLS[::2], AXIS_CELLS[1::2]
    _, merged = merge_records([
        _part("s2", second, plan_cells=plan_cells), _part("s1", first, plan_cells=plan_cells)])
    assert [r.cell.id for r in merged] == plan_cells
    assert merged[0].cell.id == "a/py3.9/1.0/dep==2.0"
