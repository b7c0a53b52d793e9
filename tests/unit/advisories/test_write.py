"""advisories.write: ranges from the overall verdict, never "0", per-Python detail, schema-valid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import jsonschema
import pytest

from repro_matrix.advisories import write as osv
from repro_matrix.model import Claim, Status
from repro_matrix.verdict.derive import Observation, derive
from tests import factories

R, N, CI = Status.REPRODUCED, Status.NOT_REPRODUCED, Status.CANNOT_INSTALL
META: dict[str, Any] = {"package": "pkg", "description": "pkg crashes",
                        "finished_at": "2024-01-02T03:04:05Z"}


def schema() -> dict[str, Any]:
    text = resources.files("repro_matrix").joinpath("schemas", "osv.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def export(grid: dict[str, Sequence[Status]], meta: dict[str, Any] | None = None,
           claim: Claim | None = None) -> dict[str, Any]:
    """grid: version -> statuses on (3.9, 3.11, ...)."""
    records = [factories.record(python, version, status, "r",
                          finished_at=f"2024-01-0{1 + i}T00:00:00Z")
               for version, statuses in grid.items()
               for i, (python, status) in enumerate(zip(("3.9", "3.11"), statuses))]
    verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     claim or Claim())
    record = osv.to_osv("demo", META if meta is None else meta, records, verdict)
    jsonschema.validate(record, schema())
    assert osv.quality_problems(record) == []
    return record


def events(record: dict[str, Any]) -> list[list[dict[str, str]]]:
    return [rng["events"] for rng in record["affected"][0]["ranges"]]


def test_fixed_range_from_the_overall_verdict() -> None:
    record = export({"1.0": (N, N), "1.1": (R, CI), "1.2": (R, R), "2.0": (N, N)})
    assert record["affected"][0]["package"] == {"ecosystem": "PyPI", "name": "pkg"}
    assert events(record) == [[{"introduced": "1.1"}, {"fixed": "2.0"}]]
    assert record["affected"][0]["ranges"][0]["type"] == "ECOSYSTEM"


def test_introduced_is_the_first_affected_release_even_at_the_oldest_tested_one() -> None:
    record = export({"1.0": (R, R), "1.1": (N, N)})
    assert events(record) == [[{"introduced": "1.0"}, {"fixed": "1.1"}]]
    assert "never '0'" in record["database_specific"]["introduced_note"]
    assert record["affected"][0]["ranges"][0]["database_specific"]["from_first_tested"] is True


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
    assert record["id"] == "REPRO-MATRIX-demo"
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


@pytest.mark.parametrize("broken", [
    lambda r: r.pop("id"),
    lambda r: r.pop("modified"),
    lambda r: r.pop("affected"),
    lambda r: r["affected"][0]["ranges"][0]["events"].append({"last_affected": "1.0"}),
    lambda r: r["affected"][0]["ranges"][0]["events"].pop(0),
    lambda r: r["affected"][0]["package"].pop("name"),
])
def test_schema_rejects_what_osv_forbids(broken: Any) -> None:
    record = export({"1.0": (R, R), "1.1": (N, N)})
    broken(record)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, schema())


@pytest.mark.parametrize(("broken", "problem"), [
    (lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(1, {"fixed": "1.0"}),
     "introduced equals fixed"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(1, {"fixed": "9.9"}),
     "9.9 was not tested"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].reverse(), "does not start with"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].insert(0, {"introduced": "1.1"}),
     "not in version order"),
    (lambda r: r["affected"][0]["ranges"][0]["events"].append({"last_affected": "1.1"}),
     "both fixed and last_affected"),
    (lambda r: r["affected"][0]["ranges"].append(
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}]}), "ranges overlap"),
])
def test_quality_checks_catch_what_osv_rejects(broken: Any, problem: str) -> None:
    record = export({"1.0": (R, R), "1.1": (N, N)})
    broken(record)
    assert any(problem in line for line in osv.quality_problems(record)), problem


def test_the_committed_results_export_valid_osv() -> None:
    """Every published case: schema-valid and clean by OSV's data-quality rules."""
    from pathlib import Path

    from repro_matrix import store
    from repro_matrix.model import claim_from_json

    found = sorted((Path(__file__).parents[3] / "results").glob("*/cells.json"))
    assert found, "no committed results"
    for path in found:
        meta, records = store.read_cells(path)
        verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                         claim_from_json(meta.get("claim") or {}))
        record = osv.to_osv(path.parent.name, meta, records, verdict)
        jsonschema.validate(record, schema())
        assert osv.quality_problems(record) == []
        for rng in (r for a in record["affected"] for r in a["ranges"]):
            assert rng["events"][-1] != {"last_affected": record["database_specific"][
                "tested_versions"][-1]}
