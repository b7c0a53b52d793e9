"""report.grid: a case with an axis as a collapsed grid per Python (golden markdown and SVG from
synthetic cells), its sections, verdict.json against its schema, and the HTML blocks' evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
import tabulate

from repro_matrix import store
from repro_matrix.model import CaseMeta, Cell, CellRecord, Status
from repro_matrix.report import grid, markdown, svg
from repro_matrix.report.render import case_verdict, render_results
from repro_matrix.verdict.derive import CaseResult

Golden = Callable[[str, str], None]
W, B, D = Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE
CI, TO, UN = Status.CANNOT_INSTALL, Status.TIMEOUT, Status.UNAVAILABLE
SCHEMAS = Path(__file__).resolve().parents[3] / "repro_matrix" / "schemas"

# A made-up package "app" against a made-up dependency "lib": rows are app releases, one letter
# per lib release below (W works, B broken, D declared incompatible, I cannot install).
COLUMNS = ("0.9", "1.0", "1.1", "2.0", "2.1", "3.0")
ROWS = {
    "1.0": "WWBBBB",
    "1.1": "WWBBBB",
    "1.2": "WWWWBB",
    "2.0": "DDWWBB",
    "2.1": "DDDWWW",
    "2.2": "DDDWWI",
}
LETTERS = {"W": W, "B": B, "D": D, "I": CI}
OUTPUT = {B: "Traceback (most recent call last):\nImportError: cannot import name 'old_api' "
             "from 'lib'\n",
          CI: "error: Failed to build `lib==3.0`\n"}
REASON = {W: "exit 0", B: "the import failed with lib==X installed", CI: "did not install",
          UN: "no base image"}


@pytest.fixture(autouse=True)
def _plain_widths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabulate, "WIDE_CHARS_MODE", False)  # as in test_report


# What each app release declares: the resolver's refusal names it, and the pins it refuses.
DECLARED = {"2.0": ">=1.1", "2.1": ">=2.0", "2.2": ">=2.0"}


def cell(python: str, version: str, axis_version: str, status: Status) -> CellRecord:
    reason = REASON.get(status, "")
    if status is D:
        reason = (f"the declared requirements exclude the pair: Because app=={version} depends "
                  f"on lib{DECLARED[version]} and you require lib=={axis_version}, no solution")
    return CellRecord(Cell("pair", python, version, "lib", axis_version), status,
                      reason, output_excerpt=OUTPUT.get(status, ""))


def records(pythons: tuple[str, ...] = ("3.11", "3.12")) -> list[CellRecord]:
    return [cell(python, version, axis_version, LETTERS[letter])
            for python in pythons for version, letters in ROWS.items()
            for axis_version, letter in zip(COLUMNS, letters)]


def meta(**changes: Any) -> dict[str, Any]:
    base = CaseMeta(case="pair", package="app", description="does app work with lib",
                    kind="compatibility", axis_package="lib", axis_versions=COLUMNS,
                    versions=tuple(ROWS), pythons=("3.11", "3.12"),
                    finished_at="2024-01-02T03:04:05Z", wall_time_s=12.0)
    data = base.to_json()
    data.update(changes)
    return data


# ---- the collapsed grid -----------------------------------------------------------------------


def test_identical_neighbouring_rows_and_columns_collapse_into_ranges() -> None:
    found = case_verdict(meta(), records()).grid
    assert found is not None
    layout = grid.layout(records(), found, "3.11")
    assert layout.row_labels == ["1.0–1.1", "1.2", "2.0", "2.1", "2.2"]
    assert layout.column_labels == ["0.9–1.0", "1.1", "2.0", "2.1", "3.0"]
    first = layout.blocks[0][0]
    assert (first.status, first.cells) == (W, 4)
    # The block's evidence: its newest row, at its lowest column.
    assert first.representative is not None
    assert (first.representative.cell.version,
            first.representative.cell.axis_version) == ("1.1", "0.9")
    uncollapsed = grid.layout(records(), found, "3.11", collapse=False)
    assert len(uncollapsed.rows) == len(ROWS) and len(uncollapsed.columns) == len(COLUMNS)


def test_grid_markdown_matches_golden(golden: Golden) -> None:
    found = case_verdict(meta(), records()).grid
    assert found is not None
    golden("grid_table.md", "\n".join(markdown.grid_tables(CaseMeta.from_json(meta()),
                                                           records(), found)) + "\n")


def test_grid_svg_matches_golden(golden: Golden) -> None:
    found = case_verdict(meta(), records()).grid
    assert found is not None
    picture = svg.grid_svg("pair", records(), found)
    ElementTree.fromstring(picture)  # well-formed
    golden("grid.svg", picture)


def test_a_bisected_grid_reads_cells_not_run_from_both_sides_only_when_they_agree() -> None:
    ran = [r for r in records() if r.cell.axis_version not in ("1.0", "2.0")]
    found = case_verdict(meta(bisect={"3.11": {"cells_run": 24}}), ran).grid
    assert found is not None
    layout = grid.layout(ran, found, "3.11", collapse=False)
    row = dict(zip(COLUMNS, layout.blocks[0]))  # app 1.0: W . B . B B
    assert row["1.0"].status is None  # between works and broken: not known
    assert row["2.0"].status is B and row["2.0"].inferred  # between two broken cells
    assert not row["2.1"].inferred
    text = "\n".join(markdown.grid_tables(CaseMeta.from_json(meta()), ran, found))
    assert f" {markdown.NOT_RUN} " in text and "🔴 b" in text and "lower-case" in text
    assert "not run" in svg.grid_svg("pair", ran, found)


def test_a_bisection_that_settled_every_boundary_collapses_like_the_full_grid() -> None:
    full = case_verdict(meta(), records()).grid
    assert full is not None
    # What a row search runs here: each row's ends and the two sides of each change.
    kept = {"1.0": ("0.9", "1.0", "1.1", "3.0"), "1.1": ("0.9", "1.0", "1.1", "3.0"),
            "1.2": ("0.9", "2.0", "2.1", "3.0"), "2.0": ("0.9", "1.0", "1.1", "2.0", "2.1", "3.0"),
            "2.1": ("0.9", "1.1", "2.0", "3.0"), "2.2": ("0.9", "1.1", "2.0", "2.1", "3.0")}
    ran = [r for r in records() if r.cell.axis_version in kept[r.cell.version]]
    bisected = case_verdict(meta(), ran).grid
    assert bisected is not None
    both = grid.layout(records(), full, "3.11"), grid.layout(ran, bisected, "3.11")
    assert both[0].row_labels == both[1].row_labels
    assert both[0].column_labels == both[1].column_labels
    assert both[0].words == both[1].words
    assert [[b.status for b in line] for line in both[0].blocks] == [
        [b.status for b in line] for line in both[1].blocks]


def test_a_python_without_a_base_image_is_named_not_drawn() -> None:
    cells = records(("3.11",)) + [cell("3.13", v, a, UN) for v in ROWS for a in COLUMNS]
    found = case_verdict(meta(), cells).grid
    assert found is not None
    text = "\n".join(markdown.grid_tables(CaseMeta.from_json(meta()), cells, found))
    assert "#### Python 3.11" in text and "#### Python 3.13" not in text
    assert "Not shown: Python 3.13" in text


def test_the_case_section_names_breaks_declarations_and_evidence_by_pair() -> None:
    found = case_verdict(meta(), records())
    text = markdown.render_case("pair", meta(), records(), found)
    assert "### Broken pairs" in text
    assert ("(py3.11, py3.12: 1.0–1.1 × 1.1–3.0; 1.2–2.0 × 2.1–3.0): broken, "
            "`ImportError: cannot import name 'old_api' from 'lib'`") in text
    assert "### Declared incompatible pairs" in text
    assert "py3.12 app 2.2 + lib 2.1: cannot install" not in text  # 3.0 is the one
    assert "app 2.2 + lib 3.0: cannot install" in text
    assert "### Why the boundary is there" not in text  # no diff of the package along an axis


def test_the_terminal_and_the_step_summary_speak_of_the_grid() -> None:
    case = CaseResult("pair", meta(), records(), case_verdict(meta(), records()))
    lines = markdown.terminal_lines([case])
    assert lines[0].startswith("pair: Every Python agrees. Python 3.11 and 3.12: the first lib")
    assert any("cannot install" in line and "2.2 × 3.0" in line for line in lines)
    assert "#### Python 3.11" in markdown.step_summary([case])


# ---- verdict.json and the files a render writes -----------------------------------------------


def test_verdict_json_of_a_grid_matches_the_schema_and_carries_each_row(tmp_path: Path) -> None:
    verdict = case_verdict(meta(), records())
    path = store.write_verdict(tmp_path, "pair", verdict)
    payload = json.loads(path.read_text())
    jsonschema.validate(payload, json.loads((SCHEMAS / "verdict.schema.json").read_text()))
    rows = payload["axis"]["per_python"]["3.11"]["rows"]
    assert [r["version"] for r in rows] == list(ROWS)
    assert rows[3]["works"] == [{"from": "1.1", "to": "2.0", "spec": ">=1.1,<2.1"}]
    assert rows[3]["first_broken_above"] == "2.1"
    assert rows[3]["declared_incompatible_below"] == "1.1"


def test_verdict_json_without_an_axis_has_no_axis_key(tmp_path: Path) -> None:
    one = [CellRecord(Cell("demo", "3.11", v), s, "") for v, s in
           (("1.0", Status.NOT_REPRODUCED), ("1.1", Status.REPRODUCED))]
    verdict = case_verdict(CaseMeta(case="demo", package="app").to_json(), one)
    assert verdict.grid is None
    assert "axis" not in store.verdict_to_json(verdict)


def test_a_render_writes_the_grid_everywhere_and_no_osv_record(tmp_path: Path) -> None:
    store.write_cells(tmp_path, "pair", records(), meta())
    render_results(tmp_path)
    folder = tmp_path / "pair"
    assert not (folder / "osv.json").exists()
    assert "Python 3.12" in (folder / "matrix.svg").read_text()
    assert "### Compatibility grid" in (tmp_path / "report.md").read_text()
    page = (tmp_path / "report.html").read_text()
    found = re.search(r'id="repro-matrix-data">(.*?)</script>', page, re.S)
    assert found is not None
    data = json.loads(found[1])
    shown = set(re.findall(r'data-cell="([^"]+)"', page))
    assert shown and shown <= set(data["cells"])
    info = data["cells"]["pair/py3.11/1.1/lib==0.9"]
    assert info["version"] == "app 1.1 · lib 0.9"
    assert "stands for 4 cells" in info["status"]
    # Only a case without an axis has Pythons for columns; the page-wide hint says neither.
    assert "columns Pythons" not in page
    assert "columns lib releases" in page


def test_refusals_for_one_declared_requirement_group_together_whatever_the_pins() -> None:
    found = case_verdict(meta(), records()).grid
    assert found is not None
    text = markdown.grid_causes(records(), found, [D], "none")
    assert text.splitlines() == [
        "- ⛔ D 12 cells (py3.11, py3.12: 2.1–2.2 × 0.9–1.1): declared incompatible, `the "
        "declared requirements exclude the pair: Because app==… depends on lib>=2.0 and you "
        "require lib==…, no solution`",
        "- ⛔ D 4 cells (py3.11, py3.12: 2.0 × 0.9–1.0): declared incompatible, `the declared "
        "requirements exclude the pair: Because app==… depends on lib>=1.1 and you require "
        "lib==…, no solution`"]
