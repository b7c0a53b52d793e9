"""The markdown: results/report.md, the CI step summary and the terminal summary, as text."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from packaging.version import Version
from tabulate import tabulate

from repro_matrix import pythons as py
from repro_matrix.containers import sandbox
from repro_matrix.model import CaseMeta, CellRecord, Status
from repro_matrix.report.claim import ranges_section
from repro_matrix.report.svg import svg_link
from repro_matrix.report.vocabulary import (
    MEANINGS,
    PLAIN_CLAIM_WORDS,
    branch_sentences,
    claim_sentence,
    coverage_sentence,
    headline,
    look,
    mark,
    ordered_pythons,
    ordered_versions,
    plain,
    plural,
    pythons_words,
)
from repro_matrix.verdict import causes
from repro_matrix.verdict.boundary import INTRODUCED, Explained
from repro_matrix.verdict.derive import CaseResult, Verdict

_EXCERPT_LINES = 6
_REPRO_PLACEHOLDER = "path/to/repro.py"


# ---- the table ------------------------------------------------------------------------------


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
    return (f"Not shown: {pythons_words(folded)}, unavailable for every release "
            "(see Coverage).")


# ---- the verdict in words -------------------------------------------------------------------


# ---- coverage: what was decided, and what was not and why ------------------------------------


def summary_section(verdict: Verdict, meta: CaseMeta | None = None,
                    records: Sequence[CellRecord] = ()) -> str:
    """What a reader needs first: the verdict, its coverage and the claim check."""
    lines = [f"**Verdict.** {headline(verdict)}", ""]
    if meta is not None and records:
        lines += [f"**Coverage.** {coverage_sentence(meta, records)}", ""]
    lines.append(f"**Claim check.** {claim_sentence(verdict)}")
    return "\n".join(lines)


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



# ---- the documents --------------------------------------------------------------------------


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


def facts_line(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """What was planned and when it ran."""
    versions = len({r.cell.version for r in records})
    pythons = len({r.cell.python for r in records})
    if meta.bisect:  # a bisection runs a few cells per Python, not a full matrix
        planned = len(meta.versions) or versions
        return (f"Package `{meta.package}`, bisect over {plural(planned, 'release')} "
                f"× {plural(pythons, 'Python')}: {plural(len(records), 'cell')} run; "
                f"{run_words(meta, records)}.")
    return (f"Package `{meta.package}`, {plural(versions, 'release')} × "
            f"{plural(pythons, 'Python')} = {plural(len(records), 'cell')}; "
            f"{run_words(meta, records)}.")


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
    section = ranges_section(case_id, meta, verdict)
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


