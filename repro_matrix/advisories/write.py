"""Export one case's verdict in the OSV format (results/<case>/osv.json): pure functions only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from packaging.version import Version

from repro_matrix import __version__
from repro_matrix.model import CaseMeta, CellRecord, claim_to_json
from repro_matrix.report.vocabulary import (
    PLAIN_CLAIM_WORDS,
    claim_sentence,
    headline,
    ordered_versions,
)
from repro_matrix.verdict.derive import AffectedRange, Scope, Verdict

OSV_SCHEMA_VERSION = "1.6.0"
ECOSYSTEM = "PyPI"
ID_PREFIX = "REPRO-MATRIX"
INTRODUCED_NOTE = ("introduced is the first tested release that reproduced, never '0': releases "
                   "older than the oldest tested one were not run")
_EPOCH = "1970-01-01T00:00:00Z"


def osv_range(rng: AffectedRange) -> dict[str, Any]:
    """One ECOSYSTEM range: introduced, then fixed when a tested release is fixed. A range
    still open at the newest tested release has only introduced: a last_affected there would
    claim that every later release is clean, which nothing tested."""
    events: list[dict[str, str]] = [{"introduced": rng.introduced}]
    if rng.fixed:
        events.append({"fixed": rng.fixed})
    return {
        "type": "ECOSYSTEM",
        "events": events,
        "database_specific": {
            "last_affected": rng.last_affected,
            "from_first_tested": rng.from_first_tested,
            "untested_before_introduced": list(rng.untested_before),
            "untested_before_fixed": list(rng.untested_before_fix),
        },
    }


def osv_ranges(scope: Scope) -> list[dict[str, Any]]:
    return [osv_range(rng) for rng in scope.ranges]


def _modified(meta: dict[str, Any], records: Sequence[CellRecord]) -> str:
    """When the evidence last changed: the run's end, else its newest cell, else the epoch."""
    run = CaseMeta.from_json(meta)
    if run.finished_at or run.started_at:
        return run.finished_at or run.started_at
    stamps = [r.finished_at for r in records if r.finished_at]
    return max(stamps) if stamps else _EPOCH


def to_osv(case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
           verdict: Verdict) -> dict[str, Any]:
    """The OSV record of one case, from its overall (all-Pythons) verdict.

    Choices, since the cells only speak for the releases they ran:

    - ``introduced`` is always the first *tested* release that reproduced, never OSV's "0"
      ("every earlier version"), even when the range starts at the oldest tested release: releases
      before it were not run, so nothing is known about them.
    - A range that ends with an unaffected release carries ``fixed``; one still affected at the
      newest tested release is left open (only ``introduced``): releases newer than the newest
      tested one were not run, and a ``last_affected`` would say they are clean. The last
      affected tested release is kept in the range's ``database_specific``.
    - Untested releases next to a boundary (the true boundary may lie among them), the verdict per
      Python and the claim check go in ``database_specific``.
    """
    run = CaseMeta.from_json(meta)
    claim = verdict.claim
    per_python = {scope.name.removeprefix("Python "): {
        "ranges": osv_ranges(scope),
        "undetermined": list(scope.undetermined),
        "decisive_cells": scope.decisive,
    } for scope in verdict.per_python}
    affected: list[dict[str, Any]] = []
    if run.package and verdict.overall.ranges:
        affected.append({
            "package": {"ecosystem": ECOSYSTEM, "name": run.package},
            "ranges": osv_ranges(verdict.overall),
            "database_specific": {"per_python": per_python},
        })
    details = (f"{headline(verdict)}\n\nClaim check: "
               f"{claim_sentence(verdict, PLAIN_CLAIM_WORDS)}")
    return {
        "schema_version": OSV_SCHEMA_VERSION,
        "id": f"{ID_PREFIX}-{case_id}",
        "modified": _modified(meta, records),
        "summary": run.description or case_id,
        "details": details,
        "affected": affected,
        "database_specific": {
            "source": "repro-matrix",
            "harness_version": __version__,
            "case": case_id,
            "introduced_note": INTRODUCED_NOTE,
            "tested_versions": ordered_versions(records),
            "differs_by_python": list(verdict.differs_by_python),
            "undetermined": list(verdict.overall.undetermined),
            "claim": claim_to_json(claim.claim),
            "claim_holds": claim.holds,
            "claim_answer": claim.answer_words,
            "claim_explanation": claim.explanation,
        },
    }


def dumps(record: dict[str, Any]) -> str:
    """The text of osv.json."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def quality_problems(record: dict[str, Any]) -> list[str]:
    """OSV's data-quality rules beyond the schema, for one exported record: every event version
    was tested, events of a range are in version order starting with introduced, introduced is
    never fixed, a range has fixed or last_affected but not both, and ranges do not overlap."""
    tested = record.get("database_specific", {}).get("tested_versions", [])
    known = {Version(v) for v in tested}
    problems = []
    for affected in record.get("affected", []):
        spans: list[tuple[Version, Version | None]] = []
        for number, rng in enumerate(affected.get("ranges", []), 1):
            events = rng.get("events", [])
            keys = [next(iter(e)) for e in events]
            versions = [Version(next(iter(e.values()))) for e in events]
            where = f"range {number}"
            if not keys or keys[0] != "introduced":
                problems.append(f"{where}: does not start with introduced")
            if versions != sorted(versions):
                problems.append(f"{where}: events not in version order")
            if "fixed" in keys and "last_affected" in keys:
                problems.append(f"{where}: both fixed and last_affected")
            introduced = {v for k, v in zip(keys, versions) if k == "introduced"}
            ends = {v for k, v in zip(keys, versions) if k in ("fixed", "last_affected")}
            if introduced & {v for k, v in zip(keys, versions) if k == "fixed"}:
                problems.append(f"{where}: introduced equals fixed")
            problems += [f"{where}: {v} was not tested" for v in versions if v not in known]
            if introduced:
                spans.append((min(introduced), max(ends) if ends else None))
        for (start, end), (later, _) in zip(spans, spans[1:]):
            if end is None or later < end:
                problems.append(f"ranges overlap: one from {start} is open or ends after {later}")
    return problems
