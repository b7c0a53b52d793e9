"""Render results/report.md, each case's matrix.svg and the CI step summary from stored results."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from packaging.version import Version
from tabulate import tabulate

from repro_matrix import causes, claim_report, sandbox
from repro_matrix import pythons as py
from repro_matrix.boundary import INTRODUCED, Explained
from repro_matrix.model import CaseMeta, CellRecord, Claim, Status
from repro_matrix.verdict import (
    HOLDS_WHERE_CHECKED,
    AffectedRange,
    CaseResult,
    Scope,
    Verdict,
)


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
}


def look(status: Status) -> Look:
    """The status's look; a status without a line in VOCABULARY still gets readable words."""
    words = status.value.replace("_", " ")
    return VOCABULARY.get(status) or Look("◻", words[:1].upper(), words, words, "#dddddd",
                                          "#000000")


def mark(status: Status) -> str:
    """What a table cell shows: the emoji and the letter."""
    return f"{look(status).symbol} {look(status).code}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """"1 release", "2 releases"."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


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
_EXCERPT_LINES = 6
_REPRO_PLACEHOLDER = "path/to/repro.py"


# ---- the table ------------------------------------------------------------------------------


def ordered_versions(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.version for r in records}, key=Version)


def ordered_pythons(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.python for r in records}, key=py.sort_key)


def folded_pythons(records: Sequence[CellRecord]) -> list[str]:
    """Pythons whose every cell is unavailable: a column that says nothing, folded away."""
    return [p for p in ordered_pythons(records)
            if all(r.status is Status.UNAVAILABLE for r in records if r.cell.python == p)]


def status_table(records: Sequence[CellRecord], release_dates: Mapping[str, str],
                 fold: bool = False) -> str:
    """Rows are versions (PEP 440 order), columns Pythons, emoji and letter per cell."""
    folded = set(folded_pythons(records)) if fold else set()
    pythons = [p for p in ordered_pythons(records) if p not in folded]
    by_key = {(r.cell.version, r.cell.python): r for r in records}
    rows = []
    for version in ordered_versions(records):
        row = [version, release_dates.get(version, "")]
        for python in pythons:
            record = by_key.get((version, python))
            row.append(mark(record.status) if record else "")
        rows.append(row)
    headers = ["version", "released", *[f"py{p}" for p in pythons]]
    return tabulate(rows, headers=headers, tablefmt="github", stralign="center",
                    disable_numparse=True)


def legend(records: Sequence[CellRecord]) -> str:
    counts = {status: sum(1 for r in records if r.status is status) for status in Status}
    return "\n".join(f"- {mark(s)} {MEANINGS[s]} ({plural(counts[s], 'cell')})"
                     for s in Status if counts[s])


def folded_note(records: Sequence[CellRecord]) -> str:
    folded = folded_pythons(records)
    if not folded:
        return ""
    return (f"Not shown: {_pythons_words(folded)}, unavailable for every release "
            "(see Coverage).")


# ---- the verdict in words -------------------------------------------------------------------


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


def _pythons_words(pythons: Sequence[str]) -> str:
    if not pythons:
        return ""
    names = [f"{p}" for p in pythons]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Python {joined}"


def headline(verdict: Verdict) -> str:
    """The verdict as the decided Pythons show it: one clause per group of Pythons that agree,
    so nothing is claimed for a Python that was not decided or that differs."""
    decided = [s for s in verdict.per_python if s.decisive]
    if not decided:
        return "No release could be tested on any Python."
    groups: dict[str, list[str]] = {}
    for scope in decided:
        groups.setdefault(scope_words(scope), []).append(scope.name.removeprefix("Python "))
    total = len(verdict.per_python)
    lead = ("Every Python agrees" if len(decided) == total and len(groups) == 1
            else f"Decided on {len(decided)} of {plural(total, 'Python')}")
    clauses = [f"{_pythons_words(pythons)}: {words}" for words, pythons in groups.items()]
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
        return f"The claim \"{claim_report.ranges_words(claim)}\"{source}"
    stated = []
    if claim.introduced:
        stated.append(f"introduced in {claim.introduced}")
    if claim.first_fixed:
        stated.append(f"first fixed in {claim.first_fixed}")
    source = f" ({claim.source})" if claim.source else ""
    return f"The claim \"{' and '.join(stated)}\"{source}"


# ---- coverage: what was decided, and what was not and why ------------------------------------


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
        parts.append(f"not tested: {_pythons_words(untested)} (unavailable: no base image)")
    return "; ".join(parts) + "."


def summary_section(verdict: Verdict, meta: CaseMeta | None = None,
                    records: Sequence[CellRecord] = ()) -> str:
    """What a reader needs first: the verdict, its coverage and the claim check."""
    lines = [f"**Verdict.** {headline(verdict)}", ""]
    if meta is not None and records:
        lines += [f"**Coverage.** {coverage_sentence(meta, records)}", ""]
    lines.append(f"**Claim check.** {claim_sentence(verdict)}")
    return "\n".join(lines)


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
        lines.append(f"{_pythons_words(undecided)}: no release could be tested.")
    return lines


def notes_section(verdict: Verdict) -> str:
    """Deciding cells, the verdict per Python, branches, Python differences."""
    lines: list[str] = []
    if verdict.claim.evidence:
        lines += ["Deciding cells: " + "; ".join(f"`{plain(e)}`" for e in verdict.claim.evidence)
                  + ".", ""]
    notes = branch_sentences(verdict)
    if notes:
        lines += ["Branches:"] + [f"- {note}" for note in notes]
    if verdict.differs_by_python:
        lines += ["", "Releases whose outcome differs by Python: "
                  + ", ".join(verdict.differs_by_python) + "."]
    return "\n".join(lines)


def verdict_section(verdict: Verdict) -> str:
    return summary_section(verdict) + "\n\n" + notes_section(verdict)


# ---- why the boundary is where it is ----------------------------------------------------------

_TOP_ENTRIES = 2


def explained_section(explained: Sequence[Explained]) -> str:
    """Per boundary: the diff of the functions on the reproduced stack, related changelog
    entries and the project's links (computed from the released files)."""
    if not explained:
        return "No boundary between a decided unaffected and an affected release."
    lines: list[str] = []
    for item in explained:
        what = ("introduced" if item.kind == INTRODUCED else "fixed")
        lines += [f"**{item.before} → {item.after}** ({what}; the stack of `{item.cell}`)", ""]
        if item.missing:
            lines += [f"Not computed: {item.missing}.", ""]
            continue
        changed = [f for f in item.functions if f.diff]
        same = [f for f in item.functions if not f.diff]
        for function in changed:
            lines += [f"`{function.function}` in `{function.path}`:", "", "```diff",
                      function.diff.rstrip("\n"), "```", ""]
        if same:
            lines += ["Unchanged on the stack: "
                      + ", ".join(f"`{f.function}`" for f in same) + ".", ""]
        if not item.functions:
            lines += ["The reproduced traceback shows none of the package's own files.", ""]
        lines += _changelog_lines(item)
        if item.links:
            lines += ["Links: " + " · ".join(f"[{label}]({url})" for label, url in item.links),
                      ""]
    return "\n".join(lines).rstrip()


def _changelog_lines(item: Explained) -> list[str]:
    if not item.changelog_file:
        return ["No changelog in the distribution.", ""]
    versions = ", ".join(v for v, _ in item.changelog) or "none"
    head = (f"Changelog ({item.changelog_file}, sections {versions}): "
            f"{plural(len(item.related_entries), 'entry', 'entries')} touch the changed code")
    top = item.related_entries[:_TOP_ENTRIES]
    more = len(item.related_entries) - len(top)
    head += (f"; the first {len(top)} (all in boundaries.json):" if more > 0
             else (":" if top else "."))
    return [head, "", *[f"- {_unbulleted(entry)}" for entry in top], ""] if top else [head, ""]


def _unbulleted(entry: str) -> str:
    return entry.lstrip("-*+ ").strip()


# ---- failure causes ---------------------------------------------------------------------------


def causes_section(records: Sequence[CellRecord]) -> str:
    """The cells that decided nothing, grouped by cause (status and error line)."""
    found = causes.groups(records)
    if not found:
        return "Every cell decided: none failed for another reason."
    tested = ordered_versions(records)
    return "\n".join(f"- {mark(g.status)} {plural(len(g.records), 'cell')} "
                     f"({causes.where(g, tested)}): {look(g.status).words}, `{plain(g.cause)}`"
                     for g in found)


def cause_lines(records: Sequence[CellRecord]) -> list[str]:
    """The grouped causes as plain lines (the terminal)."""
    tested = ordered_versions(records)
    return [f"{plural(len(g.records), 'cell')} {look(g.status).words} "
            f"({causes.where(g, tested)}): {plain(g.cause)}" for g in causes.groups(records)]


# ---- boundary cells and how to rerun a cell -------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    """A cell at an edge of an affected range for its Python, and which edges it marks."""

    record: CellRecord
    roles: tuple[str, ...]


def boundary_cells(records: Sequence[CellRecord], verdict: Verdict) -> list[Boundary]:
    """The cells at each per-Python range's introduced / last affected / fixed version."""
    by_key = {(r.cell.python, r.cell.version): r for r in records}
    roles: dict[tuple[str, str], list[str]] = {}
    for scope in verdict.per_python:
        python = scope.name.removeprefix("Python ")
        for rng in scope.ranges:
            edges = [("introduced", rng.introduced), ("last affected", rng.last_affected)]
            if rng.fixed:
                edges.append(("fixed", rng.fixed))
            for role, version in edges:
                found = roles.setdefault((python, version), [])
                if role not in found:
                    found.append(role)
    keys = sorted((k for k in roles if k in by_key),
                  key=lambda k: (py.sort_key(k[0]), Version(k[1])))
    return [Boundary(by_key[k], tuple(roles[k])) for k in keys]


def repro_mount(meta: CaseMeta) -> tuple[str, str, bool]:
    """(host path of the repro, file name inside the container, known) from cells.json.

    Runs record the absolute path ("repro_path"); older results only the path relative to the
    matrix file, which then needs running from its folder (``$PWD``).
    """
    repro = meta.repro_path or meta.repro
    if not repro.strip():
        return f"$PWD/{_REPRO_PLACEHOLDER}", PurePosixPath(_REPRO_PLACEHOLDER).name, False
    path = PurePosixPath(repro.strip())
    source = _double_quoted(str(path))
    return (source if path.is_absolute() else f"$PWD/{source}"), path.name, True


def _double_quoted(text: str) -> str:
    """Escape text for use inside a shell double-quoted string."""
    return "".join(f"\\{ch}" if ch in '\\"$`' else ch for ch in text)


def rerun_command(record: CellRecord, meta: CaseMeta) -> str | None:
    """The docker command that reruns a cell's repro in its image, in the sandbox the harness
    used; None when no image was built. A bind mount (``--mount``) fails loudly when the repro
    is not there, where ``-v`` would create an empty directory in its place."""
    if not record.image_ref:
        return None
    source, name, _ = repro_mount(meta)
    target = f"{sandbox.REPRO_DIR}/{name}"
    env = "".join(f" -e {shlex.quote(f'{k}={v}')}" for k, v in meta.env.items())
    limits = meta.limits
    if meta.command:  # the case's own command, run in /repro
        target = sandbox.REPRO_DIR if meta.folder else target
        words = [sandbox.VENV_PYTHON if i == 0 and w in ("python", "python3") else w
                 for i, w in enumerate(meta.command)]
        flags = sandbox.run_flags(limits.memory, limits.pids, limits.tmpfs,
                                  workdir=sandbox.REPRO_DIR)
        return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
                f"{shlex.quote(record.image_ref)} {shlex.join(words)}")
    flags = sandbox.run_flags(limits.memory, limits.pids, limits.tmpfs)
    return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
            f"{shlex.quote(record.image_ref)} {sandbox.VENV_PYTHON} {shlex.quote(target)}")


def _mount(target: str, source: str) -> str:
    """A read-only bind mount for inside double quotes (``source`` is already escaped)."""
    return _double_quoted(f"type=bind,target={target},readonly,source=") + source


def _rerun_lines(record: CellRecord, meta: CaseMeta) -> list[str]:
    command = rerun_command(record, meta)
    if command is None:
        return ["- rerun: no image was built for this cell"]
    return [f"- rerun by hand: `{command}`"]


def _rerun_note(meta: CaseMeta) -> str:
    source, _, known = repro_mount(meta)
    if known and not source.startswith("$PWD/"):
        return ("Rerun commands mount the case's repro script read-only and apply the "
                "sandbox the run used.")
    if known:
        return ("Rerun commands mount the case's repro script read-only and apply the "
                "sandbox the run used; run them from the folder of the matrix file.")
    return (f"cells.json does not record the case's repro script: replace `{_REPRO_PLACEHOLDER}` "
            "in the rerun commands by its path.")


def _outcome_words(record: CellRecord) -> str:
    """The cell's status and what it showed: its error line, else its reason."""
    shown = causes.error_line(record.output_excerpt)
    return f"{look(record.status).words}, " + (f"`{shown}`" if shown else plain(record.reason))


def boundaries_section(records: Sequence[CellRecord], verdict: Verdict,
                       meta: CaseMeta) -> str:
    """One line per Python with its boundary cells: each one's role, what it showed, its
    environment and how to rerun it."""
    found = boundary_cells(records, verdict)
    if not found:
        return "No affected range, so no boundary cells."
    lines = ["The cells at the edges of each Python's affected ranges, with the exact "
             "environment they ran in (hashes in cells.json). " + _rerun_note(meta), ""]
    by_python: dict[str, list[str]] = {}
    for boundary in found:
        by_python.setdefault(boundary.record.cell.python, []).append(
            _boundary_words(boundary, meta))
    for python, cells in by_python.items():
        lines.append(f"- **py{python}** · " + " · ".join(cells))
    return "\n".join(lines)


def _boundary_words(boundary: Boundary, meta: CaseMeta) -> str:
    record = boundary.record
    pins = ", ".join(pin.split(" ")[0] for pin in record.lock) or "-"
    tools = ", ".join(pin.split(" ")[0] for pin in record.build_lock) or "-"
    command = rerun_command(record, meta)
    return (f"{mark(record.status)} **{record.cell.version}**, {', '.join(boundary.roles)}: "
            f"{_outcome_words(record)}; image `{record.image_ref or '-'}`, interpreter "
            f"{record.interpreter_version or '?'}, era cutoff {record.cutoff[:10] or '-'}; "
            f"lock `{pins}`; build tools `{tools}`; rerun "
            + (f"`{command}`" if command else "impossible (no image was built)"))


# ---- evidence -------------------------------------------------------------------------------


def evidence_section(records: Sequence[CellRecord], meta: CaseMeta | None = None) -> str:
    """One evidence block per group of cells with one status and one error line (its
    representative: the newest release on the newest Python); every other cell is in report.html
    and cells.json."""
    meta = meta or CaseMeta()
    lines: list[str] = []
    tested = ordered_versions(records)
    for group in causes.groups(records, [s for s in Status if s is not Status.NOT_REPRODUCED]):
        if group.status in (Status.UNAVAILABLE, Status.NOT_FOR_PYTHON):
            continue  # nothing ran: the reason is the evidence, given under "Failure causes"
        others = len(group.records) - 1
        lines += _cell_evidence(group.representative, meta,
                                f"for {plural(len(group.records), 'cell')} "
                                f"({causes.where(group, tested)})" if others else "")
    return "\n".join(lines).rstrip() or "Every cell decided; the boundary cells are above."


def _cell_evidence(record: CellRecord, meta: CaseMeta, standing_for: str = "") -> list[str]:
    cell = record.cell
    head = (f"<details><summary>{mark(record.status)} py{cell.python} {cell.version}: "
            f"{look(record.status).words}, {plain(record.reason)}"
            + (f"; representative {standing_for}" if standing_for else "") + "</summary>")
    facts = []
    if record.exit_code is not None:
        facts.append(f"- exit code {record.exit_code}")
    facts += [f"- image `{record.image_ref or '-'}` ({record.image_id[:19] or 'not built'}), "
              f"base: {record.base_source or '-'}, interpreter {record.interpreter_version or '?'}",
              f"- era cutoff {record.cutoff or '-'}; attempts: "
              + ("; ".join(f"{a.cutoff[:10]} → {a.result}"
                           + (f" (`{causes.attempt_cause(a.detail)}`)" if a.detail else "")
                           for a in record.attempts) or "-")]
    if meta.requirements:
        facts.append("- repro requirements (in the lock): "
                     + ", ".join(f"`{r}`" for r in meta.requirements))
    if record.lock:
        facts.append("- lock: " + ", ".join(f"`{pin.split(' ')[0]}`" for pin in record.lock)
                     + " (hashes in cells.json)")
    facts += _rerun_lines(record, meta)
    excerpt = "\n".join(record.output_excerpt.splitlines()[-_EXCERPT_LINES:])
    body = ["", f"Last {_EXCERPT_LINES} lines of output:", "", "```", excerpt, "```"] \
        if excerpt.strip() else []
    return [head, "", *facts, *body, "</details>", ""]


# ---- the picture ----------------------------------------------------------------------------

_CELL_W, _CELL_H, _GAP = 44, 18, 2
_FONT = 'font-family="DejaVu Sans, Verdana, Arial, sans-serif" font-size="11"'


def _range_labels(scope: Scope) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for rng in scope.ranges:
        labels.setdefault(rng.introduced, []).append("introduced")
        labels.setdefault(rng.last_affected, []).append("last affected")
        if rng.fixed:
            labels.setdefault(rng.fixed, []).append("first fixed")
    return labels


def matrix_svg(case_id: str, records: Sequence[CellRecord], verdict: Verdict) -> str:
    """A heat map: rows are versions (PEP 440 order), columns Pythons, one colour per status."""
    versions, pythons = ordered_versions(records), ordered_pythons(records)
    by_key = {(r.cell.version, r.cell.python): r for r in records}
    labels = _range_labels(verdict.overall)
    label_w = max([len(v) for v in versions] + [7]) * 7 + 16
    top = 48
    grid_right = label_w + len(pythons) * _CELL_W
    note_w = max([len(", ".join(n)) for n in labels.values()] + [0]) * 7 + 24
    legend_top = top + len(versions) * _CELL_H + 20
    counts = {s: sum(1 for r in records if r.status is s) for s in Status}
    width = max(grid_right + note_w, 440) + 10
    height = legend_top + len(Status) * 18 + 10
    title = f"{case_id}: status per release (rows) and Python (columns)"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="10" y="20" {_FONT} font-weight="bold">{escape(title)}</text>']
    for j, python in enumerate(pythons):
        x = label_w + j * _CELL_W + _CELL_W / 2
        out.append(f'<text x="{x:g}" y="{top - 8}" {_FONT} text-anchor="middle">'
                   f"py{escape(python)}</text>")
    for i, version in enumerate(versions):
        y = top + i * _CELL_H
        out.append(f'<text x="{label_w - 8}" y="{y + 13}" {_FONT} text-anchor="end">'
                   f"{escape(version)}</text>")
        for j, python in enumerate(pythons):
            x = label_w + j * _CELL_W
            record = by_key.get((version, python))
            w, h = _CELL_W - _GAP, _CELL_H - _GAP
            if record is None:
                out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="#ffffff" '
                           f'stroke="#cccccc" stroke-dasharray="2,2"><title>py{escape(python)} '
                           f"{escape(version)}: no result</title></rect>")
                continue
            fill, ink = COLOURS[record.status]
            tip = f"py{python} {version}: {look(record.status).words}, {record.reason}"
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}">'
                       f"<title>{escape(tip)}</title></rect>")
            out.append(f'<text x="{x + w / 2:g}" y="{y + 12}" {_FONT} text-anchor="middle" '
                       f'fill="{ink}" pointer-events="none">{CODES[record.status]}</text>')
        if version in labels:
            out.append(f'<text x="{grid_right + 8}" y="{y + 13}" {_FONT} fill="#333333">← '
                       f'{escape(", ".join(labels[version]))}</text>')
    for k, status in enumerate(Status):
        y = legend_top + k * 18
        fill, ink = COLOURS[status]
        out.append(f'<rect x="10" y="{y}" width="14" height="14" fill="{fill}" '
                   f'stroke="#999999"/>')
        out.append(f'<text x="17" y="{y + 11}" {_FONT} text-anchor="middle" fill="{ink}">'
                   f"{CODES[status]}</text>")
        out.append(f'<text x="32" y="{y + 11}" {_FONT}>{escape(look(status).words)}'
                   f" ({plural(counts[status], 'cell')})</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- the documents --------------------------------------------------------------------------


def svg_link(case_id: str) -> str:
    """Where report.md finds a case's matrix.svg, relative to the results folder."""
    return f"{quote(case_id)}/matrix.svg"


def run_words(meta: CaseMeta) -> str:
    """When the run finished, or that it has not (cells.json is rewritten as cells finish)."""
    if meta.finished_at:
        return (f"run finished {meta.finished_at} in {meta.wall_time_s:.0f} s")
    return f"run not finished (started {meta.started_at or '?'}): partial results"


def facts_line(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """What was planned and when it ran."""
    versions = len({r.cell.version for r in records})
    pythons = len({r.cell.python for r in records})
    if meta.bisect:  # a bisection runs a few cells per Python, not a full matrix
        planned = len(meta.versions) or versions
        return (f"Package `{meta.package}`, bisect over {plural(planned, 'release')} "
                f"× {plural(pythons, 'Python')}: {plural(len(records), 'cell')} run; "
                f"{run_words(meta)}.")
    return (f"Package `{meta.package}`, {plural(versions, 'release')} × "
            f"{plural(pythons, 'Python')} = {plural(len(records), 'cell')}; {run_words(meta)}.")


def base_images_section(meta: CaseMeta) -> list[str]:
    """Where each column's interpreter came from, and which providers were passed over."""
    found = meta.bases
    if not found:
        return []
    lines = ["### Base images", ""]
    for python in sorted(found, key=py.sort_key):
        base = found[python]
        if base.get("unavailable_reason"):
            lines.append(f"- Python {python}: unavailable ({base['unavailable_reason']})")
            continue
        line = (f"- Python {python}: {base.get('provider', '?')}, {base.get('source') or '-'}"
                f" (Python {base.get('interpreter_version') or '?'})")
        passed = base.get("passed_over") or {}
        if passed:
            line += "; passed over " + "; ".join(f"{name}: {why}" for name, why in passed.items())
        lines.append(line)
    return [*lines, ""]


def render_case(case_id: str, stored_meta: Mapping[str, Any], records: Sequence[CellRecord],
                verdict: Verdict, explained: Sequence[Explained] = ()) -> str:
    """One case's section of report.md, from its cells.json (``stored_meta`` and records)."""
    meta = CaseMeta.from_json(stored_meta)
    title = meta.description or case_id
    folded = folded_note(records)
    lines = [f"## {case_id}: {title}", "", summary_section(verdict, meta, records), "",
             facts_line(meta, records), "",
             *_claim_ranges_lines(case_id, meta, verdict),
             "### Why the boundary is there", "", explained_section(explained), "",
             "### Failure causes", "", causes_section(records), "",
             "### Compatibility table", "",
             f"![{case_id}: one square per cell, coloured by status]({svg_link(case_id)})", "",
             status_table(records, meta.release_dates, fold=True), "",
             *([folded, ""] if folded else []), legend(records), "",
             *base_images_section(meta),
             "### Notes", "", notes_section(verdict), "",
             "### Boundary cells", "", boundaries_section(records, verdict, meta), "",
             "### Evidence", "", evidence_section(records, meta)]
    return "\n".join(lines).rstrip() + "\n"


def _claim_ranges_lines(case_id: str, meta: CaseMeta, verdict: Verdict) -> list[str]:
    section = claim_report.ranges_section(case_id, meta, verdict)
    return ["### Claim, range by range", "", section, ""] if section else []


def render(cases: Sequence[CaseResult],
           explained: Mapping[str, Sequence[Explained]] | None = None) -> str:
    parts = ["# repro-matrix report", "",
             "Generated from the stored cell results; every verdict below is computed from "
             "them. Interactive version: [report.html](report.html); machine-readable: each "
             "case's `cells.json`, `verdict.json`, `boundaries.json` and `osv.json`.", ""]
    parts += [render_case(*case, (explained or {}).get(case[0], ())) for case in cases]
    return "\n".join(parts)


def step_summary(cases: Sequence[CaseResult]) -> str:
    """What a CI job summary shows: per case the summary sentences and the table."""
    parts = ["## repro-matrix", ""]
    for case_id, stored_meta, records, verdict in cases:
        meta = CaseMeta.from_json(stored_meta)
        parts += [f"### {case_id}: {meta.description or case_id}", "",
                  summary_section(verdict, meta, records), "",
                  status_table(records, meta.release_dates, fold=True), "",
                  " · ".join(f"{mark(s)} {look(s).words}" for s in Status), ""]
    return "\n".join(parts)


def terminal_lines(cases: Sequence[CaseResult]) -> list[str]:
    """The end of a run on the terminal: per case the verdict, the claim check and the causes
    of cells that decided nothing."""
    lines = []
    for case_id, stored_meta, records, verdict in cases:
        lines += [f"{case_id}: {headline(verdict)}",
                  f"  coverage: {coverage_sentence(CaseMeta.from_json(stored_meta), records)}",
                  f"  claim check: {claim_sentence(verdict, PLAIN_CLAIM_WORDS)}"]
        lines += [f"  {line}" for line in cause_lines(records)]
    return lines


STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


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


def write(results: Path, text: str) -> Path:
    from repro_matrix.store import write_atomic

    path = results / "report.md"
    write_atomic(path, text)
    return path


def write_svg(results: Path, case_id: str, text: str) -> Path:
    from repro_matrix.store import case_dir, write_atomic

    path = case_dir(results, case_id) / "matrix.svg"
    write_atomic(path, text)
    return path
