"""Render a claim given as ranges: claimed vs observed ranges, each bound, each release, and the
published OSV `affected` block beside the observed one (report.md calls this; pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from repro_matrix.model import CaseMeta, ClaimRange
from repro_matrix.report.vocabulary import claimed_range_text
from repro_matrix.verdict.derive import (
    CONFIRMED,
    DOES_NOT_HOLD,
    HOLDS,
    HOLDS_WHERE_CHECKED,
    OUTSIDE,
    REFUTED,
    UNDECIDABLE,
    AffectedRange,
    ClaimCheck,
    Scope,
    Verdict,
)

ECOSYSTEM = "PyPI"
ANSWER_SYMBOLS = {HOLDS: "✅", DOES_NOT_HOLD: "❌", HOLDS_WHERE_CHECKED: "☑️"}
OUTCOME_SYMBOLS = {CONFIRMED: "✅", REFUTED: "❌", OUTSIDE: "⬜", UNDECIDABLE: "❔"}
OBSERVED_NOTE = ("Observed ranges start at the first tested release that reproduced and end at "
                 "the first tested release that did not (or last_affected, the newest tested "
                 "release, when none did): releases outside the tested window were not run.")


def observed_range_text(rng: AffectedRange) -> str:
    return f"[{rng.introduced}, {rng.fixed})" if rng.fixed else \
        f"[{rng.introduced}, {rng.last_affected}]"


def published_affected(package: str, ranges: Sequence[ClaimRange]) -> dict[str, Any]:
    """The claim's ranges as one OSV ``affected`` entry."""
    out = []
    for rng in ranges:
        events: list[dict[str, str]] = [{"introduced": rng.introduced}]
        if rng.fixed:
            events.append({"fixed": rng.fixed})
        elif rng.last_affected:
            events.append({"last_affected": rng.last_affected})
        out.append({"type": "ECOSYSTEM", "events": events})
    return {"package": {"ecosystem": ECOSYSTEM, "name": package}, "ranges": out}


def observed_affected(package: str, scope: Scope) -> dict[str, Any]:
    """What the cells show, as one OSV ``affected`` entry: ordered, non-overlapping ranges of
    real releases, each with one introduced and one fixed or last_affected (OSV's rules)."""
    return published_affected(package, [
        ClaimRange(r.introduced, fixed=r.fixed,
                   last_affected=None if r.fixed else r.last_affected)
        for r in scope.ranges])


def cell_link(case_id: str, evidence: str) -> str:
    """``py3.9/1.0: reproduced`` as a link to that cell in report.html."""
    cell, _, status = evidence.partition(":")
    words = f"{cell}:{status.replace('_', ' ')}"  # a status reads as words, not an identifier
    return f"[`{words}`](report.html#cell={quote(f'{case_id}/{cell}', safe='/')})"


def _links(case_id: str, evidence: Sequence[str]) -> str:
    return "<br>".join(cell_link(case_id, e) for e in evidence) or "–"


def _bounds_table(case_id: str, check: ClaimCheck) -> list[str]:
    lines = ["| claimed bound | outcome | why | deciding cells |", "|---|---|---|---|"]
    for bound in check.bounds:
        lines.append(f"| {bound.kind.replace('_', ' ')} {bound.version} | "
                     f"{OUTCOME_SYMBOLS[bound.outcome]} {bound.outcome} | {bound.why} | "
                     f"{_links(case_id, bound.evidence)} |")
    return lines


def _disagreements(case_id: str, check: ClaimCheck,
                   cells_of: dict[str, list[str]]) -> list[str]:
    wrong = [r for r in check.releases if r.agrees is False]
    if not wrong:
        return []
    return ["", "Releases where the claim and the cells disagree:", ""] + [
        f"- {r.version}: claimed {r.claimed}, observed {r.observed}: "
        + ", ".join(cell_link(case_id, e) for e in cells_of.get(r.version, ()))
        for r in wrong]


def _releases_table(check: ClaimCheck) -> list[str]:
    marks = {True: "✅", False: "❌", None: "❔ not tested"}
    lines = ["| release | claimed | observed | agrees |", "|---|---|---|---|"]
    lines += [f"| {r.version} | {r.claimed} | {r.observed} | {marks[r.agrees]} |"
              for r in check.releases]
    return lines


def _side_by_side(package: str, verdict: Verdict) -> list[str]:
    published = json.dumps(published_affected(package, verdict.claim.claim.ranges), indent=2)
    observed = json.dumps(observed_affected(package, verdict.overall), indent=2)
    return ["<table><tr><th>published</th><th>observed (all Pythons)</th></tr><tr><td>", "",
            "```json", published, "```", "", "</td><td>", "", "```json", observed, "```", "",
            "</td></tr></table>", "", OBSERVED_NOTE]


def ranges_section(case_id: str, meta: CaseMeta, verdict: Verdict) -> str:
    """The range-by-range claim check of one case; empty for short-form claims."""
    check = verdict.claim
    claim = check.claim
    if not claim.ranges:
        return ""
    source = claim.advisory_id or claim.source or "the case's claim"
    if claim.aliases:
        source += f" ({', '.join(claim.aliases)})"
    claimed = " ∪ ".join(claimed_range_text(r) for r in claim.ranges)
    observed = " ∪ ".join(observed_range_text(r) for r in verdict.overall.ranges) or "none"
    symbol = ANSWER_SYMBOLS.get(check.answer_words, "❔")
    lines = [f"**{symbol} {check.answer_words}.** Claimed by {source} vs observed in the "
             "tested window:", "",
             "| | affected ranges |", "|---|---|",
             f"| claimed | {claimed} |", f"| observed (all Pythons) | {observed} |"]
    lines += [f"| observed (Python {s.name.removeprefix('Python ')}) | "
              f"{' ∪ '.join(observed_range_text(r) for r in s.ranges) or 'none'} |"
              for s in verdict.per_python]
    branches = [b.sentence() for b in verdict.overall.branches]
    if branches:
        lines += ["", "First fixed per branch: " + "; ".join(branches) + "."]
    lines += ["", *_bounds_table(case_id, check)]
    cells_of: dict[str, list[str]] = {}
    for evidence in check.evidence:
        cells_of.setdefault(evidence.split(":", 1)[0].split("/", 1)[-1], []).append(evidence)
    lines += _disagreements(case_id, check, cells_of)
    if check.unchecked:
        lines += ["", "Not checked: " + "; ".join(check.unchecked) + "."]
    lines += ["", "<details><summary>Per release: claimed affected vs observed</summary>", "",
              *_releases_table(check), "", "</details>"]
    package = meta.package
    if package and check.answer_words == DOES_NOT_HOLD:
        lines += ["", "The published OSV `affected` block beside the one the cells support:", "",
                  *_side_by_side(package, verdict)]
    elif package:
        lines += ["", "<details><summary>The published OSV <code>affected</code> block beside "
                  "the observed one</summary>", "", *_side_by_side(package, verdict), "",
                  "</details>"]
    return "\n".join(lines)
