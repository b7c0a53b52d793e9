"""Write and read results: cells.json and verdict.json per case, atomically, schema-versioned."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from repro_matrix import __version__, atomic
from repro_matrix.errors import UsageError, unwritable_results
from repro_matrix.model import Attempt, Cell, CellRecord, Claim, Status, claim_to_json
from repro_matrix.pythons import sort_key
from repro_matrix.verdict.derive import Verdict

SCHEMA_VERSION = 1


def write_atomic(path: Path, text: str) -> None:
    """A results file replaced at once (``atomic.write_atomic``); a file system that refuses the
    write (full disk, permissions) is one UsageError naming the file, with no temporary left."""
    atomic.write_atomic(path, text, on_error=unwritable_results)


def check_writable(results: Path) -> None:
    """The results folder can take files, before any cell runs (one UsageError otherwise)."""
    probe = results / f".write-check.{os.getpid()}"
    try:
        results.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{results}: results folder not writable ({exc.strerror or exc})",
                         "fix its permissions or pass another --results folder") from None


def record_to_json(record: CellRecord) -> dict[str, Any]:
    data = asdict(record)
    # The axis keys and the per-package cutoffs only when set: a one-axis record reads as before.
    cell = {k: v for k, v in asdict(record.cell).items()
            if v or k not in ("axis_package", "axis_version")}
    data["cell"] = {"id": record.cell.id, **cell}
    data["status"] = record.status.value
    data.pop("package_cutoffs")
    if record.package_cutoffs:
        data["package_cutoffs"] = dict(record.package_cutoffs)
    return data


def record_from_json(data: dict[str, Any]) -> CellRecord:
    cell = data["cell"]
    fields = {k: v for k, v in data.items()
              if k not in ("cell", "status", "attempts", "package_cutoffs")}
    for key in ("lock", "build_lock"):
        fields[key] = tuple(fields.get(key, ()))
    cutoffs = data.get("package_cutoffs") or {}
    return CellRecord(
        cell=Cell(cell["case_id"], cell["python"], cell["version"],
                  str(cell.get("axis_package") or ""), str(cell.get("axis_version") or "")),
        status=Status(data["status"]),
        attempts=tuple(Attempt(**a) for a in data.get("attempts", ())),
        package_cutoffs=tuple((str(k), str(v)) for k, v in sorted(cutoffs.items())),
        **fields,
    )


def case_dir(results: Path, case_id: str) -> Path:
    return results / case_id


def write_cells(results: Path, case_id: str, records: Sequence[CellRecord],
                meta: dict[str, Any]) -> Path:
    path = case_dir(results, case_id) / "cells.json"
    payload = {"schema_version": SCHEMA_VERSION, "harness_version": __version__, **meta,
               "cells": [record_to_json(r) for r in records]}
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def read_cells(path: Path) -> tuple[dict[str, Any], list[CellRecord]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no results here", "run `nox -s matrix` first") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable results ({exc})",
                         "delete it and rerun the matrix") from None
    if not isinstance(payload, dict):
        raise UsageError(f"{path}: not a results file (expected a JSON object)",
                         "delete it and rerun the matrix")
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{path}: results schema {payload.get('schema_version')!r} is not "
                         f"{SCHEMA_VERSION}", "rerun the matrix with this harness version")
    try:
        records = [record_from_json(item) for item in payload["cells"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: malformed cell record ({exc})",
                         "delete it and rerun the matrix") from None
    meta = {k: v for k, v in payload.items() if k != "cells"}
    return meta, records


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    def scope_json(scope: Any) -> dict[str, Any]:
        return {
            "introduced": scope.introduced,
            "first_fixed": scope.first_fixed,
            "last_affected": scope.last_affected,
            "ranges": [{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(r).items()}
                       for r in scope.ranges],
            "branches": [{**asdict(b), "note": b.sentence()} for b in scope.branches],
            "undetermined": list(scope.undetermined),
            "decisive_cells": scope.decisive,
        }

    claim: Claim = verdict.claim.claim
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "claim": claim_to_json(claim),
        "claim_holds": verdict.claim.holds,
        "claim_answer": verdict.claim.answer_words,
        "claim_explanation": verdict.claim.explanation,
        "claim_evidence": list(verdict.claim.evidence),
        "claim_bounds": [{**asdict(b), "explanation": b.explanation,
                          "evidence": list(b.evidence)} for b in verdict.claim.bounds],
        "claim_releases": [{"version": r.version, "claimed": r.claimed, "observed": r.observed,
                            "agrees": r.agrees} for r in verdict.claim.releases],
        "claim_unchecked": list(verdict.claim.unchecked),
        "observed": {
            "overall": scope_json(verdict.overall),
            "per_python": {s.name.removeprefix("Python "): scope_json(s)
                           for s in verdict.per_python},
        },
        "differs_by_python": list(verdict.differs_by_python),
    }


def write_verdict(results: Path, case_id: str, verdict: Verdict) -> Path:
    path = case_dir(results, case_id) / "verdict.json"
    write_atomic(path, json.dumps(verdict_to_json(verdict), indent=2) + "\n")
    return path


# ---- merging a run into the stored record ---------------------------------------------------

# How much a record says: a decided cell, then any other outcome of a real run, then an
# infrastructure outage (no base image). A stored record only gives way to one that says as much.
DECIDED, RAN, OUTAGE = 3, 2, 1


def standing(status: Status) -> int:
    if status.decisive:
        return DECIDED
    return OUTAGE if status is Status.UNAVAILABLE else RAN


def supersedes(new: CellRecord, stored: CellRecord | None) -> bool:
    """Whether ``new`` replaces ``stored`` in the record: only with the same or better standing."""
    return stored is None or standing(new.status) >= standing(stored.status)


# Meta that describes how the case runs now (rerun commands read it): this run's or none.
_CASE_AS_RUN = ("command", "env", "folder", "requirements", "limits", "repro", "repro_path",
                "shard", "merged_from")


def merge_meta(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The meta of a cells.json holding stored records and this run's: lists and maps describe
    the union (readers draw tables and check merges from them), the rest is this run's."""
    def version_key(text: str) -> tuple[int, Any]:
        try:
            return (0, Version(text))
        except InvalidVersion:
            return (1, text)

    merged = {**stored, **new}
    for key in _CASE_AS_RUN:
        if key not in new:
            merged.pop(key, None)  # the case no longer sets it (a run adds only what is set)
    merged["versions"] = sorted({*stored.get("versions", ()), *new.get("versions", ())},
                                key=version_key)
    merged["pythons"] = sorted({*stored.get("pythons", ()), *new.get("pythons", ())},
                               key=sort_key)
    merged["plan_cells"] = _union(stored.get("plan_cells", ()), new.get("plan_cells", ()))
    if "axis_versions" in stored or "axis_versions" in new:
        merged["axis_versions"] = sorted({*stored.get("axis_versions", ()),
                                          *new.get("axis_versions", ())}, key=version_key)
    for key in ("release_dates", "bases", "bisect", "axis_release_dates"):
        if key in stored or key in new:
            merged[key] = {**stored.get(key, {}), **new.get(key, {})}
    return merged


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


def cell_order(records: Sequence[CellRecord]) -> list[CellRecord]:
    """Python, then PEP 440 version (then the axis release's): the order a full run writes (and
    a merge restores)."""
    def version(text: str) -> tuple[Any, ...]:
        try:
            return (0, Version(text), "")
        except InvalidVersion:
            return (1, Version("0"), text)

    def key(record: CellRecord) -> tuple[Any, ...]:
        cell = record.cell
        return (sort_key(cell.python), *version(cell.version), cell.axis_package,
                *version(cell.axis_version or "0"))

    return sorted(records, key=key)


# ---- the reports: renderers return text, these write it -------------------------------------

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_report(results: Path, name: str, text: str) -> Path:
    """A report over every case (report.md, report.html) at the top of the results folder."""
    path = results / name
    write_atomic(path, text)
    return path


def write_case_file(results: Path, case_id: str, name: str, text: str) -> Path:
    """One of a case's derived files (osv.json, matrix.svg) in its folder."""
    path = case_dir(results, case_id) / name
    write_atomic(path, text)
    return path


def append_step_summary(text: str) -> Path | None:
    """Append to the file named by $GITHUB_STEP_SUMMARY, if set (CI renders it as the job's
    summary; other steps write there too, so it is never truncated)."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path
