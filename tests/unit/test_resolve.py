"""resolve: era cutoffs, wheel choice, uv output parsing and target tags (no uv run)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from packaging.tags import Tag

from repro_matrix.model import DistFile, EraPolicy, Pin, Release
from repro_matrix.resolve.lock import (
    choose_file,
    era_cutoffs,
    parse_compiled,
    target_tags,
    tool_pin,
)

PY39_RELEASE = date(2020, 10, 5)
FAR_FUTURE = date(2030, 1, 1)


def utc(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


def test_old_release_starts_at_interpreter_release_then_steps_then_goes_back() -> None:
    cutoffs = era_cutoffs(utc(2018, 1, 1), PY39_RELEASE, FAR_FUTURE,
                          EraPolicy(max_attempts=5, step_days=365))
    assert cutoffs == (
        "2020-10-06T00:00:00Z",  # interpreter release day (later than the upload), end of day
        "2021-10-06T00:00:00Z",  # one step later
        "2019-05-21T00:00:00Z",  # midpoint between upload and interpreter release
        "2018-09-11T00:00:00Z",  # a quarter of the way from the upload
        "2018-01-02T00:00:00Z",  # the release's own day
    )


def test_new_release_starts_at_its_upload_day_and_drops_duplicates() -> None:
    # No earlier era to go back to: the attempts left step forward.
    cutoffs = era_cutoffs(utc(2022, 3, 1, hour=23), PY39_RELEASE, FAR_FUTURE,
                          EraPolicy(max_attempts=4, step_days=30))
    assert cutoffs == ("2022-03-02T00:00:00Z", "2022-04-01T00:00:00Z",
                       "2022-05-01T00:00:00Z", "2022-05-31T00:00:00Z")


def test_cutoffs_are_clipped_to_today() -> None:
    cutoffs = era_cutoffs(utc(2022, 3, 1), PY39_RELEASE, date(2022, 6, 1), EraPolicy())
    assert cutoffs == ("2022-03-02T00:00:00Z", "2022-06-02T00:00:00Z")


def test_release_of_today_has_a_single_cutoff() -> None:
    assert era_cutoffs(utc(2024, 5, 5), PY39_RELEASE, date(2024, 5, 5), EraPolicy()) == (
        "2024-05-06T00:00:00Z",)


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_max_attempts_is_honoured(attempts: int) -> None:
    full = era_cutoffs(utc(2018, 1, 1), PY39_RELEASE, FAR_FUTURE, EraPolicy(max_attempts=4))
    limited = era_cutoffs(utc(2018, 1, 1), PY39_RELEASE, FAR_FUTURE,
                          EraPolicy(max_attempts=attempts))
    assert limited == full[:attempts]


def test_unknown_upload_time_uses_the_interpreter_release() -> None:
    assert era_cutoffs(None, PY39_RELEASE, FAR_FUTURE, EraPolicy(step_days=1))[:2] == (
        "2020-10-06T00:00:00Z", "2020-10-07T00:00:00Z")


def test_first_cutoff_ends_the_utc_day_of_an_offset_upload() -> None:
    upload = datetime(2022, 3, 1, 22, tzinfo=timezone(timedelta(hours=-5)))
    first = era_cutoffs(upload, PY39_RELEASE, FAR_FUTURE, EraPolicy())[0]
    assert first == "2022-03-03T00:00:00Z"


# ---- choose_file ---------------------------------------------------------------------------

CP39_2_17 = "pkg-1.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
CP39_2_35 = "pkg-1.0-cp39-cp39-manylinux_2_35_x86_64.whl"
CP39_WIN = "pkg-1.0-cp39-cp39-win_amd64.whl"
PURE = "pkg-1.0-py3-none-any.whl"
SDIST = "pkg-1.0.tar.gz"


def dist(filename: str) -> DistFile:
    return DistFile(filename=filename, url=f"https://files.invalid/{filename}",
                    sha256=f"hash-of-{filename}", upload_time=None, requires_python=None,
                    yanked=False)


FILES = tuple(dist(name) for name in (SDIST, PURE, CP39_WIN, CP39_2_35, CP39_2_17))
TAGS_39 = target_tags("3.9", "x86_64")


def allowed(*names: str) -> set[str]:
    return {f"hash-of-{name}" for name in names}


@pytest.mark.parametrize("files", [FILES, tuple(reversed(FILES))])
def test_best_ranked_compatible_wheel_wins(files: tuple[DistFile, ...]) -> None:
    chosen = choose_file(files, TAGS_39, allowed(SDIST, PURE, CP39_WIN, CP39_2_35, CP39_2_17))
    assert chosen is not None
    assert chosen.filename == CP39_2_17


def test_only_files_with_allowed_hashes_are_considered() -> None:
    chosen = choose_file(FILES, TAGS_39, allowed(SDIST, PURE, CP39_WIN))
    assert chosen is not None
    assert chosen.filename == PURE


def test_incompatible_wheels_fall_back_to_the_sdist() -> None:
    chosen = choose_file(FILES, TAGS_39, allowed(SDIST, CP39_WIN, CP39_2_35))
    assert chosen is not None
    assert chosen.filename == SDIST


def test_incompatible_wheels_without_sdist_give_none() -> None:
    assert choose_file(FILES, TAGS_39, allowed(CP39_WIN, CP39_2_35)) is None


def test_wheel_for_another_interpreter_is_not_chosen() -> None:
    chosen = choose_file(FILES, target_tags("3.11", "x86_64"), allowed(PURE, CP39_2_17))
    assert chosen is not None
    assert chosen.filename == PURE


# ---- parse_compiled and target_tags --------------------------------------------------------

H = {name: ch * 64 for name, ch in (("a", "a"), ("b", "b"), ("c", "c"), ("d", "d"))}
COMPILED = f"""\
# This file was autogenerated by uv via the following command:
#    uv pip compile - --generate-hashes --python-version 3.9
Click==7.1.2 \\
    --hash=sha256:{H["a"]} \\
    --hash=sha256:{H["b"]}
    # via pkg
pkg==1.0.2 ; python_full_version >= '3.6' \\
    --hash=sha256:{H["c"]}
    # via -r -
zope.interface==5.4.0 \\
    --hash=sha256:{H["d"]}
    # via pkg
"""


def test_parse_compiled_maps_canonical_names_to_versions_and_hashes() -> None:
    assert parse_compiled(COMPILED) == {
        "click": ("7.1.2", {H["a"], H["b"]}),
        "pkg": ("1.0.2", {H["c"]}),
        "zope-interface": ("5.4.0", {H["d"]}),
    }


def test_parse_compiled_of_empty_output_is_empty() -> None:
    assert parse_compiled("# nothing to install\n") == {}


def test_target_tags_cover_glibc_floor_and_exclude_newer_manylinux() -> None:
    tags = target_tags("3.9", "x86_64")
    assert Tag("cp39", "cp39", "manylinux_2_17_x86_64") in tags
    assert Tag("cp39", "cp39", "manylinux2014_x86_64") in tags
    assert Tag("cp39", "cp39", "manylinux_2_31_x86_64") in tags
    assert Tag("cp39", "cp39", "manylinux_2_35_x86_64") not in tags
    assert Tag("cp39", "cp39", "manylinux_2_32_x86_64") not in tags
    assert all("aarch64" not in tag.platform for tag in tags)
    assert tags.index(Tag("cp39", "cp39", "manylinux_2_17_x86_64")) < tags.index(
        Tag("py3", "none", "any"))


def test_target_tags_follow_the_machine() -> None:
    tags = target_tags("3.11", "aarch64")
    assert Tag("cp311", "cp311", "manylinux_2_17_aarch64") in tags
    assert all("x86_64" not in tag.platform for tag in tags)


def test_network_trouble_is_transient_but_no_solution_is_not() -> None:
    from repro_matrix.resolve.lock import is_transient

    assert is_transient("error: Failed to fetch: `https://index.invalid/simple/pkg/`")
    assert is_transient("error sending request for url (...): operation timed out")
    assert not is_transient("× No solution found when resolving dependencies:\n"
                            "  ╰─▶ Because pkg==1.0 depends on other>=2 ...")
    assert not is_transient("× Failed to build `markupsafe==1.0`\n"
                            "ImportError: cannot import name 'Feature' from 'setuptools'")


# ---- tool_pin: build tools from the index page -----------------------------------------------


def tool_release(version: str, uploaded: datetime, requires: str | None = None,
                 yanked: bool = False, name: str = "pip-{v}-py3-none-any.whl") -> Release:
    dist = DistFile(name.format(v=version), "u", f"h{version}", uploaded, requires, yanked)
    return Release(version, uploaded, yanked, (dist,))


TOOLS = [
    tool_release("19.0", utc(2019, 1, 22), ">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*"),
    tool_release("19.1", utc(2019, 4, 23)),
    tool_release("19.2b1", utc(2019, 5, 1)),  # a pre-release: never chosen
    tool_release("19.2", utc(2019, 7, 23), yanked=True),
    tool_release("20.0", utc(2020, 1, 21), ">=3.5"),
    tool_release("22.0", utc(2022, 1, 29), ">=3.7"),
    tool_release("23.0", utc(2023, 1, 30), ">=3.7", name="pip-{v}-cp312-none-any.whl"),
]


@pytest.mark.parametrize(("python", "cutoff", "version"), [
    ("3.9", "2019-07-01T00:00:00Z", "19.1"),  # the pre-release after 19.1 is skipped
    ("3.9", "2019-12-31T00:00:00Z", "19.1"),  # 19.2 is yanked
    ("3.9", "2021-01-01T00:00:00Z", "20.0"),
    ("3.6", "2024-01-01T00:00:00Z", "20.0"),  # 22.0 requires Python 3.7
    ("3.9", "2024-01-01T00:00:00Z", "22.0"),  # 23.0's only file does not fit CPython 3.9
    ("3.9", "2019-01-22T12:00:00Z", "19.0"),  # uploaded at the cutoff itself: in
])
def test_tool_pin_is_the_newest_final_release_by_the_cutoff_for_the_python(
        python: str, cutoff: str, version: str) -> None:
    pin = tool_pin("pip", TOOLS, python, cutoff, target_tags(python, "x86_64"))
    assert pin == Pin("pip", version, f"pip-{version}-py3-none-any.whl", f"h{version}")


def test_tool_pin_is_none_before_the_first_release() -> None:
    assert tool_pin("pip", TOOLS, "3.9", "2018-01-01T00:00:00Z",
                    target_tags("3.9", "x86_64")) is None
