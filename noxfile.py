"""Sessions: `matrix` runs the cases, `report` re-renders results, `tests` runs the test suite."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

PYTHON = os.environ.get("REPRO_MATRIX_PYTHON") or None  # None: the Python running nox


def _harness(session: nox.Session, command: str) -> None:
    """`python -m repro_matrix COMMAND`; paths typed after `--` resolve against the folder nox
    was started in (nox itself runs sessions from the noxfile's folder)."""
    session.run("python", "-m", "repro_matrix", command, "--invoked-from",
                str(session.invoked_from), *session.posargs)


@nox.session(python=PYTHON)
def matrix(session: nox.Session) -> None:
    """Run the matrix in containers; options after `--` go to `python -m repro_matrix run`."""
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
    """ruff and mypy over the package."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "repro_matrix", "tests", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests, lint, then integration tests against the real Docker engine."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "repro_matrix", "tests", "noxfile.py")
    session.run("mypy")
    session.run("pytest", "-ra", *(session.posargs or ["tests"]))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmark the harness against its floor and a nox+uv baseline (`-- --cold` for cold)."""
    session.install("-e", ".", "nox")
    session.run("python", "bench/bench.py", *session.posargs)
