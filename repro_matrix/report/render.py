"""Re-derive verdicts from stored cells and write every per-case file and report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.version import Version

from repro_matrix import store
from repro_matrix.advisories.write import dumps, releases_not_run, stored_not_run, to_osv
from repro_matrix.errors import HarnessError, UsageError
from repro_matrix.model import CaseMeta, CellRecord, Release, claim_from_json
from repro_matrix.report import html, markdown, svg
from repro_matrix.verdict import boundary
from repro_matrix.verdict.derive import CaseResult, Observation, Verdict, derive
from repro_matrix.verdict.grid import AxisObservation, derive_grid

REPORTS = ("report.md", "report.html")  # at the top of the results folder, over every case
CASE_FILES = ("verdict.json", "matrix.svg", "boundaries.json")  # in each case's folder


def render_results(results: Path, case_ids: Sequence[str] | None = None,
                   on_case: Callable[[str], None] | None = None,
                   find: boundary.Locate | None = None,
                   releases: Callable[[str], Sequence[Release]] | None = None,
                   ) -> list[tuple[str, Verdict]]:
    """Re-derive the verdict of each case in ``case_ids`` (default: all) from its cells.json;
    write verdict.json, osv.json, boundaries.json and matrix.svg per case, then report.md and
    report.html (and the CI step summary, if any), which always cover every case folder in
    ``results``. ``find`` locates released files to explain the boundaries; without it (or
    without the files) what an earlier render stored in boundaries.json is kept. ``releases``
    lists a package's releases on the index, so osv.json can name those inside the tested
    window that were not run; without it (or the index) what osv.json named before is kept."""
    every_case = sorted(p.parent.name for p in results.glob("*/cells.json"))
    if case_ids is None:
        case_ids = every_case
    if not case_ids:
        raise UsageError(f"{results}: no cells.json found", "run `nox -s matrix` first")
    rendered = rendered_cases(results, sorted({*every_case, *case_ids}))
    explained: dict[str, list[boundary.Explained]] = {}
    verdicts = []
    for case_id, meta, records, verdict in rendered:
        if case_id not in case_ids:
            # another case's folder: in the reports, its own files untouched
            explained[case_id] = _stored_boundaries(results, case_id)
            continue
        store.write_verdict(results, case_id, verdict)
        if verdict.grid is None:
            # An OSV record states ranges of one package: a grid of pairs has no such form.
            store.write_case_file(results, case_id, "osv.json", dumps(to_osv(
                case_id, meta, records, verdict, _not_run(results, case_id, meta, records,
                                                          releases))))
        explained[case_id] = _explain_boundaries(results, case_id, meta, records, verdict, find)
        store.write_case_file(results, case_id, "matrix.svg",
                              svg.matrix_svg(case_id, records, verdict) if verdict.grid is None
                              else svg.grid_svg(case_id, records, verdict.grid))
        verdicts.append((case_id, verdict))
        if on_case:
            on_case(case_id)
    report_md, report_html = REPORTS
    store.write_report(results, report_md, markdown.render(rendered, explained))
    store.write_report(results, report_html, html.render(rendered, explained))
    store.append_step_summary(markdown.step_summary(rendered))
    return verdicts


def rendered_cases(results: Path, case_ids: Sequence[str] | None = None) \
        -> list[CaseResult]:
    """Each case's stored cells (default: every case folder) with the verdict derived from
    them."""
    if case_ids is None:
        case_ids = sorted(p.parent.name for p in results.glob("*/cells.json"))
    if not case_ids:
        raise UsageError(f"{results}: no cells.json found", "run `nox -s matrix` first")
    cases: list[CaseResult] = []
    for case_id in case_ids:
        meta, records = store.read_cells(store.case_dir(results, case_id) / "cells.json")
        cases.append(CaseResult(case_id, meta, records, case_verdict(meta, records)))
    return cases


def _not_run(results: Path, case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
             releases: Callable[[str], Sequence[Release]] | None) -> dict[str, str] | None:
    """The index's releases inside the case's tested window that have no cell, and why; from
    the index when it answers, else as the case's osv.json named them, else unknown (None)."""
    package = CaseMeta.from_json(meta).package
    if releases is not None and package:
        try:
            return releases_not_run(sorted({r.cell.version for r in records}, key=Version),
                                    releases(package))
        except HarnessError:
            pass  # no index here: what the last export found stands
    try:
        stored = json.loads((store.case_dir(results, case_id) / "osv.json").read_text(
            encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stored_not_run(stored) if isinstance(stored, dict) else None


def case_verdict(stored_meta: Mapping[str, Any], records: Sequence[CellRecord]) -> Verdict:
    """The verdict of one case's cells; with an axis, each row's boundaries along it too."""
    meta = CaseMeta.from_json(stored_meta)
    verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     claim_from_json(meta.claim))
    axis = meta.axis_package or next((r.cell.axis_package for r in records
                                      if r.cell.axis_package), "")
    if not axis:
        return verdict
    observed = [AxisObservation(r.cell.python, r.cell.version, r.cell.axis_version, r.status)
                for r in records if r.cell.axis_package]
    return replace(verdict, grid=derive_grid(observed, meta.package, axis, meta.versions,
                                             meta.axis_versions))


def _stored_boundaries(results: Path, case_id: str) -> list[boundary.Explained]:
    path = store.case_dir(results, case_id) / "boundaries.json"
    try:
        return boundary.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def _explain_boundaries(results: Path, case_id: str, meta: dict[str, Any],
                        records: Sequence[CellRecord], verdict: Verdict,
                        find: boundary.Locate | None) -> list[boundary.Explained]:
    explained = boundary.explain_case(meta, records, verdict, find,
                                      _stored_boundaries(results, case_id))
    store.write_atomic(store.case_dir(results, case_id) / "boundaries.json",
                       json.dumps(boundary.to_json(explained), indent=2, ensure_ascii=False)
                       + "\n")
    return explained
