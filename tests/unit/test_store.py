"""store: cells.json round-trips, refuses foreign files, writes atomically."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from repro_matrix import store
from repro_matrix.errors import UsageError
from repro_matrix.model import Attempt, Cell, CellRecord, Claim, Status
from repro_matrix.verdict.derive import Observation, derive

LOCK = ("pkg==1.0 --hash=sha256:" + "a" * 64, "dep==2.0 --hash=sha256:" + "b" * 64)


def full_record() -> CellRecord:
    return CellRecord(
        cell=Cell("demo", "3.9", "1.0"), status=Status.REPRODUCED,
        reason="exit 1, output has 'BOOM'", exit_code=1, duration_s=0.25, lock=LOCK,
        build_lock=("pip==20.2.4 --hash=sha256:" + "c" * 64,), cutoff="2021-01-02T00:00:00Z",
        attempts=(Attempt("2020-10-06T00:00:00Z", "resolve failed", "no solution"),
                  Attempt("2021-01-02T00:00:00Z", "ok")),
        image_id="sha256:" + "d" * 64, image_ref="repro-matrix/cell:0123456789abcdef0123",
        base_provider="registry", base_source="registry image python:3.9-slim",
        interpreter_version="3.9.18", output_excerpt="RuntimeError: BOOM\n",
        finished_at="2024-01-02T03:04:05Z")


def minimal_records() -> list[CellRecord]:
    return [CellRecord(Cell("demo", "3.11", f"1.{i}"), status, f"reason {i}")
            for i, status in enumerate(Status)]


def test_cells_round_trip(tmp_path: Path) -> None:
    records = [full_record(), *minimal_records()]
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
    assert cell["lock"] == list(LOCK)


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

    monkeypatch.setattr(store.os, "replace", full)
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
    store.write_atomic(target, "old", results=False)
    with pytest.raises(RuntimeError), store.atomic_file(target, results=False) as out:
        out.write(b"half")
        raise RuntimeError("checksum mismatch")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["page.json"]
