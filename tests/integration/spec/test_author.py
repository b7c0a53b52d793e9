"""Author mode end to end: `new` scaffolds a case, `try` runs one real cell with live output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro_matrix.containers import engine

pytestmark = pytest.mark.integration

# A release and Python whose image the Flask case's tests build anyway (a warm cache reuses it).
PACKAGE, VERSION, PYTHON = "flask", "1.1.0", "3.11"

REPRO = '''\
import sys
import time

import flask

print("first line, then a pause", flush=True)
time.sleep(6)
print("BUG: live-1 reproduced")
sys.exit(1)
'''


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "repro_matrix", *args]


def test_new_then_try_streams_the_output_live_and_writes_no_results(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    made = subprocess.run(_cli("new", "live-1", "--package", PACKAGE), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    repro = tmp_path / "cases" / "live-1" / "repro.py"
    assert "BUG: live-1 reproduced" in repro.read_text()  # the skeleton's signature
    repro.write_text(REPRO)

    proc = subprocess.Popen(_cli("try", "--python", PYTHON, "--version", VERSION),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    # Seen while the repro still sleeps: the line was streamed, not printed after the exit.
    still_running = proc.poll() is None
    out, err = proc.communicate(timeout=900)
    assert first == "first line, then a pause\n", err
    assert still_running, "the output came only after the repro ended"
    assert "BUG: live-1 reproduced" in out
    assert proc.returncode == 0, err
    assert f"live-1/py{PYTHON}/{VERSION}: 🔴 reproduced" in err
    assert not (tmp_path / "results").exists()


# A small wheel-only package whose cell image other tests build too.
SMALL, SMALL_VERSION = "six", "1.16.0"

FORGOT_EXIT = '''\
import six

print("BUG: sig-exit-0 reproduced")  # the signature, but no sys.exit(1) after it
'''


def test_a_signature_with_exit_0_is_flagged_in_try_and_in_run(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    made = subprocess.run(_cli("new", "sig-exit-0", "--package", SMALL, "--import", "six"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    (tmp_path / "cases" / "sig-exit-0" / "repro.py").write_text(FORGOT_EXIT)

    tried = subprocess.run(_cli("try", "--python", PYTHON, "--version", SMALL_VERSION),
                           cwd=tmp_path, capture_output=True, text=True, timeout=900,
                           check=False)
    assert tried.returncode == 0, tried.stderr
    assert f"sig-exit-0/py{PYTHON}/{SMALL_VERSION}: ⚠ signature exit 0 (exit 0, but the " \
           "output has 'BUG: sig-exit-0 reproduced'" in tried.stderr
    assert "warning: ⚠ the repro printed the failure signature but exited 0" in tried.stderr

    ran = subprocess.run(_cli("run", "--python", PYTHON, "--versions", SMALL_VERSION, "-v"),
                         cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         check=False)
    assert ran.returncode == 0, ran.stderr
    cells = json.loads((tmp_path / "results" / "sig-exit-0" / "cells.json").read_text())
    (cell,) = cells["cells"]
    assert (cell["status"], cell["exit_code"]) == ("signature_exit_0", 0)
    # The run's summary: no verdict drawn from it, and the cause says what to fix.
    assert "sig-exit-0: No release could be tested on any Python." in ran.stderr
    assert ("1 cell signature but exit 0 (py3.11: every release): exit 0, but the output has "
            "'BUG: sig-exit-0 reproduced': signature printed but exit 0: check the repro's exit "
            "code") in ran.stderr
    report = (tmp_path / "results" / "report.md").read_text()
    assert "⚠ S" in report and "check the repro's exit code" in report


@pytest.mark.parametrize(("package", "module"), [("python-dateutil", "dateutil"),
                                                 ("PyYAML", "yaml")])
def test_new_learns_the_import_name_from_the_newest_wheel_on_the_index(
        tmp_path: Path, package: str, module: str) -> None:
    """The project name is not the module here: `new` reads it from the real index's newest
    wheel, and the skeleton it writes imports that module from that very wheel."""
    made = subprocess.run(_cli("new", "imp-1", "--package", package), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    note = next(line for line in made.stderr.splitlines() if line.startswith("import: "))
    assert note.startswith(f"import: {module} (from "), note
    matrix = yaml.safe_load((tmp_path / "matrix.yaml").read_text())
    assert matrix["cases"][0]["import"] == module
    wheel = note.split("(from ", 1)[1].split(";", 1)[0].rstrip(")")
    from repro_matrix.containers.cache import default_cache_dir

    path = default_cache_dir() / "sources" / wheel
    assert path.is_file(), path
    # The skeleton, run with only that wheel on the path: it imports the module and stops at
    # "cannot tell" (125); an ImportError would exit 1.
    ran = subprocess.run([sys.executable, "-I", "-c",
                          f"import sys, runpy; sys.path.insert(0, {str(path)!r}); "
                          f"runpy.run_path({str(tmp_path / 'cases/imp-1/repro.py')!r}, "
                          "run_name='__main__')"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 125, ran.stdout + ran.stderr
