"""causes: cells that decided nothing, grouped by status and error line (golden rendering)."""

from __future__ import annotations

from collections.abc import Callable

from repro_matrix.model import Attempt, Cell, CellRecord, Status
from repro_matrix.report import markdown
from repro_matrix.verdict import causes
from tests.factories import record

Golden = Callable[[str, str], None]
OF, CI, UN = Status.OTHER_FAILURE, Status.CANNOT_INSTALL, Status.UNAVAILABLE
UV_TAIL = ("  File \"<string>\", line 6, in <module>\n"
           "ImportError: cannot import name 'Feature' from 'setuptools' "
           "(/root/.cache/uv/builds-v0/.tmpE1vb2F/setuptools/__init__.py)\n"
           "hint: `markupsafe` (v1.0) was included because `pkg` (v1.0) depends on it\n"
           "hint: Build failures usually indicate a problem with the package\n")
VERSIONS = ["0.9", "1.0", "1.1", "1.2", "2.0"]


def failure(python: str, version: str, error: str) -> CellRecord:
    return record(python, version, OF, "exit 3 without the failure signature",
                      exit_code=3, output_excerpt=f"Traceback (most recent call last):\n{error}\n"
                      "FAILURE: unexpected error in the main thread\n")


def uninstallable(python: str, version: str, detail: str) -> CellRecord:
    return record(python, version, CI,
                      "did not import at any of 2 era cutoff(s) tried",
                      attempts=(Attempt("2024-01-01T00:00:00Z", "resolve failed", detail),
                                Attempt("2023-01-01T00:00:00Z", "import failed", "x")))


def unavailable(python: str, version: str) -> CellRecord:
    return record(python, version, UN,
                      f"no Debian suite is known to ship Python {python}")


GET_LOADER = "AttributeError: module 'pkgutil' has no attribute 'get_loader'"
RECORDS = [
    *(failure("3.14", v, GET_LOADER) for v in ("0.9", "1.0", "1.1", "2.0")),
    failure("3.13", "1.2", "KeyError: 'x'"),
    uninstallable("3.11", "0.9", UV_TAIL), uninstallable("3.11", "1.0", UV_TAIL),
    uninstallable("3.13", "0.9", UV_TAIL),
    *(unavailable(p, v) for p in ("3.7", "3.8") for v in VERSIONS),
    record("3.9", "1.0", Status.REPRODUCED, "exit 1"),
]


def test_grouped_causes_match_golden(golden: Golden) -> None:
    golden("causes_section.md", markdown.causes_section(RECORDS))


def test_groups_are_by_status_and_error_line_biggest_first() -> None:
    found = causes.groups(RECORDS)
    assert [(g.status, len(g.records)) for g in found] == [(UN, 10), (OF, 4), (CI, 3), (OF, 1)]
    assert found[1].cause == GET_LOADER
    assert found[1].representative.cell.version == "2.0"
    assert causes.where(found[1], VERSIONS) == "py3.14: 0.9–1.1, 2.0"
    assert causes.where(found[0], VERSIONS) == "py3.7, py3.8: every release"


def test_an_attempt_keeps_its_cause_not_the_tools_hints() -> None:
    assert causes.attempt_cause(UV_TAIL) == (
        "ImportError: cannot import name 'Feature' from 'setuptools'")
    assert causes.attempt_cause("× No solution found when resolving dependencies:\n  ╰─▶ x") \
        == "No solution found when resolving dependencies:"


def test_unavailable_columns_group_across_pythons() -> None:
    (group,) = causes.groups([unavailable("3.7", "1.0"), unavailable("3.8", "1.0")])
    assert group.cause == "no Debian suite is known to ship Python X.Y"


def test_a_signature_with_exit_0_is_grouped_by_its_reason_not_the_signature_line() -> None:
    reason = ("exit 0, but the output has 'OSError: boom': signature printed but exit 0: check "
              "the repro's exit code")
    record = CellRecord(Cell("demo", "3.11", "1.0"), Status.SIGNATURE_EXIT_0, reason,
                        exit_code=0, output_excerpt="Traceback\nOSError: boom\n")
    assert causes.cause(record) == reason
    assert [g.status for g in causes.groups([record])] == [Status.SIGNATURE_EXIT_0]
