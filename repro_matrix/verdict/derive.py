"""Derive the verdict from classified cells: affected ranges per Python and overall (PEP 440
order), branches that never got a fix, and whether the case's claim holds. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from packaging.version import Version

from repro_matrix.model import OSV_ZERO, CellRecord, Claim, ClaimRange, Status

# Aggregated per-version state across Pythons.
AFFECTED = "affected"
UNAFFECTED = "unaffected"
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class Observation:
    """The only facts a verdict needs from a cell."""

    python: str
    version: str
    status: Status


@dataclass(frozen=True)
class AffectedRange:
    """Consecutive affected versions in PEP 440 order (OSV's introduced/last_affected/fixed)."""

    introduced: str
    last_affected: str
    fixed: str | None
    from_first_tested: bool
    # Versions that decided nothing (e.g. cannot install) just before ``introduced`` and just
    # before ``fixed``: the true boundary may lie among them.
    untested_before: tuple[str, ...] = ()
    untested_before_fix: tuple[str, ...] = ()


@dataclass(frozen=True)
class BranchNote:
    series: str
    last_release: str
    last_affected: str
    fixed_in_series: str | None

    def sentence(self) -> str:
        if self.fixed_in_series is None:
            return (f"{self.series}.x: affected through its last tested release "
                    f"{self.last_release}; this branch never got the fix")
        return f"{self.series}.x: fixed within the branch in {self.fixed_in_series}"


@dataclass(frozen=True)
class Scope:
    """What the cells show for one Python, or for all of them together."""

    name: str
    ranges: tuple[AffectedRange, ...]
    branches: tuple[BranchNote, ...]
    undetermined: tuple[str, ...]
    decisive: int
    # The releases this scope decided (affected or unaffected), in PEP 440 order.
    decided: tuple[str, ...] = ()

    @property
    def introduced(self) -> str | None:
        return self.ranges[0].introduced if self.ranges else None

    @property
    def first_fixed(self) -> str | None:
        fixes = [r.fixed for r in self.ranges if r.fixed]
        return fixes[0] if fixes else None

    @property
    def last_affected(self) -> str | None:
        return self.ranges[-1].last_affected if self.ranges else None


# Outcomes of one claimed bound (claim.ranges).
CONFIRMED = "confirmed"
REFUTED = "refuted"
OUTSIDE = "outside the tested window"
UNDECIDABLE = "undecidable"
# The overall answer of a claim check.
HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
HOLDS_WHERE_CHECKED = "holds where checked"
CANNOT_DECIDE = "cannot be decided"
_HOLDS_OF = {HOLDS: True, DOES_NOT_HOLD: False}


@dataclass(frozen=True)
class BoundCheck:
    """One claimed bound (introduced / fixed / last_affected) against the cells next to it."""

    kind: str
    version: str
    outcome: str
    why: str
    evidence: tuple[str, ...] = ()

    @property
    def explanation(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.version}: {self.outcome}, {self.why}."


@dataclass(frozen=True)
class ReleaseCheck:
    """One tested release: what the claim says (affected or not) and what the cells show."""

    version: str
    claimed: str
    observed: str

    @property
    def agrees(self) -> bool | None:
        return None if self.observed == UNDETERMINED else self.claimed == self.observed


@dataclass(frozen=True)
class ClaimCheck:
    """The claim, whether the cells confirm it (None: they cannot tell), and why."""

    claim: Claim
    holds: bool | None
    explanation: str
    evidence: tuple[str, ...]
    # Filled for claims given as ranges: the overall answer (HOLDS … CANNOT_DECIDE), each bound,
    # each tested release, and what was not checked.
    answer: str = ""
    bounds: tuple[BoundCheck, ...] = ()
    releases: tuple[ReleaseCheck, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def answer_words(self) -> str:
        if self.answer:
            return self.answer
        if self.holds is None:
            return CANNOT_DECIDE
        return HOLDS if self.holds else DOES_NOT_HOLD


@dataclass(frozen=True)
class Verdict:
    per_python: tuple[Scope, ...]
    overall: Scope
    differs_by_python: tuple[str, ...]
    claim: ClaimCheck


class CaseResult(NamedTuple):
    """One case as the reports read it: its cells.json (run metadata and records) and the
    verdict derived from them."""

    case_id: str
    meta: dict[str, Any]
    records: Sequence[CellRecord]
    verdict: Verdict


def version_states(observations: Iterable[Observation]) -> dict[str, str]:
    """Per version: affected if any Python reproduced, unaffected if every decisive cell did not."""
    seen: dict[str, set[Status]] = {}
    for obs in observations:
        seen.setdefault(obs.version, set()).add(obs.status)
    states = {}
    for version, statuses in seen.items():
        if any(status.affected for status in statuses):
            states[version] = AFFECTED
        elif any(status.unaffected for status in statuses):
            states[version] = UNAFFECTED
        else:
            states[version] = UNDETERMINED
    return states


def scope(name: str, states: Mapping[str, str]) -> Scope:
    """Ranges and branch notes from per-version states, walking versions in PEP 440 order."""
    ordered = sorted(states, key=Version)
    decisive = [v for v in ordered if states[v] != UNDETERMINED]
    ranges: list[AffectedRange] = []
    start: str | None = None
    previous: str | None = None
    gap_before_start: tuple[str, ...] = ()
    gap: list[str] = []  # undetermined versions since the last decisive one
    for version in ordered:
        if states[version] == UNDETERMINED:
            gap.append(version)
            continue
        if states[version] == AFFECTED and start is None:
            start, gap_before_start = version, tuple(gap)
        elif states[version] == UNAFFECTED and start is not None:
            ranges.append(AffectedRange(start, previous or start, version,
                                        start == decisive[0], gap_before_start, tuple(gap)))
            start = None
        previous = version
        gap = []
    if start is not None:
        ranges.append(AffectedRange(start, decisive[-1], None, start == decisive[0],
                                    gap_before_start))
    return Scope(name=name, ranges=tuple(ranges), branches=_branches(decisive, states),
                 undetermined=tuple(v for v in ordered if states[v] == UNDETERMINED),
                 decisive=len(decisive), decided=tuple(decisive))


def _series(version: str) -> str:
    release = Version(version).release
    return ".".join(str(part) for part in (*release, 0)[:2])


def _branches(decisive: Sequence[str], states: Mapping[str, str]) -> tuple[BranchNote, ...]:
    by_series: dict[str, list[str]] = {}
    for version in decisive:
        by_series.setdefault(_series(version), []).append(version)
    notes = []
    for series, versions in by_series.items():
        affected = [v for v in versions if states[v] == AFFECTED]
        if not affected:
            continue
        after = [v for v in versions if Version(v) > Version(affected[-1])]
        notes.append(BranchNote(series=series, last_release=versions[-1],
                                last_affected=affected[-1],
                                fixed_in_series=after[0] if after else None))
    return tuple(notes)


def check_claim(claim: Claim, states: Mapping[str, str],
                cells_of: Mapping[str, Sequence[str]]) -> ClaimCheck:
    """Test each stated boundary against the overall states; cite the cells that decide it."""
    if claim.ranges:
        return check_ranges(claim, states, cells_of)
    ordered = sorted((v for v in states if states[v] != UNDETERMINED), key=Version)
    results: list[tuple[bool | None, str, list[str]]] = []
    if claim.first_fixed:
        results.append(_check_boundary(claim.first_fixed, "first fixed", UNAFFECTED, AFFECTED,
                                       ordered, states, cells_of))
    if claim.introduced:
        results.append(_check_boundary(claim.introduced, "introduced", AFFECTED, UNAFFECTED,
                                       ordered, states, cells_of))
    if not results:
        return ClaimCheck(claim, None, "the case states no claim", ())
    holds: bool | None = True
    if any(r[0] is False for r in results):
        holds = False
    elif any(r[0] is None for r in results):
        holds = None
    evidence = tuple(dict.fromkeys(cell for r in results for cell in r[2]))
    return ClaimCheck(claim, holds, " ".join(r[1] for r in results), evidence)


def _check_boundary(version: str, label: str, expected: str, before: str,
                    ordered: Sequence[str], states: Mapping[str, str],
                    cells_of: Mapping[str, Sequence[str]]) -> tuple[bool | None, str, list[str]]:
    key = next((v for v in states if Version(v) == Version(version)), None)
    tested = sorted(states, key=Version)
    if key is None and tested and not (Version(tested[0]) <= Version(version)
                                       <= Version(tested[-1])):
        return None, (f"Claimed {label} {version}: outside the tested window "
                      f"({tested[0]}–{tested[-1]}), not checked."), []
    if key is None or states[key] == UNDETERMINED:
        return None, f"Claimed {label} {version}: no decisive cell for {version}.", []
    lower = [v for v in ordered if Version(v) < Version(version)]
    higher = [v for v in ordered if Version(v) > Version(version)]
    evidence = list(cells_of.get(key, ()))
    if states[key] != expected:
        return False, (f"Claimed {label} {version}: refuted, {version} is "
                       f"{states[key]}."), evidence
    if not lower:
        return None, (f"Claimed {label} {version}: {version} is {expected}, but no earlier "
                      "release was tested to show the change."), evidence
    evidence += list(cells_of.get(lower[-1], ()))
    if states[lower[-1]] != before:
        return False, (f"Claimed {label} {version}: refuted, the release before it "
                       f"({lower[-1]}) is already {states[lower[-1]]}."), evidence
    if expected == UNAFFECTED:
        regressions = [v for v in higher if states[v] == AFFECTED]
        if regressions:
            evidence += list(cells_of.get(regressions[0], ()))
            return False, (f"Claimed {label} {version}: refuted, {regressions[0]} (later) "
                           "is affected again."), evidence
    untested = sorted((v for v in states if states[v] == UNDETERMINED
                       and Version(lower[-1]) < Version(v) < Version(version)), key=Version)
    caveat = f" ({', '.join(untested)} in between could not be tested)" if untested else ""
    return True, (f"Claimed {label} {version}: confirmed, {lower[-1]} is {before} and "
                  f"{version} is {expected}{caveat}."), evidence


def claimed_affected(ranges: Sequence[ClaimRange], version: str) -> bool:
    """Whether the claimed ranges (OSV semantics) cover ``version``."""
    parsed = Version(version)
    for rng in ranges:
        if rng.introduced != OSV_ZERO and parsed < Version(rng.introduced):
            continue
        if rng.fixed is not None and parsed >= Version(rng.fixed):
            continue
        if rng.last_affected is not None and parsed > Version(rng.last_affected):
            continue
        return True
    return False


def _bounds(ranges: Sequence[ClaimRange]) -> list[tuple[str, str]]:
    """(kind, version) of every claimed bound, in range order."""
    found: list[tuple[str, str]] = []
    for rng in ranges:
        found.append(("introduced", rng.introduced))
        if rng.fixed is not None:
            found.append(("fixed", rng.fixed))
        if rng.last_affected is not None:
            found.append(("last_affected", rng.last_affected))
    return list(dict.fromkeys(found))


def _right_of(kind: str, bound: str, version: str) -> bool:
    """Whether ``version`` lies after the cut a bound makes (last_affected cuts after itself)."""
    if kind == "introduced" and bound == OSV_ZERO:
        return True
    if kind == "last_affected":
        return Version(version) > Version(bound)
    return Version(version) >= Version(bound)


def _check_bound(kind: str, bound: str, ranges: Sequence[ClaimRange], tested: Sequence[str],
                 states: Mapping[str, str],
                 cells_of: Mapping[str, Sequence[str]]) -> BoundCheck:
    """Compare the decisive releases nearest the bound, on each side, with the claim."""
    left = [v for v in tested if not _right_of(kind, bound, v)]
    right = [v for v in tested if _right_of(kind, bound, v)]
    if not left or not right:
        where = (f"no release before {tested[0]} was tested" if not left
                 else f"no release after {tested[-1]} was tested")
        if kind == "introduced" and bound == OSV_ZERO:
            where = f"the claim starts at the first release and {where}"
        return BoundCheck(kind, bound, OUTSIDE, f"not checked: {where}")
    below = next((v for v in reversed(left) if states[v] != UNDETERMINED), None)
    above = next((v for v in right if states[v] != UNDETERMINED), None)
    if below is None or above is None:
        side = "before" if below is None else "from"
        return BoundCheck(kind, bound, UNDECIDABLE,
                          f"no release {side} {bound} in the window could be tested")
    evidence = (*cells_of.get(below, ()), *cells_of.get(above, ()))
    wrong = [v for v in (below, above)
             if (states[v] == AFFECTED) != claimed_affected(ranges, v)]
    if wrong:
        said = "; ".join(f"{v} is {states[v]}, the claim says "
                         f"{AFFECTED if claimed_affected(ranges, v) else UNAFFECTED}"
                         for v in wrong)
        deciding = tuple(c for v in wrong for c in cells_of.get(v, ()))
        return BoundCheck(kind, bound, REFUTED, said, deciding)
    between = [v for v in tested if Version(below) < Version(v) < Version(above)]
    if between:
        return BoundCheck(kind, bound, UNDECIDABLE,
                          f"{below} is {states[below]} and {above} is {states[above]} but "
                          f"{', '.join(between)} in between could not be tested", evidence)
    return BoundCheck(kind, bound, CONFIRMED,
                      f"{below} is {states[below]} and {above} is {states[above]}", evidence)


def check_ranges(claim: Claim, states: Mapping[str, str],
                 cells_of: Mapping[str, Sequence[str]]) -> ClaimCheck:
    """Range by range: every claimed bound, then every tested release, against the cells.

    Only the tested window is judged: a bound beyond it is reported as not checked, never as
    an error, and the answer is then "holds where checked" unless something was refuted.
    """
    tested = sorted(states, key=Version)
    releases = tuple(ReleaseCheck(v, AFFECTED if claimed_affected(claim.ranges, v)
                                  else UNAFFECTED, states[v]) for v in tested)
    if not tested:
        return ClaimCheck(claim, None, "no release was tested.", (), CANNOT_DECIDE)
    bounds = tuple(_check_bound(kind, version, claim.ranges, tested, states, cells_of)
                   for kind, version in _bounds(claim.ranges))
    disagree = [r for r in releases if r.agrees is False]
    sentences = [b.explanation[0].upper() + b.explanation[1:] for b in bounds]
    if disagree:
        sentences.append("Releases where the claim and the cells disagree: " + ", ".join(
            f"{r.version} (claimed {r.claimed}, observed {r.observed})" for r in disagree) + ".")
    evidence = [c for b in bounds if b.outcome == REFUTED for c in b.evidence]
    evidence += [c for r in disagree for c in cells_of.get(r.version, ())]
    unchecked = [f"{b.kind.replace('_', ' ')} {b.version} ({b.outcome})" for b in bounds
                 if b.outcome in (OUTSIDE, UNDECIDABLE)]
    untested = [r.version for r in releases if r.agrees is None]
    if untested:
        unchecked.append("releases that could not be tested: " + ", ".join(untested))
    if disagree or any(b.outcome == REFUTED for b in bounds):
        answer = DOES_NOT_HOLD
    elif all(b.outcome == CONFIRMED for b in bounds):
        answer = HOLDS
    elif any(r.agrees for r in releases):
        answer = HOLDS_WHERE_CHECKED
        sentences.append("Not checked: " + "; ".join(unchecked) + ".")
    else:
        answer = CANNOT_DECIDE
    if answer != DOES_NOT_HOLD:
        evidence = [c for b in bounds if b.outcome == CONFIRMED for c in b.evidence]
    return ClaimCheck(claim, _HOLDS_OF.get(answer), " ".join(sentences),
                      tuple(dict.fromkeys(evidence)), answer, bounds, releases,
                      tuple(unchecked))


def derive(observations: Sequence[Observation], claim: Claim) -> Verdict:
    """The whole verdict of one case."""
    pythons = sorted({o.python for o in observations},
                     key=lambda p: tuple(int(x) for x in p.split(".")))
    per_python = tuple(
        scope(f"Python {python}", version_states(o for o in observations if o.python == python))
        for python in pythons)
    states = version_states(observations)
    cells_of: dict[str, list[str]] = {}
    for obs in observations:
        if obs.status.decisive:
            cells_of.setdefault(obs.version, []).append(f"py{obs.python}/{obs.version}: "
                                                         f"{obs.status.value}")
    differs = tuple(
        version for version in sorted(states, key=Version)
        if any(o.status.affected for o in observations if o.version == version)
        and any(o.status.unaffected for o in observations if o.version == version))
    return Verdict(per_python=per_python, overall=scope("all Pythons", states),
                   differs_by_python=differs, claim=check_claim(claim, states, cells_of))
