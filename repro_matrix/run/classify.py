"""Turn one raw outcome into a Status, by a pure function (git bisect run's exit-code convention).

0 is "not reproduced", 125 "cannot test", other 1..127 "reproduced" only when the output carries
the case's failure signature: an uncaught exception or import error also exits 1, and is an
"other failure" unless it is the bug. Exit 0 with the signature in the output contradicts
itself and decides nothing ("signature but exit 0").

Compatibility mode (outcome.kind: compatibility) asks whether a pair of releases works: the
repro's exit 0 (or, without a repro, the image's import check) is "works"; a failure with the
pinned dependency installed is "broken", the import check's own failure included when its error
names the pinned package; a pair the declared requirements exclude is "declared incompatible".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from repro_matrix.model import KIND_COMPATIBILITY, OutcomeRule, RawRun, Status

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


def classify_run(run: RawRun, rule: OutcomeRule) -> Classification:
    """A finished run read by the case's rule: ``classify``, or ``classify_pair`` in
    compatibility mode."""
    if rule.kind == KIND_COMPATIBILITY:
        return classify_pair(run, rule.signatures, rule.exit_codes)
    return classify(run, rule.signatures, rule.exit_codes)


def classify_pair(run: RawRun, signatures: Sequence[str], exit_codes: str = "default",
                  ) -> Classification:
    """Compatibility mode: exit 0 works; a failure is broken, with its last error line as the
    evidence (given signatures, only a failure that shows one is broken: the rest are other
    failures). Timeouts, the memory limit, exit 125 and pytest's own codes read as in
    ``classify``: they say nothing about the pair."""
    read = classify(run, signatures, exit_codes)
    if read.status is Status.NOT_REPRODUCED:
        return Classification(Status.WORKS, read.reason)
    if read.status is Status.REPRODUCED:
        return Classification(Status.BROKEN, read.reason)
    code = run.exit_code
    if (read.status is Status.OTHER_FAILURE and not signatures and not run.oom_killed
            and code is not None and 1 <= code <= 127
            and not (exit_codes == "pytest" and code in PYTEST_EXITS)):
        error = last_error_line(run.output)
        return Classification(Status.BROKEN, f"exit {code}: {error}" if error else f"exit {code}")
    return read


def classify_import_only(pins: Sequence[str]) -> Classification:
    """Compatibility mode without a repro: the image's import check passed, and decides."""
    with_pins = f" with {', '.join(pins)}" if pins else ""
    return Classification(Status.WORKS, f"imports{with_pins} (no repro: the import check "
                                        "decides)")


def guess_module(project: str) -> str:
    """The module a project most likely installs: its name, lowercased, '-' and '.' as '_'."""
    return re.sub(r"[-.]+", "_", project).lower()


def import_error_naming(log: str, modules: Sequence[str]) -> str:
    """The import check's error line when the failure lies with one of ``modules`` (the
    pinned packages): the error line names one (``dep.urls``), or the traceback's last
    frame is inside one; else ''."""
    error = last_error_line(log)
    if not error:
        return ""
    frames = [line.strip() for line in log.splitlines() if line.strip().startswith('File "')]
    last_frame = frames[-1] if frames else ""
    for module in modules:
        named = re.compile(rf"(?<![\w.]){re.escape(module)}(?!\w)")
        if named.search(error) or re.search(rf"/{re.escape(module)}(/|\.py\b)", last_frame):
            return error
    return ""


def classify_import_broken(error: str, pins: Sequence[str], kind: str) -> Classification:
    """The image's import check failed because of a pinned package: in compatibility mode the
    pair is broken (the error is the evidence); otherwise the release cannot be installed with
    it, without trying other era cutoffs (the pin does not change across them)."""
    with_pins = ", ".join(pins)
    if kind == KIND_COMPATIBILITY:
        return Classification(Status.BROKEN, f"does not import with {with_pins}: {error}")
    return Classification(Status.CANNOT_INSTALL, f"did not import with {with_pins}: {error}")


_NO_SOLUTION = re.compile(r"no solution found", re.IGNORECASE)


def is_no_solution(detail: str) -> bool:
    """The resolver found no set of releases that satisfies the requirements (not a network,
    build or file problem)."""
    return bool(_NO_SOLUTION.search(detail))


def classify_declared_incompatible(detail: str) -> Classification:
    """The declared requirements exclude the pair (no solution even with every release the
    index has today): nothing was built; the resolver's explanation is the reason."""
    return Classification(Status.DECLARED_INCOMPATIBLE,
                          f"the declared requirements exclude the pair: {resolver_reason(detail)}")


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
