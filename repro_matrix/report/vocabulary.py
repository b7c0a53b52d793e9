"""The shared vocabulary of every report: how a status looks and reads, and the verdict, claim
and coverage sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from repro_matrix import pythons as py
from repro_matrix.model import OSV_ZERO, CaseMeta, CellRecord, Claim, ClaimRange, Status
from repro_matrix.verdict import causes
from repro_matrix.verdict.derive import HOLDS_WHERE_CHECKED, AffectedRange, Scope, Verdict


@dataclass(frozen=True)
class Look:
    """How one status is shown everywhere: emoji, a letter (for colour-blind readers and fonts
    without emoji), words for prose, what it means, and its colours in the pictures."""

    symbol: str
    code: str
    words: str
    meaning: str
    fill: str
    ink: str


# The one vocabulary of statuses: a new status needs one line here (and renders even without).
VOCABULARY: dict[Status, Look] = {
    Status.REPRODUCED: Look("🔴", "R", "reproduced", "the bug shows (failure signature seen)",
                            "#d7191c", "#ffffff"),
    Status.NOT_REPRODUCED: Look("🟢", "N", "not reproduced", "the repro passed",
                                "#1a9641", "#ffffff"),
    Status.OTHER_FAILURE: Look("🟠", "F", "other failure",
                               "the repro failed without the bug's signature",
                               "#fdae61", "#000000"),
    Status.SIGNATURE_EXIT_0: Look("⚠", "S", "signature but exit 0",
                                  "the repro printed the failure signature but exited 0: check "
                                  "its exit code (1 when the bug shows)", "#e7298a", "#ffffff"),
    Status.CANNOT_TEST: Look("⚪", "?", "cannot test",
                             "the repro said it could not decide (exit 125; pytest: no tests "
                             "collected)", "#bababa", "#000000"),
    Status.CANNOT_INSTALL: Look("📦", "I", "cannot install",
                                "this release does not install or import on this Python at any "
                                "era cutoff tried", "#8073ac", "#ffffff"),
    Status.TIMEOUT: Look("⏱", "T", "timeout", "no exit within the case's limit",
                         "#ffd92f", "#000000"),
    Status.UNAVAILABLE: Look("➖", "U", "unavailable",
                             "no base image for this Python on this machine", "#f0f0f0", "#555555"),
    Status.NOT_FOR_PYTHON: Look("⛔", "X", "not for this Python",
                                "the release's or the repro's requires-python excludes it "
                                "(nothing built)", "#4d4d4d", "#ffffff"),
    # Compatibility mode (outcome.kind: compatibility): a pair of releases tried together.
    Status.WORKS: Look("🟢", "W", "works", "the package imports (and the repro passes) with this "
                       "dependency release", "#1a9641", "#ffffff"),
    Status.BROKEN: Look("🔴", "B", "broken", "tried and broken: the import or the repro fails "
                        "with this dependency release installed", "#d7191c", "#ffffff"),
    Status.DECLARED_INCOMPATIBLE: Look("⛔", "D", "declared incompatible",
                                       "the declared requirements exclude the pair (the "
                                       "resolver finds no solution; nothing built)",
                                       "#2c7bb6", "#ffffff"),
}


def look(status: Status) -> Look:
    """The status's look; a status without a line in VOCABULARY still gets readable words."""
    words = status.value.replace("_", " ")
    return VOCABULARY.get(status) or Look("◻", words[:1].upper(), words, words, "#dddddd",
                                          "#000000")


_COMPATIBILITY = (Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE)
_BUG = (Status.REPRODUCED, Status.NOT_REPRODUCED)


def legend_statuses(records: Sequence[CellRecord]) -> list[Status]:
    """The statuses a full legend lists: a compatibility case's (works, broken, declared
    incompatible) replace the bug's (reproduced, not reproduced) when its cells hold any."""
    compatibility = any(r.status in _COMPATIBILITY for r in records)
    left_out = _BUG if compatibility else _COMPATIBILITY
    return [s for s in Status if s not in left_out]


def mark(status: Status) -> str:
    """What a table cell shows: the emoji and the letter."""
    return f"{look(status).symbol} {look(status).code}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """"1 release", "2 releases"."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def entries_touch(count: int) -> str:
    """"1 entry touches", "2 entries touch" (changelog entries and the changed code)."""
    return f"{plural(count, 'entry', 'entries')} {'touches' if count == 1 else 'touch'}"


SYMBOLS: dict[Status, str] = {s: look(s).symbol for s in Status}


MEANINGS: dict[Status, str] = {s: f"{look(s).words}: {look(s).meaning}" for s in Status}


# The pictures (matrix.svg, report.html): a fill colour, the text colour on it, and a one-letter
# code printed in the square so the picture does not depend on telling colours apart.
COLOURS: dict[Status, tuple[str, str]] = {s: (look(s).fill, look(s).ink) for s in Status}


CODES: dict[Status, str] = {s: look(s).code for s in Status}


CLAIM_WORDS: dict[bool | None, str] = {True: "✅ holds", False: "❌ does not hold",
                                       None: "❔ cannot be decided"}


PLAIN_CLAIM_WORDS: dict[bool | None, str] = {True: "holds", False: "does not hold",
                                             None: "cannot be decided"}


def ordered_versions(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.version for r in records}, key=Version)


def ordered_pythons(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.python for r in records}, key=py.sort_key)


def _range_words(rng: AffectedRange) -> str:
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
    return f"{start}, last affected {rng.last_affected}, {end}"


def scope_words(scope: Scope) -> str:
    """Where the bug shows for one scope, without its name."""
    if not scope.decisive:
        return "no release could be tested"
    if not scope.ranges:
        return ("not reproduced in its only decided release" if scope.decisive == 1
                else f"not reproduced in any of its {scope.decisive} decided releases")
    return "; ".join(_range_words(rng) for rng in scope.ranges)


def scope_sentence(scope: Scope) -> str:
    """One sentence: where the bug shows for one Python, or for all of them."""
    return f"{scope.name}: {scope_words(scope)}."


def _span(versions: Sequence[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}–{versions[-1]}"


def pythons_words(pythons: Sequence[str]) -> str:
    if not pythons:
        return ""
    names = [f"{p}" for p in pythons]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Python {joined}"


def bounds(verdict: Verdict) -> list[tuple[str, str]]:
    """(kind, version) of every boundary the overall verdict draws between two decided
    releases: an introduced after an unaffected release, and each fixed."""
    found = []
    for rng in verdict.overall.ranges:
        if not rng.from_first_tested:
            found.append(("introduced", rng.introduced))
        if rng.fixed:
            found.append(("fixed", rng.fixed))
    return found


def decides_a_bound(scope: Scope, cuts: Sequence[tuple[str, str]]) -> bool:
    """Whether a Python decided releases on both sides of one of ``cuts`` (the verdict's
    boundaries); with no boundary to decide, whether it decided anything at all."""
    if not cuts:
        return scope.decisive > 0
    return any(any(Version(v) < Version(cut) for v in scope.decided)
               and any(Version(v) >= Version(cut) for v in scope.decided) for _, cut in cuts)


def _undecided_words(scope: Scope, cuts: Sequence[tuple[str, str]],
                     records: Sequence[CellRecord]) -> str:
    """Why a Python that decided releases decides no boundary: where its decided releases lie,
    and which releases could not be tested there, with the main cause (from the cells, when
    given)."""
    decided = [Version(v) for v in scope.decided]
    fixes = [Version(v) for kind, v in cuts if kind == "fixed"]
    starts = [Version(v) for kind, v in cuts if kind == "introduced"]
    if fixes and min(decided) >= max(fixes):
        where, missing = "decided only releases after the fix", [
            v for v in scope.undetermined if Version(v) < min(decided)]
    elif starts and max(decided) < min(starts):
        where, missing = "decided only releases before the bug appeared", [
            v for v in scope.undetermined if Version(v) > max(decided)]
    else:
        where, missing = ("decided no releases on both sides of a boundary",
                          list(scope.undetermined))
    if not missing:
        return where
    python = scope.name.removeprefix("Python ")
    tested = sorted({*scope.decided, *scope.undetermined}, key=Version)
    text = f"{where} ({causes.spans(missing, tested)} could not be tested there"
    found = causes.groups([r for r in records if r.cell.python == python
                           and r.cell.version in set(missing)])
    if found:
        text += f": {'mostly ' if len(found) > 1 else ''}`{plain(found[0].cause)}`"
    return text + ")"


def headline(verdict: Verdict, records: Sequence[CellRecord] = ()) -> str:
    """The verdict as the deciding Pythons show it: one clause per group of Pythons that agree,
    so nothing is claimed for a Python that was not decided or that differs. A Python decides
    only when it decided releases on both sides of a boundary of the verdict; one that did not
    is named with where its decided releases lie and why the others could not run (the causes
    of ``records``, when given)."""
    decided = [s for s in verdict.per_python if s.decisive]
    if not decided:
        return "No release could be tested on any Python."
    cuts = bounds(verdict)
    deciding = [s for s in decided if decides_a_bound(s, cuts)]
    groups: dict[str, list[str]] = {}
    for scope in deciding or decided:  # none decides a boundary: say what each saw
        groups.setdefault(scope_words(scope), []).append(scope.name.removeprefix("Python "))
    total = len(verdict.per_python)
    lead = ("Every Python agrees" if len(deciding) == total and len(groups) == 1
            else f"Decided on {len(deciding)} of {plural(total, 'Python')}")
    aside: dict[str, list[str]] = {}
    for scope in decided:
        if scope not in deciding:
            aside.setdefault(_undecided_words(scope, cuts, records), []).append(
                scope.name.removeprefix("Python "))
    if aside:
        lead += "; " + "; ".join(f"{pythons_words(pythons)} {words}"
                                 for words, pythons in aside.items())
    clauses = [f"{pythons_words(pythons)}: {words}" for words, pythons in groups.items()]
    return f"{lead}. " + ". ".join(clauses) + "."


def claim_sentence(verdict: Verdict, words: dict[bool | None, str] | None = None) -> str:
    """The claim, whether it holds (in ``words``, default CLAIM_WORDS), and why; a case without
    a claim says so."""
    claim = verdict.claim
    if not (claim.claim.introduced or claim.claim.first_fixed or claim.claim.ranges):
        return "No claim to check (the case states none)."
    said = (words or CLAIM_WORDS)[claim.holds]
    if claim.answer == HOLDS_WHERE_CHECKED:
        said = ("☑️ " if words is None else "") + HOLDS_WHERE_CHECKED
    return f"{claim_words(claim.claim)} {said}. {plain(claim.explanation)}"


def plain(text: str) -> str:
    """Internal state names read as words in prose; "5 cutoff(s)" reads "5 cutoffs"."""
    text = text.replace("not_reproduced", "not reproduced")
    return _COUNTED.sub(lambda m: plural(int(m[1]), m[2]), text)


_COUNTED = re.compile(r"\b(\d+) ([a-z][a-z ]*?[a-z])\(s\)")


def claim_words(claim: Claim) -> str:
    if claim.ranges:
        source = f" ({claim.source})" if claim.source else ""
        return f"The claim \"{ranges_words(claim)}\"{source}"
    stated = []
    if claim.introduced:
        stated.append(f"introduced in {claim.introduced}")
    if claim.first_fixed:
        stated.append(f"first fixed in {claim.first_fixed}")
    source = f" ({claim.source})" if claim.source else ""
    return f"The claim \"{' and '.join(stated)}\"{source}"


def coverage_sentence(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """Per Python: releases decided out of those planned, and why the rest were not; bisect runs
    say how many releases ran."""
    planned = len(meta.versions or ordered_versions(records))
    bisect = meta.bisect
    parts, untested = [], []
    for python in ordered_pythons(records):
        mine = [r for r in records if r.cell.python == python]
        if all(r.status is Status.UNAVAILABLE for r in mine):
            untested.append(python)
            continue
        decided = sum(1 for r in mine if r.status.decisive)
        others: dict[Status, int] = {}
        for r in mine:
            if not r.status.decisive:
                others[r.status] = others.get(r.status, 0) + 1
        why = ", ".join(f"{look(s).words} {n}" for s, n in others.items())
        ran = (f"bisect: {len(mine)} of {plural(planned, 'release')} run, {decided} decided"
               if python in bisect else f"{decided} of {plural(planned, 'release')} decided")
        parts.append(f"Python {python}: {ran}" + (f" ({why})" if why else ""))
    if untested:
        parts.append(f"not tested: {pythons_words(untested)} (unavailable: no base image)")
    return "; ".join(parts) + "."


def branch_sentences(verdict: Verdict) -> list[str]:
    """Branches that stay affected: a missing backport only when a fix exists at all."""
    fixed = verdict.overall.first_fixed
    lines = []
    for branch in verdict.overall.branches:
        if branch.fixed_in_series:
            lines.append(f"{branch.series}.x: fixed within the branch in "
                         f"{branch.fixed_in_series}")
        elif fixed and Version(fixed) > Version(branch.last_release):
            lines.append(f"{branch.series}.x: affected through its last tested release "
                         f"{branch.last_release}; the fix ({fixed}) did not reach this branch")
        else:
            lines.append(f"{branch.series}.x: affected through its last tested release "
                         f"{branch.last_release}")
    return lines


def per_python_sentences(verdict: Verdict) -> list[str]:
    """One sentence per decided Python, one for all those that decided nothing."""
    lines = [scope_sentence(scope) for scope in verdict.per_python if scope.decisive]
    undecided = [s.name.removeprefix("Python ") for s in verdict.per_python if not s.decisive]
    if undecided:
        lines.append(f"{pythons_words(undecided)}: no release could be tested.")
    return lines


def claimed_range_text(rng: ClaimRange) -> str:
    """A claimed range in interval notation: [0, 2.1.3), [1.1, 1.2], [3.0, …)."""
    start = "first release" if rng.introduced == OSV_ZERO else rng.introduced
    if rng.fixed:
        return f"[{start}, {rng.fixed})"
    if rng.last_affected:
        return f"[{start}, {rng.last_affected}]"
    return f"[{start}, …)"


def ranges_words(claim: Claim) -> str:
    """The claim in words, for the summary sentence."""
    return "affected " + " ∪ ".join(claimed_range_text(r) for r in claim.ranges)


def run_words(meta: CaseMeta, records: Sequence[CellRecord] = ()) -> str:
    """When the run finished, or that it has not (cells.json is rewritten as cells finish).
    A run that kept cells from earlier runs says so: its wall time is not the matrix's."""
    if not meta.finished_at:
        return f"run not finished (started {meta.started_at or '?'}): partial results"
    kept = sum(1 for r in records if r.finished_at and r.finished_at < meta.started_at)
    if not kept:
        return f"run finished {meta.finished_at} in {meta.wall_time_s:.0f} s"
    return (f"last run finished {meta.finished_at} in {meta.wall_time_s:.0f} s, keeping "
            f"{kept} of the {plural(len(records), 'cell')} unchanged from earlier runs")
