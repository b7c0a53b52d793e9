"""plan: which versions and Pythons a case covers, and the cells that come out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from repro_matrix.errors import UsageError
from repro_matrix.model import (
    Axis,
    Case,
    Claim,
    DistFile,
    OutcomeRule,
    Release,
    VersionSelection,
)
from repro_matrix.spec import plan


def make_case(spec: str = "", *, prereleases: bool = False, yanked: bool = False,
              first_fixed: str | None = None, introduced: str | None = None,
              case_id: str = "demo") -> Case:
    return Case(id=case_id, package="pkg", import_name="pkg",
                versions=VersionSelection(spec, prereleases, yanked), pythons=("3.9", "3.11"),
                repro=Path("/cases/demo/repro.py"), outcome=OutcomeRule(("BOOM",)),
                claim=Claim(first_fixed=first_fixed, introduced=introduced))


def uploads(*versions: str, yanked: tuple[str, ...] = ()) -> tuple[Release, ...]:
    """Releases in upload order (the order given), one day apart."""
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    return tuple(Release(v, start + timedelta(days=i), v in yanked)
                 for i, v in enumerate(versions))


# Upload order is not PEP 440 order: a 0.9.x maintenance release and 1.10 came late.
RELEASES = uploads("1.0", "1.1", "1.2", "1.3", "2.0rc1", "2.0", "1.10", "0.9.2", yanked=("1.3",))


def test_versions_follow_pep440_not_upload_order() -> None:
    assert plan.select_versions(make_case(), RELEASES) == ("0.9.2", "1.0", "1.1", "1.2", "1.10",
                                                           "2.0")


def test_include_flags_keep_yanked_and_prereleases() -> None:
    chosen = plan.select_versions(make_case(">=1.0", prereleases=True, yanked=True), RELEASES)
    assert chosen == ("1.0", "1.1", "1.2", "1.3", "1.10", "2.0rc1", "2.0")


def test_spec_narrows_the_selection() -> None:
    assert plan.select_versions(make_case(">=1.0,<2"), RELEASES) == ("1.0", "1.1", "1.2", "1.10")


def test_versions_request_as_exact_list() -> None:
    chosen = plan.select_versions(make_case(), RELEASES, "1.10, 0.9.2")
    assert chosen == ("0.9.2", "1.10")


def test_versions_request_as_specifier_intersects_case_spec() -> None:
    assert plan.select_versions(make_case(">=1.0"), RELEASES, "<1.2") == ("1.0", "1.1")


def test_unknown_exact_version_is_usage_error() -> None:
    with pytest.raises(UsageError, match=r"pkg has no release 1\.5"):
        plan.select_versions(make_case(), RELEASES, "1.0,1.5")


@pytest.mark.parametrize(("spec", "request_"), [(">=5", ""), (">=1.0", ">=3"), ("<0.9", "")])
def test_empty_selection_is_usage_error(spec: str, request_: str) -> None:
    with pytest.raises(UsageError, match="select no release of pkg"):
        plan.select_versions(make_case(spec), RELEASES, request_)


def test_unparseable_versions_request_is_usage_error() -> None:
    with pytest.raises(UsageError, match="--versions"):
        plan.select_versions(make_case(), RELEASES, "v1.0")


def test_exact_version_matches_equal_pep440_spelling() -> None:
    releases = uploads("1.0.0", "2.0")
    assert plan.select_versions(make_case(), releases, "1.0") == ("1.0.0",)


def test_a_claim_outside_the_selection_is_planned_not_refused() -> None:
    # The claim check reports such a bound as outside the tested window.
    planned = plan.plan_case(make_case("<2", first_fixed="2.0"), RELEASES, plan.Selection())
    assert planned.versions and "2.0" not in planned.versions


def test_narrowed_versions_skip_the_claim_range_check() -> None:
    cp = plan.plan_case(make_case(first_fixed="2.0"), RELEASES, plan.Selection(versions="1.0"))
    assert cp.versions == ("1.0",)


def test_select_pythons_keeps_case_order() -> None:
    assert plan.select_pythons(make_case(), ["3.11", "3.9"]) == ("3.9", "3.11")
    assert plan.select_pythons(make_case(), []) == ("3.9", "3.11")


@pytest.mark.parametrize(("python", "message"), [
    ("3.12", "not among case demo's Pythons"), ("py3.9", r"not a Python version spelled X\.Y"),
    ("2.7", r"not a Python version spelled X\.Y")])
def test_select_pythons_rejects_unknown(python: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan.select_pythons(make_case(), [python])


def test_unknown_case_id_is_usage_error() -> None:
    with pytest.raises(UsageError, match="no case 'other'"):
        plan.select_cases([make_case()], ["other"])


def test_cell_ids_are_case_python_version_and_stable() -> None:
    cases = [make_case(">=1.0,<2"), make_case("<1", case_id="old")]
    selection = plan.Selection(case_ids=("demo",), pythons=("3.11",))
    first = plan.plan(cases, {"pkg": RELEASES}, selection)
    again = plan.plan(cases, {"pkg": tuple(reversed(RELEASES))}, selection)
    (demo,) = first
    assert [c.id for c in demo.cells] == ["demo/py3.11/1.0", "demo/py3.11/1.1",
                                          "demo/py3.11/1.2", "demo/py3.11/1.10"]
    assert first == again


def test_plan_crosses_every_python_with_every_version() -> None:
    (cp,) = plan.plan([make_case(">=2.0")], {"pkg": RELEASES}, plan.Selection())
    assert [c.id for c in cp.cells] == ["demo/py3.9/2.0", "demo/py3.11/2.0"]


# ---- requires-python: cells that are not for a Python ---------------------------------------


def with_files(version: str, *requires: str | None, day: int = 0) -> Release:
    files = tuple(DistFile(f"pkg-{version}-{i}.whl", "", "0" * 64, None, spec, False)
                  for i, spec in enumerate(requires))
    return Release(version, datetime(2020, 1, 1 + day, tzinfo=timezone.utc), False, files)


@pytest.mark.parametrize(("spec", "python", "admitted"), [
    (">=3.10", "3.9", False), (">=3.10", "3.11", True), (">=3.9.5", "3.9", True),
    ("<3.10,>=3.6", "3.11", False), ("!=3.9.*,>=3.8", "3.9", False), ("~=3.11.2", "3.11", True),
    (">=3.14", "3.14", True), (">=3.5.*", "3.9", True),  # unreadable: excludes nothing
])
def test_requires_python_admits_a_python_series(spec: str, python: str, admitted: bool) -> None:
    assert plan.admits(spec, python) is admitted


def test_release_excluded_only_when_no_file_admits_the_python() -> None:
    assert plan.release_exclusion(with_files("1.0", ">=3.10", ">=3.10"), "3.9") == \
        "the release requires Python >=3.10"
    assert plan.release_exclusion(with_files("1.0", ">=3.10", None), "3.9") == ""  # sdist: none
    assert plan.release_exclusion(with_files("1.0"), "3.9") == ""  # no files known
    assert plan.release_exclusion(with_files("1.0", ">=3.10"), "3.11") == ""


def test_plan_marks_cells_not_for_python_from_release_and_repro_metadata() -> None:
    releases = (with_files("1.0", None), with_files("2.0", ">=3.10", day=1))
    planned = plan.plan_case(make_case(), releases, plan.Selection())
    assert [c.id for c in planned.cells] == ["demo/py3.9/1.0", "demo/py3.9/2.0",
                                             "demo/py3.11/1.0", "demo/py3.11/2.0"]
    assert planned.not_for_python == (
        ("demo/py3.9/2.0", "not for Python 3.9: the release requires Python >=3.10"),)
    repro_needs_311 = replace(make_case(), requires_python=">=3.11")
    planned = plan.plan_case(repro_needs_311, releases, plan.Selection())
    assert dict(planned.not_for_python) == {
        "demo/py3.9/1.0": "not for Python 3.9: the repro's requires-python is '>=3.11'",
        "demo/py3.9/2.0": "not for Python 3.9: the repro's requires-python is '>=3.11'"}


# ---- a second axis ----------------------------------------------------------------------------

def axis_case(spec: str = "") -> Case:
    return replace(make_case(), axis=Axis("dep", VersionSelection(spec)))


DEP = (Release("2.0", datetime(2021, 1, 1, tzinfo=timezone.utc), False),
       Release("3.0", datetime(2023, 1, 1, tzinfo=timezone.utc), False, files=(
           DistFile("dep-3.0-py3-none-any.whl", "", "0" * 64, None, ">=3.10", False),)),
       Release("3.1rc1", datetime(2024, 1, 1, tzinfo=timezone.utc), False))


def test_an_axis_multiplies_the_cells_in_python_release_axis_order() -> None:
    case_plan = plan.plan_case(axis_case(), uploads("1.0", "1.1"), plan.Selection(), DEP)
    assert case_plan.axis_versions == ("2.0", "3.0")  # no prerelease unless asked for
    assert [c.id for c in case_plan.cells] == [
        f"demo/py{p}/{v}/dep=={d}" for p in ("3.9", "3.11") for v in ("1.0", "1.1")
        for d in ("2.0", "3.0")]
    # The axis release's requires-python excludes a Python as the package's does.
    assert dict(case_plan.not_for_python) == {
        f"demo/py3.9/{v}/dep==3.0": "not for Python 3.9: dep==3.0 requires Python >=3.10"
        for v in ("1.0", "1.1")}


def test_axis_versions_narrow_the_axis_and_name_the_option_in_errors() -> None:
    case_plan = plan.plan_case(axis_case(), uploads("1.0"), plan.Selection(axis_versions="3.0"),
                               DEP)
    assert case_plan.axis_versions == ("3.0",)
    with pytest.raises(UsageError, match=r"--axis-versions: dep has no release 9\.9"):
        plan.plan_case(axis_case(), uploads("1.0"), plan.Selection(axis_versions="9.9"), DEP)
    with pytest.raises(UsageError, match=r"axis.versions.spec '>=5' select no release of dep"):
        plan.plan_case(axis_case(">=5"), uploads("1.0"), plan.Selection(), DEP)


def test_a_case_without_an_axis_keeps_its_cells_and_ignores_axis_versions() -> None:
    case_plan = plan.plan_case(make_case(), uploads("1.0"), plan.Selection(axis_versions="3.0"))
    assert [c.id for c in case_plan.cells] == ["demo/py3.9/1.0", "demo/py3.11/1.0"]
    assert case_plan.axis_versions == ()


def test_plan_needs_the_releases_of_axis_packages_too() -> None:
    cases = [axis_case(), make_case(case_id="other")]
    assert plan.packages(cases) == ("pkg", "dep")
    plans = plan.plan(cases, {"pkg": uploads("1.0"), "dep": DEP}, plan.Selection())
    assert [len(cp.cells) for cp in plans] == [4, 2]
