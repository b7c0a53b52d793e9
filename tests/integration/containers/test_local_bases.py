"""Local interpreters as bases, for real: a pyenv CPython copied onto a Debian root works as the
sandbox's user; a copy whose extension module misses a library is unavailable, naming it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro_matrix import pythons
from repro_matrix.containers import bases, engine, interpreters
from repro_matrix.containers.engine import LABEL
from repro_matrix.containers.interpreters import Interpreter
from repro_matrix.model import ProviderSettings

REPO = Path(__file__).resolve().parents[3]
PYTHON = "3.8"  # no Debian suite ships it; pyenv holds it on every machine of this kind

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pyenv_python() -> Interpreter:
    found = interpreters.find(PYTHON, {}, os.environ, None)
    if isinstance(found, str):
        if os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"):
            pytest.fail(found)
        pytest.skip(found)
    return found


def _settings(**explicit: str) -> ProviderSettings:
    return ProviderSettings("local", tuple(pythons.DEBIAN_SUITES.items()),
                            interpreters=tuple(explicit.items()))


def test_a_pyenv_interpreter_becomes_a_base_the_sandbox_can_use(
        docker_engine: engine.Engine, cache_dir: Path, pyenv_python: Interpreter) -> None:
    base = bases.prepare(docker_engine, PYTHON, _settings(), cache_dir / "rootfs")
    assert base.available, base.unavailable_reason
    assert (base.provider, base.interpreter) == ("local", f"python{PYTHON}")
    assert base.interpreter_version == pyenv_python.version
    assert str(pyenv_python.prefix) in base.source and base.suite in base.source
    binaries = [p.read_bytes() for p in interpreters.elf_files(pyenv_python)]
    assert base.suite == interpreters.oldest_suite(interpreters.glibc_needed(binaries))
    # As a cell runs: uid 65534, read-only root, no network. The prefix kept its path, so its
    # RUNPATH finds libpython without any LD_LIBRARY_PATH.
    assert "LD_LIBRARY_PATH" not in docker_engine.image_env(base.reference)
    raw = docker_engine.run(base.image_id, [
        f"python{PYTHON}", "-c",
        "import ssl, ctypes, sqlite3, zlib, hashlib, pyexpat, platform, sys; "
        "hashlib.sha256(b'x'); print(platform.python_version(), sys.prefix)"],
        {}, timeout_s=60, labels={f"{LABEL}.kind": "test"})
    assert raw.exit_code == 0, raw.output
    assert raw.output.split() == [pyenv_python.version, str(pyenv_python.prefix)]


def test_a_copy_whose_module_misses_a_library_is_unavailable_naming_it(
        docker_engine: engine.Engine, cache_dir: Path, pyenv_python: Interpreter,
        tmp_path: Path) -> None:
    copy = tmp_path / "broken-python"
    shutil.copytree(pyenv_python.prefix, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("test", "tests", "__pycache__"))
    (module,) = (copy / "lib" / f"python{PYTHON}" / "lib-dynload").glob("_sqlite3*.so")
    data = module.read_bytes()
    assert b"libsqlite3.so.0" in data
    # Same length, so the ELF stays valid: _sqlite3 now needs a library no root has.
    module.write_bytes(data.replace(b"libsqlite3.so.0", b"libsqliteX.so.0"))
    try:
        base = bases.prepare(docker_engine, PYTHON, _settings(**{PYTHON: str(copy)}),
                             cache_dir / "rootfs")
        assert not base.available
        # The interpreter itself ran: the moved copy found libpython through LD_LIBRARY_PATH.
        assert base.unavailable_reason == "libsqliteX.so.0 not found for _sqlite3"
    finally:
        for image in docker_engine.client.images.list(filters={"label": f"{LABEL}.kind=base"}):
            if str(copy) in image.labels.get(f"{LABEL}.source", ""):
                docker_engine.client.images.remove(image.id, force=True)


def test_a_run_says_which_provider_each_column_took_and_records_it(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path,
        pyenv_python: Interpreter) -> None:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = {**source["cases"][0], "repro": str(REPO / source["cases"][0]["repro"]),
            "pythons": [PYTHON]}
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [case], "base_images": {"provider": "auto"}}))
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "repro_matrix", "run", "--matrix", str(matrix),
                           "--versions", "1.1.0", "--results", str(results), "-v"],
                          capture_output=True, text=True, cwd=REPO, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines()
               if x.startswith(f"base image for Python {PYTHON}: ") and "preparing" not in x]
    assert f"local: repro-matrix/base:py{pyenv_python.version}-pyenv-" in line
    assert "passed over registry (" in line and "debian (no Debian suite" in line
    payload = json.loads((results / case["id"] / "cells.json").read_text())
    base = payload["bases"][PYTHON]
    assert (base["provider"], base["interpreter_version"]) == ("local", pyenv_python.version)
    assert set(base["passed_over"]) == {"registry", "debian"}
    (cell,) = payload["cells"]
    assert cell["base_provider"] == "local"
    assert str(pyenv_python.prefix) in cell["base_source"]
    assert cell["interpreter_version"] == pyenv_python.version
    assert "### Base images" in (results / "report.md").read_text()
