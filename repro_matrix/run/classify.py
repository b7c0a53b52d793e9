"""Turn one raw outcome into a Status, by a pure function (git bisect run's exit-code convention).

0 is "not reproduced", 125 "cannot test", other 1..127 "reproduced" only when the output carries
the case's failure signature: an uncaught exception or import error also exits 1, and is an
"other failure" unless it is the bug. Exit 0 with the signature in the output contradicts
itself and decides nothing ("signature but exit 0").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from repro_matrix.model import RawRun, Status

CANNOT_TEST_EXIT = 125
OUT_OF_MEMORY = "out of memory: killed by the kernel at the case's memory limit"
SIGNATURE_EXIT_0 = ("exit 0, but the output has '{}': signature printed but exit 0: check the "
                    "repro's exit code")
# pytest's own exit codes other than 0 (all passed) and 1 (tests failed, read like any failure):
# they say the run never got to judge the bug.
PYTEST_EXITS: dict[int, tuple[Status, str]] = {
    2: (Status.OTHER_FAILURE, "pytest exit 2: interrupted (for example an error while collecting)"),
    3: (Status.OTHER_FAILURE, "pytest exit 3: internal error"),
    4: (Status.OTHER_FAILURE, "pytest exit 4: usage error"),
    5: (Status.CANNOT_TEST, "pytest exit 5: no tests collected"),
}
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b"
                             r"(?::.*)?$")


@dataclass(frozen=True)
class Classification:
    status: Status
    reason: str


def matched_signature(output: str, signatures: Sequence[str]) -> str | None:
    return next((s for s in signatures if s in output), None)


def classify(run: RawRun, signatures: Sequence[str], exit_codes: str = "default",
             ) -> Classification:
    """Classify a finished (or timed-out) container run; ``exit_codes`` "pytest" reads pytest's
    own codes 2 to 5 as such (see PYTEST_EXITS)."""
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
        signature = matched_signature(run.output, signatures)
        if signature:
            return Classification(Status.SIGNATURE_EXIT_0, SIGNATURE_EXIT_0.format(signature))
        return Classification(Status.NOT_REPRODUCED, "exit 0")
    if exit_codes == "pytest" and code in PYTEST_EXITS:
        status, reason = PYTEST_EXITS[code]
        return Classification(status, reason)
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


def classify_build_failure(step: str, cutoffs_tried: int,
                           resolver_said: str = "") -> Classification:
    """No image could be made at any cutoff: the release does not run on this Python.

    When no cutoff even resolved, ``resolver_said`` (its last message) is the reason: a repro
    requirement that conflicts with the release's own shows up as such.
    """
    if resolver_said:
        return Classification(Status.CANNOT_INSTALL,
                              f"did not resolve at any of {cutoffs_tried} era cutoff(s) tried: "
                              f"{resolver_reason(resolver_said)}")
    what = "did not import" if step == "import" else "did not install"
    return Classification(Status.CANNOT_INSTALL,
                          f"{what} at any of {cutoffs_tried} era cutoff(s) tried")


def resolver_reason(detail: str, limit: int = 400) -> str:
    """The resolver's explanation in one line: its 'no solution' header and tree drawing gone."""
    kept = []
    for line in detail.splitlines():
        text = line.strip().lstrip("×╰─▶│ ").strip()
        if not text or text.lower().rstrip(":").endswith("no solution found when resolving "
                                                         "dependencies"):
            continue
        kept.append(text.removeprefix("cause:").strip())
    reason = " ".join(kept) or "no solution"
    return reason if len(reason) <= limit else reason[:limit - 1] + "…"


def classify_not_for_python(reason: str) -> Classification:
    return Classification(Status.NOT_FOR_PYTHON, reason)


def last_error_line(output: str) -> str:
    """The last line of ``output`` that names an exception (a traceback's verdict), or ''."""
    for line in reversed(output.splitlines()):
        text = line.strip()
        text = text[1:].strip() if text.startswith("E ") else text  # pytest's failure lines
        if _EXCEPTION_LINE.match(text):
            return text
    return ""


def common_failure(records: Iterable[tuple[Status, str]]) -> str:
    """The error line every one of (status, output) shares when all of them (two or more) failed
    the same way (an import error in every cell of a column, say), else ''."""
    lines = set()
    count = 0
    for status, output in records:
        if status not in (Status.OTHER_FAILURE, Status.CANNOT_INSTALL):
            return ""
        lines.add(last_error_line(output))
        count += 1
    if count < 2 or len(lines) != 1:
        return ""
    return lines.pop()


def classify_unavailable(reason: str) -> Classification:
    return Classification(Status.UNAVAILABLE, reason)
