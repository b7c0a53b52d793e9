"""The matrix picture (matrix.svg): one square per cell, coloured and lettered by status."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from repro_matrix.model import CellRecord, Status
from repro_matrix.report.vocabulary import (
    CODES,
    COLOURS,
    legend_statuses,
    look,
    ordered_pythons,
    ordered_versions,
    plural,
)
from repro_matrix.verdict.derive import Scope, Verdict

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
    legend = legend_statuses(records)
    height = legend_top + len(legend) * 18 + 10
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
    for k, status in enumerate(legend):
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
