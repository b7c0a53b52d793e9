"""Render results/report.md from stored results: the table, the verdict in words, the evidence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.version import Version
from tabulate import tabulate

from harness import pythons as py
from harness.model import CellRecord, Claim, Status
from harness.verdict import Scope, Verdict

SYMBOLS: dict[Status, str] = {
    Status.REPRODUCED: "🔴",
    Status.NOT_REPRODUCED: "🟢",
    Status.OTHER_FAILURE: "🟠",
    Status.CANNOT_TEST: "⚪",
    Status.CANNOT_INSTALL: "📦",
    Status.TIMEOUT: "⏱",
    Status.UNAVAILABLE: "➖",
}
MEANINGS: dict[Status, str] = {
    Status.REPRODUCED: "reproduced: the bug shows (failure signature seen)",
    Status.NOT_REPRODUCED: "not reproduced: the repro passed",
    Status.OTHER_FAILURE: "other failure: the repro failed without the bug's signature",
    Status.CANNOT_TEST: "cannot test: the repro said it could not decide (exit 125)",
    Status.CANNOT_INSTALL: "cannot install: this release does not install or import on this "
                           "Python at any era cutoff tried",
    Status.TIMEOUT: "timeout: no exit within the case's limit",
    Status.UNAVAILABLE: "unavailable: no base image for this Python on this machine",
}
_EXCERPT_LINES = 8


def status_table(records: Sequence[CellRecord], release_dates: dict[str, str]) -> str:
    """Rows are versions (PEP 440 order), columns Pythons, a symbol per cell."""
    versions = sorted({r.cell.version for r in records}, key=Version)
    pythons = sorted({r.cell.python for r in records}, key=py.sort_key)
    by_key = {(r.cell.version, r.cell.python): r for r in records}
    rows = []
    for version in versions:
        row = [version, release_dates.get(version, "")]
        for python in pythons:
            record = by_key.get((version, python))
            row.append(SYMBOLS[record.status] if record else "")
        rows.append(row)
    headers = ["version", "released", *[f"py{p}" for p in pythons]]
    return tabulate(rows, headers=headers, tablefmt="github", stralign="center",
                    disable_numparse=True)


def legend(records: Sequence[CellRecord]) -> str:
    counts = {status: sum(1 for r in records if r.status is status) for status in Status}
    return "\n".join(f"- {SYMBOLS[s]} {MEANINGS[s]} ({counts[s]} cells)" for s in Status)


def _scope_sentence(scope: Scope) -> str:
    if not scope.decisive:
        return f"{scope.name}: no release could be tested."
    if not scope.ranges:
        return f"{scope.name}: not reproduced in any of {scope.decisive} tested releases."
    parts = []
    for rng in scope.ranges:
        start = (f"affected from the oldest tested release {rng.introduced}"
                 if rng.from_first_tested else f"introduced in {rng.introduced}")
        if rng.untested_before:
            start = (f"introduced in {rng.introduced} or earlier "
                     f"({_span(rng.untested_before)} could not be tested)")
        end = (f"first fixed in {rng.fixed}" if rng.fixed
               else "still affected in the newest tested release")
        if rng.fixed and rng.untested_before_fix:
            end = (f"fixed in {rng.fixed} or earlier "
                   f"({_span(rng.untested_before_fix)} could not be tested)")
        parts.append(f"{start}, last affected {rng.last_affected}, {end}")
    return f"{scope.name}: " + "; ".join(parts) + "."


def _span(versions: Sequence[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}–{versions[-1]}"


def verdict_section(verdict: Verdict) -> str:
    lines = [f"**Verdict.** {_scope_sentence(verdict.overall)}", ""]
    claim = verdict.claim
    word = {True: "✅ holds", False: "❌ does not hold", None: "❔ cannot be decided"}[claim.holds]
    lines += [f"**Claim check.** {_claim_words(claim.claim)} {word}. {claim.explanation}", ""]
    if claim.evidence:
        lines.append("Deciding cells: " + "; ".join(f"`{e}`" for e in claim.evidence) + ".")
        lines.append("")
    lines.append("Per Python:")
    lines += [f"- {_scope_sentence(scope)}" for scope in verdict.per_python]
    notes = [b.sentence() for b in verdict.overall.branches]
    if notes:
        lines += ["", "Branches:"] + [f"- {note}" for note in notes]
    if verdict.differs_by_python:
        lines += ["", "Releases whose outcome differs by Python: "
                  + ", ".join(verdict.differs_by_python) + "."]
    return "\n".join(lines)


def _claim_words(claim: Claim) -> str:
    stated = []
    if claim.introduced:
        stated.append(f"introduced in {claim.introduced}")
    if claim.first_fixed:
        stated.append(f"first fixed in {claim.first_fixed}")
    source = f" ({claim.source})" if claim.source else ""
    return f"The claim \"{' and '.join(stated) or 'none'}\"{source}"


def evidence_section(records: Sequence[CellRecord]) -> str:
    lines: list[str] = []
    unavailable: dict[str, str] = {}
    for record in sorted(records, key=lambda r: (py.sort_key(r.cell.python),
                                                 Version(r.cell.version))):
        if record.status is Status.NOT_REPRODUCED:
            continue
        if record.status is Status.UNAVAILABLE:
            unavailable.setdefault(record.cell.python, record.reason)
            continue
        lines += _cell_evidence(record)
    if unavailable:
        lines.append("Unavailable Pythons (every cell of the column):")
        lines += [f"- Python {p}: {why}" for p, why in unavailable.items()]
    return "\n".join(lines)


def _cell_evidence(record: CellRecord) -> list[str]:
    cell = record.cell
    head = (f"<details><summary>{SYMBOLS[record.status]} py{cell.python} {cell.version}: "
            f"{record.status.value}, {record.reason}</summary>")
    facts = [f"- image `{record.image_ref or '-'}` ({record.image_id[:19] or 'not built'}), "
             f"base: {record.base_source or '-'}, interpreter {record.interpreter_version or '?'}",
             f"- era cutoff {record.cutoff or '-'}; attempts: "
             + ("; ".join(f"{a.cutoff} → {a.result}" for a in record.attempts) or "-")]
    if record.lock:
        facts.append("- lock: " + ", ".join(f"`{pin}`" for pin in record.lock))
    excerpt = "\n".join(record.output_excerpt.splitlines()[-_EXCERPT_LINES:])
    body = ["", "```", excerpt, "```"] if excerpt.strip() else []
    return [head, "", *facts, *body, "</details>", ""]


def render_case(case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
                verdict: Verdict) -> str:
    title = meta.get("description") or case_id
    package = meta.get("package", "")
    lines = [f"## {case_id}: {title}", "",
             f"Package `{package}`, {len({r.cell.version for r in records})} releases × "
             f"{len({r.cell.python for r in records})} Pythons = {len(records)} cells; "
             f"run finished {meta.get('finished_at', '?')} in {meta.get('wall_time_s', 0):.0f} s.",
             "", verdict_section(verdict), "", "### Compatibility table", "",
             status_table(records, meta.get("release_dates", {})), "", legend(records), "",
             "### Evidence", "", evidence_section(records)]
    return "\n".join(lines).rstrip() + "\n"


def render(cases: Sequence[tuple[str, dict[str, Any], Sequence[CellRecord], Verdict]]) -> str:
    parts = ["# repro-matrix report", "",
             "Generated from the stored cell results; every verdict below is computed from "
             "them.", ""]
    parts += [render_case(*case) for case in cases]
    return "\n".join(parts)


def write(results: Path, text: str) -> Path:
    from harness.store import write_atomic

    path = results / "report.md"
    write_atomic(path, text)
    return path
