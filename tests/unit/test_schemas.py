"""schemas: cells.json and verdict.json as store writes them match their schemas."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from repro_matrix import store
from repro_matrix.model import Attempt, Cell, CellRecord, Claim, ClaimRange, Status
from repro_matrix.verdict.derive import AffectedRange, BranchNote, Observation, derive
from tests.factories import full_record, one_per_status

SCHEMAS = ("cells", "verdict", "osv", "boundaries")
REPO = Path(__file__).resolve().parents[2]


def schema(name: str) -> dict[str, Any]:
    text = resources.files("repro_matrix").joinpath("schemas", f"{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def records() -> list[CellRecord]:
    return [full_record(), *one_per_status()]


META: dict[str, Any] = {  # shaped like the run loop's (run.loop.MatrixRun)
    "case": "demo", "package": "pkg", "description": "pkg crashes",
    "claim": {"first_fixed": "1.2", "introduced": None, "source": "changelog"},
    "matrix_digest": "e" * 64, "started_at": "2024-01-02T03:00:00Z",
    "versions": ["1.0", "1.1"], "pythons": ["3.9", "3.11"],
    "release_dates": {"1.0": "2020-01-01"}, "repro": "cases/demo/repro.py",
    "bases": {"3.9": {"provider": "debian", "reference": "repro-matrix/base:py3.9",
                      "source": "debian bullseye", "interpreter_version": "3.9.2",
                      "unavailable_reason": ""},
              "3.11": {"provider": "none", "reference": "", "source": "",
                       "interpreter_version": "", "unavailable_reason": "no image"}},
    "finished_at": "2024-01-02T03:04:05Z", "wall_time_s": 12.5,
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    loaded = schema(name)
    assert loaded["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(loaded)


def test_schemas_ship_as_package_data() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"schemas/*.json"' in text
    shipped = {p.name for p in resources.files("repro_matrix").joinpath("schemas").iterdir()}
    assert shipped >= {f"{name}.schema.json" for name in SCHEMAS}


@pytest.mark.parametrize("meta", [META, {}], ids=["full-meta", "no-meta"])
def test_written_cells_json_matches_the_schema(tmp_path: Path, meta: dict[str, Any]) -> None:
    path = store.write_cells(tmp_path, "demo", records(), meta)
    jsonschema.validate(json.loads(path.read_text()), schema("cells"))


def test_cells_schema_rejects_drift(tmp_path: Path) -> None:
    payload = json.loads(store.write_cells(tmp_path, "demo", records(), META).read_text())
    for change in ({"status": "exploded"}, {"surprise": 1}, {"exit_code": "1"}):
        broken = {**payload, "cells": [{**payload["cells"][0], **change}]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema("cells"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "schema_version": 2}, schema("cells"))


def test_cells_schema_knows_every_status_and_record_field() -> None:
    defs = schema("cells")["$defs"]
    assert defs["status"]["enum"] == [s.value for s in Status]
    fields = [f.name for f in dataclasses.fields(CellRecord)]
    assert list(defs["record"]["properties"]) == fields
    # Fields added after schema 1 was first written may be absent from older files.
    assert defs["record"]["required"] == [f for f in fields
                                          if f not in ("input_key", "package_cutoffs")]
    assert list(defs["cell"]["properties"]) == ["id", *(f.name for f in dataclasses.fields(Cell))]
    assert list(defs["attempt"]["properties"]) == [f.name for f in dataclasses.fields(Attempt)]


@pytest.mark.parametrize("claim", [Claim(first_fixed="1.2", source="changelog"), Claim(),
                                   Claim(introduced="1.1", first_fixed="1.3"),
                                   Claim(ranges=(ClaimRange("0", fixed="1.2"),
                                                 ClaimRange("1.3", last_affected="1.3")),
                                         advisory_id="GHSA-x", aliases=("CVE-x",))])
def test_written_verdict_json_matches_the_schema(tmp_path: Path, claim: Claim) -> None:
    observations = [Observation(p, v, s) for p, v, s in [
        ("3.9", "1.0", Status.NOT_REPRODUCED), ("3.9", "1.1", Status.REPRODUCED),
        ("3.9", "1.2", Status.NOT_REPRODUCED), ("3.9", "1.3", Status.REPRODUCED),
        ("3.11", "1.0", Status.CANNOT_INSTALL), ("3.11", "1.1", Status.REPRODUCED),
        ("3.11", "1.2", Status.REPRODUCED), ("3.11", "1.3", Status.TIMEOUT)]]
    path = store.write_verdict(tmp_path, "demo", derive(observations, claim))
    payload = json.loads(path.read_text())
    jsonschema.validate(payload, schema("verdict"))
    assert payload["observed"]["overall"]["ranges"]


def test_verdict_schema_knows_every_range_and_branch_field() -> None:
    defs = schema("verdict")["$defs"]
    assert list(defs["range"]["properties"]) == [f.name for f in
                                                 dataclasses.fields(AffectedRange)]
    assert list(defs["branch"]["properties"]) == [
        *(f.name for f in dataclasses.fields(BranchNote)), "note"]


PUBLISHED = sorted((Path(__file__).resolve().parents[2] / "results").glob("*/*.json"))


@pytest.mark.parametrize("path", PUBLISHED, ids=[f"{p.parent.name}/{p.name}" for p in PUBLISHED])
def test_published_results_match_their_schema(path: Path) -> None:
    """The results of the real run committed in results/ validate, not only synthetic ones."""
    name = path.stem if path.stem in SCHEMAS else None
    if name is None:
        pytest.skip(f"no schema for {path.name}")
    jsonschema.validate(json.loads(path.read_text()), schema(name))


def test_case_meta_as_a_run_writes_it_matches_the_schema_and_reads_back_the_same(
        tmp_path: Path) -> None:
    from repro_matrix.model import CaseMeta, Limits

    meta = CaseMeta(case="demo", package="pkg", description="d", claim={"first_fixed": "1.1"},
                    matrix_digest="x", started_at="2024-01-02T03:04:05Z", repro="repro.py",
                    requirements=("pytest",), repro_path="/abs/repro.py",
                    limits=Limits("256m", 64, "8m"), versions=("1.0", "1.1"),
                    pythons=("3.9",), plan_cells=("demo/py3.9/1.0", "demo/py3.9/1.1"),
                    engine="default", release_dates={"1.0": "2020-01-01"},
                    bases={"3.9": {"provider": "debian", "reference": "r", "source": "s"}},
                    command=("python", "-m", "pytest"), env={"A": "1"}, folder=True,
                    finished_at="2024-01-02T03:05:05Z", wall_time_s=60.0,
                    extra={"merged_from": ["a", "b"]})
    data = meta.to_json()
    path = store.write_cells(tmp_path, "demo", records(), data)
    jsonschema.validate(json.loads(path.read_text()), schema("cells"))
    read = CaseMeta.from_json(store.read_cells(path)[0])
    assert dataclasses.replace(read, extra={}) == dataclasses.replace(meta, extra={})
    assert read.extra["merged_from"] == ["a", "b"]
    # Keys a run sets only when the case does are absent otherwise; bad types read as defaults.
    plain = CaseMeta(case="demo").to_json()
    assert not {"command", "env", "folder", "finished_at", "bisect"} & set(plain)
    assert CaseMeta.from_json({"package": 3, "versions": "1.0"}) == CaseMeta()


def test_axis_cells_and_package_cutoffs_match_the_schema(tmp_path: Path) -> None:
    axis = CellRecord(Cell("demo", "3.11", "2.2.2", "dep", "3.0.1"), Status.BROKEN,
                      "import failed", package_cutoffs=(("dep", "2023-10-25T23:59:59Z"),))
    declared = CellRecord(Cell("demo", "3.11", "2.3.0", "dep", "2.2.0"),
                          Status.DECLARED_INCOMPATIBLE, "no solution")
    meta = {**META, "kind": "compatibility", "axis_package": "dep",
            "axis_versions": ["2.2.0", "3.0.1"], "axis_release_dates": {"3.0.1": "2023-10-25"}}
    payload = json.loads(store.write_cells(tmp_path, "demo", [axis, declared], meta).read_text())
    jsonschema.validate(payload, schema("cells"))
    half = {**payload["cells"][0], "cell": {**payload["cells"][0]["cell"]}}
    del half["cell"]["axis_version"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "cells": [half]}, schema("cells"))
