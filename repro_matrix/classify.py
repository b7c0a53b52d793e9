"""Turn one raw outcome into a Status, by a pure function (git bisect run's exit-code convention).

0 is "not reproduced", 125 "cannot test", other 1..127 "reproduced" only when the output carries
the case's failure signature: an uncaught exception or import error also exits 1, and is an
"other failure" unless it is the bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repro_matrix.model import RawRun, Status

CANNOT_TEST_EXIT = 125
OUT_OF_MEMORY = "out of memory: killed by the kernel at the case's memory limit"


@dataclass(frozen=True)
class Classification:
    status: Status
    reason: str


def matched_signature(output: str, signatures: Sequence[str]) -> str | None:
    return next((s for s in signatures if s in output), None)


def classify(run: RawRun, signatures: Sequence[str]) -> Classification:
    """Classify a finished (or timed-out) container run."""
    if run.timed_out:
        return Classification(Status.TIMEOUT, f"no exit within the time limit "
                                              f"({run.duration_s:.0f} s)")
    code = run.exit_code
    if run.oom_killed:
        # Whatever it printed, a process of the cell died at the memory limit: not the bug's
        # verdict either way (raise the case's limits.memory if the repro needs more).
        return Classification(Status.OTHER_FAILURE, OUT_OF_MEMORY + (
            f" (exit {code})" if code is not None else ""))
    if code is None:
        return Classification(Status.OTHER_FAILURE, "no exit status")
    if code == 0:
        return Classification(Status.NOT_REPRODUCED, "exit 0")
    if code == CANNOT_TEST_EXIT:
        return Classification(Status.CANNOT_TEST, "exit 125: the repro could not test")
    if 1 <= code <= 127:
        signature = matched_signature(run.output, signatures)
        if signature:
            return Classification(Status.REPRODUCED, f"exit {code}, output has '{signature}'")
        return Classification(Status.OTHER_FAILURE,
                              f"exit {code} without the failure signature")
    return Classification(Status.OTHER_FAILURE, f"exit {code}: killed by signal {code - 128}"
                          if code > 128 else f"exit {code}")


def classify_build_failure(step: str, cutoffs_tried: int) -> Classification:
    """No image could be made at any cutoff: the release does not run on this Python."""
    what = "did not import" if step == "import" else "did not install"
    return Classification(Status.CANNOT_INSTALL,
                          f"{what} at any of {cutoffs_tried} era cutoff(s) tried")


def classify_unavailable(reason: str) -> Classification:
    return Classification(Status.UNAVAILABLE, reason)
