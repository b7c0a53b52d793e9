"""Sessions: `matrix` runs the cases, `report` re-renders results, `tests` runs the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = []  # `nox` alone lists the sessions; choose one with -s
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

PYTHON = os.environ.get("REPRO_MATRIX_PYTHON") or None  # None: the Python running nox


def _harness(session: nox.Session, command: str) -> None:
    """`python -m repro_matrix COMMAND`; paths typed after `--` resolve against the folder nox
    was started in (nox itself runs sessions from the noxfile's folder)."""
    session.run("python", "-m", "repro_matrix", command, "--invoked-from",
                str(session.invoked_from), *session.posargs)


NO_SETUP = "REPRO_MATRIX_NO_ENGINE_SETUP"
ENSURE_DOCKER = Path(__file__).parent / "scripts" / "ensure-docker.sh"
DEBIAN_MARKER = Path("/etc/debian_version")  # Debian and Ubuntu both have it


def _engine_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=60,
                              check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _may_start_engine() -> bool:
    """Root on Debian or Ubuntu, and no engine chosen elsewhere (DOCKER_HOST): the machines
    scripts/ensure-docker.sh knows how to set up."""
    return (os.environ.get(NO_SETUP, "") in ("", "0") and not os.environ.get("DOCKER_HOST")
            and os.geteuid() == 0 and DEBIAN_MARKER.exists())


def _ensure_engine(session: nox.Session) -> None:
    """Start an engine when none answers and this process may; otherwise leave the one-line
    how-to to the harness (exit 3) and the integration tests (skip locally, fail in CI)."""
    if _engine_answers() or not _may_start_engine():
        return
    session.log(f"no Docker engine answers: running scripts/{ENSURE_DOCKER.name} "
                f"(set {NO_SETUP}=1 to skip)")
    if subprocess.run(["bash", str(ENSURE_DOCKER)], check=False).returncode != 0:
        session.error(f"scripts/{ENSURE_DOCKER.name} could not start an engine (see above)")


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """Run the matrix in containers; options after `--` go to `python -m repro_matrix run`."""
    _ensure_engine(session)
    session.install("-e", ".")
    _harness(session, "run")


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Re-derive verdicts and report.md from stored results (no Docker needed)."""
    session.install("-e", ".")
    _harness(session, "report")


@nox.session(python=PYTHON)
def plan(session: nox.Session) -> None:
    """Print the cells a run would execute (`-- --json` for machines)."""
    session.install("-e", ".")
    _harness(session, "plan")


@nox.session(python=PYTHON)
def cache(session: nox.Session) -> None:
    """Show the cache's sizes by kind (`-- clean [--kind …]` clears them)."""
    session.install("-e", ".")
    _harness(session, "cache")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy over the package and the bench."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "repro_matrix", "tests", "bench", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests, lint, then integration tests against the real Docker engine."""
    if not session.posargs or any("unit" not in arg for arg in session.posargs):
        _ensure_engine(session)  # not for `-- tests/unit`: those need no engine
    session.install("-e", ".[test]")
    session.run("ruff", "check", "repro_matrix", "tests", "bench", "noxfile.py")
    session.run("mypy")
    session.run("pytest", "-ra", *(session.posargs or ["tests"]))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark the harness against its process-time floor and a nox+uv baseline
    (`-- --parts warm,floor` for some parts, `-- --cold` adds the cold ones; see bench/bench.py)."""
    session.install("-e", ".", "nox")
    session.run("python", "bench/bench.py", *session.posargs)
