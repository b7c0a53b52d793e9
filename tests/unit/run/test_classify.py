"""classify: a raw run becomes one Status by the git-bisect-run exit-code convention."""

from __future__ import annotations

import pytest

from repro_matrix.model import OutcomeRule, RawRun, Status
from repro_matrix.run.classify import (
    classify,
    classify_build_failure,
    classify_declared_incompatible,
    classify_import_broken,
    classify_import_only,
    classify_pair,
    classify_run,
    common_failure,
    guess_module,
    import_error_naming,
    is_no_solution,
    last_error_line,
    resolver_reason,
)

SIGNATURES = ("RuntimeError: BOOM", "OSError: [Errno 98]")
BUG = "Traceback (most recent call last):\n  File \"/repro/repro.py\", line 3\nRuntimeError: BOOM\n"
IMPORT_ERROR = ("Traceback (most recent call last):\n  File \"/repro/repro.py\", line 1\n"
                "ImportError: cannot import name 'thing' from 'pkg'\n")


def run(exit_code: int | None, output: str = "", timed_out: bool = False,
        oom_killed: bool = False) -> RawRun:
    return RawRun(exit_code=exit_code, timed_out=timed_out, output=output, duration_s=61.2,
                  oom_killed=oom_killed)


@pytest.mark.parametrize(("raw", "status"), [
    (run(0, "all good\n"), Status.NOT_REPRODUCED),
    (run(0, BUG), Status.SIGNATURE_EXIT_0),  # a forgotten sys.exit(1): decides nothing
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


@pytest.mark.parametrize("exit_codes", ["default", "pytest"])
def test_the_signature_with_exit_0_says_to_check_the_exit_code(exit_codes: str) -> None:
    result = classify(run(0, BUG), SIGNATURES, exit_codes)
    assert result.status is Status.SIGNATURE_EXIT_0
    assert not result.status.decisive
    assert result.reason == ("exit 0, but the output has 'RuntimeError: BOOM': signature printed "
                             "but exit 0: check the repro's exit code")


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


# ---- pytest's exit codes, the resolver's reason, a column failing one way ---------------------


@pytest.mark.parametrize(("code", "status", "words"), [
    (0, Status.SIGNATURE_EXIT_0, "exit 0, but the output has 'RuntimeError: BOOM'"),
    (1, Status.REPRODUCED, "output has 'RuntimeError: BOOM'"),
    (2, Status.OTHER_FAILURE, "pytest exit 2: interrupted"),
    (3, Status.OTHER_FAILURE, "pytest exit 3: internal error"),
    (4, Status.OTHER_FAILURE, "pytest exit 4: usage error"),
    (5, Status.CANNOT_TEST, "pytest exit 5: no tests collected"),
    (125, Status.CANNOT_TEST, "exit 125"),
])
def test_pytest_exit_codes(code: int, status: Status, words: str) -> None:
    result = classify(run(code, BUG), SIGNATURES, exit_codes="pytest")
    assert result.status is status and words in result.reason


def test_default_exit_codes_still_read_2_with_the_signature_as_the_bug() -> None:
    assert classify(run(2, BUG), SIGNATURES).status is Status.REPRODUCED


UV_CONFLICT = """\
  × No solution found when resolving dependencies:
  ╰─▶ Because pkg==1.0 depends on dep<3 and you require pkg==1.0, we can conclude that you
      require dep<3.
      And because you require dep>=3, we can conclude that your requirements are unsatisfiable.
"""


def test_a_conflict_the_resolver_found_is_the_cannot_install_reason() -> None:
    result = classify_build_failure("install", 5, UV_CONFLICT)
    assert result.status is Status.CANNOT_INSTALL
    assert result.reason.startswith("did not resolve at any of 5 era cutoff(s) tried: Because "
                                    "pkg==1.0 depends on dep<3")
    assert "you require dep>=3" in result.reason and "\n" not in result.reason
    assert len(resolver_reason("x" * 1000)) == 400


def test_last_error_line_is_the_traceback_verdict() -> None:
    assert last_error_line(IMPORT_ERROR + "exit\n") == \
        "ImportError: cannot import name 'thing' from 'pkg'"
    assert last_error_line("E   AssertionError: nope\n= 1 failed =\n") == "AssertionError: nope"
    assert last_error_line("all good\n") == ""


def test_common_failure_needs_every_cell_failing_with_the_same_line() -> None:
    missing = "ModuleNotFoundError: No module named 'attrs'\n"
    same = [(Status.OTHER_FAILURE, "x\n" + missing), (Status.CANNOT_INSTALL, missing)]
    assert common_failure(same) == missing.strip()
    assert common_failure(same[:1]) == ""  # one cell is not a pattern
    assert common_failure([*same, (Status.NOT_REPRODUCED, "")]) == ""
    assert common_failure([*same, (Status.OTHER_FAILURE, IMPORT_ERROR)]) == ""


# ---- compatibility mode -----------------------------------------------------------------------

PAIR_IMPORT = (
    "Traceback (most recent call last):\n"
    "  File \"<string>\", line 1, in <module>\n"
    "  File \"/opt/venv/lib/python3.11/site-packages/pkg/__init__.py\", line 5, in <module>\n"
    "    from .app import App as App\n"
    "  File \"/opt/venv/lib/python3.11/site-packages/pkg/app.py\", line 30, in <module>\n"
    "    from dep_lib.urls import url_quote\n"
    "ImportError: cannot import name 'url_quote' from 'dep_lib.urls' "
    "(/opt/venv/lib/python3.11/site-packages/dep_lib/urls.py)\n"
    "repro-matrix: the installed package does not import\n")
INSIDE_DEP = (
    "Traceback (most recent call last):\n"
    "  File \"/opt/venv/lib/python3.11/site-packages/pkg/__init__.py\", line 2, in <module>\n"
    "  File \"/opt/venv/lib/python3.11/site-packages/dep_lib/compat.py\", line 9, in <module>\n"
    "AttributeError: module 'collections' has no attribute 'Mapping'\n")
OTHER_IMPORT = (
    "Traceback (most recent call last):\n"
    "  File \"/opt/venv/lib/python3.11/site-packages/pkg/__init__.py\", line 2, in <module>\n"
    "ImportError: cannot import name 'escape' from 'templates' (/opt/venv/.../templates.py)\n")


@pytest.mark.parametrize(("raw", "signatures", "status"), [
    (run(0), (), Status.WORKS),
    (run(1, IMPORT_ERROR), (), Status.BROKEN),
    (run(1, BUG), SIGNATURES, Status.BROKEN),
    (run(1, IMPORT_ERROR), SIGNATURES, Status.OTHER_FAILURE),  # signatures given, none shown
    (run(125), (), Status.CANNOT_TEST),
    (run(None, timed_out=True), (), Status.TIMEOUT),
    (run(1, BUG, oom_killed=True), (), Status.OTHER_FAILURE),
    (run(137), (), Status.OTHER_FAILURE),
])
def test_a_pair_works_or_is_broken_by_its_repro(raw: RawRun, signatures: tuple[str, ...],
                                                status: Status) -> None:
    assert classify_pair(raw, signatures).status is status


def test_a_broken_pair_gives_its_last_error_line_as_evidence() -> None:
    result = classify_pair(run(1, IMPORT_ERROR), ())
    assert result.reason == "exit 1: ImportError: cannot import name 'thing' from 'pkg'"


def test_pytest_codes_say_nothing_about_the_pair() -> None:
    assert classify_pair(run(5), (), "pytest").status is Status.CANNOT_TEST
    assert classify_pair(run(2, IMPORT_ERROR), (), "pytest").status is Status.OTHER_FAILURE
    assert classify_pair(run(1, IMPORT_ERROR), (), "pytest").status is Status.BROKEN


def test_classify_run_follows_the_kind() -> None:
    assert classify_run(run(0), OutcomeRule(())).status is Status.NOT_REPRODUCED
    assert classify_run(run(0), OutcomeRule((), kind="compatibility")).status is Status.WORKS


@pytest.mark.parametrize(("log", "modules", "named"), [
    (PAIR_IMPORT, ["dep_lib"], True),       # the error line names the pinned module
    (INSIDE_DEP, ["dep_lib"], True),        # raised inside it (the last frame)
    (PAIR_IMPORT, ["dep"], False),          # a prefix of a name is not the name
    (OTHER_IMPORT, ["dep_lib"], False),     # another package's failure: the era search goes on
    ("Successfully installed pkg\n", ["dep_lib"], False),
])
def test_an_import_failure_is_the_pins_only_when_it_names_them(
        log: str, modules: list[str], named: bool) -> None:
    error = import_error_naming(log, modules)
    assert bool(error) is named
    if named:
        assert error == last_error_line(log)


def test_an_import_failure_of_the_pin_is_broken_in_compatibility_mode_only() -> None:
    error = import_error_naming(PAIR_IMPORT, ["dep_lib"])
    broken = classify_import_broken(error, ["dep-lib==3.0.1"], "compatibility")
    assert broken.status is Status.BROKEN
    assert broken.reason.startswith("does not import with dep-lib==3.0.1: ImportError: cannot "
                                    "import name 'url_quote'")
    assert classify_import_broken(error, ["dep-lib==3.0.1"], "bug").status is \
        Status.CANNOT_INSTALL


def test_no_solution_is_declared_incompatibility_with_the_resolvers_words() -> None:
    detail = ("  × No solution found when resolving dependencies:\n"
              "  ╰─▶ Because pkg==2.3.0 depends on dep-lib>=2.3.0 and you require "
              "dep-lib==2.2.0, we can conclude that your requirements are unsatisfiable.")
    assert is_no_solution(detail)
    assert not is_no_solution("error: Failed to fetch: `https://index.invalid/simple/pkg/`")
    result = classify_declared_incompatible(detail)
    assert result.status is Status.DECLARED_INCOMPATIBLE
    assert result.reason.endswith("Because pkg==2.3.0 depends on dep-lib>=2.3.0 and you require "
                                  "dep-lib==2.2.0, we can conclude that your requirements are "
                                  "unsatisfiable.")


def test_without_a_repro_the_import_check_decides() -> None:
    result = classify_import_only(["dep-lib==3.0.1"])
    assert result.status is Status.WORKS
    assert "dep-lib==3.0.1" in result.reason
    assert guess_module("Dep.Lib-x") == "dep_lib_x"
