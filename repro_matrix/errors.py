"""The HarnessError family: infrastructure and input failures, each with an exit code and a hint."""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """A failure of the harness's inputs or infrastructure (never of a cell)."""

    exit_code = 3

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(HarnessError):
    """Bad input: the matrix file, a command-line option or a case's files."""

    exit_code = 2


class EngineError(HarnessError):
    """No Docker engine answers, or it refused an operation the harness needs."""

    exit_code = 3


class IndexUnavailable(HarnessError):
    """The package index could not be read."""

    exit_code = 4


class ResolveToolError(HarnessError):
    """A resolution tool (uv) is missing or broke in a way no cutoff can fix."""

    exit_code = 4


# Every exit code of the command line is here (README "Exit codes"): 0 done, whatever the
# verdict; 2, 3 and 4 are the classes' `exit_code` above; then these.
EXIT_USAGE = UsageError.exit_code  # also an unreadable or unwritable file (OSError)
# `report --baseline`: a claim check or a decided cell changed or vanished.
EXIT_CHANGED = 5
# `run` / `report --fail-on refuted|reproduced|changed`: the results met a condition CI fails on
# (the run itself succeeded; everything was written).
EXIT_FAIL_ON = 6
# Interrupted by a signal: the shell's convention, 128 + the signal number (130 after SIGINT).
EXIT_SIGNAL_BASE = 128


def unwritable_results(path: Path, exc: OSError) -> UsageError:
    """The one error a refused results write becomes."""
    return UsageError(f"{path}: cannot write results ({exc.strerror or exc})",
                      "free space or pass another --results folder; finished cells already "
                      "written are kept")
