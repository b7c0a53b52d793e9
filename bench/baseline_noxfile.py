"""The bench's nox+uv baseline: one session per Python, its venv reused across releases.

bench.py copies this file beside a cells.json it writes (the harness's cells, with each one's
exact lock from the harness's records) and runs `nox -s pyX.Y` for each Python at once, as many
as the harness's jobs. For each cell, a session makes its venv exactly the cell's lock
(`uv pip sync`, hashes checked), then runs the repro as the harness does: the same command,
working folder layout, environment and time limit, in a network namespace of its own (no
network, a loopback of its own: repros that bind a port run side by side). It runs as the
invoking user, not the harness's uid 65534: the host's interpreters may sit in a folder only
their owner reads (pyenv under /root). The raw
outcome (exit code, timeout, output) goes to a JSON line per cell; bench.py classifies it with
the harness's own classifier.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nox

HERE = Path(__file__).resolve().parent
SPEC: dict[str, Any] = json.loads((HERE / "cells.json").read_text())
nox.options.default_venv_backend = "uv"
# In its own network namespace, loopback up (as the engine gives a container with no network).
ISOLATE = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def run_cell(venv: Path, cell: dict[str, Any]) -> dict[str, Any]:
    """The repro of ``cell`` in ``venv``: its raw outcome."""
    python = str(venv / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
        repro, work = Path(tmp) / "repro", Path(tmp) / "work"
        source = Path(cell["repro"])
        if source.is_dir():
            shutil.copytree(source, repro)
        else:
            repro.mkdir()
            shutil.copy2(source, repro / source.name)
        work.mkdir()
        if cell["command"]:
            first, *rest = cell["command"]
            command = [python if first in ("python", "python3") else first, *rest]
            cwd = repro
        else:
            command, cwd = [python, str(repro / source.name)], work
        env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
               "VIRTUAL_ENV": str(venv), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work),
               **cell["env"]}
        prefix = ISOLATE if SPEC["isolate"] else []
        started = time.monotonic()
        proc = subprocess.Popen([*prefix, *command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        try:
            output, _ = proc.communicate(timeout=cell["timeout_s"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the repro and whatever it started
            output, _ = proc.communicate()
            timed_out = True
        duration = time.monotonic() - started
    code = proc.returncode
    return {"cell": cell["id"], "exit_code": None if timed_out else
            (128 - code if code < 0 else code),  # killed by a signal: as the engine reports it
            "timed_out": timed_out, "output": output.decode("utf-8", "replace")[-20000:],
            "duration_s": round(duration, 3)}


def _session(python: str) -> None:
    def cells(session: nox.Session) -> None:
        venv = Path(session.virtualenv.location)
        lock = Path(session.create_tmp()) / "lock.txt"
        outcomes = Path(SPEC["outcomes"]) / f"py{python}.jsonl"
        outcomes.parent.mkdir(parents=True, exist_ok=True)
        with outcomes.open("w") as out:
            for cell in SPEC["cells"]:
                if cell["python"] != python:
                    continue
                lock.write_text("\n".join(cell["lock"]) + "\n")
                session.run("uv", "pip", "sync", "--quiet", "--python",
                            str(venv / "bin" / "python"), str(lock), external=True, silent=True)
                out.write(json.dumps(run_cell(venv, cell)) + "\n")
                out.flush()

    nox.session(name=f"py{python}", python=SPEC["interpreters"][python])(cells)


for _python in SPEC["interpreters"]:
    _session(_python)
