"""store: cells.json round-trips, refuses foreign files, writes atomically."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from repro_matrix import atomic, store
from repro_matrix.errors import UsageError
from repro_matrix.model import Cell, CellRecord, Claim, Status
from repro_matrix.verdict.derive import Observation, derive
from tests.factories import full_record, one_per_status


def test_cells_round_trip(tmp_path: Path) -> None:
    records = [full_record(), *one_per_status()]
    path = store.write_cells(tmp_path, "demo", records, {"package": "pkg"})
    meta, loaded = store.read_cells(path)
    assert path == tmp_path / "demo" / "cells.json"
    assert loaded == records
    assert meta["package"] == "pkg"
    assert meta["schema_version"] == store.SCHEMA_VERSION


def test_stored_cell_carries_its_id_and_status_value(tmp_path: Path) -> None:
    path = store.write_cells(tmp_path, "demo", [full_record()], {})
    (cell,) = json.loads(path.read_text())["cells"]
    assert cell["cell"]["id"] == "demo/py3.9/1.0"
    assert cell["status"] == "reproduced"
    assert cell["lock"] == list(full_record().lock)


@pytest.mark.parametrize(("content", "message"), [
    (json.dumps({"schema_version": 99, "cells": []}), "results schema 99 is not 1"),
    (json.dumps({"cells": []}), "results schema None is not 1"),
    ("{not json", "unreadable results"),
    (json.dumps({"schema_version": 1, "cells": [{"cell": {}}]}), "malformed cell record"),
    (json.dumps({"schema_version": 1, "cells": [{**store.record_to_json(full_record()),
                                                  "status": "exploded"}]}),
     "malformed cell record"),
])
def test_foreign_or_broken_results_are_usage_errors(tmp_path: Path, content: str,
                                                    message: str) -> None:
    path = tmp_path / "cells.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message) as info:
        store.read_cells(path)
    assert str(path) in info.value.message


def test_missing_results_are_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no results here"):
        store.read_cells(tmp_path / "cells.json")


@pytest.mark.parametrize("content", ["[]", "null"])
def test_non_object_results_are_usage_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cells.json"
    path.write_text(content)
    with pytest.raises(UsageError):
        store.read_cells(path)


def test_write_atomic_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.md"
    store.write_atomic(target, "old\n")
    store.write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_failed_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(UsageError, match="cannot write results"):
        store.write_atomic(target, "text")
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_full_disk_is_one_usage_error_and_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "demo" / "cells.json"
    store.write_atomic(target, "old\n")

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UsageError) as info:
        store.write_atomic(target, "new\n")
    assert info.value.message == f"{target}: cannot write results (No space left on device)"
    assert "--results" in info.value.hint
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["cells.json"]  # no partial file


def test_unwritable_results_folder_is_one_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(UsageError, match=r"results/demo/cells\.json: cannot write results"):
        store.write_atomic(blocker / "demo" / "cells.json", "{}")


def test_verdict_json_has_claim_holds_and_per_python_keys(tmp_path: Path) -> None:
    observations = [Observation(p, v, s) for p in ("3.9", "3.10")
                    for v, s in (("1.0", Status.REPRODUCED), ("2.0", Status.NOT_REPRODUCED))]
    verdict = derive(observations, Claim(first_fixed="2.0", source="changelog"))
    data = store.verdict_to_json(verdict)
    assert data["claim_holds"] is True
    assert data["claim"] == {"first_fixed": "2.0", "introduced": None, "source": "changelog"}
    assert list(data["observed"]["per_python"]) == ["3.9", "3.10"]
    assert data["observed"]["overall"]["first_fixed"] == "2.0"
    assert data["schema_version"] == store.SCHEMA_VERSION
    path = store.write_verdict(tmp_path, "demo", verdict)
    assert json.loads(path.read_text()) == data


def test_verdict_json_claim_holds_is_null_when_undecided() -> None:
    verdict = derive([Observation("3.9", "1.0", Status.CANNOT_INSTALL)], Claim(first_fixed="1.0"))
    assert store.verdict_to_json(verdict)["claim_holds"] is None


def test_atomic_file_leaves_the_old_file_and_no_temporary_when_the_block_raises(
        tmp_path: Path) -> None:
    target = tmp_path / "cache" / "page.json"
    atomic.write_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic.atomic_file(target) as out:
        out.write(b"half")
        raise RuntimeError("checksum mismatch")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["page.json"]


def test_axis_cell_id_names_the_pair_and_round_trips(tmp_path: Path) -> None:
    cell = Cell("demo", "3.11", "2.2.2", "dep", "3.0.1")
    record = CellRecord(cell, Status.WORKS, "import ok",
                        package_cutoffs=(("dep", "2023-10-25T23:59:59Z"),))
    path = store.write_cells(tmp_path, "demo", [record, full_record()], {})
    stored = json.loads(path.read_text())["cells"]
    assert stored[0]["cell"]["id"] == "demo/py3.11/2.2.2/dep==3.0.1"
    assert stored[0]["package_cutoffs"] == {"dep": "2023-10-25T23:59:59Z"}
    # A one-axis record is written exactly as before: no axis keys, no cutoffs.
    assert set(stored[1]["cell"]) == {"id", "case_id", "python", "version"}
    assert "package_cutoffs" not in stored[1]
    assert store.read_cells(path)[1] == [record, full_record()]


@pytest.mark.parametrize(("status", "affected", "unaffected"), [
    (Status.REPRODUCED, True, False), (Status.BROKEN, True, False),
    (Status.NOT_REPRODUCED, False, True), (Status.WORKS, False, True),
    (Status.DECLARED_INCOMPATIBLE, False, False), (Status.CANNOT_INSTALL, False, False),
])
def test_affected_and_unaffected_cover_both_kinds(status: Status, affected: bool,
                                                  unaffected: bool) -> None:
    assert (status.affected, status.unaffected, status.decisive) == (
        affected, unaffected, affected or unaffected)


def test_a_legend_lists_the_statuses_of_the_cases_kind() -> None:
    from repro_matrix.report.vocabulary import legend_statuses

    bug = [CellRecord(Cell("demo", "3.11", "1.0"), Status.REPRODUCED, "")]
    pair = [CellRecord(Cell("demo", "3.11", "1.0", "dep", "2.0"), Status.BROKEN, "")]
    assert Status.REPRODUCED in legend_statuses(bug)
    assert Status.WORKS not in legend_statuses(bug)
    assert {Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE} <= set(
        legend_statuses(pair))
    assert Status.NOT_REPRODUCED not in legend_statuses(pair)


def test_case_meta_carries_the_kind_and_the_axis_only_when_set() -> None:
    from repro_matrix.model import CaseMeta

    plain = CaseMeta(case="demo").to_json()
    assert not {"kind", "axis_package", "axis_versions"} & set(plain)
    meta = CaseMeta(case="demo", kind="compatibility", axis_package="dep",
                    axis_versions=("2.2.0", "3.0.1"), axis_release_dates={"2.2.0": "2022-08-01"})
    again = CaseMeta.from_json(meta.to_json())
    assert again == meta
    assert CaseMeta.from_json(plain).kind == "bug"


def test_axis_cells_order_by_python_release_then_axis_release() -> None:
    cells = [Cell("demo", "3.11", "1.0", "dep", "10.0"), Cell("demo", "3.9", "1.10", "dep", "2.0"),
             Cell("demo", "3.9", "1.2", "dep", "9.0"), Cell("demo", "3.9", "1.2", "dep", "10.0")]
    ordered = store.cell_order([CellRecord(c, Status.WORKS, "") for c in cells])
    assert [r.cell.id for r in ordered] == [
        "demo/py3.9/1.2/dep==9.0", "demo/py3.9/1.2/dep==10.0", "demo/py3.9/1.10/dep==2.0",
        "demo/py3.11/1.0/dep==10.0"]


def test_a_slice_of_the_axis_merges_into_the_stored_axis_meta() -> None:
    stored = {"axis_package": "dep", "axis_versions": ["2.0", "10.0"],
              "axis_release_dates": {"2.0": "2021-01-01"}}
    new = {"axis_package": "dep", "axis_versions": ["3.0"],
           "axis_release_dates": {"3.0": "2023-01-01"}}
    merged = store.merge_meta(stored, new)
    assert merged["axis_versions"] == ["2.0", "3.0", "10.0"]
    assert merged["axis_release_dates"] == {"2.0": "2021-01-01", "3.0": "2023-01-01"}
    assert "axis_versions" not in store.merge_meta({}, {"versions": ["1.0"]})
