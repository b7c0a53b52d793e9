"""scaffold: `new` appends a case to the matrix file's text and writes a repro skeleton."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from repro_matrix import cli, options
from repro_matrix.errors import IndexUnavailable, UsageError
from repro_matrix.model import DistFile, Release
from repro_matrix.spec import config, scaffold
from repro_matrix.spec.scaffold import (
    CaseDraft,
    case_entry,
    choose_module,
    insert_case,
    learn_module,
    wheel_top_level,
    write_case,
)

MATRIX = """\
# The cases. A comment at the top stays.
cases:
  - id: first
    package: demo           # an inline comment stays too
    repro: first.py
    outcome: {signature: "boom"}

  # a comment inside the list stays where it is

# This comment belongs to base_images and stays above it.
base_images:
  provider: auto
"""


@pytest.fixture(autouse=True)
def _no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # `new` asks the index for a wheel: here it answers with the project name, as offline.
    monkeypatch.setattr(scaffold, "learn_module", lambda package, cache_dir, index=None: (
        scaffold.guessed_module(package), f"import: {scaffold.guessed_module(package)} (test)"))


def _matrix(tmp_path: Path, text: str = MATRIX) -> Path:
    (tmp_path / "first.py").write_text("print('x')\n")
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    return path


def test_new_case_is_appended_to_the_list_and_every_other_line_is_kept(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    made = write_case(CaseDraft("mypkg-12", "MyPkg"), matrix)
    text = matrix.read_text()
    old_lines = MATRIX.splitlines()
    new_lines = text.splitlines()
    added = [line for line in new_lines if line not in old_lines]
    assert [line for line in new_lines if line not in added] == old_lines  # nothing else moved
    assert text.index("  - id: mypkg-12") < text.index("# This comment belongs")
    loaded = config.load(matrix)
    assert [c.id for c in loaded.cases] == ["first", "mypkg-12"]
    case = loaded.cases[1]
    assert case.import_name == "mypkg"
    assert case.repro == made.repro.resolve()
    assert case.outcome.signatures == ("BUG: mypkg-12 reproduced",)
    assert not made.created_matrix


def test_missing_matrix_file_is_created(tmp_path: Path) -> None:
    matrix = tmp_path / "sub" / "matrix.yaml"
    made = write_case(CaseDraft("a-1", "attrs", import_name="attr"), matrix)
    assert made.created_matrix
    assert config.load(matrix).cases[0].import_name == "attr"


def test_file_without_cases_gets_a_cases_key(tmp_path: Path) -> None:
    text = insert_case("base_images:\n  provider: auto", "  - id: x\n", tmp_path / "m.yaml")
    assert text == "base_images:\n  provider: auto\n\ncases:\n  - id: x\n"


def test_inline_cases_list_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="line 1: `cases:` is written inline"):
        insert_case("cases: []\n", "  - id: x\n", tmp_path / "m.yaml")


def test_refuses_to_overwrite_a_case_or_a_repro(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    before = matrix.read_text()
    with pytest.raises(UsageError, match="case 'first' exists already"):
        write_case(CaseDraft("first", "demo"), matrix)
    (tmp_path / "cases" / "taken").mkdir(parents=True)
    (tmp_path / "cases" / "taken" / "repro.py").write_text("mine\n")
    with pytest.raises(UsageError, match="exists already; not overwritten"):
        write_case(CaseDraft("taken", "demo"), matrix)
    assert (tmp_path / "cases" / "taken" / "repro.py").read_text() == "mine\n"
    assert matrix.read_text() == before


@pytest.mark.parametrize(("case_id", "package"), [("Bad_ID", "demo"), ("ok", "not a name")])
def test_bad_id_or_package_is_a_usage_error(tmp_path: Path, case_id: str, package: str) -> None:
    with pytest.raises(UsageError):
        write_case(CaseDraft(case_id, package), _matrix(tmp_path))


def test_claim_is_written_when_the_draft_has_one() -> None:
    entry = case_entry(CaseDraft("x", "demo", first_fixed="1.2", claim_source="CHANGES, 1.2"),
                       "cases/x/repro.py")
    assert '    claim:\n      first_fixed: "1.2"\n      source: "CHANGES, 1.2"\n' in entry


def test_skeleton_compiles_and_says_cannot_tell_until_written(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    made = write_case(CaseDraft("skel", "demo", import_name="json"), matrix)
    text = made.repro.read_text()
    assert text.startswith("# /// script\n") and "\n# ///\n" in text  # PEP 723 block
    assert "BUG: skel reproduced" in text  # the signature the matrix entry expects
    run = subprocess.run([sys.executable, str(made.repro)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 125, run.stderr


def test_cli_new_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = _matrix(tmp_path)
    assert cli.main(["new", "c-1", "--package", "demo", "--matrix", str(matrix)]) == 0
    assert cli.main(["new", "c-1", "--package", "demo", "--matrix", str(matrix)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("repro-matrix: error: ") and "exists already" in err[-1]


@pytest.mark.parametrize(("extra", "message"), [
    ([], "has 2 cases; choose one with --case"),
    (["--case", "first", "--python", "3.9,3.11"], "one --python and one --version"),
    (["--case", "nope"], "nope"),
])
def test_try_names_one_cell_or_fails_in_one_line_before_the_engine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        extra: list[str], message: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # never reached
    matrix = _matrix(tmp_path)
    write_case(CaseDraft("second", "demo"), matrix)
    args = ["try", "--matrix", str(matrix), "--python", "3.9", "--version", "1.0", *extra]
    if "--python" in extra:
        args[3:5] = []  # the test gives its own --python
    assert cli.main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


def test_new_takes_the_pythons_and_checks_their_spelling(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    assert cli.main(["new", "p-1", "--package", "demo", "--matrix", str(matrix),
                     "--python", "3.11,3.13"]) == 0
    assert config.load(matrix).cases[1].pythons == ("3.11", "3.13")
    assert cli.main(["new", "p-2", "--package", "demo", "--matrix", str(matrix),
                     "--python", "py3"]) == 2


def test_try_stops_at_a_syntax_error_before_the_engine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # never reached
    matrix = _matrix(tmp_path)
    (tmp_path / "first.py").write_text("print('x'\n")
    assert cli.main(["try", "--matrix", str(matrix), "--python", "3.9", "--version",
                     "1.0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "first.py:1" in line and "SyntaxError" in line


def test_each_claim_hint_stays_with_its_own_case_after_several_new_calls(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    for case_id in ("a-1", "b-2", "c-3"):
        assert cli.main(["new", case_id, "--package", "demo", "--matrix", str(matrix)]) == 0
    lines = matrix.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("  - id: ")]
    assert len(starts) == 3
    for start, end in zip(starts, [*starts[1:], len(lines)]):
        own = lines[start:end]
        # Every case ends with its own commented claim hint, none with the previous one's.
        assert [line.strip() for line in own[-3:]] == [
            "# claim:                   # what a changelog or an issue says",
            '#   first_fixed: "X.Y.Z"', '#   source: "where the claim comes from"'], own
        assert sum("# claim:" in line for line in own) == 1
    assert [c.id for c in config.load(matrix).cases] == ["a-1", "b-2", "c-3"]


def test_a_comment_at_the_left_margin_after_the_list_stays_with_the_next_key() -> None:
    text = "cases:\n  - id: a\n    # a's own note\n\n# about base_images\nbase_images: {}\n"
    after = insert_case(text, "  - id: b\n", Path("m.yaml"))
    assert after == ("cases:\n  - id: a\n    # a's own note\n  - id: b\n\n"
                     "# about base_images\nbase_images: {}\n")


# ---- the import name, from the newest release's wheel ------------------------------------------


def _wheel(folder: Path, name: str, files: dict[str, str]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def test_top_level_txt_names_the_modules(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "PyYAML-6.0.2-cp311-cp311-linux_x86_64.whl", {
        "yaml/__init__.py": "", "_yaml/__init__.py": "",
        "PyYAML-6.0.2.dist-info/top_level.txt": "_yaml\nyaml\n",
        "PyYAML-6.0.2.dist-info/RECORD": "yaml/__init__.py,,\n"})
    assert wheel_top_level(wheel) == ["_yaml", "yaml"]


def test_without_top_level_txt_the_record_names_packages_and_modules(tmp_path: Path) -> None:
    record = "\n".join(f"{path},sha256=x,1" for path in [
        "dateutil/__init__.py", "dateutil/tz/tz.py", "dateutil/zoneinfo/data.tar.gz",
        "six.py", "_speedups.cpython-311-x86_64-linux-gnu.so", "README.rst",
        "python_dateutil-2.9.0.dist-info/METADATA", "python_dateutil-2.9.0.dist-info/RECORD",
        "python_dateutil-2.9.0.data/scripts/tool", "__pycache__/six.cpython-311.pyc"])
    wheel = _wheel(tmp_path, "python_dateutil-2.9.0-py3-none-any.whl", {
        "dateutil/__init__.py": "", "python_dateutil-2.9.0.dist-info/RECORD": record})
    assert wheel_top_level(wheel) == ["dateutil", "six", "_speedups"]
    bare = _wheel(tmp_path, "bare-1.0-py3-none-any.whl", {"bare/__init__.py": ""})
    assert wheel_top_level(bare) == ["bare"]  # no RECORD either: the file names


@pytest.mark.parametrize(("package", "names", "module"), [
    ("python-dateutil", ["dateutil"], "dateutil"),
    ("PyYAML", ["_yaml", "yaml"], "yaml"),
    ("attrs", ["attr", "attrs"], "attrs"),
    ("Pillow", ["PIL"], "PIL"),
    ("foo", ["tests", "foo_core"], "foo_core"),
    ("cffi", ["_cffi_backend"], "_cffi_backend"),
])
def test_the_module_is_the_one_the_project_name_points_at(package: str, names: list[str],
                                                          module: str) -> None:
    assert choose_module(package, names) == module


class _Index:
    """The index as `new` uses it: a project's releases and a file download."""

    def __init__(self, releases: list[Release], wheels: dict[str, Path]) -> None:
        self._releases = releases
        self.wheels = wheels
        self.fetched: list[str] = []

    def releases(self, project: str) -> list[Release]:
        return self._releases

    def download(self, dist: DistFile, dest_dir: Path) -> Path:
        self.fetched.append(dist.filename)
        return self.wheels[dist.filename]


def _release(version: str, *names: str, yanked: bool = False) -> Release:
    files = tuple(DistFile(n, f"https://files.invalid/{n}", "", None, None, yanked)
                  for n in names)
    return Release(version, datetime(2024, 1, 1, tzinfo=timezone.utc), yanked, files)


def test_new_reads_the_wheel_of_the_newest_final_release(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "python_dateutil-2.9.0-py2.py3-none-any.whl", {
        "python_dateutil-2.9.0.dist-info/top_level.txt": "dateutil\n"})
    index = _Index([
        _release("2.8.0", "python_dateutil-2.8.0-py2.py3-none-any.whl"),
        _release("2.9.0", "python_dateutil-2.9.0-cp311-cp311-linux_x86_64.whl",
                 "python_dateutil-2.9.0-py2.py3-none-any.whl", "python_dateutil-2.9.0.tar.gz"),
        _release("3.0.0rc1", "python_dateutil-3.0.0rc1-py3-none-any.whl"),
        _release("2.9.1", "python_dateutil-2.9.1-py3-none-any.whl", yanked=True),
    ], {wheel.name: wheel})
    module, note = learn_module("python-dateutil", tmp_path,
                                index)  # type: ignore[arg-type]
    assert module == "dateutil"
    assert index.fetched == [wheel.name]  # the pure-Python wheel of 2.9.0, nothing else
    assert note == f"import: dateutil (from {wheel.name}; pass --import to choose another)"


def test_without_a_wheel_or_an_index_new_falls_back_to_the_project_name(tmp_path: Path) -> None:
    sdist_only = _Index([_release("1.0", "Py-Thing-1.0.tar.gz")], {})
    module, note = learn_module("Py-Thing", tmp_path, sdist_only)  # type: ignore[arg-type]
    assert module == "py_thing" and "no wheel of Py-Thing" in note and "--import" in note

    class Offline(_Index):
        def releases(self, project: str) -> list[Release]:
            raise IndexUnavailable("cannot read the package index for 'py-thing': no route")

    module, note = learn_module("Py-Thing", tmp_path, Offline([], {}))  # type: ignore[arg-type]
    assert module == "py_thing" and "could not read a wheel of Py-Thing" in note


def test_cli_new_writes_the_learned_import_and_prints_where_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(scaffold, "learn_module", lambda package, cache_dir, index=None: (
        "yaml", "import: yaml (from PyYAML-6.0.2-cp311-cp311-linux_x86_64.whl; it also installs "
        "_yaml; pass --import to choose another)"))
    matrix = tmp_path / "matrix.yaml"
    assert cli.main(["new", "y-1", "--package", "PyYAML", "--matrix", str(matrix)]) == 0
    assert "import: yaml (from PyYAML-6.0.2" in capsys.readouterr().err
    assert yaml.safe_load(matrix.read_text())["cases"][0]["import"] == "yaml"
    repro = (tmp_path / "cases" / "y-1" / "repro.py").read_text()
    assert "\nimport yaml\n" in repro
    assert cli.main(["new", "y-2", "--package", "PyYAML", "--import", "yaml_ext",
                     "--matrix", str(matrix)]) == 0  # --import wins, nothing asked
    assert config.load(matrix).cases[1].import_name == "yaml_ext"


# ---- wording: the console script's name, and try's own option ---------------------------------


def test_usage_names_the_console_script() -> None:
    assert options.build_parser().format_usage().startswith("usage: repro-matrix ")


@pytest.mark.parametrize(("version", "message"), [
    ("9.9", "try --version: demo has no release 9.9 on the index; `repro-matrix plan --case "
            "first` lists the case's releases"),
    ("9.x", "try --version: "),
])
def test_try_names_its_own_option_when_the_release_is_wrong(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        version: str, message: str) -> None:
    from repro_matrix.containers import engine
    from repro_matrix.resolve.index import IndexClient

    monkeypatch.setattr(engine, "connect", lambda: None)
    monkeypatch.setattr(IndexClient, "releases", lambda self, project: [
        Release("1.0", None, False)])
    matrix = _matrix(tmp_path)
    assert cli.main(["try", "--matrix", str(matrix), "--python", "3.9", "--version",
                     version]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"repro-matrix: error: {message}"), line
    assert "--versions" not in line


# ---- a two-axis question: `new --axis` ------------------------------------------------------


def test_new_with_an_axis_writes_a_compatibility_case_the_loader_reads(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    assert cli.main(["new", "app-lib", "--package", "app", "--versions", ">=2.0",
                     "--axis", "lib", "--axis-versions", ">=1.1,<4", "--requirements",
                     "helper>=1,<2", "--requirements", "other", "--python", "3.11",
                     "--matrix", str(matrix)]) == 0
    case = config.load(matrix).cases[1]
    assert (case.id, case.package, case.versions.spec) == ("app-lib", "app", ">=2.0")
    assert case.axis is not None
    assert (case.axis.package, case.axis.versions.spec) == ("lib", ">=1.1,<4")
    assert case.outcome.kind == "compatibility" and case.outcome.signatures == ()
    assert case.requirements == ("helper>=1,<2", "other")
    assert case.pythons == ("3.11",)
    skeleton = (tmp_path / "cases" / "app-lib" / "repro.py").read_text()
    assert "def works():" in skeleton and "import app\n" in skeleton


def test_the_pair_skeleton_runs_and_cannot_tell_until_written(tmp_path: Path) -> None:
    made = write_case(CaseDraft("pair", "demo", import_name="json", axis="lib"),
                      _matrix(tmp_path))
    run = subprocess.run([sys.executable, str(made.repro)], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 125, run.stderr


def test_new_takes_signatures_and_versions_for_a_bug_case(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    assert cli.main(["new", "b-1", "--package", "demo", "--versions", "<3",
                     "--signature", "ValueError: boom", "--signature", "KeyError: 'x'",
                     "--matrix", str(matrix)]) == 0
    case = config.load(matrix).cases[1]
    assert case.outcome.kind == "bug" and case.axis is None
    assert case.outcome.signatures == ("ValueError: boom", "KeyError: 'x'")
    assert case.versions.spec == "<3"
    assert 'SIGNATURE = "ValueError: boom"' in (tmp_path / "cases" / "b-1" / "repro.py"
                                                ).read_text()
    paired = CaseDraft("p-1", "demo", axis="lib", signatures=("TypeError: x",))
    assert '      signature: "TypeError: x"' in case_entry(paired, "r.py")


@pytest.mark.parametrize(("extra", "message"), [
    (["--versions", ">>2"], "--versions: '>>2' is not a PEP 440 specifier"),
    (["--axis", "lib", "--axis-versions", "2.0"], "--axis-versions: '2.0' is not"),
    (["--axis-versions", ">=2"], "--axis-versions: given without --axis"),
    (["--axis", "demo"], "--axis: 'demo' is the case's own package"),
    (["--axis", "not a name"], "--axis: 'not a name' is not a valid project name"),
    (["--requirements", "demo>=1"], "names the case's own package"),
    (["--axis", "lib", "--requirements", "Lib==2"], "names the axis package"),
    (["--requirements", "a b c"], "--requirements: 'a b c' is not a requirement"),
    (["--signature", " "], "--signature: empty"),
    (["--from-osv", "x.json", "--axis", "lib"], "--axis does not go with --from-osv"),
])
def test_new_refuses_what_the_loader_would_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
        message: str) -> None:
    matrix = _matrix(tmp_path)
    before = matrix.read_text()
    assert cli.main(["new", "n-1", "--package", "demo", "--matrix", str(matrix), *extra]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line
    assert matrix.read_text() == before
    assert not (tmp_path / "cases" / "n-1").exists()
