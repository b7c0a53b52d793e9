"""advisories.write: ranges from the overall verdict, starts only where the cells or the claim
show them, versions named, schema-valid (ours and OSV's own), and read back the way a scanner
reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.version import Version

from repro_matrix import store
from repro_matrix.advisories import write as osv
from repro_matrix.model import Cell, CellRecord, Claim, ClaimRange, Release, Status, claim_from_json
from repro_matrix.verdict.derive import Observation, derive

R, N, CI = Status.REPRODUCED, Status.NOT_REPRODUCED, Status.CANNOT_INSTALL
META: dict[str, Any] = {"package": "pkg", "description": "pkg crashes",
                        "finished_at": "2024-01-02T03:04:05Z"}
REPO = Path(__file__).resolve().parents[3]


def schema() -> dict[str, Any]:
    text = resources.files("repro_matrix").joinpath("schemas", "osv.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def osv_schema() -> dict[str, Any]:
    """OSV's own schema (vendored: tests/unit/data/osv-schema)."""
    loaded: dict[str, Any] = json.loads(
        (Path(__file__).parents[1] / "data" / "osv-schema" / "schema.json").read_text())
    return loaded


def valid(record: dict[str, Any]) -> None:
    jsonschema.validate(record, schema())
    jsonschema.validate(record, osv_schema(), format_checker=jsonschema.FormatChecker())
    assert osv.quality_problems(record) == []


def _event_version(event: dict[str, str]) -> Version:
    return Version(next(iter(event.values())))  # "0" reads as version 0, before every release


def scanner_affected(record: dict[str, Any], package: str, version: str) -> bool:
    """Is ``version`` of ``package`` affected? Read as OSV's evaluation reads a record (the
    schema's IsVulnerable: listed in versions, or inside a range's events, "0" before every
    version), with PEP 440 order for the PyPI ecosystem. Written from the schema, not from
    repro_matrix.osv, so that it checks the export instead of repeating it."""
    wanted = Version(version)
    for affected in record["affected"]:
        if affected["package"] != {"ecosystem": "PyPI", "name": package}:
            continue
        if any(Version(v) == wanted for v in affected.get("versions", [])):
            return True
        for rng in affected.get("ranges", []):
            limits = [Version(e["limit"]) for e in rng["events"] if "limit" in e]
            if limits and not any(wanted < limit for limit in limits):
                continue
            vulnerable = False
            for event in sorted(rng["events"], key=_event_version):
                if "introduced" in event and (event["introduced"] == "0"
                                              or wanted >= Version(event["introduced"])):
                    vulnerable = True
                elif (("fixed" in event and wanted >= Version(event["fixed"]))
                      or ("last_affected" in event
                          and wanted > Version(event["last_affected"]))):
                    vulnerable = False
            if vulnerable:
                return True
    return False


def export(grid: Mapping[str, Sequence[Status]], meta: dict[str, Any] | None = None,
           claim: Claim | None = None,
           not_run: dict[str, str] | None = None) -> dict[str, Any]:
    """grid: version -> statuses on (3.9, 3.11, ...)."""
    records = [CellRecord(Cell("demo", python, version), status, "r",
                          finished_at=f"2024-01-0{1 + i}T00:00:00Z")
               for version, statuses in grid.items()
               for i, (python, status) in enumerate(zip(("3.9", "3.11"), statuses))]
    verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     claim or Claim())
    record = osv.to_osv("demo", META if meta is None else meta, records, verdict, not_run)
    valid(record)
    return record


def events(record: dict[str, Any]) -> list[list[dict[str, str]]]:
    return [rng["events"] for rng in record["affected"][0]["ranges"]]


def test_fixed_range_from_the_overall_verdict() -> None:
    record = export({"1.0": (N, N), "1.1": (R, CI), "1.2": (R, R), "2.0": (N, N)})
    assert record["affected"][0]["package"] == {"ecosystem": "PyPI", "name": "pkg"}
    assert events(record) == [[{"introduced": "1.1"}, {"fixed": "2.0"}]]
    assert record["affected"][0]["ranges"][0]["type"] == "ECOSYSTEM"


def test_an_oldest_affected_release_without_a_claim_is_listed_not_given_a_start() -> None:
    """Nothing older was tested and the case claims nothing: the start is unknown, so the
    affected releases are listed and no range says the older ones are clean."""
    record = export({"1.0": (R, R), "1.1": (R, N), "1.2": (N, N)})
    (affected,) = record["affected"]
    assert "ranges" not in affected
    assert affected["versions"] == ["1.0", "1.1"]
    (left,) = affected["database_specific"]["left_out_of_ranges"]
    assert left["first_affected_tested"] == "1.0" and left["fixed"] == "1.2"
    assert "no release before 1.0 was tested" in left["why"]
    assert "listed in versions, not given as a range" in record["details"]
    assert [scanner_affected(record, "pkg", v) for v in ("1.0", "1.1", "1.2")] == \
        [True, True, False]


@pytest.mark.parametrize("claim", [
    Claim(first_fixed="1.2"),
    Claim(ranges=(ClaimRange("0", fixed="1.2"),), advisory_id="GHSA-x"),
], ids=["short-form", "osv-ranges"])
def test_a_claim_from_the_first_release_starts_the_range_at_zero(claim: Claim) -> None:
    record = export({"1.0": (R, R), "1.1": (R, N), "1.2": (N, N)}, claim=claim)
    assert events(record) == [[{"introduced": "0"}, {"fixed": "1.2"}]]
    extra = record["affected"][0]["ranges"][0]["database_specific"]
    assert extra["start"] == osv.START_CLAIM and extra["first_affected_tested"] == "1.0"
    # The scanner's question the old export answered wrong: 0.9 was never run.
    assert scanner_affected(record, "pkg", "0.9") is True
    assert scanner_affected(record, "pkg", "1.2") is False


def test_zero_is_not_taken_when_an_older_tested_release_contradicts_it() -> None:
    # The claim says "from the first release"; 1.0 was observed unaffected: the range starts
    # at the first affected release (observed), never at 0.
    record = export({"1.0": (N, N), "1.1": (R, R), "1.2": (N, N)},
                    claim=Claim(first_fixed="1.2"))
    assert events(record) == [[{"introduced": "1.1"}, {"fixed": "1.2"}]]
    assert record["affected"][0]["ranges"][0]["database_specific"]["start"] == \
        osv.START_OBSERVED
    assert scanner_affected(record, "pkg", "1.0") is False


def test_a_claim_that_starts_later_does_not_start_the_range_at_zero() -> None:
    record = export({"1.0": (R, R), "1.2": (N, N)},
                    claim=Claim(ranges=(ClaimRange("1.0", fixed="1.2"),)))
    assert "ranges" not in record["affected"][0]


DATES = {"1.0.0": "2020-01-01", "1.0.1": "2020-06-01", "1.0.2": "2021-06-01",
         "2.0.2": "2021-01-01", "2.0.3": "2021-03-01", "2.1.0": "2021-07-01"}
BRANCHES = {"1.0.0": (R, R), "1.0.1": (R, R), "1.0.2": (N, N),  # 1.0.2: a later backport
            "2.0.2": (R, R), "2.0.3": (R, R), "2.1.0": (N, N)}


def test_a_fix_backported_later_does_not_start_the_next_line() -> None:
    """The maintenance branch's fix (1.0.2) came after 2.0.2 was published: it says nothing
    about 2.0.0 and 2.0.1 (yanked, never run), which a range from 2.0.2 would call clean."""
    record = export(BRANCHES, meta={**META, "release_dates": DATES},
                    claim=Claim(first_fixed="2.1.0"),
                    not_run={"2.0.0": "yanked", "2.0.1": "yanked"})
    (affected,) = record["affected"]
    assert events(record) == [[{"introduced": "0"}, {"fixed": "1.0.2"}]]
    (left,) = affected["database_specific"]["left_out_of_ranges"]
    assert left["first_affected_tested"] == "2.0.2" and left["fixed"] == "2.1.0"
    assert "published after 2.0.2" in left["why"]
    assert affected["versions"] == ["1.0.0", "1.0.1", "2.0.0", "2.0.1", "2.0.2", "2.0.3"]
    named = {u["version"]: u for u in affected["database_specific"]["untested_in_window"]}
    assert named["2.0.0"] == {"version": "2.0.0", "why": "not run: yanked",
                              "counted": "affected"}
    for version, expected in [("0.9", True), ("1.0.2", False), ("2.0.0", True),
                              ("2.0.1", True), ("2.0.3", True), ("2.1.0", False)]:
        assert scanner_affected(record, "pkg", version) is expected, version
    assert "2.0.0, 2.0.1 (not run: yanked)" in record["details"]


def test_an_older_release_of_the_same_line_starts_the_range() -> None:
    dates = {**DATES, "1.0.2": "2020-12-01"}  # the fix came before the 2.0 line
    record = export(BRANCHES, meta={**META, "release_dates": dates},
                    claim=Claim(first_fixed="2.1.0"))
    assert events(record) == [[{"introduced": "0"}, {"fixed": "1.0.2"}],
                              [{"introduced": "2.0.2"}, {"fixed": "2.1.0"}]]


def test_an_open_stretch_with_an_unknown_start_keeps_its_range_for_later_releases() -> None:
    record = export({"1.0": (R, R), "1.1": (R, R)})
    assert events(record) == [[{"introduced": "1.0"}]]
    assert record["affected"][0]["ranges"][0]["database_specific"]["start"] == \
        osv.START_UNKNOWN
    assert scanner_affected(record, "pkg", "9.0") is True  # after the newest tested release
    assert "only so that releases after the newest tested one stay affected" in \
        record["details"]


def test_untested_releases_count_affected_only_next_to_an_affected_one() -> None:
    record = export({"1.0": (N, N), "1.1": (CI, CI), "1.2": (R, R), "1.3": (N, N),
                     "1.5": (N, N)}, not_run={"1.4": "yanked", "1.2.1": "pre-release"})
    (affected,) = record["affected"]
    counted = {u["version"]: u["counted"] for u in affected["database_specific"][
        "untested_in_window"]}
    assert counted == {"1.1": "affected", "1.2.1": "affected", "1.4": "unaffected"}
    assert affected["versions"] == ["1.1", "1.2", "1.2.1"]
    assert scanner_affected(record, "pkg", "1.1") is True  # decided nothing: not called clean
    assert scanner_affected(record, "pkg", "1.4") is False
    assert "1.4 (not run: yanked)" in record["details"]


def test_releases_not_run_are_those_inside_the_window_without_a_cell() -> None:
    def release(version: str, yanked: bool = False) -> Release:
        return Release(version, datetime(2020, 1, 1, tzinfo=timezone.utc), yanked)

    found = osv.releases_not_run(["1.0", "1.2", "2.0"], [
        release("0.9"), release("1.0"), release("1.1", yanked=True), release("1.2"),
        release("1.3rc1"), release("1.5"), release("2.0"), release("2.1")])
    assert found == {"1.1": "yanked", "1.3rc1": "pre-release",
                     "1.5": "not selected (versions.spec or --versions)"}


def test_a_later_render_without_the_index_keeps_the_releases_named_before() -> None:
    record = export({"1.0": (N, N), "1.2": (R, R)}, not_run={"1.1": "yanked"})
    assert osv.stored_not_run(record) == {"1.1": "yanked"}
    unknown = export({"1.0": (N, N), "1.2": (R, R)})
    assert unknown["database_specific"]["not_run_known"] is False
    assert osv.stored_not_run(unknown) is None


def test_a_range_still_open_at_the_newest_release_has_only_introduced() -> None:
    # last_affected = the newest tested release would claim every later release is clean
    record = export({"1.0": (N, N), "1.1": (R, R), "1.2": (R, R)})
    assert events(record) == [[{"introduced": "1.1"}]]
    assert record["affected"][0]["ranges"][0]["database_specific"]["last_affected"] == "1.2"


def test_a_regression_gives_two_ranges_in_pep440_order() -> None:
    record = export({"1.10": (R, R), "1.2": (R, R), "1.9": (N, N), "2.0": (N, N),
                     "1.0": (N, N)})
    assert events(record) == [[{"introduced": "1.2"}, {"fixed": "1.9"}],
                              [{"introduced": "1.10"}, {"fixed": "2.0"}]]


def test_per_python_ranges_and_untested_neighbours_are_database_specific() -> None:
    record = export({"1.0": (N, CI), "1.1": (R, CI), "1.2": (R, R), "2.0": (N, N)})
    per_python = record["affected"][0]["database_specific"]["per_python"]
    assert set(per_python) == {"3.9", "3.11"}
    (rng,) = per_python["3.11"]["ranges"]
    assert rng["events"] == [{"introduced": "1.2"}, {"fixed": "2.0"}]
    assert rng["database_specific"]["untested_before_introduced"] == ["1.0", "1.1"]
    assert per_python["3.11"]["undetermined"] == ["1.0", "1.1"]
    assert per_python["3.9"]["ranges"][0]["events"][0] == {"introduced": "1.1"}


def test_nothing_reproduced_means_nothing_affected() -> None:
    record = export({"1.0": (N, N), "1.1": (N, CI)})
    assert record["affected"] == []
    assert "not reproduced" in record["details"]


def test_header_fields_and_claim() -> None:
    record = export({"1.0": (R, R), "1.1": (N, N)}, claim=Claim(first_fixed="1.1"))
    assert record["id"] == "x_REPRO-MATRIX-demo"  # OSV's prefix of a local database
    assert record["modified"] == "2024-01-02T03:04:05Z"
    assert record["summary"] == "pkg crashes"
    assert record["schema_version"] == osv.OSV_SCHEMA_VERSION
    assert record["database_specific"]["claim_holds"] is True
    assert "Claim check: The claim \"first fixed in 1.1\" holds." in record["details"]
    assert record["database_specific"]["tested_versions"] == ["1.0", "1.1"]


@pytest.mark.parametrize(("meta", "modified"), [
    ({"package": "pkg", "started_at": "2024-05-05T00:00:00Z"}, "2024-05-05T00:00:00Z"),
    ({"package": "pkg"}, "2024-01-02T00:00:00Z"),  # the newest cell's finished_at
])
def test_modified_falls_back_when_the_run_has_not_finished(meta: dict[str, Any],
                                                           modified: str) -> None:
    assert export({"1.0": (R, R)}, meta=meta)["modified"] == modified


def test_without_a_package_name_nothing_is_claimed_affected() -> None:
    assert export({"1.0": (R, R)}, meta={})["affected"] == []


def test_dumps_round_trips() -> None:
    record = export({"1.0": (R, R)})
    text = osv.dumps(record)
    assert text.endswith("}\n") and json.loads(text) == record


OBSERVED = {"1.0": (N, N), "1.1": (R, R), "1.2": (N, N)}  # a range [1.1, 1.2)


@pytest.mark.parametrize(("broken", "osv_forbids"), [
    (lambda r: r.pop("id"), True),
    (lambda r: r.pop("modified"), True),
    (lambda r: r.pop("affected"), False),  # ours: always written
    (lambda r: r["affected"][0]["ranges"][0]["events"].append({"last_affected": "1.0"}), True),
    (lambda r: r["affected"][0]["ranges"][0]["events"].pop(0), True),
    (lambda r: r["affected"][0]["package"].pop("name"), True),
    (lambda r: r.__setitem__("id", "REPRO-MATRIX-demo"), True),  # no registered prefix
])
def test_schema_rejects_what_osv_forbids(broken: Any, osv_forbids: bool) -> None:
    record = export(OBSERVED)
    broken(record)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, schema())
    if osv_forbids:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(record, osv_schema())


@pytest.mark.parametrize(("broken", "problem"), [
    (lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(1, {"fixed": "1.1"}),
     "introduced equals fixed"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(1, {"fixed": "9.9"}),
     "9.9 was not tested"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].reverse(), "does not start with"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].insert(0, {"introduced": "1.2"}),
     "not in version order"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].append({"last_affected": "1.2"}),
     "both fixed and last_affected"),
    (lambda r: r["affected"][0]["versions"].append("1.0.5"), "1.0.5 was neither tested"),
    (lambda r: r["affected"][0]["ranges"].append(
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}]}), "ranges overlap"),
])
def test_quality_checks_catch_what_osv_rejects(broken: Any, problem: str) -> None:
    record = export(OBSERVED)
    broken(record)
    assert any(problem in line for line in osv.quality_problems(record)), problem


COMMITTED = sorted((REPO / "results").glob("*/osv.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_the_committed_osv_files_never_call_an_untested_release_clean(path: Path) -> None:
    """Every published case, read as a scanner reads it: schema-valid (OSV's own schema),
    re-derived unchanged from its cells, affected exactly where a cell reproduced, clean exactly
    where the cells decided so, and no release they did not decide (an older one, one that was
    not run) answered "unaffected" next to an affected one."""
    record = json.loads(path.read_text())
    valid(record)
    meta, records = store.read_cells(path.parent / "cells.json")
    verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     claim_from_json(meta.get("claim") or {}))
    assert record == osv.to_osv(path.parent.name, meta, records, verdict,
                                osv.stored_not_run(record)), "rerun `nox -s report`"
    package = meta["package"]
    states: dict[str, set[Status]] = {}
    for r in records:
        states.setdefault(r.cell.version, set()).add(r.status)
    decided = sorted((v for v, s in states.items() if s & {R, N}), key=Version)
    for version in decided:
        assert scanner_affected(record, package, version) is (R in states[version]), version
    for affected in record["affected"]:
        for item in affected["database_specific"]["untested_in_window"]:
            if item["counted"] == "affected":
                assert scanner_affected(record, package, item["version"]), item
    if R in states[decided[0]]:
        # The oldest decided release is affected and nothing older ran: a never-run older
        # release must not read "unaffected" (every committed claim says "from the first").
        assert scanner_affected(record, package, "0.0.1") is True


def test_every_committed_case_without_an_axis_has_an_osv_file() -> None:
    """An OSV record states ranges of one package: a case with a second axis has none."""
    single = {p.parent.name for p in (REPO / "results").glob("*/cells.json")
              if not json.loads(p.read_text()).get("axis_package")}
    assert {p.parent.name for p in COMMITTED} == single != set()
