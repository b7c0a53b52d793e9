"""Cell records for tests: one factory for every record, one for a cell that was built and run,
and the two shapes many tests share (every field set; one record per status)."""

from __future__ import annotations

from typing import Any

from repro_matrix.model import Attempt, Cell, CellRecord, Status


def record(python: str = "3.11", version: str = "1.0", status: Status = Status.NOT_REPRODUCED,
           reason: str = "", *, case: str = "demo", **fields: Any) -> CellRecord:
    """A cell's record with only what the test names."""
    return CellRecord(Cell(case, python, version), status, reason, **fields)


def ran(python: str, version: str, status: Status, reason: str, *, cutoff: str,
        lock_digit: str, image_id: str, image_ref: str, duration_s: float,
        exit_code: int | None, **fields: Any) -> CellRecord:
    """A cell that was built at ``cutoff`` (one attempt, its first) and run: its lock pins the
    package with a made-up hash of ``lock_digit``s."""
    return record(python, version, status, reason, exit_code=exit_code, duration_s=duration_s,
                  lock=(f"pkg=={version} --hash=sha256:{lock_digit * 64}",), cutoff=cutoff,
                  attempts=(Attempt(cutoff, "ok"),), image_id=image_id, image_ref=image_ref,
                  **fields)


def full_record(**changes: Any) -> CellRecord:
    """A record with every field set (an era cutoff that failed before the one that built)."""
    fields: dict[str, Any] = dict(
        reason="exit 1, output has 'BOOM'", exit_code=1, duration_s=0.25,
        lock=("pkg==1.0 --hash=sha256:" + "a" * 64, "dep==2.0 --hash=sha256:" + "b" * 64),
        build_lock=("pip==20.2.4 --hash=sha256:" + "c" * 64,), cutoff="2021-01-02T00:00:00Z",
        attempts=(Attempt("2020-10-06T00:00:00Z", "resolve failed", "no solution"),
                  Attempt("2021-01-02T00:00:00Z", "ok")),
        image_id="sha256:" + "d" * 64, image_ref="repro-matrix/cell:0123456789abcdef0123",
        base_provider="registry", base_source="registry image python:3.9-slim",
        interpreter_version="3.9.18", output_excerpt="RuntimeError: BOOM\n",
        finished_at="2024-01-02T03:04:05Z")
    fields.update(changes)
    return record("3.9", "1.0", Status.REPRODUCED, **fields)


def one_per_status(python: str = "3.11") -> list[CellRecord]:
    """One minimal record per status, versions 1.0, 1.1, … in the enum's order."""
    return [record(python, f"1.{i}", status, f"reason {i}") for i, status in enumerate(Status)]
