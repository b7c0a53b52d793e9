"""config: the matrix file loads; each mistake is a UsageError naming file and key."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_matrix import pythons
from repro_matrix.errors import UsageError
from repro_matrix.model import MatrixConfig, Release
from repro_matrix.spec import config, plan

REPO = Path(__file__).resolve().parents[3]

VALID: dict[str, Any] = {
    "cases": [{
        "id": "demo",
        "package": "My-Pkg",
        "repro": "repro.py",
        "pythons": ["3.11", "3.9", "3.9"],
        "versions": {"spec": ">=1.0"},
        "outcome": {"signature": "RuntimeError: BOOM"},
        "claim": {"first_fixed": "1.1", "source": "changelog"},
    }],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "repro.py").write_text("raise SystemExit(0)\n")
    return tmp_path


def write(folder: Path, data: Any) -> Path:
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def with_value(keys: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    target: Any = data
    for key in keys[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
    target[keys[-1]] = value
    return data


def load_error(path: Path) -> str:
    with pytest.raises(UsageError) as info:
        config.load(path)
    return info.value.message


def test_repo_matrix_loads() -> None:
    path = REPO / "matrix.yaml"
    matrix = config.load(path)
    known = dict(matrix.python_release_dates)
    assert matrix.cases
    assert matrix.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    for case in matrix.cases:
        assert case.repro.is_dir() if case.folder else case.repro.is_file()
        assert case.outcome.signatures
        assert set(case.pythons) <= set(known)


def test_valid_case_gets_defaults_and_normalised_fields(folder: Path) -> None:
    matrix = config.load(write(folder, VALID))
    (case,) = matrix.cases
    assert case.import_name == "my_pkg"
    assert case.pythons == ("3.9", "3.11")
    assert case.repro == (folder / "repro.py").resolve()
    assert case.outcome.signatures == ("RuntimeError: BOOM",)
    assert case.outcome.timeout_s == 60.0
    assert case.claim.first_fixed == "1.1"
    assert matrix.era.max_attempts == 5
    assert matrix.providers.provider == "auto"


def test_pythons_default_to_every_known_release_including_added_ones(folder: Path) -> None:
    data = copy.deepcopy(VALID)
    del data["cases"][0]["pythons"]
    data["python_release_dates"] = {"3.15": "2026-10-01"}
    (case,) = config.load(write(folder, data)).cases
    assert case.pythons == (*sorted(pythons.RELEASE_DATES, key=pythons.sort_key), "3.15")


@pytest.mark.parametrize(("keys", "value", "expected"), [
    (("cases", 0, "versions", "specs"), ">=1", ["cases[0].versions.specs", "unknown key",
                                                "did you mean 'spec'"]),
    (("case",), [], ["case: unknown key", "did you mean 'cases'"]),
    (("cases", 0, "outcome", "timeout"), "sixty", ["cases[0].outcome.timeout",
                                                   "expected a number, got str"]),
    (("cases", 0, "versions", "include_yanked"), "yes", ["cases[0].versions.include_yanked",
                                                         "expected true or false"]),
    (("cases", 0, "outcome"), ["BOOM"], ["cases[0].outcome", "expected a mapping, got list"]),
    (("cases", 0, "repro"), "missing.py", ["cases[0].repro", "no such file"]),
    (("cases", 0, "pythons"), ["3.9", "3.99"], ["cases[0].pythons[1]", "unknown Python 3.99"]),
    (("cases", 0, "pythons"), ["2.7"], ["cases[0].pythons[0]", "not a Python version"]),
    (("cases", 0, "versions", "spec"), ">>1.0", ["cases[0].versions.spec",
                                                 "not a PEP 440 specifier"]),
    (("cases", 0, "claim", "first_fixed"), "1.0.x", ["cases[0].claim.first_fixed",
                                                     "'1.0.x' is not a version"]),
    (("cases", 0, "claim", "introduced"), "soon", ["cases[0].claim.introduced",
                                                   "not a version"]),
    (("cases", 0, "id"), "Demo Case", ["cases[0].id", "lowercase"]),
    (("era", "max_attempts"), 0, ["era.max_attempts", "at least 1"]),
])
def test_invalid_value_names_file_and_key_path(folder: Path, keys: tuple[str | int, ...],
                                               value: Any, expected: list[str]) -> None:
    path = write(folder, with_value(keys, value))
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    for text in expected:
        assert text in message


def test_missing_required_key_is_named(folder: Path) -> None:
    data = copy.deepcopy(VALID)
    del data["cases"][0]["outcome"]["signature"]
    assert "cases[0].outcome.signature: missing" in load_error(write(folder, data))


def test_duplicate_case_id_names_the_second_case(folder: Path) -> None:
    data = copy.deepcopy(VALID)
    data["cases"].append(copy.deepcopy(data["cases"][0]))
    message = load_error(write(folder, data))
    assert "cases[1].id" in message
    assert "duplicate case id 'demo'" in message


def test_malformed_yaml_reports_line(folder: Path) -> None:
    path = folder / "matrix.yaml"
    path.write_text("cases:\n  - id: demo\n   package: pkg\n")
    message = load_error(path)
    assert message.startswith(f"{path}: line 3, column ")
    assert "malformed YAML" in message


def test_missing_matrix_file_is_usage_error(tmp_path: Path) -> None:
    assert "no such matrix file" in load_error(tmp_path / "absent.yaml")


UNQUOTED_VERSION = """\
cases:
  - id: demo
    package: pkg
    repro: repro.py
    outcome: {signature: BOOM}
    claim: {first_fixed: 1.10}
"""


def test_unquoted_float_version_is_not_silently_truncated(folder: Path) -> None:
    path = folder / "matrix.yaml"
    path.write_text(UNQUOTED_VERSION)
    try:
        matrix = config.load(path)
    except UsageError:
        return
    assert matrix.cases[0].claim.first_fixed == "1.10"


def test_undecodable_matrix_file_is_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_bytes(b"cases:\n  - id: d\xffmo\n")
    assert str(path) in load_error(path)


def test_empty_matrix_file_message_has_no_empty_key_path(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text("")
    assert ": :" not in load_error(path)


# ---- limits: memory, pids, tmpfs and timeout per case --------------------------------------


def test_limits_default_to_the_standard_sandbox(folder: Path) -> None:
    (case,) = config.load(write(folder, VALID)).cases
    assert (case.outcome.memory, case.outcome.pids, case.outcome.tmpfs) == ("512m", 256, "64m")


def test_limits_are_read_and_normalised(folder: Path) -> None:
    data = with_value(("cases", 0, "limits"), {"memory": "1G", "pids": 32, "tmpfs": "8m",
                                               "timeout": 5})
    (case,) = config.load(write(folder, data)).cases
    assert (case.outcome.memory, case.outcome.pids, case.outcome.tmpfs) == ("1g", 32, "8m")
    assert case.outcome.timeout_s == 5.0


@pytest.mark.parametrize(("limits", "expected"), [
    ({"memory": "lots"}, ["cases[0].limits.memory", "'lots' is not a size", "'512m'"]),
    ({"memory": "1m"}, ["cases[0].limits.memory", "must be at least 6m"]),
    ({"memory": 3.5}, ["cases[0].limits.memory", "read as a number"]),
    ({"pids": "many"}, ["cases[0].limits.pids", "expected a whole number, got str"]),
    ({"pids": 0}, ["cases[0].limits.pids", "must be at least 1"]),
    ({"pids": True}, ["cases[0].limits.pids", "expected a whole number, got bool"]),
    ({"tmpfs": "12"}, ["cases[0].limits.tmpfs", "must be at least 1k"]),
    ({"timeout": 0}, ["cases[0].limits.timeout", "must be at least 1"]),
    ({"mem": "64m"}, ["cases[0].limits.mem", "unknown key", "did you mean 'memory'"]),
    (["512m"], ["cases[0].limits", "expected a mapping, got list"]),
])
def test_invalid_limits_name_file_and_key(folder: Path, limits: Any,
                                          expected: list[str]) -> None:
    path = write(folder, with_value(("cases", 0, "limits"), limits))
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    for text in expected:
        assert text in message


def test_timeout_given_twice_is_refused(folder: Path) -> None:
    data = with_value(("cases", 0, "limits"), {"timeout": 5})
    data["cases"][0]["outcome"]["timeout"] = 10
    message = load_error(write(folder, data))
    assert "cases[0].limits.timeout: also given as cases[0].outcome.timeout" in message


# ---- repro files ----------------------------------------------------------------------------


def test_repro_folder_without_command_is_one_error(folder: Path) -> None:
    (folder / "scripts").mkdir()
    (folder / "scripts" / "test_x.py").write_text("def test_x():\n    pass\n")
    message = load_error(write(folder, with_value(("cases", 0, "repro"), "scripts")))
    assert message.startswith(f"{folder / 'matrix.yaml'}: cases[0].command: missing; a repro "
                              "folder needs the command")


def test_empty_repro_folder_is_named(folder: Path) -> None:
    (folder / "scripts" / "sub").mkdir(parents=True)
    message = load_error(write(folder, with_value(("cases", 0, "repro"), "scripts")))
    assert "cases[0].repro" in message and "is an empty folder" in message


def test_unreadable_repro_is_named(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = Path.open

    def guarded(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == "repro.py":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded)
    message = load_error(write(folder, VALID))
    assert "cases[0].repro: cannot read" in message and "Permission denied" in message


# ---- what only the package index can tell ----------------------------------------------------


def releases(*versions: str) -> list[Release]:
    return [Release(v, None, False) for v in versions]


def index(project: str) -> list[Release]:
    if project != "My-Pkg":
        raise UsageError(f"the package index has no project '{project}'",
                         "check the case's package name in the matrix file")
    return releases("0.9", "1.0", "1.1", "2.0")


def index_error(matrix: MatrixConfig, selection: plan.Selection | None = None) -> str:
    with pytest.raises(UsageError) as info:
        config.check_against_index(matrix, index, selection)
    return info.value.message


def test_known_package_and_claim_in_range_pass(folder: Path) -> None:
    config.check_against_index(config.load(write(folder, VALID)), index)


@pytest.mark.parametrize(("keys", "value", "expected"), [
    (("cases", 0, "package"), "nope", "cases[0].package: the package index has no project "
                                      "'nope'"),
    (("cases", 0, "claim", "first_fixed"), "1.0.5", "cases[0].claim.first_fixed: My-Pkg has no "
                                                    "release 1.0.5 on the package index"),
    (("cases", 0, "versions", "spec"), ">=99", "cases[0].versions.spec: '>=99' selects no "
                                               "release of My-Pkg"),
])
def test_index_checks_name_file_and_key(folder: Path, keys: tuple[str | int, ...], value: Any,
                                        expected: str) -> None:
    path = write(folder, with_value(keys, value))
    message = index_error(config.load(path))
    assert message == f"{path}: {expected}"


def test_narrowed_versions_skip_the_range_checks_but_not_existence(folder: Path) -> None:
    narrowed = plan.Selection(versions="1.1")
    outside = config.load(write(folder, with_value(("cases", 0, "claim", "first_fixed"), "0.9")))
    config.check_against_index(outside, index, narrowed)
    absent = config.load(write(folder, with_value(("cases", 0, "claim", "first_fixed"), "3.0")))
    assert "has no release 3.0" in index_error(absent, narrowed)


def test_only_selected_cases_are_checked(folder: Path) -> None:
    data = copy.deepcopy(VALID)
    data["cases"].append({**data["cases"][0], "id": "other", "package": "nope"})
    matrix = config.load(write(folder, data))
    config.check_against_index(matrix, index, plan.Selection(case_ids=("demo",)))
    assert "cases[1].package" in index_error(matrix)


# ---- repro requirements, folders, commands, env ---------------------------------------------


def test_plain_case_keeps_the_old_defaults(folder: Path) -> None:
    (case,) = config.load(write(folder, VALID)).cases
    assert (case.command, case.env, case.requirements, case.requires_python, case.folder) == \
        ((), (), (), "", False)
    assert case.outcome.exit_codes == "default"


def test_pep723_dependencies_join_the_case_requirements(folder: Path) -> None:
    (folder / "repro.py").write_text('# /// script\n# requires-python = ">=3.10"\n'
                                     '# dependencies = ["six", "attrs<22"]\n# ///\nimport six\n')
    data = with_value(("cases", 0, "requirements"), ["attrs<22", "requests"])
    (case,) = config.load(write(folder, data)).cases
    assert case.requirements == ("attrs<22", "requests", "six")
    assert case.requires_python == ">=3.10"


def test_folder_repro_with_command_string_env_and_pytest_exit_codes(folder: Path) -> None:
    (folder / "bug").mkdir()
    (folder / "bug" / "test_bug.py").write_text("def test_bug():\n    pass\n")
    data = with_value(("cases", 0, "repro"), "bug")
    case_data = data["cases"][0]
    case_data["command"] = "python -m pytest -x -p no:cacheprovider 'test_bug.py'"
    case_data["env"] = {"LC_ALL": "C.UTF-8", "RETRIES": 3, "EMPTY": ""}
    case_data["requirements"] = ["pytest<8"]
    (case,) = config.load(write(folder, data)).cases
    assert case.folder and case.repro == (folder / "bug").resolve()
    assert case.command == ("python", "-m", "pytest", "-x", "-p", "no:cacheprovider",
                            "test_bug.py")
    assert case.env == (("EMPTY", ""), ("LC_ALL", "C.UTF-8"), ("RETRIES", "3"))
    assert case.outcome.exit_codes == "pytest"  # detected from `-m pytest`


@pytest.mark.parametrize(("command", "expected"), [
    (["pytest", "-q"], "pytest"), ("/opt/venv/bin/py.test x", "pytest"),
    ("python repro.py", "default"), ("python -m pytestish", "default"),
])
def test_exit_codes_follow_the_command_unless_given(folder: Path, command: Any,
                                                    expected: str) -> None:
    (case,) = config.load(write(folder, with_value(("cases", 0, "command"), command))).cases
    assert case.outcome.exit_codes == expected
    data = with_value(("cases", 0, "command"), command)
    data["cases"][0]["outcome"]["exit_codes"] = "default"
    assert config.load(write(folder, data)).cases[0].outcome.exit_codes == "default"


@pytest.mark.parametrize(("keys", "value", "expected"), [
    (("cases", 0, "command"), "", "cases[0].command: must not be empty"),
    (("cases", 0, "command"), "python 'unclosed", "cases[0].command: cannot split"),
    (("cases", 0, "command"), {"run": "x"}, "cases[0].command: expected a string or a list"),
    (("cases", 0, "env"), ["A=1"], "cases[0].env: expected a mapping of NAME: value"),
    (("cases", 0, "env"), {"1BAD": "x"}, "cases[0].env.1BAD: not a variable name"),
    (("cases", 0, "env"), {"FLAG": True}, "cases[0].env.FLAG: expected a string, got bool"),
    (("cases", 0, "env"), {"PY": 3.10}, "cases[0].env.PY: 3.1 was read as a number"),
    (("cases", 0, "requirements"), "six", "cases[0].requirements: expected a list"),
    (("cases", 0, "requirements"), ["six >>> 1"],
     "cases[0].requirements[0]: 'six >>> 1' is not a PEP 508 requirement"),
    (("cases", 0, "requirements"), ["my_pkg<2"],
     "cases[0].requirements[0]: 'my_pkg<2' names the case's own package"),
    (("cases", 0, "outcome", "exit_codes"), "unittest",
     "cases[0].outcome.exit_codes: expected one of default, pytest"),
])
def test_bad_repro_keys_are_one_error_each(folder: Path, keys: tuple[str | int, ...], value: Any,
                                           expected: str) -> None:
    message = load_error(write(folder, with_value(keys, value)))
    assert message.startswith(f"{folder / 'matrix.yaml'}: {expected}"), message


def test_bad_pep723_block_in_the_repro_fails_the_load(folder: Path) -> None:
    (folder / "repro.py").write_text('# /// script\n# dependencies = "six"\n# ///\n')
    message = load_error(write(folder, VALID))
    assert message == (f"{(folder / 'repro.py').resolve()}: '# /// script' block: dependencies: "
                       "expected a list of requirement strings")

# ---- base_images ----------------------------------------------------------------------------


@pytest.mark.parametrize(("base", "expected"), [
    ({"interpreter": {"3.6": "."}}, ["base_images.interpreter", "did you mean 'interpreters'"]),
    ({"registry-image": "x/python:{python}"}, ["did you mean 'registry_image'"]),
    ({"provider": "locals"}, ["base_images.provider", "local"]),
    ({"interpreters": ["/opt/py36"]}, ["base_images.interpreters", "expected a mapping"]),
    ({"interpreters": {"3.6": "no-such-prefix"}}, ["base_images.interpreters.3.6",
                                                   "no such folder"]),
    ({"interpreters": {3.1: "."}}, ["base_images.interpreters.3.1", "read as a number"]),
    ({"interpreters": {"py3.6": "."}}, ["base_images.interpreters.py3.6", "X.Y"]),
    ({"registry_image": "mirror.example/python:3.9-slim"}, ["base_images.registry_image",
                                                            "has no {python}"]),
    ({"registry_image": "Mirror Example/{python}"}, ["base_images.registry_image",
                                                     "not an image reference"]),
])
def test_invalid_base_images_settings_name_the_key(folder: Path, base: dict[str, Any],
                                                   expected: list[str]) -> None:
    message = load_error(write(folder, {**VALID, "base_images": base}))
    for text in expected:
        assert text in message


def test_base_images_settings_are_read(folder: Path) -> None:
    (folder / "py36").mkdir()
    matrix = config.load(write(folder, {**VALID, "base_images": {
        "provider": "local", "interpreters": {"3.6": "py36"},
        "registry_image": "127.0.0.1:5000/library/python:{python}-slim"}}))
    assert matrix.providers.provider == "local"
    assert matrix.providers.interpreters == (("3.6", str((folder / "py36").resolve())),)
    assert matrix.providers.registry_image == "127.0.0.1:5000/library/python:{python}-slim"


def test_registry_image_defaults_to_the_official_slim_images(folder: Path) -> None:
    assert config.load(write(folder, VALID)).providers.registry_image == "python:{python}-slim"


AXIS = {"package": "Dep-Lib", "versions": {"spec": ">=2.2,<3.2"}}


def test_axis_and_compatibility_kind_are_read(folder: Path) -> None:
    data = with_value(("cases", 0, "axis"), AXIS)
    data["cases"][0]["outcome"] = {"kind": "compatibility"}
    (case,) = config.load(write(folder, data)).cases
    assert case.axis is not None
    assert (case.axis.package, case.axis.versions.spec) == ("Dep-Lib", ">=2.2,<3.2")
    assert case.axis.import_name == ""  # guessed from the name where it is needed
    assert case.outcome.kind == "compatibility"
    assert case.outcome.signatures == ()  # optional in compatibility mode
    assert case.has_repro


def test_plain_case_has_no_axis_and_the_bug_kind(folder: Path) -> None:
    (case,) = config.load(write(folder, VALID)).cases
    assert case.axis is None
    assert case.outcome.kind == "bug"
    assert case.has_repro


def test_compatibility_case_may_leave_the_repro_out(folder: Path) -> None:
    data = with_value(("cases", 0, "outcome"), {"kind": "compatibility"})
    del data["cases"][0]["repro"]
    (case,) = config.load(write(folder, data)).cases
    assert not case.has_repro
    assert not case.folder


@pytest.mark.parametrize(("change", "expected"), [
    ({"outcome": {"kind": "works"}}, "cases[0].outcome.kind: expected one of bug, compatibility"),
    ({"repro": None}, "cases[0].repro: missing (only outcome.kind: compatibility"),
    ({"axis": "werkzeug"}, "cases[0].axis: expected a mapping, got str"),
    ({"axis": {"versions": {"spec": ">=1"}}}, "cases[0].axis.package: missing"),
    ({"axis": {"package": "x y"}}, "cases[0].axis.package: 'x y' is not a valid project name"),
    ({"axis": {"package": "my_pkg"}}, "cases[0].axis.package: 'my_pkg' is the case's own"),
    ({"axis": {"package": "dep", "version": {}}}, "cases[0].axis.version: unknown key "
                                                  "(did you mean 'versions'?)"),
    ({"axis": {"package": "dep", "versions": {"spec": ">>2"}}},
     "cases[0].axis.versions.spec: '>>2' is not a PEP 440 specifier"),
    ({"axis": AXIS, "requirements": ["dep-lib<3"]},
     "cases[0].requirements[0]: 'dep-lib<3' names the case's axis package"),
])
def test_bad_axis_or_kind_is_one_error(folder: Path, change: dict[str, Any],
                                       expected: str) -> None:
    data = copy.deepcopy(VALID)
    for key, value in change.items():
        if value is None:
            del data["cases"][0][key]
        else:
            data["cases"][0][key] = value
    message = load_error(write(folder, data))
    assert message.startswith(f"{folder / 'matrix.yaml'}: {expected}"), message


def test_compatibility_without_repro_refuses_a_command(folder: Path) -> None:
    data = with_value(("cases", 0, "outcome"), {"kind": "compatibility"})
    del data["cases"][0]["repro"]
    data["cases"][0]["command"] = "python -c pass"
    assert "cases[0].command: given without a repro" in load_error(write(folder, data))
