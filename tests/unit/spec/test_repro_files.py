"""repro files: PEP 723 metadata, folder contents and their digest, the host-side syntax check."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from repro_matrix.containers import engine
from repro_matrix.errors import UsageError
from repro_matrix.model import Case, Claim, OutcomeRule, VersionSelection
from repro_matrix.spec import repro_files

SCRIPT = '''\
#!/usr/bin/env python
# /// script
# requires-python = ">=3.8"
# dependencies = [
#   "attrs>=20",
#   "six",
# ]
# ///
import attrs
'''


def test_pep723_block_gives_dependencies_and_requires_python() -> None:
    found = repro_files.script_metadata(SCRIPT, "repro.py")
    assert found == repro_files.ScriptMetadata(("attrs>=20", "six"), ">=3.8")


def test_no_block_and_other_block_types_declare_nothing() -> None:
    assert repro_files.script_metadata("import os\n", "r.py") == repro_files.ScriptMetadata()
    tool = "# /// pyproject\n# [tool.x]\n# a = 1\n# ///\n"
    assert repro_files.script_metadata(tool, "r.py") == repro_files.ScriptMetadata()


@pytest.mark.parametrize(("text", "expected"), [
    (SCRIPT + SCRIPT, "more than one '# /// script' block"),
    ("# /// script\n# dependencies = [\n# ///\n", "not TOML"),
    ("# /// script\n# dependencies = \"six\"\n# ///\n", "dependencies: expected a list"),
    ("# /// script\n# dependencies = [\"six >>> 1\"]\n# ///\n",
     "dependencies[0]: 'six >>> 1' is not a PEP 508 requirement"),
    ("# /// script\n# dependencies = [\"six @ https://example.invalid/six.whl\"]\n# ///\n",
     "direct references"),
    ("# /// script\n# requires-python = \"3.8+\"\n# ///\n",
     "requires-python: '3.8+' is not a version specifier"),
])
def test_bad_pep723_block_is_one_error_naming_the_file(text: str, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        repro_files.script_metadata(text, "cases/x/repro.py")
    assert info.value.message.startswith("cases/x/repro.py: ")
    assert expected in info.value.message


def make_case(repro: Path, *, folder: bool = False, command: tuple[str, ...] = ()) -> Case:
    return Case(id="demo", package="pkg", import_name="pkg", versions=VersionSelection(),
                pythons=("3.11",), repro=repro, outcome=OutcomeRule(("BOOM",)), claim=Claim(),
                command=command, folder=folder)


def test_folder_files_keep_subfolders_and_skip_host_caches(tmp_path: Path) -> None:
    (tmp_path / "data" / "deep").mkdir(parents=True)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "test_bug.py").write_text("def test_bug():\n    pass\n")
    (tmp_path / "data" / "deep" / "input.txt").write_text("x")
    (tmp_path / "__pycache__" / "test_bug.cpython-311.pyc").write_bytes(b"\0")
    files = repro_files.read_files(tmp_path, folder=True)
    assert list(files) == ["data/deep/input.txt", "test_bug.py"]


def test_an_oversized_folder_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repro_files, "MAX_FOLDER_BYTES", 10)
    (tmp_path / "a.txt").write_text("0123456789abc")
    with pytest.raises(UsageError, match="the repro folder holds more than"):
        repro_files.read_files(tmp_path, folder=True)


def test_folder_digest_changes_with_any_content_or_name() -> None:
    files = {"a.py": b"x = 1\n", "data/b.txt": b"b"}
    digest = repro_files.files_digest(files)
    assert repro_files.files_digest(dict(reversed(files.items()))) == digest
    assert repro_files.files_digest({**files, "data/b.txt": b"c"}) != digest
    assert repro_files.files_digest({"a.py": b"x = 1\n", "data/c.txt": b"b"}) != digest


def test_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    repro = tmp_path / "repro.py"
    repro.write_text("import os\n\ndef broken(:\n    pass\n")
    case = make_case(repro)
    with pytest.raises(UsageError) as info:
        repro_files.check_syntax(case, repro_files.read_files(repro, folder=False))
    assert info.value.exit_code == 2
    assert info.value.one_line() == f"{repro}:3: SyntaxError: invalid syntax"


def test_every_python_file_of_a_folder_is_compiled_and_others_are_not(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "notes.txt").write_text("def (:\n")
    (tmp_path / "pkg" / "helper.py").write_text("x = (\n")
    case = make_case(tmp_path, folder=True, command=("python", "-m", "pytest"))
    with pytest.raises(UsageError, match=r"/pkg/helper\.py:1: SyntaxError: "):
        repro_files.check_syntax(case, repro_files.read_files(tmp_path, folder=True))
    (tmp_path / "pkg" / "helper.py").write_text("x = ()\n")
    repro_files.check_syntax(case, repro_files.read_files(tmp_path, folder=True))


def test_a_script_run_by_the_default_command_is_python_whatever_its_name(tmp_path: Path) -> None:
    repro = tmp_path / "repro"
    repro.write_text("print(\n")
    files = repro_files.read_files(repro, folder=False)
    with pytest.raises(UsageError, match="SyntaxError"):
        repro_files.check_syntax(make_case(repro), files)
    repro_files.check_syntax(replace(make_case(repro), command=("sh", "repro")), files)


def test_folder_tar_has_its_folders_first_and_belongs_to_root() -> None:
    data = engine._tar({"a/b/c.py": b"1", "top.py": b"2"})
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    assert [(m.name, m.isdir()) for m in members] == [("a", True), ("a/b", True),
                                                      ("a/b/c.py", False), ("top.py", False)]
    assert {m.uid for m in members} == {0}
