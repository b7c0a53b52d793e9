"""report.markdown: the markdown table, verdict words and case section, pinned by golden files."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import tabulate

from repro_matrix import store
from repro_matrix.model import Attempt, CaseMeta, CellRecord, Claim, Status
from repro_matrix.report import markdown, svg, vocabulary
from repro_matrix.report.cells import boundary_cells, facts_line, folded_note, rerun_command
from repro_matrix.verdict.derive import CaseResult, Observation, Verdict, derive
from tests import factories

Golden = Callable[[str, str], None]
R, N, OF, CT = (Status.REPRODUCED, Status.NOT_REPRODUCED, Status.OTHER_FAILURE,
                Status.CANNOT_TEST)
CI, TO, UN = Status.CANNOT_INSTALL, Status.TIMEOUT, Status.UNAVAILABLE
PYTHONS = ("3.10", "3.9", "3.12", "3.13")  # deliberately not in numeric order
GRID: dict[str, tuple[Status, ...]] = {  # version -> status per Python above
    "1.10.0": (N, R, CT, UN),
    "0.9.0": (N, N, CI, UN),
    "2.0.0": (N, N, N, UN),
    "1.0.0": (R, R, CI, UN),
    "1.9.0": (OF, R, TO, UN),
}
REASONS = {R: "exit 1, output has 'RuntimeError: BOOM'", N: "exit 0",
           OF: "exit 1 without the failure signature", CT: "exit 125: the repro could not test",
           CI: "did not install at any of 2 era cutoff(s) tried",
           TO: "no exit within the time limit (60 s)",
           UN: "registry: cannot pull python:3.13-slim (registry unreachable (no connection))"}
META: dict[str, Any] = {
    "description": "pkg.frobnicate() crashes on empty input", "package": "pkg",
    "repro": "cases/demo/repro.py",
    "finished_at": "2024-01-02T03:04:05Z", "wall_time_s": 42.4,
    "release_dates": {"0.9.0": "2019-12-01", "1.0.0": "2020-02-03", "1.9.0": "2021-05-06",
                      "1.10.0": "2021-09-10", "2.0.0": "2022-01-01"},
}


@pytest.fixture(autouse=True)
def _plain_widths(monkeypatch: pytest.MonkeyPatch) -> None:
    # tabulate pads emoji by wcwidth only when that optional package happens to be importable;
    # pin the plain mode so the golden files do not depend on the environment.
    monkeypatch.setattr(tabulate, "WIDE_CHARS_MODE", False)


def record(python: str, version: str, status: Status) -> CellRecord:
    common: dict[str, Any] = dict(
        base_provider="none" if status is UN else "registry",
        base_source="" if status is UN else f"registry image python:{python}-slim",
        interpreter_version="" if status is UN else f"{python}.7",
        output_excerpt={R: "Traceback (most recent call last):\nRuntimeError: BOOM\n",
                        OF: "ImportError: cannot import name 'thing'\n",
                        CI: "ERROR: No matching distribution found for pkg\n"}.get(status, ""),
        finished_at="2024-01-02T03:00:00Z")
    if status in (R, N, OF, CT, TO):
        return factories.ran(python, version, status, REASONS[status],
                             cutoff="2021-10-06T00:00:00Z", lock_digit="0",
                             image_id=f"sha256:{'ab' * 32}",
                             image_ref="repro-matrix/cell:0123456789abcdef0123", duration_s=1.5,
                             exit_code={R: 1, N: 0, OF: 1, CT: 125}.get(status), **common)
    attempts = (Attempt("2021-10-06T00:00:00Z", "install failed", "no wheel"),
                Attempt("2022-10-06T00:00:00Z", "install failed", "no wheel"))
    return factories.record(python, version, status, REASONS[status],
                            attempts=attempts if status is CI else (), **common)


RECORDS = [record(python, version, states[i])
           for version, states in GRID.items() for i, python in enumerate(PYTHONS)]


def verdict(claim: Claim) -> Verdict:
    return derive([Observation(r.cell.python, r.cell.version, r.status) for r in RECORDS], claim)


CLAIM = Claim(first_fixed="2.0.0", source="changelog")


def test_status_table_matches_golden(golden: Golden) -> None:
    golden("status_table.md", markdown.status_table(RECORDS, META["release_dates"]))


def test_status_table_orders_rows_by_pep440_and_columns_numerically() -> None:
    lines = markdown.status_table(RECORDS, {}).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["0.9.0", "1.0.0", "1.9.0",
                                                                  "1.10.0", "2.0.0"]
    assert [cell.strip() for cell in lines[0].split("|")[3:-1]] == ["py3.9", "py3.10", "py3.12",
                                                                    "py3.13"]


def test_status_table_leaves_missing_cells_blank() -> None:
    table = markdown.status_table([record("3.9", "1.0.0", R), record("3.10", "2.0.0", N)], {})
    header, _, first, _ = table.splitlines()
    assert [cell.strip() for cell in header.split("|")[1:-1]] == ["version", "released", "py3.9",
                                                                  "py3.10"]
    assert [cell.strip() for cell in first.split("|")[1:-1]] == ["1.0.0", "", "🔴 R", ""]


def test_status_table_folds_columns_unavailable_for_every_release() -> None:
    header = markdown.status_table(RECORDS, {}, fold=True).splitlines()[0]
    assert "py3.13" not in header and "py3.12" in header
    assert folded_note(RECORDS) == (
        "Not shown: Python 3.13, unavailable for every release (see Coverage).")


def test_status_table_prints_versions_verbatim_even_when_they_look_like_numbers() -> None:
    records = [record("3.9", version, R) for version in ("1.0", "1.9", "1.10", "2.0")]
    lines = markdown.status_table(records, {}).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1.0", "1.9", "1.10", "2.0"]


def test_verdict_section_matches_golden(golden: Golden) -> None:
    golden("verdict_section.md", markdown.verdict_section(verdict(CLAIM)))


@pytest.mark.parametrize(("claim", "words"), [
    (CLAIM, "✅ holds"), (Claim(first_fixed="1.9.0"), "❌ does not hold"),
    (Claim(first_fixed="1.5"), "❔ cannot be decided"), (Claim(), "No claim to check")])
def test_verdict_section_states_the_claim_result(claim: Claim, words: str) -> None:
    assert words in markdown.verdict_section(verdict(claim))


def test_render_case_matches_golden(golden: Golden) -> None:
    golden("render_case.md", markdown.render_case("demo", META, RECORDS, verdict(CLAIM)))


def test_render_case_counts_cells_and_skips_passing_cells_in_evidence() -> None:
    text = markdown.render_case("demo", META, RECORDS, verdict(CLAIM))
    assert "5 releases × 4 Pythons = 20 cells" in text
    evidence = text.split("### Evidence", 1)[1]
    assert "py3.10 1.0.0: reproduced, exit 1" in evidence
    assert "not_reproduced" not in text and "not reproduced, exit 0" not in evidence
    assert "exit code none" not in text
    # one block per (status, error line) group, unavailable cells only under Failure causes
    assert evidence.count("<details>") == 5 and "Python 3.13" not in evidence


def test_render_case_puts_the_summary_first_then_table_notes_boundaries_evidence() -> None:
    text = markdown.render_case("demo", META, RECORDS, verdict(CLAIM))
    marks = ["**Verdict.**", "**Coverage.**", "**Claim check.**", "### Why the boundary is there",
             "### Failure causes", "### Compatibility table", "](demo/matrix.svg)",
             "|  version", "- 🔴 R reproduced", "### Notes", "Branches:", "### Boundary cells",
             "### Evidence"]
    positions = [text.index(mark) for mark in marks]
    assert positions == sorted(positions)
    summary = text.split("### Compatibility table", 1)[0]
    assert summary.count("**Verdict.**") == 1 and "Per Python" not in summary


def test_boundary_cells_are_the_edges_of_each_pythons_ranges() -> None:
    found = [(b.record.cell.python, b.record.cell.version, b.roles)
             for b in boundary_cells(RECORDS, verdict(CLAIM))]
    assert found == [("3.9", "1.0.0", ("introduced",)), ("3.9", "1.10.0", ("last affected",)),
                     ("3.9", "2.0.0", ("fixed",)),
                     ("3.10", "1.0.0", ("introduced", "last affected")),
                     ("3.10", "1.10.0", ("fixed",))]


def test_boundaries_section_shows_each_lock_and_how_to_rerun() -> None:
    text = markdown.boundaries_section(RECORDS, verdict(CLAIM), CaseMeta.from_json(META))
    assert text.count("\n- ") == 2  # one line per Python
    assert ("- **py3.10** · 🔴 R **1.0.0**, introduced, last affected: reproduced, "
            "`RuntimeError: BOOM`") in text
    assert "lock `pkg==2.0.0`" in text
    assert text.count("docker run --rm --mount") == 5


def test_boundaries_section_without_ranges() -> None:
    passing = [record("3.9", "1.0.0", N)]
    verdict_ = derive([Observation("3.9", "1.0.0", N)], Claim())
    assert markdown.boundaries_section(passing, verdict_, CaseMeta.from_json(META)) == (
        "No affected range, so no boundary cells.")


SANDBOX_FLAGS = ("--network none --workdir /tmp --read-only --tmpfs /tmp:rw,size=64m "
                 "--cap-drop ALL --security-opt no-new-privileges --memory 512m "
                 "--memory-swap 512m --pids-limit 256 --user 65534:65534")


@pytest.mark.parametrize(("meta", "mount", "inside"), [
    ({"repro": "cases/demo/repro.py", "repro_path": "/abs/cases/demo/repro.py"},
     "/abs/cases/demo/repro.py", "/repro/repro.py"),
    ({"repro": "cases/demo/repro.py"}, "$PWD/cases/demo/repro.py", "/repro/repro.py"),
    ({"repro": "/abs/dir/check.py"}, "/abs/dir/check.py", "/repro/check.py"),
    ({}, "$PWD/path/to/repro.py", "/repro/repro.py"),
])
def test_rerun_command_binds_the_repro_and_runs_it_in_the_cells_sandbox(
        meta: dict[str, str], mount: str, inside: str) -> None:
    command = rerun_command(record("3.9", "1.0.0", R), CaseMeta.from_json(meta))
    assert command == (f'docker run --rm --mount "type=bind,target={inside},readonly,'
                       f'source={mount}" {SANDBOX_FLAGS} '
                       f"repro-matrix/cell:0123456789abcdef0123 /opt/venv/bin/python {inside}")


def test_rerun_command_applies_the_case_limits_as_the_engine_does() -> None:
    from repro_matrix.containers import sandbox

    meta = {"repro_path": "/r.py", "limits": {"memory": "64m", "pids": 32, "tmpfs": "8m"}}
    command = rerun_command(record("3.9", "1.0.0", R), CaseMeta.from_json(meta))
    assert command is not None
    assert shlex.join(sandbox.run_flags("64m", 32, "8m")) in command
    assert "--memory 64m --memory-swap 64m --pids-limit 32" in command
    assert "--tmpfs /tmp:rw,size=8m" in command
    # The engine's create() options come from the same table, flag for flag.
    options = sandbox.create_options("64m", 32, "8m")
    assert options["mem_limit"] == "64m" and options["pids_limit"] == 32
    assert options["tmpfs"] == {"/tmp": "rw,size=8m"} and options["network_disabled"] is True


def test_rerun_command_fails_loudly_when_the_repro_is_missing(tmp_path: Path) -> None:
    """--mount refuses a missing source, where -v would create an empty directory."""
    command = rerun_command(record("3.9", "1.0.0", R),
                                   CaseMeta(repro_path=str(tmp_path / "gone.py")))
    assert command is not None and "-v " not in command
    assert f"source={tmp_path}/gone.py" in command and "type=bind" in command


def test_rerun_command_is_none_without_an_image() -> None:
    assert rerun_command(record("3.12", "0.9.0", CI), CaseMeta.from_json(META)) is None
    assert "no image was built" in markdown.evidence_section([record("3.12", "0.9.0", CI)],
                                                     CaseMeta.from_json(META))


def test_rerun_command_quotes_awkward_paths_for_the_shell(tmp_path: Path) -> None:
    awkward = 'we"ird $dir/`x`/re pro.py'
    command = rerun_command(record("3.9", "1.0.0", R), CaseMeta(repro=awkward))
    assert command is not None
    echo = command.replace("docker run", "printf '%s\\n'", 1)
    out = subprocess.run(["bash", "-c", echo], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[out.index("--mount") + 1] == (f"type=bind,target=/repro/re pro.py,readonly,"
                                             f"source={tmp_path}/{awkward}")
    assert out[-1] == "/repro/re pro.py"


def test_evidence_names_exit_code_output_tail_and_rerun() -> None:
    loud = replace(record("3.9", "1.0.0", R),
                   output_excerpt="".join(f"line {i}\n" for i in range(20)))
    text = markdown.evidence_section([loud], CaseMeta.from_json(META))
    assert "py3.9 1.0.0: reproduced, exit 1, output has 'RuntimeError: BOOM'</summary>" in text
    assert "- exit code 1\n" in text
    tail = 20 - markdown._EXCERPT_LINES
    assert "line 19" in text and f"line {tail}\n" in text and f"line {tail - 1}\n" not in text
    assert '--mount "type=bind,target=/repro/repro.py,readonly,source=$PWD/cases/demo/' \
        'repro.py"' in text


def test_matrix_svg_matches_golden(golden: Golden) -> None:
    golden("matrix.svg", svg.matrix_svg("demo", RECORDS, verdict(CLAIM)))


def test_matrix_svg_is_xml_with_one_coloured_square_per_cell() -> None:
    records = [replace(r, reason="exit 1, output has '<boom> & \"co\"'")
               if r.cell.id == "demo/py3.9/1.0.0" else r for r in RECORDS]
    root = ElementTree.fromstring(svg.matrix_svg("demo", records, verdict(CLAIM)))
    ns = "{http://www.w3.org/2000/svg}"
    squares = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(squares) == len(records)
    fills = {r.get("fill") for r in squares}
    assert fills == {vocabulary.COLOURS[r.status][0] for r in records}
    tips = [r.find(f"{ns}title").text for r in squares]  # type: ignore[union-attr]
    assert "py3.9 1.0.0: reproduced, exit 1, output has '<boom> & \"co\"'" in tips
    labels = [t.text for t in root.iter(f"{ns}text")]
    rows = [label for label in labels if label in GRID]
    assert rows == ["0.9.0", "1.0.0", "1.9.0", "1.10.0", "2.0.0"]
    assert "← first fixed" in labels
    legend = "".join(map(str, labels))
    assert all(f"{vocabulary.look(s).words} (" in legend
               for s in vocabulary.legend_statuses(records))
    # A bug case's legend leaves out compatibility mode's statuses (and the other way round).
    assert "works (" not in legend and "broken (" not in legend


def test_step_summary_has_the_two_sentences_and_the_table() -> None:
    text = markdown.step_summary([CaseResult("demo", META, RECORDS, verdict(CLAIM))])
    assert ("**Verdict.** Decided on 2 of 4 Pythons; Python 3.12 decided only releases after the "
            "fix (0.9.0–1.10.0 could not be tested there: mostly `no wheel`). Python 3.9: "
            "introduced in 1.0.0") in text
    assert "**Coverage.** Python 3.9: 5 of 5 releases decided;" in text
    assert "**Claim check.** The claim \"first fixed in 2.0.0\"" in text
    assert markdown.status_table(RECORDS, META["release_dates"], fold=True) in text
    assert "Per Python" not in text


def test_step_summary_is_appended_only_when_ci_names_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(store.STEP_SUMMARY_ENV, raising=False)
    assert store.append_step_summary("x") is None
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    monkeypatch.setenv(store.STEP_SUMMARY_ENV, str(target))
    assert store.append_step_summary("first") == target
    store.append_step_summary("second\n")
    assert target.read_text() == "earlier step\nfirst\nsecond\n"


def test_render_results_writes_every_output(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_matrix import store
    from repro_matrix.report.render import render_results

    summary = tmp_path / "summary.md"
    monkeypatch.setenv(store.STEP_SUMMARY_ENV, str(summary))
    results = tmp_path / "results"
    store.write_cells(results, "demo", RECORDS, {**META, "claim": {"first_fixed": "2.0.0"}})
    ((case_id, _),) = render_results(results)
    assert case_id == "demo"
    for name in ("report.md", "report.html", "demo/verdict.json", "demo/osv.json",
                 "demo/matrix.svg"):
        assert (results / name).stat().st_size > 0, name
    assert "](demo/matrix.svg)" in (results / "report.md").read_text()
    assert json.loads((results / "demo" / "osv.json").read_text())["affected"]
    assert summary.read_text().count("**Verdict.**") == 1


def test_partial_results_say_the_run_has_not_finished() -> None:
    meta = {k: v for k, v in META.items() if k not in ("finished_at", "wall_time_s")}
    text = markdown.render_case("demo", {**meta, "started_at": "2024-01-02T03:00:00Z"}, RECORDS,
                              verdict(CLAIM))
    assert "run not finished (started 2024-01-02T03:00:00Z): partial results." in text


def test_coverage_names_what_was_not_decided_and_how_much_a_bisect_ran() -> None:
    full = vocabulary.coverage_sentence(CaseMeta.from_json(META), RECORDS)
    assert full.startswith("Python 3.9: 5 of 5 releases decided; Python 3.10: 4 of 5 releases "
                           "decided (other failure 1);")
    assert full.endswith("not tested: Python 3.13 (unavailable: no base image).")
    probed = [r for r in RECORDS if r.cell.python == "3.9" and r.cell.version != "1.9.0"]
    bisected = vocabulary.coverage_sentence(
        CaseMeta(versions=tuple(GRID), bisect={"3.9": {"cells_run": 4}}), probed)
    assert bisected == "Python 3.9: bisect: 4 of 5 releases run, 4 decided."


def test_headline_claims_only_what_deciding_pythons_show() -> None:
    text = vocabulary.headline(verdict(CLAIM), RECORDS)
    # 3.13 decided nothing; 3.12 decided only 2.0.0, after the fix: it decides no boundary.
    assert text.startswith("Decided on 2 of 4 Pythons; Python 3.12 decided only releases after "
                           "the fix (0.9.0–1.10.0 could not be tested there: mostly `")
    assert "all Pythons" not in text and "3.13" not in text
    assert "Python 3.12: not reproduced" not in text  # no clause for a column with no boundary


def _headline(grid: Mapping[str, tuple[Status, ...]], pythons: tuple[str, ...]) -> str:
    records = [replace(record(python, version, status), attempts=(), output_excerpt=(
                   "ImportError: cannot import name 'x'\n" if status is CI else ""))
               for version, statuses in grid.items()
               for python, status in zip(pythons, statuses)]
    found = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                   Claim())
    return vocabulary.headline(found, records)


def test_a_python_counts_only_when_it_decides_releases_on_both_sides_of_a_boundary() -> None:
    grid = {"1.0": (N, CI, N), "1.1": (R, CI, CI), "1.2": (R, R, R), "1.3": (N, N, CI)}
    text = _headline(grid, ("3.9", "3.11", "3.13"))
    # 3.11 decided 1.2 and 1.3 (both sides of the fix); 3.13 decided 1.0 and 1.2, both sides of
    # "introduced 1.1", although 1.1 itself could not be tested there: both count.
    assert text.startswith("Every Python agrees") or text.startswith("Decided on 3 of 3")
    late = _headline({"1.0": (N, CI), "1.1": (R, CI), "1.2": (N, N), "1.3": (N, N)},
                     ("3.9", "3.14"))
    assert late.startswith("Decided on 1 of 2 Pythons; Python 3.14 decided only releases after "
                           "the fix (1.0–1.1 could not be tested there: `ImportError: cannot "
                           "import name 'x'`). Python 3.9: introduced in 1.1")
    early = _headline({"1.0": (N, N), "1.1": (R, CI), "1.2": (N, CI)}, ("3.9", "3.6"))
    assert "Python 3.6 decided only releases before the bug appeared (1.1–1.2 could not" in early


def test_with_no_boundary_every_python_that_decided_counts() -> None:
    text = _headline({"1.0": (N, CI), "1.1": (N, N)}, ("3.9", "3.14"))
    assert text == ("Decided on 2 of 2 Pythons. Python 3.9: not reproduced in any of its 2 "
                    "decided releases. Python 3.14: not reproduced in its only decided release.")


def test_a_slice_says_which_cells_of_its_grid_were_not_run() -> None:
    sliced = [r for r in RECORDS
              if not (r.cell.python == "3.12" and r.cell.version in ("0.9.0", "1.0.0"))]
    line = facts_line(CaseMeta.from_json(META), sliced)
    assert line.startswith("Package `pkg`, 5 releases × 4 Pythons: 18 of the 20 cells run, the "
                           "other 2 not run; run finished")
    assert "= 20 cells" in facts_line(CaseMeta.from_json(META), RECORDS)


def test_one_changelog_entry_touches() -> None:
    assert vocabulary.entries_touch(1) == "1 entry touches"
    assert vocabulary.entries_touch(2) == "2 entries touch"


def test_reasons_read_as_words() -> None:
    assert vocabulary.plain("did not install at any of 1 era cutoff(s) tried; 2 cutoff(s)") == (
        "did not install at any of 1 era cutoff tried; 2 cutoffs")
    assert vocabulary.plain("py3.9/1.0: not_reproduced") == "py3.9/1.0: not reproduced"


def test_a_bisect_run_does_not_look_like_a_full_matrix() -> None:
    probed = [r for r in RECORDS if r.cell.version in ("0.9.0", "2.0.0")]
    meta = {**META, "versions": list(GRID), "bisect": {"3.9": {"cells_run": 2}}}
    assert facts_line(CaseMeta.from_json(meta), probed).startswith(
        "Package `pkg`, bisect over 5 releases × 4 Pythons: 8 cells run; ")


def test_run_words_say_when_the_last_run_kept_cells_from_earlier_runs() -> None:
    meta = CaseMeta(started_at="2024-01-02T03:00:00Z", finished_at="2024-01-02T03:00:01Z",
                    wall_time_s=1.2)
    fresh = replace(record("3.9", "1.0.0", R), finished_at="2024-01-02T03:00:01Z")
    kept = replace(record("3.9", "1.1.0", R), finished_at="2024-01-01T10:00:00Z")
    assert vocabulary.run_words(meta, [fresh]) == "run finished 2024-01-02T03:00:01Z in 1 s"
    assert vocabulary.run_words(meta, [fresh, kept]) == (
        "last run finished 2024-01-02T03:00:01Z in 1 s, keeping 1 of the 2 cells unchanged "
        "from earlier runs")
