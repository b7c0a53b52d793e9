"""The markdown: results/report.md, the CI step summary and the terminal summary, as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from tabulate import tabulate

from repro_matrix import pythons as py
from repro_matrix.model import CaseMeta, CellRecord, Status
from repro_matrix.report.cells import (
    REPRO_PLACEHOLDER,
    Boundary,
    boundary_cells,
    cause_lines,
    facts_line,
    folded_note,
    folded_pythons,
    repro_mount,
    rerun_command,
)
from repro_matrix.report.claim import ranges_section
from repro_matrix.report.vocabulary import (
    MEANINGS,
    PLAIN_CLAIM_WORDS,
    branch_sentences,
    claim_sentence,
    coverage_sentence,
    entries_touch,
    headline,
    legend_statuses,
    look,
    mark,
    ordered_pythons,
    ordered_versions,
    plain,
    plural,
)
from repro_matrix.verdict import causes
from repro_matrix.verdict.boundary import INTRODUCED, Explained
from repro_matrix.verdict.derive import CaseResult, Verdict

_EXCERPT_LINES = 6


# ---- the table ------------------------------------------------------------------------------


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


# ---- coverage: what was decided, and what was not and why ------------------------------------


def summary_section(verdict: Verdict, meta: CaseMeta | None = None,
                    records: Sequence[CellRecord] = ()) -> str:
    """What a reader needs first: the verdict, its coverage and the claim check."""
    lines = [f"**Verdict.** {headline(verdict, records)}", ""]
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
            f"{entries_touch(len(item.related_entries))} the changed code")
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


# ---- how to rerun a cell --------------------------------------------------------------------


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
    return (f"cells.json does not record the case's repro script: replace `{REPRO_PLACEHOLDER}` "
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
    for group in causes.groups(records, [s for s in Status if not s.unaffected]):
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
                  " · ".join(f"{mark(s)} {look(s).words}" for s in legend_statuses(records)),
                  ""]
    return "\n".join(parts)


def terminal_lines(cases: Sequence[CaseResult]) -> list[str]:
    """The end of a run on the terminal: per case the verdict, the claim check and the causes
    of cells that decided nothing."""
    lines = []
    for case_id, stored_meta, records, verdict in cases:
        lines += [f"{case_id}: {headline(verdict, records)}",
                  f"  coverage: {coverage_sentence(CaseMeta.from_json(stored_meta), records)}",
                  f"  claim check: {claim_sentence(verdict, PLAIN_CLAIM_WORDS)}"]
        lines += [f"  {line}" for line in cause_lines(records)]
    return lines


def svg_link(case_id: str) -> str:
    """Where report.md finds a case's matrix.svg, relative to the results folder."""
    return f"{quote(case_id)}/matrix.svg"
