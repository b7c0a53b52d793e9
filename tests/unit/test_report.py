"""harness.report: the markdown table, verdict words and case section, pinned by golden files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tabulate

from harness import report
from harness.model import Attempt, Cell, CellRecord, Claim, Status
from harness.verdict import Observation, Verdict, derive

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
    ran = status in (R, N, OF, CT, TO)
    built = f"sha256:{'ab' * 32}" if ran else ""
    return CellRecord(
        cell=Cell("demo", python, version), status=status, reason=REASONS[status],
        exit_code={R: 1, N: 0, OF: 1, CT: 125}.get(status), duration_s=1.5 if ran else None,
        lock=(f"pkg=={version} --hash=sha256:{'0' * 64}",) if ran else (),
        cutoff="2021-10-06T00:00:00Z" if ran else "",
        attempts=((Attempt("2021-10-06T00:00:00Z", "ok"),) if ran else
                  (Attempt("2021-10-06T00:00:00Z", "install failed", "no wheel"),
                   Attempt("2022-10-06T00:00:00Z", "install failed", "no wheel"))
                  if status is CI else ()),
        image_id=built, image_ref="repro-matrix/cell:0123456789abcdef0123" if ran else "",
        base_provider="none" if status is UN else "registry",
        base_source="" if status is UN else f"registry image python:{python}-slim",
        interpreter_version="" if status is UN else f"{python}.7",
        output_excerpt={R: "Traceback (most recent call last):\nRuntimeError: BOOM\n",
                        OF: "ImportError: cannot import name 'thing'\n",
                        CI: "ERROR: No matching distribution found for pkg\n"}.get(status, ""),
        finished_at="2024-01-02T03:00:00Z")


RECORDS = [record(python, version, states[i])
           for version, states in GRID.items() for i, python in enumerate(PYTHONS)]


def verdict(claim: Claim) -> Verdict:
    return derive([Observation(r.cell.python, r.cell.version, r.status) for r in RECORDS], claim)


CLAIM = Claim(first_fixed="2.0.0", source="changelog")


def test_status_table_matches_golden(golden: Golden) -> None:
    golden("status_table.md", report.status_table(RECORDS, META["release_dates"]))


def test_status_table_orders_rows_by_pep440_and_columns_numerically() -> None:
    lines = report.status_table(RECORDS, {}).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["0.9.0", "1.0.0", "1.9.0",
                                                                  "1.10.0", "2.0.0"]
    assert [cell.strip() for cell in lines[0].split("|")[3:-1]] == ["py3.9", "py3.10", "py3.12",
                                                                    "py3.13"]


def test_status_table_leaves_missing_cells_blank() -> None:
    table = report.status_table([record("3.9", "1.0.0", R), record("3.10", "2.0.0", N)], {})
    header, _, first, _ = table.splitlines()
    assert [cell.strip() for cell in header.split("|")[1:-1]] == ["version", "released", "py3.9",
                                                                  "py3.10"]
    assert [cell.strip() for cell in first.split("|")[1:-1]] == ["1.0.0", "", "🔴", ""]


def test_status_table_prints_versions_verbatim_even_when_they_look_like_numbers() -> None:
    records = [record("3.9", version, R) for version in ("1.0", "1.9", "1.10", "2.0")]
    lines = report.status_table(records, {}).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1.0", "1.9", "1.10", "2.0"]


def test_verdict_section_matches_golden(golden: Golden) -> None:
    golden("verdict_section.md", report.verdict_section(verdict(CLAIM)))


@pytest.mark.parametrize(("claim", "words"), [
    (CLAIM, "✅ holds"), (Claim(first_fixed="1.9.0"), "❌ does not hold"),
    (Claim(first_fixed="1.5"), "❔ cannot be decided"), (Claim(), "\"none\" ❔")])
def test_verdict_section_states_the_claim_result(claim: Claim, words: str) -> None:
    assert words in report.verdict_section(verdict(claim))


def test_render_case_matches_golden(golden: Golden) -> None:
    golden("render_case.md", report.render_case("demo", META, RECORDS, verdict(CLAIM)))


def test_render_case_counts_cells_and_skips_passing_cells_in_evidence() -> None:
    text = report.render_case("demo", META, RECORDS, verdict(CLAIM))
    assert "5 releases × 4 Pythons = 20 cells" in text
    evidence = text.split("### Evidence", 1)[1]
    assert "py3.9 1.0.0: reproduced" in evidence
    assert ": not_reproduced" not in evidence
    assert evidence.count("Python 3.13:") == 1
