"""Author mode end to end: `new` scaffolds a case, `try` runs one real cell with live output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


PAIR_REPRO = '''\
import flask

app = flask.Flask(__name__)
app.route("/")(lambda: "hello")
assert app.test_client().get("/").get_data(as_text=True) == "hello"
print("OK")
'''


def test_a_two_axis_question_is_one_new_command_and_a_repro(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    made = subprocess.run(_cli("new", "pair-1", "--package", "flask", "--versions", ">=2.2",
                               "--axis", "werkzeug", "--axis-versions", ">=2.3",
                               "--python", PYTHON), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    assert "--axis-version A" in made.stderr  # how to try one pair
    (tmp_path / "cases" / "pair-1" / "repro.py").write_text(PAIR_REPRO)
    # Flask 2.2.5's test client reads werkzeug.__version__, which Werkzeug 3.1.0 removed.
    tried = subprocess.run(_cli("try", "--python", PYTHON, "--version", "2.2.5",
                                "--axis-version", "3.1.0"), cwd=tmp_path, capture_output=True,
                           text=True, timeout=900, check=False)
    assert tried.returncode == 0, tried.stderr
    assert "AttributeError: module 'werkzeug' has no attribute '__version__'" in tried.stdout
    assert "pair-1/py3.11/2.2.5/werkzeug==3.1.0: 🔴 broken" in tried.stderr
    assert not (tmp_path / "results").exists()
