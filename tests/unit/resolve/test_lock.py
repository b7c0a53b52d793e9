"""resolve.lock: era cutoffs, wheel choice, uv output parsing and target tags (no uv run)."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from packaging.tags import Tag

from repro_matrix.errors import UsageError
from repro_matrix.model import DistFile, EraPolicy, Lock, Pin, Release
from repro_matrix.resolve import index as index_module
from repro_matrix.resolve import lock as lock_module
from repro_matrix.resolve.lock import (
    ResolveFailure,
    Resolver,
    choose_file,
    compile_command,
    era_cutoffs,
    exclude_newer_package_options,
    package_cutoffs,
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


# ---- pins honoured: per-package cutoffs -------------------------------------------------------

def release(version: str, uploaded: datetime | None, yanked: bool = False) -> Release:
    return Release(version, uploaded, yanked)


DEP = [release("2.2.0", utc(2022, 7, 23)), release("2.3.8", utc(2023, 10, 25, 18)),
       release("3.0.0", utc(2023, 9, 30)), release("3.0.1", utc(2023, 10, 24)),
       release("3.1.0rc1", utc(2024, 10, 1)), release("4.0", utc(2025, 1, 1), yanked=True)]
INDEX = {"dep": DEP, "other": [release("1.0", utc(2020, 1, 1))]}


def releases_of(name: str) -> list[Release]:
    if name not in INDEX:
        raise UsageError(f"the package index has no project '{name}'")
    return INDEX[name]


ERA = "2022-08-06T00:00:00Z"  # the end of a cell's era day, before every dep 2.3 and 3.x


def test_a_pin_newer_than_the_era_gets_the_end_of_its_upload_day() -> None:
    assert package_cutoffs(["dep==2.3.8"], ERA, releases_of) == (
        ("dep", "2023-10-26T00:00:00Z"),)


def test_a_pin_the_era_already_has_gets_no_cutoff_of_its_own() -> None:
    assert package_cutoffs(["dep==2.2.0", "dep<3", "other"], ERA, releases_of) == ()


def test_a_bound_gets_the_oldest_release_it_admits_not_the_newest() -> None:
    # >=3 admits 3.0.0 (Sep 30), 3.0.1 and 3.1.0rc1 (a prerelease, not admitted): the oldest.
    assert package_cutoffs(["dep>=3"], ERA, releases_of) == (("dep", "2023-10-01T00:00:00Z"),)


def test_an_era_later_than_the_pin_needs_no_cutoff() -> None:
    assert package_cutoffs(["dep==3.0.1"], "2024-01-01T00:00:00Z", releases_of) == ()


def test_an_explicit_prerelease_or_yanked_pin_is_honoured() -> None:
    assert package_cutoffs(["dep==3.1.0rc1", "dep==4.0"], ERA, releases_of) == (
        ("dep", "2025-01-02T00:00:00Z"),)  # the later of the two for one package


def test_names_are_canonical_and_unknown_or_url_requirements_are_left_to_the_resolver() -> None:
    assert package_cutoffs(["Dep[extra]==3.0.1; python_version >= '3'", "missing==1",
                            "other @ https://example.invalid/other-1.0.tar.gz", "not a req!"],
                           ERA, releases_of) == (("dep", "2023-10-25T00:00:00Z"),)


def test_uv_gets_one_option_per_package_cutoff_and_today_for_host_tools() -> None:
    options = exclude_newer_package_options([("dep", "2023-10-26T00:00:00Z")], True)
    assert options[:2] == ["--exclude-newer-package", "dep=2023-10-26T00:00:00Z"]
    assert [o.split("=")[0] for o in options[3::2]] == ["setuptools", "wheel"]
    assert exclude_newer_package_options([], False) == []


def test_the_build_interpreter_is_named_so_uv_never_searches_for_the_target_python() -> None:
    command = compile_command("uv", "3.9", "2021-06-01T00:00:00Z", "https://index.invalid/simple",
                              [("dep", "2023-10-26T00:00:00Z")], True)
    assert command[command.index("--python") + 1] == sys.executable
    assert command[command.index("--python-version") + 1] == "3.9"  # the target, apart
    assert command[command.index("--exclude-newer") + 1] == "2021-06-01T00:00:00Z"
    assert command[-6:-4] == ["--exclude-newer-package", "dep=2023-10-26T00:00:00Z"]
    assert compile_command("uv", "3.9", "x", "i", [], False, build_python="/py")[7:9] == [
        "--python", "/py"]


class _Index:
    index_url = "https://index.invalid/simple/"

    def releases(self, name: str) -> list[Release]:
        return releases_of(name)


def test_a_lock_with_package_cutoffs_has_its_own_cache_key_and_records_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_module, "find_uv", lambda: "uv")
    resolver = Resolver(_Index(), tmp_path)  # type: ignore[arg-type]
    seen: list[tuple[tuple[str, str], ...]] = []

    def resolve(requirements: list[str], python: str, cutoff: str, tools: str,
                pinned: tuple[tuple[str, str], ...] = ()) -> Lock | ResolveFailure:
        seen.append(pinned)
        if not pinned and "dep==2.3.8" in requirements:
            return ResolveFailure(cutoff, "No solution found: dep==2.3.8 is not available")
        return Lock(cutoff, (Pin("dep", "2.3.8", "dep-2.3.8-py3-none-any.whl", "a" * 64),),
                    (), package_cutoffs=pinned)

    monkeypatch.setattr(resolver, "_resolve", resolve)
    # A failure cached by a harness that had no per-package cutoffs, under the old key.
    old_key = hashlib.sha256(json.dumps([["pkg==1.0", "dep==2.3.8"], "3.11", ERA, ERA,
                                         platform.machine(), 31]).encode()).hexdigest()[:24]
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / f"{old_key}.json").write_text(json.dumps(
        {"format": 1, "failure": {"cutoff": ERA, "detail": "No solution found"}}))
    lock = resolver.lock("pkg==1.0", "3.11", ERA, ERA, extra=("dep==2.3.8",))
    assert isinstance(lock, Lock)
    assert lock.package_cutoffs == (("dep", "2023-10-26T00:00:00Z"),)
    assert seen == [(("dep", "2023-10-26T00:00:00Z"),)]
    # Cached with its cutoffs: read back whole, not resolved again.
    assert resolver.lock("pkg==1.0", "3.11", ERA, ERA, extra=("dep==2.3.8",)) == lock
    assert len(seen) == 1
    # Without per-package cutoffs the entry of an older harness (lock format 1: build tools
    # resolved by uv) is never read either: the format is part of the key, so it resolves again.
    monkeypatch.setattr(lock_module, "package_cutoffs", lambda *a: ())
    again = resolver.lock("pkg==1.0", "3.11", ERA, ERA, extra=("dep==2.3.8",))
    assert isinstance(again, ResolveFailure) and seen[1:] == [()]
    assert json.loads((tmp_path / "locks" / f"{old_key}.json").read_text())["format"] == 1


def test_no_era_attempt_hides_the_pin() -> None:
    # A release of mid-2022 on an older Python: its attempts go forward and then back towards
    # its era; at every one the pinned dep 2.3.8 (Oct 2023) is admitted by some cutoff.
    pin_day = _instant_of("2023-10-26T00:00:00Z")
    for cutoff in era_cutoffs(utc(2022, 8, 5), PY39_RELEASE, FAR_FUTURE, EraPolicy(5, 365)):
        own = dict(package_cutoffs(["dep==2.3.8"], cutoff, releases_of)).get("dep")
        assert max(_instant_of(cutoff), _instant_of(own or cutoff)) >= pin_day, cutoff


def _instant_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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


def test_a_wheelhouse_file_is_hashed_once_then_trusted_until_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    digest = hashlib.sha256(b"wheel").hexdigest()
    hashed: list[Path] = []
    real = index_module.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(lock_module, "file_sha256", counting)
    assert lock_module._intact(wheel, digest) and lock_module._intact(wheel, digest)
    assert hashed == [wheel]
    assert not lock_module._intact(wheel, "0" * 64)  # another hash is checked, not trusted
    wheel.write_bytes(b"damaged")  # another size: hashed again, and found damaged
    assert not lock_module._intact(wheel, digest)
    assert not lock_module._intact(tmp_path / "missing.whl", digest)
