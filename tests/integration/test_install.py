"""Installs like any tool: the wheel in a fresh venv runs a one-cell case from another folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro_matrix.containers import engine
from repro_matrix.resolve.index import configured_index_url

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

DECISIVE = {"reproduced", "not_reproduced"}
# One cell of a small pure-Python case of this repository (a script repro, no extra packages).
CASE, PYTHON, VERSION = "markupsafe-310", "3.11", "2.1.1"


def _run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH: the installed tool must not see this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `repro-matrix` command of a wheel built from this checkout, in a fresh venv."""
    work = tmp_path_factory.mktemp("install")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(work / "dist"), str(REPO)], cwd=work)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("repro_matrix-*.whl")
    uv = shutil.which("uv")
    assert uv, "uv is a dependency of the project and must be on PATH"
    venv = work / "venv"
    made = _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=work)
    assert made.returncode == 0, made.stderr[-2000:]
    added = _run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                  "--index-url", configured_index_url(), str(wheel)], cwd=work)
    assert added.returncode == 0, added.stderr[-2000:]
    return venv / "bin"


def test_installed_package_holds_the_template_and_schemas(installed: Path,
                                                          tmp_path: Path) -> None:
    probe = ("from importlib import resources as r; import repro_matrix.containers.build as b; "
             "print(b.__file__); print(len(b.template_source())); "
             "print(' '.join(sorted(p.name for p in r.files('repro_matrix').joinpath('schemas')"
             ".iterdir()))); "
             "print(' '.join(sorted(p.name for p in r.files('repro_matrix.images').iterdir())))")
    shown = _run([str(installed / "python"), "-c", probe], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    module_file, template_chars, schemas, images = shown.stdout.splitlines()
    assert not Path(module_file).is_relative_to(REPO)  # the installed copy, not this checkout
    assert int(template_chars) > 0
    assert "cells.schema.json" in schemas.split()
    # Every file of images/ (templates, the interpreter probe) ships with the tool.
    assert {p.name for p in (REPO / "images").iterdir() if p.is_file()} <= set(images.split())
    assert _run([str(installed / "python"), "-m", "repro_matrix", "--version"],
                cwd=tmp_path).returncode == 0


def test_installed_wheel_holds_every_module_and_its_console_script_runs(
        installed: Path, tmp_path: Path) -> None:
    modules = sorted(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(
        ".__init__") for path in (REPO / "repro_matrix").rglob("*.py")
        if path.name != "__main__.py")
    probe = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)"
    imported = _run([str(installed / "python"), "-c", probe, *modules], cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr[-2000:]
    shown = _run([str(installed / "repro-matrix"), "--version"], cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.strip(), shown.stderr


def test_installed_command_runs_a_one_cell_case_from_another_folder(
        installed: Path, tmp_path: Path, docker_engine: engine.Engine) -> None:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = next(c for c in source["cases"] if c["id"] == CASE)
    repro = REPO / case["repro"]
    (tmp_path / "cases").mkdir()
    shutil.copy(repro, tmp_path / "cases" / repro.name)
    case["repro"] = f"cases/{repro.name}"  # relative to the matrix file, as a user writes it
    (tmp_path / "matrix.yaml").write_text(yaml.safe_dump({"cases": [case]}))
    ran = _run([str(installed / "repro-matrix"), "run", "-q", "--python", PYTHON,
                "--versions", VERSION, "--jobs", "1", "--results", "out"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    cells = json.loads((tmp_path / "out" / case["id"] / "cells.json").read_text())["cells"]
    assert [c["cell"]["version"] for c in cells] == [VERSION]
    assert cells[0]["status"] in DECISIVE, cells[0]
    assert (tmp_path / "out" / "report.md").is_file()
