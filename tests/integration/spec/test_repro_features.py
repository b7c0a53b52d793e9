"""Repros as users write them, end to end: PEP 723 dependencies, a folder run by pytest.

The package is `packaging`, the extra packages are ones it does not depend on; which releases
show the behaviour is not written here: the cells must simply all be decisive and consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.model import CellRecord, Status
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan

pytestmark = pytest.mark.integration

VERSIONS = ">=21.3,<22.1"  # two releases around packaging's removal of LegacyVersion
PYTHON = "3.11"

PEP723_REPRO = '''\
# /// script
# requires-python = ">=3.7"
# dependencies = ["six"]
# ///
import sys

import six  # not a dependency of packaging: only the PEP 723 block brings it
from packaging.version import InvalidVersion, parse

try:
    parse("not-a-version")
except InvalidVersion as exc:
    print(six.text_type("InvalidVersion:"), exc)
    sys.exit(1)
print("parsed as a legacy version")
'''

TEST_BUG = '''\
import os
from pathlib import Path

from packaging.version import InvalidVersion, Version, parse

from helpers.words import NOT_A_VERSION


def test_not_a_version_is_refused():
    assert os.environ["REPRO_FLAG"] == "on"  # env: reaches the command
    assert Path("data/expected.txt").read_text().strip() == "Version"  # cwd is the folder
    try:
        Path("data/expected.txt").write_text("changed")
    except OSError:
        pass  # the folder is read-only to the repro
    else:
        raise AssertionError("the repro folder is writable")
    try:
        parsed = parse(NOT_A_VERSION)
    except InvalidVersion:
        return  # refused
    assert isinstance(parsed, Version), "LEGACY_VERSION_ACCEPTED"
'''


def _run(folder: Path, case: dict[str, object], cache_dir: Path) -> list[CellRecord]:
    matrix = folder / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [case]}))
    results = folder / "results"
    MatrixRun(config.load(matrix), RunOptions(results=results, cache_dir=cache_dir, jobs=2)) \
        .run(plan.Selection())
    _, records = store.read_cells(results / str(case["id"]) / "cells.json")
    return records


def test_pep723_dependencies_are_locked_and_every_cell_is_decisive(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    (tmp_path / "repro.py").write_text(PEP723_REPRO)
    records = _run(tmp_path, {
        "id": "packaging-pep723", "package": "packaging", "versions": {"spec": VERSIONS},
        "pythons": [PYTHON], "repro": "repro.py",
        "outcome": {"signature": "InvalidVersion:", "timeout": 60}}, cache_dir)
    assert len(records) == 2
    for record in records:
        assert record.status.decisive, record
        assert any(line.startswith("six==") for line in record.lock), record.lock
        assert any(line.startswith(f"packaging=={record.cell.version} ") for line in record.lock)
        assert ("InvalidVersion:" in record.output_excerpt) is (
            record.status is Status.REPRODUCED)
    meta = json.loads((tmp_path / "results" / "packaging-pep723" / "cells.json").read_text())
    assert meta["requirements"] == ["six"]


def test_folder_repro_runs_its_pytest_command_with_env_and_requirements(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    bug = tmp_path / "bug"
    (bug / "data").mkdir(parents=True)
    (bug / "helpers").mkdir()
    (bug / "test_bug.py").write_text(TEST_BUG)
    (bug / "data" / "expected.txt").write_text("Version\n")
    (bug / "helpers" / "__init__.py").write_text("")
    (bug / "helpers" / "words.py").write_text("NOT_A_VERSION = 'not-a-version'\n")
    (bug / "conftest.py").write_text("")  # rootdir and sys.path: the folder itself
    records = _run(tmp_path, {
        "id": "packaging-folder", "package": "packaging", "versions": {"spec": VERSIONS},
        "pythons": [PYTHON], "repro": "bug",
        "command": "python -m pytest -x -p no:cacheprovider test_bug.py",
        "env": {"REPRO_FLAG": "on"}, "requirements": ["pytest"],
        "outcome": {"signature": "LEGACY_VERSION_ACCEPTED", "timeout": 120}}, cache_dir)
    assert len(records) == 2
    for record in records:
        assert record.status.decisive, (record.status, record.reason, record.output_excerpt)
        assert any(line.startswith("pytest==") for line in record.lock)
        assert record.exit_code in (0, 1)


def test_a_requirement_conflicting_with_the_release_is_cannot_install_with_the_reason(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    # packaging 21.x requires pyparsing>=2.0.2 (its metadata, not a verdict): no lock exists.
    (tmp_path / "repro.py").write_text("import pyparsing\n")
    records = _run(tmp_path, {
        "id": "packaging-conflict", "package": "packaging", "versions": {"spec": "==21.3"},
        "pythons": [PYTHON], "repro": "repro.py", "requirements": ["pyparsing<2"],
        "outcome": {"signature": "never", "timeout": 30}}, cache_dir)
    (record,) = records
    assert record.status is Status.CANNOT_INSTALL
    assert record.reason.startswith("did not resolve at any of ")
    assert "pyparsing" in record.reason and not record.image_id
    assert all(a.result == "resolve failed" for a in record.attempts)
