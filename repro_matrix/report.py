"""Render results/report.md, each case's matrix.svg and the CI step summary from stored results."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from packaging.version import Version
from tabulate import tabulate

from repro_matrix import claim_report, sandbox
from repro_matrix import pythons as py
from repro_matrix.model import CellRecord, Claim, Status
from repro_matrix.verdict import HOLDS_WHERE_CHECKED, Scope, Verdict

SYMBOLS: dict[Status, str] = {
    Status.REPRODUCED: "🔴",
    Status.NOT_REPRODUCED: "🟢",
    Status.OTHER_FAILURE: "🟠",
    Status.CANNOT_TEST: "⚪",
    Status.CANNOT_INSTALL: "📦",
    Status.TIMEOUT: "⏱",
    Status.UNAVAILABLE: "➖",
    Status.NOT_FOR_PYTHON: "⛔",
}
MEANINGS: dict[Status, str] = {
    Status.REPRODUCED: "reproduced: the bug shows (failure signature seen)",
    Status.NOT_REPRODUCED: "not reproduced: the repro passed",
    Status.OTHER_FAILURE: "other failure: the repro failed without the bug's signature",
    Status.CANNOT_TEST: "cannot test: the repro said it could not decide (exit 125; pytest: "
                        "no tests collected)",
    Status.CANNOT_INSTALL: "cannot install: this release does not install or import on this "
                           "Python at any era cutoff tried",
    Status.TIMEOUT: "timeout: no exit within the case's limit",
    Status.UNAVAILABLE: "unavailable: no base image for this Python on this machine",
    Status.NOT_FOR_PYTHON: "not for this Python: the release's or the repro's requires-python "
                           "excludes it (nothing built)",
}
# The pictures (matrix.svg, report.html): a fill colour, the text colour on it, and a one-letter
# code printed in the square so the picture does not depend on telling colours apart.
COLOURS: dict[Status, tuple[str, str]] = {
    Status.REPRODUCED: ("#d7191c", "#ffffff"),
    Status.NOT_REPRODUCED: ("#1a9641", "#ffffff"),
    Status.OTHER_FAILURE: ("#fdae61", "#000000"),
    Status.CANNOT_TEST: ("#bababa", "#000000"),
    Status.CANNOT_INSTALL: ("#8073ac", "#ffffff"),
    Status.TIMEOUT: ("#ffd92f", "#000000"),
    Status.UNAVAILABLE: ("#f0f0f0", "#555555"),
    Status.NOT_FOR_PYTHON: ("#4d4d4d", "#ffffff"),
}
CODES: dict[Status, str] = {
    Status.REPRODUCED: "R",
    Status.NOT_REPRODUCED: "N",
    Status.OTHER_FAILURE: "F",
    Status.CANNOT_TEST: "?",
    Status.CANNOT_INSTALL: "I",
    Status.TIMEOUT: "T",
    Status.UNAVAILABLE: "U",
    Status.NOT_FOR_PYTHON: "X",
}
CLAIM_WORDS: dict[bool | None, str] = {True: "✅ holds", False: "❌ does not hold",
                                       None: "❔ cannot be decided"}
PLAIN_CLAIM_WORDS: dict[bool | None, str] = {True: "holds", False: "does not hold",
                                             None: "cannot be decided"}
_EXCERPT_LINES = 8
# Where a cell's image runs the repro (see pipeline.MatrixRun._cell).
_INTERPRETER = "/opt/venv/bin/python"
_REPRO_PLACEHOLDER = "path/to/repro.py"


# ---- the table ------------------------------------------------------------------------------


def ordered_versions(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.version for r in records}, key=Version)


def ordered_pythons(records: Sequence[CellRecord]) -> list[str]:
    return sorted({r.cell.python for r in records}, key=py.sort_key)


def status_table(records: Sequence[CellRecord], release_dates: dict[str, str]) -> str:
    """Rows are versions (PEP 440 order), columns Pythons, a symbol per cell."""
    pythons = ordered_pythons(records)
    by_key = {(r.cell.version, r.cell.python): r for r in records}
    rows = []
    for version in ordered_versions(records):
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


# ---- the verdict in words -------------------------------------------------------------------


def scope_sentence(scope: Scope) -> str:
    """One sentence: where the bug shows for one Python, or for all of them."""
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


def claim_sentence(verdict: Verdict, words: dict[bool | None, str] | None = None) -> str:
    """The claim, whether it holds (in ``words``, default CLAIM_WORDS), and why."""
    claim = verdict.claim
    said = (words or CLAIM_WORDS)[claim.holds]
    if claim.answer == HOLDS_WHERE_CHECKED:
        said = ("☑️ " if words is None else "") + HOLDS_WHERE_CHECKED
    return f"{claim_words(claim.claim)} {said}. {claim.explanation}"


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
    return f"The claim \"{' and '.join(stated) or 'none'}\"{source}"


def summary_section(verdict: Verdict) -> str:
    """The two sentences a reader needs first: the verdict and the claim check."""
    return (f"**Verdict.** {scope_sentence(verdict.overall)}\n\n"
            f"**Claim check.** {claim_sentence(verdict)}")


def notes_section(verdict: Verdict) -> str:
    """Deciding cells, the verdict per Python, branches without the fix, Python differences."""
    lines: list[str] = []
    if verdict.claim.evidence:
        lines += ["Deciding cells: " + "; ".join(f"`{e}`" for e in verdict.claim.evidence)
                  + ".", ""]
    lines.append("Per Python:")
    lines += [f"- {scope_sentence(scope)}" for scope in verdict.per_python]
    notes = [b.sentence() for b in verdict.overall.branches]
    if notes:
        lines += ["", "Branches:"] + [f"- {note}" for note in notes]
    if verdict.differs_by_python:
        lines += ["", "Releases whose outcome differs by Python: "
                  + ", ".join(verdict.differs_by_python) + "."]
    return "\n".join(lines)


def verdict_section(verdict: Verdict) -> str:
    return summary_section(verdict) + "\n\n" + notes_section(verdict)


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


def repro_mount(meta: dict[str, Any]) -> tuple[str, str, bool]:
    """(host path of the repro, file name inside the container, known) from cells.json.

    Runs record the absolute path ("repro_path"); older results only the path relative to the
    matrix file, which then needs running from its folder (``$PWD``).
    """
    repro = meta.get("repro_path") or meta.get("repro")
    if not isinstance(repro, str) or not repro.strip():
        return f"$PWD/{_REPRO_PLACEHOLDER}", PurePosixPath(_REPRO_PLACEHOLDER).name, False
    path = PurePosixPath(repro.strip())
    source = _double_quoted(str(path))
    return (source if path.is_absolute() else f"$PWD/{source}"), path.name, True


def _double_quoted(text: str) -> str:
    """Escape text for use inside a shell double-quoted string."""
    return "".join(f"\\{ch}" if ch in '\\"$`' else ch for ch in text)


def rerun_command(record: CellRecord, meta: dict[str, Any]) -> str | None:
    """The docker command that reruns a cell's repro in its image, in the sandbox the harness
    used; None when no image was built. A bind mount (``--mount``) fails loudly when the repro
    is not there, where ``-v`` would create an empty directory in its place."""
    if not record.image_ref:
        return None
    source, name, _ = repro_mount(meta)
    target = f"/repro/{name}"
    env = "".join(f" -e {shlex.quote(f'{k}={v}')}" for k, v in (meta.get("env") or {}).items())
    limits = meta.get("limits")
    limits = limits if isinstance(limits, dict) else {}
    limits = {k: v for k, v in limits.items() if k in ("memory", "pids", "tmpfs")}
    command = meta.get("command")
    if isinstance(command, list) and command:  # the case's own command, run in /repro
        target = "/repro" if meta.get("folder") else target
        words = [_INTERPRETER if i == 0 and w in ("python", "python3") else str(w)
                 for i, w in enumerate(command)]
        flags = sandbox.run_flags(**limits, workdir="/repro")
        return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
                f"{shlex.quote(record.image_ref)} {shlex.join(words)}")
    flags = sandbox.run_flags(**limits)
    return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
            f"{shlex.quote(record.image_ref)} {_INTERPRETER} {shlex.quote(target)}")


def _mount(target: str, source: str) -> str:
    """A read-only bind mount for inside double quotes (``source`` is already escaped)."""
    return _double_quoted(f"type=bind,target={target},readonly,source=") + source


def _rerun_lines(record: CellRecord, meta: dict[str, Any]) -> list[str]:
    command = rerun_command(record, meta)
    if command is None:
        return ["- rerun: no image was built for this cell"]
    return ["- rerun by hand:", "", "```sh", command, "```"]


def _rerun_note(meta: dict[str, Any]) -> str:
    source, _, known = repro_mount(meta)
    if known and not source.startswith("$PWD/"):
        return ("Rerun commands mount the case's repro script read-only and apply the "
                "sandbox the run used.")
    if known:
        return ("Rerun commands mount the case's repro script read-only and apply the "
                "sandbox the run used; run them from the folder of the matrix file.")
    return (f"cells.json does not record the case's repro script: replace `{_REPRO_PLACEHOLDER}` "
            "in the rerun commands by its path.")


def boundaries_section(records: Sequence[CellRecord], verdict: Verdict,
                       meta: dict[str, Any]) -> str:
    found = boundary_cells(records, verdict)
    if not found:
        return "No affected range, so no boundary cells."
    lines = ["The cells at the edges of each Python's affected ranges, with the exact "
             "environment they ran in. " + _rerun_note(meta), ""]
    for boundary in found:
        record = boundary.record
        cell = record.cell
        lines += [f"<details><summary>{SYMBOLS[record.status]} py{cell.python} {cell.version}: "
                  f"{', '.join(boundary.roles)} ({record.status.value})</summary>", ""]
        lines += [f"- image `{record.image_ref or '-'}`, era cutoff {record.cutoff or '-'}, "
                  f"interpreter {record.interpreter_version or '?'}"]
        if record.lock:
            lines += ["- lock:", "", "```", *record.lock, "```"]
        if record.build_lock:
            lines += ["- build tools:", "", "```", *record.build_lock, "```"]
        lines += [*_rerun_lines(record, meta), "</details>", ""]
    return "\n".join(lines).rstrip()


# ---- evidence -------------------------------------------------------------------------------


def evidence_section(records: Sequence[CellRecord], meta: dict[str, Any] | None = None) -> str:
    meta = meta or {}
    lines: list[str] = []
    unavailable: dict[str, str] = {}
    not_for: list[str] = []
    for record in sorted(records, key=lambda r: (py.sort_key(r.cell.python),
                                                 Version(r.cell.version))):
        if record.status is Status.NOT_REPRODUCED:
            continue
        if record.status is Status.UNAVAILABLE:
            unavailable.setdefault(record.cell.python, record.reason)
            continue
        if record.status is Status.NOT_FOR_PYTHON:  # nothing ran: the reason is the evidence
            not_for.append(f"- py{record.cell.python} {record.cell.version}: {record.reason}")
            continue
        lines += _cell_evidence(record, meta)
    if unavailable:
        lines.append("Unavailable Pythons (every cell of the column):")
        lines += [f"- Python {p}: {why}" for p, why in unavailable.items()]
    if not_for:
        lines += [f"{SYMBOLS[Status.NOT_FOR_PYTHON]} Not for this Python (nothing built):",
                  *not_for]
    return "\n".join(lines)


def _cell_evidence(record: CellRecord, meta: dict[str, Any]) -> list[str]:
    cell = record.cell
    head = (f"<details><summary>{SYMBOLS[record.status]} py{cell.python} {cell.version}: "
            f"{record.status.value}, {record.reason}</summary>")
    exit_code = "none" if record.exit_code is None else str(record.exit_code)
    facts = [f"- exit code {exit_code}",
             f"- image `{record.image_ref or '-'}` ({record.image_id[:19] or 'not built'}), "
             f"base: {record.base_source or '-'}, interpreter {record.interpreter_version or '?'}",
             f"- era cutoff {record.cutoff or '-'}; attempts: "
             + ("; ".join(f"{a.cutoff} → {a.result}" for a in record.attempts) or "-")]
    if meta.get("requirements"):
        facts.append("- repro requirements (in the lock): "
                     + ", ".join(f"`{r}`" for r in meta["requirements"]))
    if record.lock:
        facts.append("- lock: " + ", ".join(f"`{pin}`" for pin in record.lock))
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
            tip = f"py{python} {version}: {record.status.value}, {record.reason}"
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
        out.append(f'<text x="32" y="{y + 11}" {_FONT}>{escape(status.value.replace("_", " "))}'
                   f" ({counts[status]} cells)</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- the documents --------------------------------------------------------------------------


def svg_link(case_id: str) -> str:
    """Where report.md finds a case's matrix.svg, relative to the results folder."""
    return f"{quote(case_id)}/matrix.svg"


def run_words(meta: dict[str, Any]) -> str:
    """When the run finished, or that it has not (cells.json is rewritten as cells finish)."""
    if meta.get("finished_at"):
        return (f"run finished {meta['finished_at']} in {meta.get('wall_time_s', 0):.0f} s")
    return f"run not finished (started {meta.get('started_at') or '?'}): partial results"


def _facts_line(meta: dict[str, Any], records: Sequence[CellRecord]) -> str:
    return (f"Package `{meta.get('package', '')}`, {len({r.cell.version for r in records})} "
            f"releases × {len({r.cell.python for r in records})} Pythons = {len(records)} cells; "
            f"{run_words(meta)}.")


def base_images_section(meta: dict[str, Any]) -> list[str]:
    """Where each column's interpreter came from, and which providers were passed over."""
    found = meta.get("bases") or {}
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


def render_case(case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
                verdict: Verdict) -> str:
    title = meta.get("description") or case_id
    lines = [f"## {case_id}: {title}", "", summary_section(verdict), "",
             _facts_line(meta, records), "",
             *_claim_ranges_lines(case_id, meta, verdict),
             "### Compatibility table", "",
             f"![{case_id}: one square per cell, coloured by status]({svg_link(case_id)})", "",
             status_table(records, meta.get("release_dates", {})), "", legend(records), "",
             *base_images_section(meta),
             "### Notes", "", notes_section(verdict), "",
             "### Boundary cells", "", boundaries_section(records, verdict, meta), "",
             "### Evidence", "", evidence_section(records, meta)]
    return "\n".join(lines).rstrip() + "\n"


def _claim_ranges_lines(case_id: str, meta: dict[str, Any], verdict: Verdict) -> list[str]:
    section = claim_report.ranges_section(case_id, meta, verdict)
    return ["### Claim, range by range", "", section, ""] if section else []


def render(cases: Sequence[tuple[str, dict[str, Any], Sequence[CellRecord], Verdict]]) -> str:
    parts = ["# repro-matrix report", "",
             "Generated from the stored cell results; every verdict below is computed from "
             "them. Interactive version: [report.html](report.html); machine-readable: each "
             "case's `cells.json`, `verdict.json` and `osv.json`.", ""]
    parts += [render_case(*case) for case in cases]
    return "\n".join(parts)


def step_summary(cases: Sequence[tuple[str, dict[str, Any], Sequence[CellRecord], Verdict]]) \
        -> str:
    """What a CI job summary shows: per case the two summary sentences and the table."""
    parts = ["## repro-matrix", ""]
    for case_id, meta, records, verdict in cases:
        parts += [f"### {case_id}: {meta.get('description') or case_id}", "",
                  summary_section(verdict), "",
                  status_table(records, meta.get("release_dates", {})), "",
                  " · ".join(f"{SYMBOLS[s]} {s.value.replace('_', ' ')}" for s in Status), ""]
    return "\n".join(parts)


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
