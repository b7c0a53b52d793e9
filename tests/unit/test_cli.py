"""cli.main: bad input is exit 2, one stderr line, and nothing in the results folder."""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_matrix.cli import main
from repro_matrix.errors import UsageError
from repro_matrix.options import build_parser
from tests.factories import record

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


# ---- more bad input: each one line, exit 2, nothing under --results ----------------------------

RELEASES = {"pkg": ("1.0", "1.1", "2.0"), "dep": ("2.0", "3.0")}


@pytest.fixture
def fake_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """An index that knows pkg 1.0, 1.1, 2.0 (answering like the real client on a 404), and an
    engine that answers: the checks under test come before any container."""
    from repro_matrix.containers import engine
    from repro_matrix.model import Release
    from repro_matrix.resolve.index import IndexClient

    def releases(self: IndexClient, project: str) -> list[Release]:
        if project not in RELEASES:
            raise UsageError(f"the package index has no project '{project}'",
                             "check the case's package name in the matrix file")
        return [Release(v, None, False) for v in RELEASES[project]]

    monkeypatch.setattr(IndexClient, "releases", releases)
    monkeypatch.setattr(engine, "connect", lambda: None)


def matrix_with(folder: Path, name: str, **changes: Any) -> str:
    case = {**CASE, **changes}
    (folder / name).write_text(yaml.safe_dump({"cases": [case]}))
    return str(folder / name)


@pytest.mark.parametrize(("changes", "extra", "expected"), [
    ({"outcome": {"signature": "BOOM", "timeout": "sixty"}}, [],
     "cases[0].outcome.timeout: expected a number, got str"),
    ({"pythons": ["2.7"]}, [], "cases[0].pythons[0]: '2.7' is not a Python version"),
    ({"pythons": [3.10]}, [], "cases[0].pythons[0]: 3.1 was read as a number"),
    ({"repro": "."}, [], "cases[0].command: missing; a repro folder needs the command"),
    ({"limits": {"memory": "lots"}}, [], "cases[0].limits.memory: 'lots' is not a size"),
    ({"versions": {"spec": ">>1"}}, [], "cases[0].versions.spec: '>>1' is not a PEP 440"),
    ({}, ["--python", "py3"], "--python: 'py3' is not a Python version"),
    ({}, ["--python", "3.11"], "--python: 3.11 is not among case demo's Pythons"),
    ({}, ["--versions", ">>1"], "--versions: '>>1' is neither a specifier nor a list"),
    ({}, ["--axis-versions", ">>1"], "--axis-versions: '>>1' is neither a specifier nor a list"),
    ({}, ["--case", "demo", "--axis-versions", "1.0"], "--axis-versions: case demo has no axis"),
    ({}, ["--quiet", "--verbose"], "--quiet and --verbose: choose one"),
    ({"bisect": "yes"}, [], "cases[0].bisect: expected true or false, got str"),
    ({}, ["--shard", "1/2", "--bisect"], "--shard and --bisect: a bisection needs every"),
    ({"bisect": True}, ["--shard", "1/2"], "--shard: case demo bisects (`bisect: true` in the "
                                           "matrix file)"),
    ({"bisect": True}, ["--engines", "a,b"], "--engines: case demo bisects"),
])
def test_bad_matrix_or_option_fails_before_the_engine(
        folder: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any],
        extra: list[str], expected: str) -> None:
    path = matrix_with(folder, "bad.yaml", **changes)
    err = fails_cleanly(folder, capsys, ["run", "--matrix", path, *extra])
    assert expected in err
    if not expected.startswith("--"):
        assert f"error: {path}: " in err


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize(("changes", "extra", "expected"), [
    ({"package": "nope"}, [], "{path}: cases[0].package: the package index has no project "
                              "'nope'"),
    ({"versions": {"spec": ">=99"}}, [], "{path}: cases[0].versions.spec: '>=99' selects no "
                                         "release of pkg"),
    ({"claim": {"first_fixed": "1.0.5"}}, [], "{path}: cases[0].claim.first_fixed: pkg has no "
                                              "release 1.0.5 on the package index"),
    ({}, ["--versions", "9.9"], "--versions: pkg has no release 9.9 on the index"),
    ({"axis": {"package": "nodep"}}, [], "{path}: cases[0].axis.package: the package index has "
                                         "no project 'nodep'"),
    ({"axis": {"package": "dep", "versions": {"spec": ">=9"}}}, [],
     "{path}: cases[0].axis.versions.spec: '>=9' selects no release of dep"),
    ({"axis": {"package": "dep"}}, ["--axis-versions", "9.9"],
     "--axis-versions: dep has no release 9.9 on the index"),
])
def test_what_the_index_contradicts_names_file_key_or_option(
        folder: Path, capsys: pytest.CaptureFixture[str], fake_index: None, command: str,
        changes: dict[str, Any], extra: list[str], expected: str) -> None:
    path = matrix_with(folder, "checked.yaml", **changes)
    err = fails_cleanly(folder, capsys, [command, "--matrix", path, *extra])
    assert expected.format(path=path) in err


def test_bisect_with_rerun_is_accepted() -> None:
    args = build_parser().parse_args(["run", "--bisect", "--rerun"])
    assert args.bisect and args.rerun


def test_bisect_is_left_to_the_matrix_file_unless_the_command_line_says() -> None:
    parse = build_parser().parse_args
    assert [parse(["run", *flag]).bisect for flag in ([], ["--bisect"], ["--no-bisect"])] == [
        None, True, False]


@pytest.mark.parametrize("argv", [["run", "--engine", "a,b"],
                                  ["run", "--engines=a", "--result", "r"],
                                  ["report", "--base", "old"]])
def test_abbreviated_options_are_refused(argv: list[str]) -> None:
    # An abbreviation would survive the exact names a shard's command line strips: with
    # `--engine a,b` every child shard would fan out again (or fail).
    with pytest.raises(UsageError, match="unrecognized arguments"):
        build_parser().parse_args(argv)


def test_an_abbreviated_engines_option_is_exit_2_and_starts_no_shard(
        folder: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_matrix.run import fanout

    def never(*args: Any) -> list[Path]:
        raise AssertionError("no shard may start")

    monkeypatch.setattr(fanout, "run_on_engines", never)
    err = fails_cleanly(folder, capsys, ["run", "--matrix", "{dir}/valid.yaml",
                                         "--engine", "a,b"])
    assert "--engine a,b" in err


def test_a_shard_command_line_parses_to_one_shard_without_engines(tmp_path: Path) -> None:
    from repro_matrix.run.fanout import shard_command

    argv = ["run", "--engines", "a,b", "--case", "demo", "--results=out", "--python", "3.11"]
    child = shard_command(argv, 2, 2, tmp_path / "shard-2")
    assert child[1:3] == ["-m", "repro_matrix"]
    args = build_parser().parse_args(child[3:])
    assert (args.engines, args.shard, args.results) == (None, "2/2", tmp_path / "shard-2")
    assert (args.case, args.python) == (["demo"], ["3.11"])


def test_unreachable_engine_is_exit_3_one_line_and_no_results(
        folder: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(self: socket.socket, address: object) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(socket.socket, "connect", missing)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    results = folder / "results"
    code = main(["run", "--matrix", str(folder / "valid.yaml"), "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 3
    assert len(err.splitlines()) == 1
    assert "no Docker engine answers at unix:///nonexistent.sock" in err
    assert "scripts/ensure-docker.sh" in err and "DOCKER_HOST" in err
    assert not results.exists()


def _stored_case(results: Path) -> Path:
    from repro_matrix import store
    from repro_matrix.model import Status

    stored = record("3.9", "1.0", Status.NOT_REPRODUCED, "exit 0")
    return store.write_cells(results, "demo", [stored], {"claim": {}})


def test_full_disk_while_writing_results_is_one_line_and_no_partial_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:

    cells = _stored_case(tmp_path)

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    assert main(["report", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"repro-matrix: error: {cells.parent}/")
    assert "cannot write results (No space left on device)" in err and "--results" in err
    assert sorted(p.name for p in cells.parent.iterdir()) == ["cells.json"]
    assert not (tmp_path / "report.md").exists()


def test_results_of_another_schema_version_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = _stored_case(tmp_path)
    cells.write_text(cells.read_text().replace('"schema_version": 1', '"schema_version": 99'))
    assert main(["report", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert f"{cells}: results schema 99 is not 1" in err


# ---- signals --------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_interrupt_in_one_line_and_stop_the_containers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        signum: int, code: int) -> None:
    from repro_matrix import cli
    from repro_matrix.containers import engine

    stopped = threading.Event()
    def stop_all() -> int:
        stopped.set()
        return 0

    monkeypatch.setattr(engine, "stop_all", stop_all)

    def interrupted_report(args: object) -> int:
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the handler interrupts this at once
        return 0

    monkeypatch.setattr(cli, "_report", interrupted_report)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    started = time.monotonic()
    assert main(["report", "--results", str(tmp_path)]) == code
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"repro-matrix: interrupted ({signal.Signals(signum).name}); finished cells are kept in "
        "the results folder, run the same command again to finish"]
    assert stopped.wait(5)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_os_error_outside_the_results_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_matrix import cli

    def full_cache(args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/cache/locks/x.json")

    monkeypatch.setattr(cli, "_report", full_cache)
    assert main(["report", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "repro-matrix: error: /cache/locks/x.json: No space left on device; free space or fix "
        "the path or its permissions, then run the same command again"]


def test_syntax_error_in_the_repro_is_one_line_before_the_engine(
        folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_matrix.containers import engine

    def no_engine() -> None:
        raise AssertionError("the engine must not be contacted")

    monkeypatch.setattr(engine, "connect", no_engine)
    (folder / "repro.py").write_text("import sys\nif True\n    sys.exit(1)\n")
    err = fails_cleanly(folder, capsys, ["run", "--matrix", str(folder / "valid.yaml")])
    assert err.startswith(f"repro-matrix: error: {(folder / 'repro.py').resolve()}:2: "
                          "SyntaxError: ")  # the message itself is the host Python's


def test_plan_shows_the_axis(folder: Path, capsys: pytest.CaptureFixture[str],
                             fake_index: None) -> None:
    path = matrix_with(folder, "axis.yaml", axis={"package": "dep"})
    assert main(["plan", "--matrix", path, "--axis-versions", ">=3"]) == 0
    out = capsys.readouterr().out
    assert "demo: 3 versions × 1 dep releases × 1 Pythons = 3 cells" in out
    assert "  dep (axis): 3.0" in out


@pytest.mark.parametrize(("changes", "extra", "expected"), [
    ({"axis": {"package": "dep"}}, [], "try: case demo has an axis: name one of its releases "
                                       "with --axis-version"),
    ({}, ["--axis-version", "2.0"], "try: --axis-version: case demo has no axis"),
])
def test_try_wants_an_axis_release_exactly_when_the_case_has_an_axis(
        folder: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any],
        extra: list[str], expected: str) -> None:
    path = matrix_with(folder, "try.yaml", **changes)
    assert main(["try", "--matrix", path, "--python", "3.9", "--version", "1.0", *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert expected in err
