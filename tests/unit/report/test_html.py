"""report.html: a self-contained page, escaped text, per-cell data safe in a script tag."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from repro_matrix.model import Attempt, CaseMeta, CellRecord, Claim, Status
from repro_matrix.report import html, vocabulary
from repro_matrix.report.cells import rerun_command
from repro_matrix.verdict.derive import CaseResult, Observation, Verdict, derive
from tests import factories

R, N, CI = Status.REPRODUCED, Status.NOT_REPRODUCED, Status.CANNOT_INSTALL
GRID: dict[str, tuple[Status, Status]] = {  # version -> (py3.9, py3.11)
    "1.10": (N, N), "1.2": (R, CI), "1.9": (R, R), "1.0": (N, CI),
}
EVIL = "</script><script>alert('x')</script><!-- & \"quoted\""
META: dict[str, Any] = {"package": "pkg", "description": "crash <b>on</b> \"empty\" & more",
                        "repro": "cases/demo/repro.py", "finished_at": "2024-01-02T03:04:05Z",
                        "release_dates": {"1.0": "2020-01-01"}}


def record(python: str, version: str, status: Status) -> CellRecord:
    reason = {R: "exit 1, output has 'Boom<1>'", N: "exit 0",
              CI: "did not install at any of 1 era cutoff(s) tried"}[status]
    common: dict[str, Any] = dict(base_source="debian bookworm",
                                  interpreter_version=f"{python}.2",
                                  output_excerpt=f"Traceback\n{EVIL}\n" if status is R else "")
    if status is CI:
        return factories.record(python, version, status, reason,
                                attempts=(Attempt("2021-01-01T00:00:00Z", "install failed"),),
                                **common)
    return factories.ran(python, version, status, reason, cutoff="2021-01-01T00:00:00Z",
                         lock_digit="1", image_id=f"sha256:{'c' * 64}",
                         image_ref=f"repro-matrix/cell:{version.replace('.', '')}py{python}",
                         duration_s=0.5, exit_code={R: 1, N: 0}.get(status),
                         build_lock=(f"pip==23.0 --hash=sha256:{'2' * 64}",), **common)


RECORDS = [record(python, version, states[i]) for version, states in GRID.items()
           for i, python in enumerate(("3.9", "3.11"))]


def verdict() -> Verdict:
    return derive([Observation(r.cell.python, r.cell.version, r.status) for r in RECORDS],
                  Claim(first_fixed="1.10", source="changelog"))


def page() -> str:
    return html.render([CaseResult("demo", META, RECORDS, verdict())])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parsed() -> _Tags:
    tags = _Tags()
    tags.feed(page())
    return tags


def test_page_fetches_nothing() -> None:
    text = page()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    tags = parsed().tags
    assert not [a for _, a in tags if a.get("src")]
    assert all((a.get("href") or "#").startswith("#") for _, a in tags)
    assert "<link" not in text and "@import" not in text and "url(" not in text


def test_heat_map_has_a_cell_per_record_in_pep440_rows() -> None:
    tags = parsed().tags
    cells = [a for tag, a in tags if tag == "td" and a.get("data-cell")]
    assert [a["data-cell"] for a in cells] == [
        f"demo/py{p}/{v}" for v in ("1.0", "1.2", "1.9", "1.10") for p in ("3.9", "3.11")]
    by_id = {a["data-cell"]: a for a in cells}
    assert "s-reproduced" in (by_id["demo/py3.9/1.2"]["class"] or "")
    assert "s-cannot_install" in (by_id["demo/py3.11/1.2"]["class"] or "")
    assert by_id["demo/py3.9/1.2"]["title"] == (
        "py3.9 1.2: reproduced, exit 1, output has 'Boom<1>' (introduced)")


def test_boundary_cells_are_marked() -> None:
    cells = {a["data-cell"]: a.get("class") or "" for tag, a in parsed().tags
             if tag == "td" and a.get("data-cell")}
    marked = sorted(str(cell) for cell, classes in cells.items() if "boundary" in classes)
    assert marked == ["demo/py3.11/1.10", "demo/py3.11/1.9", "demo/py3.9/1.10", "demo/py3.9/1.2",
                      "demo/py3.9/1.9"]


def test_verdict_and_claim_check_are_on_the_page() -> None:
    text = page()
    assert f"{vocabulary.headline(verdict())}</p>" in text
    assert "<strong>Coverage.</strong> Python 3.9: 4 of 4 releases decided;" in text
    assert "Claim check.</strong> The claim &quot;first fixed in 1.10&quot; (changelog) holds." \
        in text


def test_text_is_escaped() -> None:
    text = page()
    assert "<b>on</b>" not in text
    assert "crash &lt;b&gt;on&lt;/b&gt; &quot;empty&quot; &amp; more" in text
    assert "Boom<1>" not in text.split('<script type="application/json"', 1)[0]


def test_cell_data_survives_the_script_tag_intact() -> None:
    text = page()
    assert EVIL not in text
    assert text.count("</script>") == 2
    assert not re.search(r"<!--|<script>alert", text)
    tags = parsed()
    ((_, attrs),) = [(t, a) for t, a in tags.tags if a.get("id") == html.DATA_ID]
    assert attrs["type"] == "application/json"
    data = json.loads(tags.scripts[0])["cells"]
    assert set(data) == {r.cell.id for r in RECORDS}
    cell = data["demo/py3.9/1.2"]
    assert cell["output"] == f"Traceback\n{EVIL}\n"
    assert cell["exit_code"] == 1 and cell["roles"] == ["introduced"]
    assert cell["lock"] == [f"pkg==1.2 --hash=sha256:{'1' * 64}"]
    assert cell["rerun"] == rerun_command(RECORDS[2], CaseMeta.from_json(META))
    assert data["demo/py3.11/1.2"]["rerun"] is None


def test_script_json_escapes_every_markup_character() -> None:
    encoded = html.script_json({"k": "</script><!--&>"})
    assert not set("<>&") & set(encoded)
    assert json.loads(encoded) == {"k": "</script><!--&>"}


def test_each_case_gets_its_own_section_and_panel() -> None:
    other = [factories.record("3.9", "2.0", N, "exit 0", case="other")]
    text = html.render([CaseResult("demo", META, RECORDS, verdict()),
                        CaseResult("other", {}, other, derive([Observation("3.9", "2.0", N)],
                                                           Claim()))])
    assert text.count('<section class="case"') == 2 and text.count('class="panel"') == 2
    assert 'href="#case-other"' in text


def test_columns_unavailable_for_every_release_are_folded_and_named() -> None:
    gone = [factories.record("3.6", v, Status.UNAVAILABLE, "no image for 3.6")
            for v in GRID]
    text = html.render([CaseResult("demo", META, [*RECORDS, *gone], verdict())])
    assert "<th scope=\"col\">py3.6</th>" not in text and "data-cell=\"demo/py3.6/" not in text
    assert "Not shown: Python 3.6, unavailable for every release" in text


def test_panel_leads_with_the_error_line_and_a_passing_cell_has_none() -> None:
    meta = CaseMeta.from_json(META)
    failing = html.cell_data(record("3.9", "1.2", R), meta, ())
    assert failing["error"] == failing["reason"]  # no exception line in its output
    assert failing["output"].startswith("Traceback")
    assert html.cell_data(record("3.9", "1.0", N), meta, ())["error"] == ""
    uninstallable = html.cell_data(record("3.11", "1.2", CI), meta, ())
    assert uninstallable["error"] == uninstallable["reason"]  # no output: the reason leads
    assert "none" not in str(html.cell_data(record("3.11", "1.2", CI), meta, ())
                             ["exit_code"])


def test_a_case_without_an_axis_says_its_columns_are_pythons() -> None:
    section = page().split('<section class="case"', 1)[1]
    assert "columns Pythons" in section
