"""The end of a run: the terminal summary and --fail-on refuted|reproduced|changed (exit 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repro_matrix import store
from repro_matrix.cli import main
from repro_matrix.errors import EXIT_FAIL_ON
from repro_matrix.model import Status
from repro_matrix.report import markdown
from repro_matrix.resolve import dists
from tests.factories import record

R, N = Status.REPRODUCED, Status.NOT_REPRODUCED


def write_case(results: Path, grid: dict[str, Status], claim: dict[str, Any]) -> None:
    records = [record("3.9", version, status, "exit 1" if status is R
                          else "exit 0", exit_code=1 if status is R else 0,
                          output_excerpt="Traceback (most recent call last):\nOSError: boom\n"
                          if status is R else "")
               for version, status in grid.items()]
    store.write_cells(results, "demo", records, {"case": "demo", "package": "pkg",
                                                 "description": "pkg breaks", "claim": claim})


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # No released files here and no index: boundaries stay unexplained, nothing is fetched.
    monkeypatch.setattr(dists, "dist_finder", lambda *args, **kw: dists.DistFinder([]))
    monkeypatch.setattr(dists, "index_releases", lambda *args, **kw: None)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


GRID = {"1.0": N, "1.1": R, "1.2": N}


def test_fail_on_refuted_exits_6_with_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, GRID, {"first_fixed": "1.1"})  # 1.1 reproduces: refuted
    assert main(["report", "--results", str(tmp_path), "--fail-on", "refuted"]) == EXIT_FAIL_ON
    err = capsys.readouterr().err
    assert "repro-matrix: --fail-on refuted: demo: the claim does not hold" in err
    assert "demo: Every Python agrees. Python 3.9: introduced in 1.1" in err
    assert "claim check: The claim \"first fixed in 1.1\" does not hold." in err


def test_a_claim_that_holds_passes_fail_on_refuted(tmp_path: Path) -> None:
    write_case(tmp_path, GRID, {"first_fixed": "1.2"})
    assert main(["report", "--results", str(tmp_path), "--fail-on", "refuted"]) == 0
    assert main(["report", "--results", str(tmp_path)]) == 0


def test_fail_on_reproduced_and_changed(tmp_path: Path) -> None:
    write_case(tmp_path, GRID, {})
    assert main(["report", "--results", str(tmp_path), "--fail-on", "reproduced"]) == EXIT_FAIL_ON
    # the first render wrote verdict.json; rendering again changes nothing
    assert main(["report", "--results", str(tmp_path), "--fail-on", "changed"]) == 0
    write_case(tmp_path, {**GRID, "1.2": R}, {})
    assert main(["report", "--results", str(tmp_path), "--fail-on", "changed,refuted"]) \
        == EXIT_FAIL_ON


def test_unknown_fail_on_is_a_usage_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    write_case(tmp_path, GRID, {})
    assert main(["report", "--results", str(tmp_path), "--fail-on", "wrong"]) == 2
    assert "--fail-on: unknown condition 'wrong'; choose from refuted, reproduced, changed" \
        in capsys.readouterr().err


def test_no_claim_says_so_everywhere(tmp_path: Path) -> None:
    write_case(tmp_path, GRID, {})
    main(["report", "--results", str(tmp_path)])
    text = (tmp_path / "report.md").read_text()
    assert "**Claim check.** No claim to check (the case states none)." in text
    assert '"none"' not in text and "exit code none" not in text
    assert "1 release × 1 Python" not in text and "3 releases × 1 Python = 3 cells" in text


def test_terminal_lines_name_the_causes() -> None:
    records = [record("3.14", v, Status.OTHER_FAILURE, "exit 3",
                          output_excerpt="Traceback:\nAttributeError: no get_loader\nFAILURE\n")
               for v in ("1.0", "1.1")]
    from repro_matrix.model import Claim
    from repro_matrix.verdict.derive import CaseResult, Observation, derive

    verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     Claim())
    lines = markdown.terminal_lines([CaseResult("demo", {"versions": ["1.0", "1.1"]}, records,
                                               verdict)])
    assert lines[0] == "demo: No release could be tested on any Python."
    assert "  2 cells other failure (py3.14: every release): AttributeError: no get_loader" \
        in lines


def test_run_on_engines_merges_then_summarizes_and_fails_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from repro_matrix.run import fanout

    shard = tmp_path / "shard-1"
    write_case(shard, GRID, {"first_fixed": "1.2"})
    monkeypatch.setattr(fanout, "parse_engines", lambda text: text.split(","))
    monkeypatch.setattr(fanout, "run_on_engines", lambda argv, names, folder: [shard])
    results = tmp_path / "merged"
    # --no-bisect: the repository's matrix file has a case that bisects, which shards cannot.
    assert main(["run", "--engines", "a", "--no-bisect", "--results", str(results),
                 "--fail-on", "reproduced"]) == EXIT_FAIL_ON
    err = capsys.readouterr().err
    assert "claim check: The claim \"first fixed in 1.2\" holds." in err
    assert "demo: 1 cell reproduced the bug" in err


def test_fail_on_reproduced_names_broken_pairs_as_pairs_not_as_a_bug() -> None:
    from repro_matrix.verdict.fail_on import _affected_lines

    bug = [record("3.11", v, Status.REPRODUCED) for v in ("1.0", "1.1")]
    pairs = [record("3.11", "2.0", Status.BROKEN), record("3.11", "2.1", Status.WORKS)]
    assert _affected_lines("bug", bug) == ["bug: 2 cells reproduced the bug"]
    assert _affected_lines("grid", pairs) == ["grid: 1 pair broke (compatibility)"]
    assert _affected_lines("none", pairs[1:]) == []
