"""Group the cells that decided nothing by their cause: the last exception line of their output
(or of the first era cutoff tried, for a release that did not install), else their reason."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from repro_matrix import pythons as py
from repro_matrix.model import CellRecord, Status

# "ValueError: boom", "pkg.errors.Oops: x", "KeyboardInterrupt", "OSError: [Errno 98] …".
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|"
                        r"Warning|Failure|Fault|Timeout)\b(?::.*)?$")
_UV_ERROR = re.compile(r"^\s*(?:error|×):?\s+(.*)$")
_PATH_IN_PARENS = re.compile(r"\s*\((?:/[^()]*)\)")
_MAX_CAUSE = 200


def error_line(text: str) -> str:
    """The last exception line of a traceback-like text ('' when it has none)."""
    for line in reversed(text.splitlines()):
        if _EXCEPTION.match(line.strip()):
            return line.strip()
    return ""


def _short(text: str) -> str:
    """A cause as groups compare it: no file-system paths in parentheses, bounded length."""
    text = _PATH_IN_PARENS.sub("", text).strip()
    return text if len(text) <= _MAX_CAUSE else text[:_MAX_CAUSE - 1] + "…"


def attempt_cause(detail: str) -> str:
    """What went wrong in one era cutoff's attempt: its error line, else its first line
    (never the tail of a tool's hints, which would hide the cause)."""
    found = error_line(detail)
    if found:
        return _short(found)
    for line in detail.splitlines():
        match = _UV_ERROR.match(line)
        if match:
            return _short(match[1])
    first = next((line.strip() for line in detail.splitlines() if line.strip()), "")
    return _short(first)


def cause(record: CellRecord) -> str:
    """Why a cell decided nothing, in one line."""
    if record.status is Status.UNAVAILABLE:
        # Every cell of the column says the same, up to the Python's own number.
        return _short(record.reason.replace(record.cell.python, "X.Y"))
    if record.status is Status.SIGNATURE_EXIT_0:
        return _short(record.reason)  # the output's error line would be the signature itself
    if record.status is Status.CANNOT_INSTALL and record.attempts:
        first = attempt_cause(record.attempts[0].detail)
        if first:
            return first
    return _short(error_line(record.output_excerpt) or record.reason)


@dataclass(frozen=True)
class Group:
    """Cells with one status and one cause."""

    status: Status
    cause: str
    records: tuple[CellRecord, ...]

    @property
    def pythons(self) -> list[str]:
        return sorted({r.cell.python for r in self.records}, key=py.sort_key)

    @property
    def representative(self) -> CellRecord:
        """The newest release on the newest Python: the likeliest to matter to a reader."""
        return max(self.records, key=lambda r: (py.sort_key(r.cell.python),
                                                Version(r.cell.version)))


def groups(records: Sequence[CellRecord],
           statuses: Sequence[Status] | None = None) -> list[Group]:
    """Cells that are neither reproduced nor passing, grouped by (status, cause); biggest
    first."""
    wanted = set(statuses) if statuses is not None else {s for s in Status if not s.decisive}
    found: dict[tuple[Status, str], list[CellRecord]] = {}
    for record in records:
        if record.status in wanted:
            found.setdefault((record.status, cause(record)), []).append(record)
    ordered = sorted(found.items(), key=lambda item: (-len(item[1]), item[0][0].value,
                                                      item[0][1]))
    return [Group(status, text, tuple(sorted(
        members, key=lambda r: (py.sort_key(r.cell.python), Version(r.cell.version)))))
        for (status, text), members in ordered]


def spans(versions: Sequence[str], tested: Sequence[str]) -> str:
    """Versions as runs of consecutive tested releases, e.g. "0.10 to 1.0.2, 2.0.0" (en dash)."""
    order = {v: i for i, v in enumerate(tested)}
    chosen = sorted(versions, key=lambda v: order.get(v, len(order)))
    runs: list[list[str]] = []
    for version in chosen:
        if runs and order.get(version, -2) == order.get(runs[-1][-1], -9) + 1:
            runs[-1].append(version)
        else:
            runs.append([version])
    return ", ".join(run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs)


def where(group: Group, tested: Sequence[str]) -> str:
    """Per Python, which releases: a span list, or "every release"."""
    by_python: dict[str, list[str]] = {}
    for record in group.records:
        by_python.setdefault(record.cell.python, []).append(record.cell.version)
    phrases: dict[str, list[str]] = {}
    for python in sorted(by_python, key=py.sort_key):
        versions = by_python[python]
        text = ("every release" if set(versions) >= set(tested)
                else spans(versions, tested))
        phrases.setdefault(text, []).append(f"py{python}")
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in phrases.items())
