"""harness.cli.main: bad input is exit 2, one stderr line, and nothing in the results folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main

CASE = {"id": "demo", "package": "pkg", "repro": "repro.py", "pythons": ["3.9"],
        "outcome": {"signature": "BOOM"}}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "repro.py").write_text("raise SystemExit(0)\n")
    (tmp_path / "valid.yaml").write_text(yaml.safe_dump({"cases": [CASE]}))
    (tmp_path / "unknown-key.yaml").write_text(yaml.safe_dump({"cases": [{**CASE, "pyton": []}]}))
    (tmp_path / "malformed.yaml").write_text("cases:\n  - id: demo\n   package: pkg\n")
    (tmp_path / "not-utf8.yaml").write_bytes(b"cases:\n  - id: d\xffmo\n")
    return tmp_path


def fails_cleanly(folder: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run main; check the error contract; return the one stderr line."""
    results = folder / "results"
    argv = [part.replace("{dir}", str(folder)) for part in argv]
    code = main([*argv, "--results", str(results)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("repro-matrix: error: ")
    assert not results.exists()
    return err


@pytest.mark.parametrize(("argv", "expected"), [
    (["plan", "--matrix", "{dir}/malformed.yaml"], "line 3, column 4: malformed YAML"),
    (["run", "--matrix", "{dir}/malformed.yaml"], "malformed YAML"),
    (["run", "--matrix", "{dir}/unknown-key.yaml"], "cases[0].pyton: unknown key (did you mean"),
    (["plan", "--matrix", "{dir}/absent.yaml"], "no such matrix file"),
    (["run", "--matrix", "{dir}/valid.yaml", "--jobs", "0"], "--jobs: must be at least 1"),
    (["run", "--matrix", "{dir}/valid.yaml", "--jobs", "many"], "invalid int value"),
    (["plan", "--matrix", "{dir}/valid.yaml", "--case", "nope"], "no case 'nope'"),
    (["run", "--matrix", "{dir}/valid.yaml", "--case", "demo,nope"], "no case 'nope'"),
    (["run", "--matrix", "{dir}/valid.yaml", "--provider", "cloud"], "invalid choice"),
])
def test_bad_input_is_one_error_line_and_exit_2(folder: Path, capsys: pytest.CaptureFixture[str],
                                                argv: list[str], expected: str) -> None:
    assert expected in fails_cleanly(folder, capsys, argv)


def test_missing_subcommand_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("repro-matrix: error: ")
    assert len(err.splitlines()) == 1


def test_undecodable_matrix_is_one_error_line(folder: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fails_cleanly(folder, capsys, ["plan", "--matrix", "{dir}/not-utf8.yaml"])


def test_report_on_foreign_cells_file_is_one_error_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) \
        -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "cells.json").write_text("[]")
    assert main(["report", "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("repro-matrix: error: ")
