"""Render results/report.html: one self-contained page, a clickable heat map per case."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from repro_matrix.model import CaseMeta, CellRecord, Status
from repro_matrix.report import grid, vocabulary
from repro_matrix.report.cells import (
    boundary_cells,
    cause_lines,
    facts_line,
    folded_note,
    folded_pythons,
    rerun_command,
)
from repro_matrix.verdict import causes
from repro_matrix.verdict.boundary import INTRODUCED, Explained
from repro_matrix.verdict.derive import CaseResult, Verdict
from repro_matrix.verdict.grid import Grid

DATA_ID = "repro-matrix-data"
# Nothing on the page may load anything: styles and script are inline, images data: only.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:")

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 0 16px 48px; color: #1b1b1b; }
h1 { margin: 20px 0 4px; } h2 { margin-top: 32px; border-top: 1px solid #ddd; padding-top: 16px; }
.summary { margin: 6px 0; } .facts { color: #555; }
.claim-true strong { color: #1a7f37; } .claim-false strong { color: #c62828; }
.claim-none strong { color: #8a6d00; }
.layout { display: flex; gap: 20px; align-items: flex-start; flex-wrap: wrap; }
table.matrix { border-collapse: separate; border-spacing: 2px; }
table.matrix th { font-weight: normal; padding: 0 6px; white-space: nowrap; }
table.matrix thead th { position: sticky; top: 0; background: #fff; }
table.matrix th.version { text-align: right; font-variant-numeric: tabular-nums; }
table.matrix td.date { color: #777; font-size: 12px; padding: 0 6px; }
td.cell { width: 42px; height: 18px; text-align: center; font-size: 11px; cursor: pointer;
          border-radius: 2px; }
td.cell:hover, td.cell:focus { outline: 2px solid #000; outline-offset: -1px; }
td.cell.boundary { box-shadow: inset 0 0 0 2px #000; }
td.cell.selected { outline: 3px solid #1565c0; outline-offset: -1px; }
td.empty { border: 1px dashed #ccc; }
.panel { flex: 1 1 380px; min-width: 320px; max-width: 640px; position: sticky; top: 8px;
         max-height: calc(100vh - 16px); overflow: auto; box-sizing: border-box;
         border: 1px solid #ccc; border-radius: 6px; padding: 10px 14px; background: #fafafa; }
.panel h3 { margin: 0 0 6px; } .panel dl { margin: 0; }
.panel dt { font-weight: bold; margin-top: 6px; } .panel dd { margin: 0; }
.panel pre { background: #fff; border: 1px solid #e0e0e0; padding: 6px; max-height: 260px;
             overflow: auto; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.hint { color: #666; }
.panel p.error { font-family: monospace; font-size: 12px; color: #8b0000; background: #fff;
                 border-left: 3px solid #c62828; padding: 4px 6px; margin: 4px 0 8px; }
pre.diff { background: #fff; border: 1px solid #e0e0e0; padding: 6px; overflow: auto;
           font-size: 12px; } pre.diff .add { color: #1a7f37; } pre.diff .del { color: #c62828; }
.folded { color: #555; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.swatch { display: inline-block; width: 16px; height: 14px; text-align: center;
          font-size: 11px; border-radius: 2px; margin-right: 4px; }
"""

# Only pages with a case with an axis carry it (every other page stays as it was).
_GRID_CSS = """table.matrix.grid td.words { color: #333; font-size: 12px; padding: 0 8px;
                                  min-width: 280px; }
table.matrix.grid th { font-size: 12px; } table.matrix.grid th.words { text-align: left; }
table.matrix.grid td.cell.inferred { opacity: 0.4; cursor: default; }
.grids { flex: 1 1 600px; overflow-x: auto; }
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("repro-matrix-data").textContent);
  var LABELS = [["status", "Status"], ["reason", "Reason"], ["cause", "Cause (cells grouped)"],
    ["exit_code", "Exit code"],
    ["duration", "Duration"], ["roles", "Boundary of an affected range"],
    ["image_ref", "Image"], ["image_id", "Image id"], ["base", "Base"],
    ["interpreter", "Interpreter"], ["cutoff", "Era cutoff"]];
  var BLOCKS = [["boundary_diff", "What changed across this boundary"],
    ["attempts", "Attempts"], ["rerun", "Rerun by hand"], ["lock", "Lock"],
    ["build_lock", "Build tools"], ["output", "Output (excerpt)"]];
  function text(tag, value) {
    var node = document.createElement(tag);
    node.textContent = value;
    return node;
  }
  function show(td) {
    var info = data.cells[td.getAttribute("data-cell")];
    if (!info) { return; }
    var section = td.closest("section.case");
    var panel = section.querySelector(".panel");
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    panel.appendChild(text("h3", "py" + info.python + " \u00b7 " + info.version));
    if (info.error) {
      var lead = text("p", info.error);
      lead.className = "error";
      panel.appendChild(lead);
    }
    var dl = document.createElement("dl");
    LABELS.forEach(function (pair) {
      var value = info[pair[0]];
      if (Array.isArray(value)) { value = value.join("; "); }
      if (value === null || value === undefined || value === "") { return; }
      dl.appendChild(text("dt", pair[1]));
      dl.appendChild(text("dd", String(value)));
    });
    BLOCKS.forEach(function (pair) {
      var value = info[pair[0]];
      if (Array.isArray(value)) { value = value.join("\n"); }
      if (!value) { return; }
      dl.appendChild(text("dt", pair[1]));
      var dd = document.createElement("dd");
      dd.appendChild(text("pre", value));
      dl.appendChild(dd);
    });
    panel.appendChild(dl);
    panel.setAttribute("data-open-cell", info.id);
    var previous = document.querySelectorAll("td.cell.selected");
    for (var i = 0; i < previous.length; i++) { previous[i].classList.remove("selected"); }
    td.classList.add("selected");
    try {
      history.replaceState(null, "", "#cell=" + encodeURIComponent(info.id));
    } catch (ignored) { /* some file: URLs refuse; the panel is what matters */ }
  }
  document.addEventListener("click", function (event) {
    var td = event.target.closest ? event.target.closest("td[data-cell]") : null;
    if (td) { show(td); }
  });
  document.addEventListener("keydown", function (event) {
    var td = event.target;
    if ((event.key === "Enter" || event.key === " ") && td.matches &&
        td.matches("td[data-cell]")) {
      event.preventDefault();
      show(td);
    }
  });
  function fromHash() {
    var match = /^#cell=(.+)$/.exec(window.location.hash);
    if (!match) { return; }
    var id = decodeURIComponent(match[1]);
    var cells = document.querySelectorAll("td[data-cell]");
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].getAttribute("data-cell") === id) {
        cells[i].click();
        cells[i].scrollIntoView({block: "nearest"});
        return;
      }
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
}());
"""


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' survives literally."""
    return (json.dumps(data, ensure_ascii=False, sort_keys=True)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _status_css() -> str:
    return "\n".join(f".s-{s.value} {{ background: {fill}; color: {ink}; }}"
                     for s, (fill, ink) in vocabulary.COLOURS.items())


def cell_data(record: CellRecord, meta: CaseMeta, roles: Sequence[str],
              diff: str = "") -> dict[str, Any]:
    """Everything the details panel shows about one cell, its error line first."""
    duration = f"{record.duration_s:.2f} s" if record.duration_s is not None else None
    base = record.base_source or record.base_provider
    # Lead with what groups the cell (for a release that did not install, the first cutoff's
    # error, as in "Failure causes"), else the last exception line of its output.
    error = (causes.cause(record) if record.status is Status.CANNOT_INSTALL
             else causes.error_line(record.output_excerpt))
    return {
        "id": record.cell.id, "python": record.cell.python, "version": record.cell.version,
        "status": vocabulary.MEANINGS.get(record.status, vocabulary.look(record.status).words),
        # A passing cell has no error to lead with.
        "error": ("" if record.status.unaffected
                  else vocabulary.plain(error or record.reason)),
        "reason": vocabulary.plain(record.reason),
        "cause": "" if record.status.decisive else vocabulary.plain(causes.cause(record)),
        "exit_code": record.exit_code, "duration": duration,
        "roles": list(roles), "image_ref": record.image_ref, "image_id": record.image_id,
        "base": base, "interpreter": record.interpreter_version, "cutoff": record.cutoff,
        "attempts": [f"{a.cutoff} → {a.result}"
                     + (f" ({causes.attempt_cause(a.detail)})" if a.detail else "")
                     for a in record.attempts],
        "rerun": rerun_command(record, meta), "lock": list(record.lock),
        "build_lock": list(record.build_lock), "output": record.output_excerpt,
        "boundary_diff": diff,
    }


def _tooltip(record: CellRecord) -> str:
    return (f"py{record.cell.python} {record.cell.version}: "
            f"{vocabulary.look(record.status).words}, {record.reason}")


def matrix_table(records: Sequence[CellRecord], release_dates: Mapping[str, str],
                 boundaries: dict[str, tuple[str, ...]]) -> str:
    """The heat map: rows versions (PEP 440 order), columns Pythons, a coloured cell each;
    columns unavailable for every release are folded (named below the table)."""
    folded = set(folded_pythons(records))
    pythons = [p for p in vocabulary.ordered_pythons(records) if p not in folded]
    by_key = {(r.cell.version, r.cell.python): r for r in records}
    head = "".join(f'<th scope="col">py{escape(p)}</th>' for p in pythons)
    rows = []
    for version in vocabulary.ordered_versions(records):
        cells = []
        for python in pythons:
            record = by_key.get((version, python))
            if record is None:
                cells.append(f'<td class="empty" title="py{escape(python)} {escape(version)}: '
                             'no result"></td>')
                continue
            roles = boundaries.get(record.cell.id, ())
            classes = f"cell s-{record.status.value}" + (" boundary" if roles else "")
            tip = _tooltip(record) + (f" ({', '.join(roles)})" if roles else "")
            cells.append(f'<td class="{classes}" data-cell="{escape(record.cell.id)}" '
                         f'title="{escape(tip)}" tabindex="0" role="button">'
                         f"{vocabulary.CODES[record.status]}</td>")
        rows.append(f'<tr><th scope="row" class="version">{escape(version)}</th>'
                    f'<td class="date">{escape(release_dates.get(version, ""))}</td>'
                    + "".join(cells) + "</tr>")
    return ('<table class="matrix"><thead><tr><th scope="col">version</th>'
            f'<th scope="col">released</th>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")


def _legend(records: Sequence[CellRecord], boundary_note: bool = True) -> str:
    items = []
    for status in (Status if boundary_note else grid.legend_order(records)):
        count = sum(1 for r in records if r.status is status)
        if not count:
            continue
        items.append(f'<li><span class="swatch s-{status.value}">{vocabulary.CODES[status]}</span>'
                     f"{escape(vocabulary.MEANINGS[status])} "
                     f"({vocabulary.plural(count, 'cell')})</li>")
    if boundary_note:
        items.append('<li><span class="swatch" style="box-shadow: inset 0 0 0 2px #000">'
                     "</span>outlined: a boundary cell (introduced, last affected or fixed, "
                     "per Python)</li>")
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _list(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    return (f"<h3>{escape(title)}</h3><ul>"
            + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>")


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        kind = ("add" if line.startswith("+") and not line.startswith("+++") else
                "del" if line.startswith("-") and not line.startswith("---") else "")
        lines.append(f'<span class="{kind}">{escape(line)}</span>' if kind else escape(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>"


def explained_html(explained: Sequence[Explained]) -> str:
    """Each boundary: the stack functions' diff, related changelog entries, links."""
    if not explained:
        return ""
    out = ["<h3>Why the boundary is there</h3>"]
    for item in explained:
        what = "introduced" if item.kind == INTRODUCED else "fixed"
        out.append(f'<div class="boundary-diff" data-before="{escape(item.before)}" '
                   f'data-after="{escape(item.after)}"><h4>{escape(item.before)} → '
                   f"{escape(item.after)} ({what}; the stack of {escape(item.cell)})</h4>")
        if item.missing:
            out.append(f"<p>Not computed: {escape(item.missing)}.</p></div>")
            continue
        for function in item.functions:
            out.append(f"<p><code>{escape(function.function)}</code> in "
                       f"<code>{escape(function.path)}</code>"
                       + (":</p>" + _diff_html(function.diff) if function.diff
                          else ": unchanged.</p>"))
        if item.changelog_file:
            out.append(f"<p>Changelog ({escape(item.changelog_file)}): "
                       f"{vocabulary.entries_touch(len(item.related_entries))} the changed "
                       "code.</p>")
            out.append("<ul>" + "".join(f"<li>{escape(e)}</li>" for e in item.related_entries)
                       + "</ul>")
            for version, text in item.changelog:
                out.append(f"<details><summary>Changelog section {escape(version)}</summary>"
                           f"<pre>{escape(text)}</pre></details>")
        if item.links:
            out.append("<p>" + " · ".join(f'<a href="{escape(url)}">{escape(label)}</a>'
                                          for label, url in item.links) + "</p>")
        out.append("</div>")
    return "\n".join(out)


def _diffs_by_cell(records: Sequence[CellRecord], boundaries: dict[str, tuple[str, ...]],
                   explained: Sequence[Explained]) -> dict[str, str]:
    """A boundary cell's panel shows the diff of every explained boundary it stands at."""
    found: dict[str, str] = {}
    for record in records:
        if record.cell.id not in boundaries:
            continue
        texts = [f"{e.before} → {e.after}:\n" + "".join(f.diff for f in e.functions if f.diff)
                 for e in explained if record.cell.version in (e.before, e.after)
                 and any(f.diff for f in e.functions)]
        if texts:
            found[record.cell.id] = "\n".join(texts)
    return found


def render_case(case_id: str, stored_meta: Mapping[str, Any], records: Sequence[CellRecord],
                verdict: Verdict, explained: Sequence[Explained] = ()) \
        -> tuple[str, dict[str, Any]]:
    """A case's <section> and the per-cell data its panel reads."""
    meta = CaseMeta.from_json(stored_meta)
    if verdict.grid is not None:
        return render_grid_case(case_id, meta, records, verdict.grid)
    boundaries = {b.record.cell.id: b.roles for b in boundary_cells(records, verdict)}
    title = meta.description or case_id
    claim_class = f"claim-{str(verdict.claim.holds).lower()}"
    evidence = [f"Deciding cells: {vocabulary.plain('; '.join(verdict.claim.evidence))}."] \
        if verdict.claim.evidence else []
    differs = ([f"Releases whose outcome differs by Python: "
                f"{', '.join(verdict.differs_by_python)}."] if verdict.differs_by_python else [])
    folded = folded_note(records)
    html = "\n".join([
        f'<section class="case" id="case-{escape(case_id)}" data-case="{escape(case_id)}">',
        f"<h2>{escape(case_id)}: {escape(str(title))}</h2>",
        '<p class="summary verdict"><strong>Verdict.</strong> '
        f"{escape(vocabulary.headline(verdict, records).replace('`', ''))}</p>",
        '<p class="summary coverage"><strong>Coverage.</strong> '
        f"{escape(vocabulary.coverage_sentence(meta, records))}</p>",
        f'<p class="summary claim {claim_class}"><strong>Claim check.</strong> '
        f"{escape(vocabulary.claim_sentence(verdict, vocabulary.PLAIN_CLAIM_WORDS))}</p>",
        *(f'<p class="facts">{escape(line)}</p>'
          for line in [facts_line(meta, records).replace("`", ""), *evidence, *differs]),
        '<div class="layout">',
        matrix_table(records, meta.release_dates, boundaries),
        '<aside class="panel" aria-live="polite"><p class="hint">Rows are releases in PEP 440 '
        "order, columns Pythons. Click a cell (or focus it and press Enter) to see its "
        "evidence. Hover for a summary.</p></aside>",
        "</div>",
        f'<p class="folded">{escape(folded)}</p>' if folded else "",
        _legend(records),
        _list("Failure causes", cause_lines(records)),
        explained_html(explained),
        _list("Claim, bound by bound", [b.explanation for b in verdict.claim.bounds]),
        _list("Per Python", vocabulary.per_python_sentences(verdict)),
        _list("Branches", vocabulary.branch_sentences(verdict)),
        "</section>",
    ])
    diffs = _diffs_by_cell(records, boundaries, explained)
    data = {r.cell.id: cell_data(r, meta, boundaries.get(r.cell.id, ()), diffs.get(r.cell.id, ""))
            for r in records}
    return html, data


# ---- a case with an axis --------------------------------------------------------------------


def grid_table(layout: grid.GridLayout, meta: CaseMeta, axis: str) \
        -> tuple[str, dict[str, Any]]:
    """One Python's collapsed grid: a coloured block per row range and column range whose
    panel shows the cell standing for it; each row's boundary in words at its end."""
    head = "".join(f'<th scope="col">{escape(label)}</th>' for label in layout.column_labels)
    rows, data = [], {}
    for label, blocks, words in zip(layout.row_labels, layout.blocks, layout.words):
        cells = []
        for column, block in zip(layout.column_labels, blocks):
            where = f"py{layout.python} {meta.package} {label} × {axis} {column}"
            record = block.representative
            if block.status is not None and block.inferred:
                cells.append(f'<td class="cell s-{block.status.value} inferred" '
                             f'title="{escape(where)}: {vocabulary.look(block.status).words}, '
                             'not run (the cells on both sides agree)">'
                             f"{vocabulary.CODES[block.status].lower()}</td>")
                continue
            if block.status is None or record is None:
                cells.append(f'<td class="empty" title="{escape(where)}: not run"></td>')
                continue
            stands = (f"; {vocabulary.plural(block.cells, 'cell')}, shown: "
                      f"{meta.package} {record.cell.version} + {axis} "
                      f"{record.cell.axis_version}" if block.cells > 1 else "")
            tip = (f"{where}: {vocabulary.look(block.status).words}{stands}; "
                   f"{record.reason}")
            cells.append(f'<td class="cell s-{block.status.value}" '
                         f'data-cell="{escape(record.cell.id)}" title="{escape(tip)}" '
                         f'tabindex="0" role="button">{vocabulary.CODES[block.status]}</td>')
            info = cell_data(record, meta, ())
            info["version"] = (f"{meta.package} {record.cell.version} · {axis} "
                               f"{record.cell.axis_version}")
            if block.cells > 1:
                info["status"] += (f" (stands for {vocabulary.plural(block.cells, 'cell')}: "
                                   f"{meta.package} {label} × {axis} {column}; every cell is "
                                   "in cells.json)")
            data[record.cell.id] = info
        rows.append(f'<tr><th scope="row" class="version">{escape(label)}</th>'
                    + "".join(cells) + f'<td class="words">{escape(words)}</td></tr>')
    table = (f'<h3>Python {escape(layout.python)}</h3><table class="matrix grid"><thead><tr>'
             f'<th scope="col">{escape(meta.package)} ↓ {escape(axis)} →</th>{head}'
             '<th scope="col" class="words">boundary</th></tr></thead>\n<tbody>\n' + "\n".join(rows)
             + "\n</tbody></table>")
    return table, data


def render_grid_case(case_id: str, meta: CaseMeta, records: Sequence[CellRecord],
                     found: Grid) -> tuple[str, dict[str, Any]]:
    """The <section> of a case with an axis: the verdict per Python, a grid per Python and
    the cells that stand for its blocks."""
    tables, data = [], {}
    for layout in grid.layouts(records, found):
        table, cells = grid_table(layout, meta, found.axis_package)
        tables.append(table)
        data.update(cells)
    missing = grid.unavailable_pythons(records)
    causes_lines = [f"{vocabulary.plural(len(g.records), 'cell')} "
                    f"{vocabulary.look(g.status).words} ({grid.where(g.records, found)}): "
                    f"{vocabulary.plain(g.cause)}"
                    for g in grid.cause_groups(records, [s for s in Status
                                                         if not s.unaffected], meta.package)]
    html = "\n".join([
        f'<section class="case" id="case-{escape(case_id)}" data-case="{escape(case_id)}">',
        f"<h2>{escape(case_id)}: {escape(meta.description or case_id)}</h2>",
        f'<p class="summary verdict"><strong>Verdict.</strong> {escape(found.headline())}</p>',
        '<p class="summary coverage"><strong>Coverage.</strong> '
        f"{escape(grid.coverage(meta, records))}</p>",
        f'<p class="facts">{escape(grid.facts(meta, records).replace("`", ""))}</p>',
        f'<p class="hint">Rows are {escape(meta.package)} releases, columns '
        f"{escape(found.axis_package)} releases (PEP 440 order); neighbouring rows and columns "
        "whose cells are identical are collapsed into ranges. Click a block to see the cell "
        "that stands for it.</p>",
        '<div class="layout">', '<div class="grids">', *tables, "</div>",
        '<aside class="panel" aria-live="polite"><p class="hint">Click a block (or focus it '
        "and press Enter) to see its evidence. Hover for a summary.</p></aside>",
        "</div>",
        (f'<p class="folded">Not shown: Python {escape(", ".join(missing))}, unavailable for '
         "every cell (see Coverage).</p>" if missing else ""),
        _legend(records, boundary_note=False),
        _list("Broken, declared incompatible and undecided pairs", causes_lines),
        "</section>",
    ])
    return html, data


def render(cases: Sequence[CaseResult],
           explained: Mapping[str, Sequence[Explained]] | None = None) -> str:
    """The whole page; it fetches nothing."""
    sections, cells = [], {}
    for case in cases:
        html, data = render_case(*case, (explained or {}).get(case[0], ()))
        sections.append(html)
        cells.update(data)
    nav = " · ".join(f'<a href="#case-{escape(c[0])}">{escape(c[0])}</a>' for c in cases)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>repro-matrix report</title>",
        f"<style>{_CSS}\n{_status_css()}\n"
        + (_GRID_CSS if any(case[3].grid is not None for case in cases) else "")
        + "</style>",
        "</head><body>",
        "<header><h1>repro-matrix report</h1>",
        '<p class="hint">Generated from the stored cell results; every verdict is computed '
        "from them.</p>",  # each case says what its rows and columns are (a grid's differ)
        f"<nav>{nav}</nav></header>",
        "<main>", *sections, "</main>",
        f'<script type="application/json" id="{DATA_ID}">{script_json({"cells": cells})}'
        "</script>",
        f"<script>{_JS}</script>",
        "</body></html>",
    ]) + "\n"
