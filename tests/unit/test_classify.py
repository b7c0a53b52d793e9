"""classify: a raw run becomes one Status by the git-bisect-run exit-code convention."""

from __future__ import annotations

import pytest

from repro_matrix.classify import classify, classify_build_failure
from repro_matrix.model import RawRun, Status

SIGNATURES = ("RuntimeError: BOOM", "OSError: [Errno 98]")
BUG = "Traceback (most recent call last):\n  File \"/repro/repro.py\", line 3\nRuntimeError: BOOM\n"
IMPORT_ERROR = ("Traceback (most recent call last):\n  File \"/repro/repro.py\", line 1\n"
                "ImportError: cannot import name 'thing' from 'pkg'\n")


def run(exit_code: int | None, output: str = "", timed_out: bool = False,
        oom_killed: bool = False) -> RawRun:
    return RawRun(exit_code=exit_code, timed_out=timed_out, output=output, duration_s=61.2,
                  oom_killed=oom_killed)


@pytest.mark.parametrize(("raw", "status"), [
    (run(0, BUG), Status.NOT_REPRODUCED),
    (run(125, BUG), Status.CANNOT_TEST),
    (run(1, BUG), Status.REPRODUCED),
    (run(2, "OSError: [Errno 98] Address already in use"), Status.REPRODUCED),
    (run(1, IMPORT_ERROR), Status.OTHER_FAILURE),
    (run(1, ""), Status.OTHER_FAILURE),
    (run(None, BUG, timed_out=True), Status.TIMEOUT),
    (run(137, BUG), Status.OTHER_FAILURE),
    (run(139, BUG), Status.OTHER_FAILURE),
    (run(None), Status.OTHER_FAILURE),
])
def test_exit_code_and_output_give_status(raw: RawRun, status: Status) -> None:
    assert classify(raw, SIGNATURES).status is status


def test_reproduced_reason_names_the_signature() -> None:
    assert "'RuntimeError: BOOM'" in classify(run(1, BUG), SIGNATURES).reason


def test_timeout_wins_over_any_exit_code() -> None:
    result = classify(run(1, BUG, timed_out=True), SIGNATURES)
    assert result.status is Status.TIMEOUT
    assert "61 s" in result.reason


def test_signal_kill_is_named_in_the_reason() -> None:
    assert "killed" in classify(run(137), SIGNATURES).reason


@pytest.mark.parametrize("raw", [run(137, oom_killed=True), run(1, BUG, oom_killed=True),
                                 run(0, oom_killed=True), run(None, oom_killed=True)])
def test_oom_kill_is_out_of_memory_whatever_the_exit_code_and_output(raw: RawRun) -> None:
    result = classify(raw, SIGNATURES)
    assert result.status is Status.OTHER_FAILURE
    assert result.reason.startswith("out of memory: ")


def test_timeout_wins_over_oom() -> None:
    assert classify(run(None, timed_out=True, oom_killed=True), SIGNATURES).status \
        is Status.TIMEOUT


def test_plain_sigkill_is_not_called_out_of_memory() -> None:
    assert "memory" not in classify(run(137), SIGNATURES).reason


@pytest.mark.parametrize(("step", "words"), [("import", "did not import"),
                                             ("install", "did not install")])
def test_build_failure_is_cannot_install(step: str, words: str) -> None:
    result = classify_build_failure(step, 3)
    assert result.status is Status.CANNOT_INSTALL
    assert result.reason == f"{words} at any of 3 era cutoff(s) tried"
