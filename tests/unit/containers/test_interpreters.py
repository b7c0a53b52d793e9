"""interpreters: discovery from a folder tree, glibc and suite choice, the in-image check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro_matrix.containers import interpreters
from repro_matrix.containers.interpreters import Interpreter, judge_probe


def make_prefix(prefix: Path, python: str, version: str | None = None, header: bool = True,
                shared: bool = False) -> Path:
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / f"python{python}" / "lib-dynload").mkdir(parents=True)
    (prefix / "bin" / f"python{python}").write_bytes(b"\x7fELF GLIBC_2.17 GLIBC_2.34 x")
    if shared:
        (prefix / "lib" / f"libpython{python}.so.1.0").write_bytes(b"\x7fELF GLIBC_2.35")
    if header and version:
        (prefix / "include" / f"python{python}").mkdir(parents=True)
        (prefix / "include" / f"python{python}" / "patchlevel.h").write_text(
            f'#define PY_MINOR_VERSION 6\n#define PY_VERSION      "{version}"\n')
    return prefix


def test_newest_patch_release_of_pyenv_and_uv_wins(tmp_path: Path) -> None:
    pyenv, uv = tmp_path / "pyenv", tmp_path / "uv"
    make_prefix(pyenv / "versions" / "3.6.9", "3.6", "3.6.9")
    make_prefix(pyenv / "versions" / "3.6.15", "3.6", "3.6.15", header=False)
    make_prefix(pyenv / "versions" / "3.7.1", "3.7", "3.7.1")
    (pyenv / "versions" / "3.6.16").mkdir()  # an empty folder is no interpreter
    make_prefix(uv / "cpython-3.6.12-linux-x86_64-gnu", "3.6", "3.6.12")
    found = interpreters.find("3.6", {}, {"PYENV_ROOT": str(pyenv)}, uv)
    assert isinstance(found, Interpreter)
    assert (found.version, found.origin) == ("3.6.15", "pyenv")
    assert found.prefix == pyenv / "versions" / "3.6.15"
    ordered = interpreters.candidates("3.6", pyenv, uv)
    assert [(i.version, i.origin) for i in ordered] == [
        ("3.6.15", "pyenv"), ("3.6.12", "uv"), ("3.6.9", "pyenv")]


def test_uv_interpreter_is_found_when_pyenv_has_none(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    make_prefix(uv / "cpython-3.12.4-linux-x86_64-gnu", "3.12", "3.12.4")
    found = interpreters.find("3.12", {}, {"PYENV_ROOT": str(tmp_path / "none")}, uv)
    assert isinstance(found, Interpreter)
    assert (found.version, found.origin) == ("3.12.4", "uv")


def test_explicit_prefix_wins_and_a_standalone_archive_top_is_accepted(tmp_path: Path) -> None:
    pyenv = tmp_path / "pyenv"
    make_prefix(pyenv / "versions" / "3.6.15", "3.6", "3.6.15")
    standalone = make_prefix(tmp_path / "pbs" / "python" / "install", "3.6", "3.6.8")
    found = interpreters.find("3.6", {"3.6": str(tmp_path / "pbs")},
                              {"PYENV_ROOT": str(pyenv)}, None)
    assert isinstance(found, Interpreter)
    assert (found.version, found.origin, found.prefix) == ("3.6.8", "explicit", standalone)


def test_explicit_prefix_of_another_python_is_refused(tmp_path: Path) -> None:
    make_prefix(tmp_path / "p", "3.7", "3.7.3")
    reason = interpreters.find("3.6", {"3.6": str(tmp_path / "p")}, {}, None)
    assert isinstance(reason, str)
    assert "base_images.interpreters.3.6" in reason and "bin/python3.6" in reason


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    reason = interpreters.find("3.8", {}, {"PYENV_ROOT": str(tmp_path)}, tmp_path / "uv")
    assert isinstance(reason, str)
    assert f"{tmp_path}/versions" in reason and "base_images.interpreters" in reason


def test_glibc_needed_by_files_reads_them_a_chunk_at_a_time(tmp_path: Path) -> None:
    binary = tmp_path / "libpython.so"
    binary.write_bytes(b"x" * 13 + b"GLIBC_2.35" + b"y" * 20 + b"GLIBC_2.17")
    # Chunks of 16 bytes cut "GLIBC_2.35" in two: the overlap still finds it.
    assert interpreters.glibc_needed_by([binary], chunk=16) == (2, 35)


def test_glibc_needed_is_the_newest_symbol_version() -> None:
    assert interpreters.glibc_needed([b"GLIBC_2.2.5 GLIBC_2.17", b"GLIBC_2.34 GLIBC_PRIVATE"]) \
        == (2, 34)
    assert interpreters.glibc_needed([b"static"]) == (2, 0)


@pytest.mark.parametrize(("needed", "suite"), [
    ((2, 0), "bullseye"), ((2, 31), "bullseye"), ((2, 32), "bookworm"), ((2, 36), "bookworm"),
    ((2, 37), "trixie"), ((2, 99), None),
])
def test_oldest_suite_whose_glibc_suffices(needed: tuple[int, int], suite: str | None) -> None:
    assert interpreters.oldest_suite(needed) == suite


def test_runpath_into_the_install_path_is_kept(tmp_path: Path) -> None:
    prefix = tmp_path / "3.8.18"
    assert interpreters.keeps_runpath(f"xx{prefix}/lib\0".encode(), prefix)
    assert not interpreters.keeps_runpath(b"xx/root/.pyenv/versions/3.8.18/lib\0", prefix)
    assert interpreters.keeps_runpath(b"$ORIGIN/../lib", prefix)


def test_parents_to_traverse() -> None:
    assert interpreters.parents_to_traverse(Path("/root/.pyenv/versions/3.6.15")) == [
        "/root", "/root/.pyenv", "/root/.pyenv/versions"]


def probe(modules: dict[str, dict[str, object]] | None = None,
          other: dict[str, list[str]] | None = None, interpreter: list[str] | None = None) -> str:
    fine = {"state": "file", "missing": [], "imports": True}
    checked: dict[str, dict[str, object]] = {m: dict(fine) for m in interpreters.REQUIRED_MODULES}
    checked.update(modules or {})
    payload = {"version": "3.6.15", "interpreter": interpreter or [], "modules": checked,
               "other": other or {}}
    return "some noise\n" + json.dumps(payload) + "\n"


def test_a_healthy_interpreter_passes_without_notes() -> None:
    assert judge_probe(0, probe(), "3.6") == interpreters.ProbeVerdict("", ())


def test_a_module_missing_a_library_names_the_library() -> None:
    verdict = judge_probe(0, probe({"ssl": {"state": "file", "missing": ["libssl.so.1.1"],
                                            "imports": False, "error": "ImportError: x"}}), "3.6")
    assert verdict.problem == "libssl.so.1.1 not found for _ssl"


def test_a_module_the_build_left_out_is_only_noted() -> None:
    verdict = judge_probe(0, probe(
        {"_hashlib": {"state": "absent", "imports": False, "error": "ModuleNotFoundError"}},
        other={"_tkinter": ["libtk8.6.so"], "_curses": ["libncursesw.so.6"]}), "3.6")
    assert verdict.problem == ""
    assert verdict.notes == ("built without _hashlib", "_curses unusable (libncursesw.so.6 not "
                             "found)")


def test_a_module_that_does_not_import_for_another_reason_is_a_problem() -> None:
    verdict = judge_probe(0, probe({"ctypes": {"state": "file", "missing": [], "imports": False,
                                               "error": "ImportError: undefined symbol"}}), "3.6")
    assert verdict.problem == "ctypes does not import: ImportError: undefined symbol"


def test_an_interpreter_that_cannot_start_names_the_library() -> None:
    output = ("python3.8: error while loading shared libraries: libpython3.8.so.1.0: cannot "
              "open shared object file: No such file or directory\n")
    assert judge_probe(127, output, "3.8").problem == "libpython3.8.so.1.0 not found for python3.8"
    assert judge_probe(1, "Segmentation fault\n", "3.8").problem == \
        "python3.8 does not run in the base: Segmentation fault"
    assert judge_probe(0, probe(interpreter=["libpython3.8.so.1.0"]), "3.8").problem == \
        "libpython3.8.so.1.0 not found for python3.8"
