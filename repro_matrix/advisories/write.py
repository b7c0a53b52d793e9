"""Export one case's verdict in the OSV format (results/<case>/osv.json): pure functions only."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from repro_matrix import __version__
from repro_matrix.model import OSV_ZERO, CaseMeta, CellRecord, Claim, Release, claim_to_json
from repro_matrix.report.vocabulary import (
    PLAIN_CLAIM_WORDS,
    claim_sentence,
    headline,
    ordered_versions,
)
from repro_matrix.verdict.derive import (
    AFFECTED,
    UNDETERMINED,
    AffectedRange,
    Observation,
    Scope,
    Verdict,
    claimed_affected,
    version_states,
)

OSV_SCHEMA_VERSION = "1.6.0"
ECOSYSTEM = "PyPI"
# OSV's prefix for a database that OSV.dev does not aggregate: the schema accepts no other
# prefix that is not a registered home database.
ID_PREFIX = "x_REPRO-MATRIX"
RANGES_NOTE = (
    "A scanner reads every release that is not in a range or in versions as unaffected, so only "
    "what the cells show is exported: a range starts at the first tested release that "
    "reproduced when an older tested release of the same line (published no later) did not, "
    "at '0' when the claim says the bug was there from the first release and no tested "
    "release before the stretch was unaffected, and otherwise the stretch is listed in "
    "versions only (its start is unknown). Releases inside the tested window that decided "
    "nothing or were not run (yanked, pre-releases, not selected) are counted affected when an "
    "affected release lies next to them, and named in untested_in_window.")
_EPOCH = "1970-01-01T00:00:00Z"
# How an exported stretch of affected releases starts.
START_OBSERVED = "observed"  # an older tested release of the same line was unaffected
START_CLAIM = "claim"  # "0", from the claim, and nothing tested contradicts it
START_UNKNOWN = "unknown"


@dataclass(frozen=True)
class Stretch:
    """One observed affected range as exported: how its start is known, and why."""

    rng: AffectedRange
    start: str
    why: str

    @property
    def introduced(self) -> str:
        return OSV_ZERO if self.start == START_CLAIM else self.rng.introduced

    @property
    def in_ranges(self) -> bool:
        """A stretch whose start is unknown is left out of ranges, unless it is still open at
        the newest tested release: only a range keeps the releases after it affected."""
        return self.start != START_UNKNOWN or self.rng.fixed is None


def osv_range(rng: AffectedRange, introduced: str | None = None,
              start: Stretch | None = None) -> dict[str, Any]:
    """One ECOSYSTEM range: introduced, then fixed when a tested release is fixed. A range
    still open at the newest tested release has only introduced: a last_affected there would
    claim that every later release is clean, which nothing tested."""
    events: list[dict[str, str]] = [{"introduced": introduced or rng.introduced}]
    if rng.fixed:
        events.append({"fixed": rng.fixed})
    found: dict[str, Any] = {
        "last_affected": rng.last_affected,
        "from_first_tested": rng.from_first_tested,
        "untested_before_introduced": list(rng.untested_before),
        "untested_before_fixed": list(rng.untested_before_fix),
    }
    if start is not None:
        found = {"first_affected_tested": rng.introduced, **found, "start": start.start,
                 "start_why": start.why}
    return {"type": "ECOSYSTEM", "events": events, "database_specific": found}


def osv_ranges(scope: Scope) -> list[dict[str, Any]]:
    return [osv_range(rng) for rng in scope.ranges]


def _modified(meta: dict[str, Any], records: Sequence[CellRecord]) -> str:
    """When the evidence last changed: the run's end, else its newest cell, else the epoch."""
    run = CaseMeta.from_json(meta)
    if run.finished_at or run.started_at:
        return run.finished_at or run.started_at
    stamps = [r.finished_at for r in records if r.finished_at]
    return max(stamps) if stamps else _EPOCH


def same_line(older: str, newer: str, dates: Mapping[str, str]) -> bool:
    """Whether ``older`` shows the state of the code ``newer`` grew from: published no later
    than ``newer`` (a fix backported to a maintenance branch later says nothing about the new
    line's first releases); without both dates, the same major version."""
    if older in dates and newer in dates:
        return dates[older] <= dates[newer]
    return Version(older).major == Version(newer).major


def claim_says_zero(claim: Claim, version: str) -> bool:
    """Whether the claim puts ``version`` in a range that starts at the first release: a range
    from "0" that covers it, or the short form's first_fixed (after it) without an introduced."""
    if claim.ranges:
        return any(r.introduced == OSV_ZERO and claimed_affected([r], version)
                   for r in claim.ranges)
    return bool(claim.first_fixed and not claim.introduced
                and Version(version) < Version(claim.first_fixed))


def stretches(scope: Scope, states: Mapping[str, str], claim: Claim,
              dates: Mapping[str, str]) -> list[Stretch]:
    """How each affected range of ``scope`` starts: observed, from the claim, or unknown."""
    found = []
    for rng in scope.ranges:
        start = Version(rng.introduced)
        below = [v for v in sorted(states, key=Version)
                 if Version(v) < start and states[v] not in (AFFECTED, UNDETERMINED)]
        line = [v for v in below if same_line(v, rng.introduced, dates)]
        if line:
            found.append(Stretch(rng, START_OBSERVED, f"{line[-1]} (tested, published no later "
                                 f"than {rng.introduced}) is unaffected"))
        elif not below and claim_says_zero(claim, rng.introduced):
            found.append(Stretch(rng, START_CLAIM, "the claim says the bug is there from the "
                                 f"first release, and no release before {rng.introduced} was "
                                 "tested unaffected"))
        elif below:
            found.append(Stretch(rng, START_UNKNOWN, f"the unaffected releases before it, "
                                 f"{_span(below)}, were published after {rng.introduced}, "
                                 "on another line"))
        else:
            found.append(Stretch(rng, START_UNKNOWN, f"no release before {rng.introduced} was "
                                 "tested, and the claim does not say the bug is there from "
                                 "the first release"))
    return found


def releases_not_run(tested: Sequence[str], releases: Sequence[Release]) -> dict[str, str]:
    """Releases on the index inside the tested window (between the oldest and the newest tested
    release) that have no cell, each with why: yanked, a pre-release, or not selected."""
    if not tested:
        return {}
    low, high = Version(tested[0]), Version(tested[-1])
    have = {Version(v) for v in tested}
    found = {}
    for release in releases:
        try:
            parsed = Version(release.version)
        except InvalidVersion:
            continue
        if low < parsed < high and parsed not in have:
            found[release.version] = ("yanked" if release.yanked else
                                      "pre-release" if parsed.is_prerelease else
                                      "not selected (versions.spec or --versions)")
    return dict(sorted(found.items(), key=lambda item: Version(item[0])))


def untested_in_window(tested: Sequence[str], states: Mapping[str, str],
                       not_run: Mapping[str, str]) -> list[dict[str, str]]:
    """Every release inside the window whose state no cell shows (tested but undecided on every
    Python, or not run), and whether the record counts it affected: when an affected release
    is next to it (a scanner's false alarm is cheaper than a false all-clear)."""
    decided = sorted((v for v in tested if states.get(v, UNDETERMINED) != UNDETERMINED),
                     key=Version)
    unknown = {v: "decided nothing on any Python" for v in tested
               if states.get(v, UNDETERMINED) == UNDETERMINED}
    have = {Version(v) for v in tested}
    low, high = (Version(tested[0]), Version(tested[-1])) if tested else (None, None)
    unknown.update({v: f"not run: {why}" for v, why in not_run.items()
                    if Version(v) not in have and low is not None and high is not None
                    and low < Version(v) < high})
    found = []
    for version in sorted(unknown, key=Version):
        parsed = Version(version)
        lower = [v for v in decided if Version(v) < parsed]
        higher = [v for v in decided if Version(v) > parsed]
        neighbours = [*lower[-1:], *higher[:1]]
        counted = AFFECTED if any(states[v] == AFFECTED for v in neighbours) else "unaffected"
        found.append({"version": version, "why": unknown[version], "counted": counted})
    return found


def _span(versions: Sequence[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}–{versions[-1]}"


def _named(untested: Sequence[dict[str, str]]) -> str:
    """Versions with why, runs of one reason together: "2.0.0a1, 2.0.0a2 (not run: pre-release),
    2.0.0 (not run: yanked)"."""
    runs: list[tuple[str, list[str]]] = []
    for item in untested:
        if runs and runs[-1][0] == item["why"]:
            runs[-1][1].append(item["version"])
        else:
            runs.append((item["why"], [item["version"]]))
    return ", ".join(f"{', '.join(versions)} ({why})" for why, versions in runs)


def _export_words(found: Sequence[Stretch], untested: Sequence[dict[str, str]]) -> str:
    """What the exported record says beyond the verdict, for a reader of ``details``."""
    sentences = []
    for stretch in found:
        rng = stretch.rng
        stretch_words = (rng.introduced if rng.introduced == rng.last_affected
                         else f"{rng.introduced}–{rng.last_affected}")
        if stretch.start == START_UNKNOWN:
            kept = ("kept as a range from its first affected tested release only so that "
                    "releases after the newest tested one stay affected" if stretch.in_ranges
                    else "listed in versions, not given as a range")
            sentences.append(f"The start of the affected releases {stretch_words} is unknown "
                             f"({stretch.why}): {kept}.")
        elif stretch.start == START_CLAIM:
            sentences.append(f"The range of the affected releases {stretch_words} starts at 0: "
                             f"{stretch.why}.")
    affected = [u for u in untested if u["counted"] == AFFECTED]
    if affected:
        sentences.append("Counted affected without a deciding cell, being next to an affected "
                         f"release: {_named(affected)}.")
    clean = [u for u in untested if u["counted"] != AFFECTED]
    if clean:
        sentences.append(f"Without a deciding cell, between unaffected releases (not listed): "
                         f"{_named(clean)}.")
    return " ".join(sentences)


def to_osv(case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
           verdict: Verdict, not_run: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The OSV record of one case, from its overall (all-Pythons) verdict.

    Scanners answer "is this release affected?" from ranges and versions alone, and read every
    release they do not cover as unaffected; so nothing is exported that the cells do not show
    (see RANGES_NOTE and ``stretches``):

    - ``introduced`` is the first tested release that reproduced only when an older tested
      release of the same line did not; it is "0" when the claim says so and nothing tested
      contradicts it; otherwise the stretch's start is unknown and it is listed in ``versions``
      only (a stretch still open at the newest tested release keeps its range, so that later
      releases stay affected).
    - A range that ends with an unaffected release carries ``fixed``; one still affected at the
      newest tested release is left open (only ``introduced``): a ``last_affected`` would say
      later releases are clean.
    - ``versions`` lists every release inside the tested window the record counts affected:
      the affected tested ones and those next to them that decided nothing or were not run
      (``not_run``: release → why, from the index), which are named in ``untested_in_window``.
    - The verdict per Python and the claim check go in ``database_specific``.
    """
    run = CaseMeta.from_json(meta)
    claim = verdict.claim
    tested = ordered_versions(records)
    states = version_states(Observation(r.cell.python, r.cell.version, r.status)
                            for r in records)
    found = stretches(verdict.overall, states, claim.claim, run.release_dates)
    untested = untested_in_window(tested, states, not_run or {})
    versions = sorted({*(v for v in tested if states[v] == AFFECTED),
                       *(u["version"] for u in untested if u["counted"] == AFFECTED)},
                      key=Version)
    per_python = {scope.name.removeprefix("Python "): {
        "ranges": osv_ranges(scope),
        "undetermined": list(scope.undetermined),
        "decisive_cells": scope.decisive,
    } for scope in verdict.per_python}
    affected: list[dict[str, Any]] = []
    if run.package and verdict.overall.ranges:
        entry: dict[str, Any] = {
            "package": {"ecosystem": ECOSYSTEM, "name": run.package},
            "ranges": [osv_range(s.rng, s.introduced, s) for s in found if s.in_ranges],
            "versions": versions,
            "database_specific": {
                "per_python": per_python,
                "left_out_of_ranges": [
                    {"first_affected_tested": s.rng.introduced,
                     "last_affected": s.rng.last_affected, "fixed": s.rng.fixed,
                     "why": f"start unknown: {s.why}"} for s in found if not s.in_ranges],
                "untested_in_window": untested,
            },
        }
        if not entry["ranges"]:
            del entry["ranges"]
        affected.append(entry)
    details = (f"{headline(verdict, records)}\n\nClaim check: "
               f"{claim_sentence(verdict, PLAIN_CLAIM_WORDS)}")
    exported = _export_words(found, untested) if affected else ""
    if exported:
        details += f"\n\nExported: {exported}"
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
            "ranges_note": RANGES_NOTE,
            "tested_versions": tested,
            "not_run_known": not_run is not None,
            "differs_by_python": list(verdict.differs_by_python),
            "undetermined": list(verdict.overall.undetermined),
            "claim": claim_to_json(claim.claim),
            "claim_holds": claim.holds,
            "claim_answer": claim.answer_words,
            "claim_explanation": claim.explanation,
        },
    }


def stored_not_run(record: Mapping[str, Any]) -> dict[str, str] | None:
    """The releases a previous export found not run (``untested_in_window``), when it knew them:
    a later render without the index keeps them."""
    if not record.get("database_specific", {}).get("not_run_known"):
        return None
    found: dict[str, str] = {}
    for affected in record.get("affected", []):
        for item in affected.get("database_specific", {}).get("untested_in_window", []):
            why = str(item.get("why", ""))
            if why.startswith("not run: "):
                found[str(item["version"])] = why.removeprefix("not run: ")
    return found


def dumps(record: dict[str, Any]) -> str:
    """The text of osv.json."""
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def quality_problems(record: dict[str, Any]) -> list[str]:
    """OSV's data-quality rules beyond the schema, for one exported record: every event version
    was tested (or is introduced "0"), every listed version was tested or is named untested,
    events of a range are in version order starting with introduced, introduced is never fixed,
    a range has fixed or last_affected but not both, and ranges do not overlap."""
    tested = record.get("database_specific", {}).get("tested_versions", [])
    known = {Version(v) for v in tested}
    problems = []
    for affected in record.get("affected", []):
        named = {Version(u["version"]) for u in
                 affected.get("database_specific", {}).get("untested_in_window", [])}
        problems += [f"versions: {v} was neither tested nor named untested"
                     for v in affected.get("versions", []) if Version(v) not in known | named]
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
            problems += [f"{where}: {v} was not tested" for k, v in zip(keys, versions)
                         if v not in known and not (k == "introduced" and v == Version(OSV_ZERO))]
            if introduced:
                spans.append((min(introduced), max(ends) if ends else None))
        for (start, end), (later, _) in zip(spans, spans[1:]):
            if end is None or later < end:
                problems.append(f"ranges overlap: one from {start} is open or ends after {later}")
    return problems
