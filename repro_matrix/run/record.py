"""A case's records: merged into cells.json as cells finish, read back, built from outcomes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repro_matrix import __version__, pythons, store
from repro_matrix.errors import HarnessError, UsageError
from repro_matrix.model import BaseImage, Cell, CellRecord, Status
from repro_matrix.run.classify import Classification
from repro_matrix.spec import plan


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CaseRecorder:
    """Merges one case's new records into its stored record and rewrites cells.json as cells
    finish.

    Every stored record the run does not reach stays (a slice, a shard, an interrupted run or
    cells outside today's plan never drop evidence); a reached one is replaced only by a record
    of the same or better standing (``store.supersedes``), so an outage never overwrites a
    decided cell. Rewrites are spaced by FLUSH_EVERY_S (a full rewrite per cell costs more than
    the cells themselves on a warm matrix); a crash loses at most that much, and those cells
    rerun.
    """

    FLUSH_EVERY_S = 2.0

    def __init__(self, case_plan: plan.CasePlan, results: Path, meta: dict[str, Any],
                 files: Mapping[str, bytes], start_over: bool = False,
                 uploads: Mapping[str, datetime | None] | None = None) -> None:
        self.plan = case_plan
        self.results = results
        self.meta = meta
        self.mutex = threading.Lock()
        self.stored_meta, stored = ({}, {}) if start_over else stored_records(results,
                                                                       case_plan.case.id)
        self.discarded = 0 if not start_over else len(stored_records(results, case_plan.case.id,
                                                              strict=False)[1])
        self.previous = {k: v for k, v in stored.items() if v.input_key}  # reusable outcomes
        self.files = files  # the repro's files, read once per run, not once per cell
        self.not_for_python = dict(case_plan.not_for_python)
        self.records = dict(stored)
        self.uploads = dict(uploads or {})  # version → when the index got it (era cutoffs)
        self.kept: dict[Status, int] = {}  # outcomes of this run that could not replace a record
        self.changed = start_over  # a record this run added or replaced differs from the stored
        self._flushed_at = 0.0

    def set_base(self, image: BaseImage) -> None:
        """Record where a column's interpreter came from, once its base is ready."""
        with self.mutex:
            found = {**self.meta.get("bases", {}), image.python: base_meta(image)}
            self.meta["bases"] = {p: found[p] for p in sorted(found, key=pythons.sort_key)}

    def add(self, record: CellRecord) -> None:
        with self.mutex:
            stored = self.records.get(record.cell.id)
            if stored is not None and replace(record, finished_at=stored.finished_at) == stored:
                pass  # decided again the same way (without a run): the stored record stands
            elif store.supersedes(record, stored):
                self.changed = True
                self.records[record.cell.id] = record
            else:
                self.kept[record.status] = self.kept.get(record.status, 0) + 1
            if self.changed and time.monotonic() - self._flushed_at >= self.FLUSH_EVERY_S:
                self._write()

    def flush(self) -> None:
        with self.mutex:
            self._write()

    def unchanged(self) -> bool:
        """Whether cells.json would say what it says now, but for when this run started and
        ended and what its stages took: every record the same, the case run the same way, by
        a harness of the same version."""
        with self.mutex:
            if self.changed or self.stored_meta.get("harness_version") != __version__:
                return False  # (a harness of another version renders the files its own way)
            merged = store.merge_meta(self.stored_meta, self.meta)
            return bool(_as_run(merged) == _as_run(self.stored_meta))

    def kept_line(self) -> str | None:
        """One line on the stored records this run's outcomes could not replace, if any."""
        if not self.kept:
            return None
        total = sum(self.kept.values())
        outage = self.kept.get(Status.UNAVAILABLE, 0)
        parts = [f"{count} {status.value}" for status, count in sorted(
            self.kept.items(), key=lambda item: item[0].value)]
        why, then = (("an infrastructure outage", "rerun when it is over")
                     if outage == total else ("outcomes of lower standing",
                                              "look into them"))
        return (f"{self.plan.case.id}: kept {total} stored record(s) over {why} of this run "
                f"({', '.join(parts)}); {then}, or --replace to start over")

    def _write(self) -> None:
        store.write_cells(self.results, self.plan.case.id,
                          store.cell_order(list(self.records.values())),
                          store.merge_meta(self.stored_meta, self.meta))
        self._flushed_at = time.monotonic()


# What differs between two runs that found the same cells: when, and how long each stage took.
_RUN_TIMES = ("started_at", "finished_at", "wall_time_s", "stages")


def _as_run(meta: Mapping[str, Any]) -> Any:
    """``meta`` as stored JSON (lists, not tuples) without the run's own times."""
    return json.loads(json.dumps({k: v for k, v in meta.items() if k not in _RUN_TIMES}))


def stored_records(results: Path, case_id: str, strict: bool = True,
            ) -> tuple[dict[str, Any], dict[str, CellRecord]]:
    """The case's stored meta and records; an unreadable cells.json is a UsageError (never
    silently overwritten) unless ``strict`` is off."""
    path = store.case_dir(results, case_id) / "cells.json"
    if not path.exists():
        return {}, {}
    try:
        meta, records = store.read_cells(path)
    except HarnessError as exc:
        if not strict:
            return {}, {}
        raise UsageError(exc.message, "move it away, or pass --replace to start over") from None
    return meta, {r.cell.id: r for r in records}


def previous_records(results: Path, case_id: str) -> dict[str, CellRecord]:
    """Records of an earlier run in this folder; unreadable ones are simply not reused."""
    stored = stored_records(results, case_id, strict=False)[1]
    return {k: v for k, v in stored.items() if v.input_key}


def base_meta(image: BaseImage) -> dict[str, Any]:
    """A column's base in cells.json: where its interpreter came from, and what was passed over."""
    return {"provider": image.provider, "reference": image.reference, "source": image.source,
            "interpreter_version": image.interpreter_version, "suite": image.suite,
            "notes": image.notes, "passed_over": dict(image.passed_over),
            "unavailable_reason": image.unavailable_reason}


def new_record(cell: Cell, result: Classification, base: BaseImage) -> CellRecord:
    return CellRecord(cell=cell, status=result.status, reason=result.reason,
                      base_provider=base.provider, base_source=base.source,
                      interpreter_version=base.interpreter_version, finished_at=now_utc())
