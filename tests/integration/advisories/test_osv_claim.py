"""A real case whose claim is a published OSV record file, end to end, on a tiny window."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.version import Version

from repro_matrix import store
from repro_matrix.advisories import read as advisory
from repro_matrix.containers import engine
from repro_matrix.model import Status
from repro_matrix.resolve.index import IndexClient
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan
from repro_matrix.verdict.derive import Observation, derive

REPO = Path(__file__).resolve().parents[3]
CASE_ID = "jinja2-xmlattr-keys"
PYTHON = "3.11"

pytestmark = pytest.mark.integration


def _case() -> dict[str, object]:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case: dict[str, object] = next(c for c in source["cases"] if c["id"] == CASE_ID)
    return case


def _window(cache_dir: Path, record: Path, package: str) -> str:
    """The record's first fixed release and the release just before it (read from the index,
    not written here): the smallest window that reaches one claimed bound."""
    claim = advisory.load_claim(record, package)
    fixed = next(r.fixed for r in claim.ranges if r.fixed)
    assert fixed is not None
    finals = sorted((r.version for r in IndexClient(cache_dir).releases(package)
                     if not r.yanked and not Version(r.version).is_prerelease), key=Version)
    before = [v for v in finals if Version(v) < Version(fixed)]
    return f"{before[-1]},{fixed}"


@pytest.fixture(scope="module")
def advisory_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine,
                 cache_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("advisory")
    case = _case()
    claim = case["claim"]
    assert isinstance(claim, dict)
    record = REPO / claim["osv"]
    case["repro"] = str(REPO / str(case["repro"]))
    case["claim"] = {"osv": str(record)}
    case["pythons"] = [PYTHON]
    matrix = folder / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [case]}))
    results = folder / "results"
    loaded = config.load(matrix)
    versions = _window(cache_dir, record, str(case["package"]))
    MatrixRun(loaded, RunOptions(results=results, cache_dir=cache_dir, jobs=2)).run(
        plan.Selection(versions=versions))
    return results


def test_the_claim_is_the_record_s(advisory_run: Path) -> None:
    meta, _ = store.read_cells(advisory_run / CASE_ID / "cells.json")
    record = json.loads((REPO / str(_case()["claim"]["osv"])).read_text())  # type: ignore[index]
    assert meta["claim"]["advisory_id"] == record["id"]
    assert meta["claim"]["aliases"] == record["aliases"]
    events = [e for a in record["affected"] for r in a["ranges"] for e in r["events"]]
    assert [next(iter(e.values())) for e in events] == [
        v for r in meta["claim"]["ranges"] for v in r.values()]


def test_the_check_is_the_one_the_cells_imply(advisory_run: Path) -> None:
    meta, records = store.read_cells(advisory_run / CASE_ID / "cells.json")
    verdict = json.loads((advisory_run / CASE_ID / "verdict.json").read_text())
    from repro_matrix.model import claim_from_json

    derived = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     claim_from_json(meta["claim"]))
    assert verdict["claim_answer"] == derived.claim.answer
    assert [b["outcome"] for b in verdict["claim_bounds"]] == [b.outcome for b in
                                                                derived.claim.bounds]
    by_version = {r.cell.version: r.status for r in records}
    for release in verdict["claim_releases"]:
        status = by_version[release["version"]]
        expected = {Status.REPRODUCED: "affected", Status.NOT_REPRODUCED: "unaffected"}
        assert release["observed"] == expected.get(status, "undetermined")
    # "introduced 0" precedes every release: never checked, never an error.
    zero = [b for b in verdict["claim_bounds"] if b["version"] == "0"]
    assert all(b["outcome"] == "outside the tested window" for b in zero)
    # The window straddles the record's fixed release: that bound is judged, not skipped.
    fixed = [b for b in verdict["claim_bounds"] if b["kind"] == "fixed"]
    assert fixed and fixed[0]["outcome"] != "outside the tested window"


def test_report_shows_claimed_and_observed_ranges(advisory_run: Path) -> None:
    report = (advisory_run / "report.md").read_text()
    assert "### Claim, range by range" in report
    assert "| claimed | [first release," in report
    assert "| observed (all Pythons) |" in report
    schema = json.loads(resources.files("repro_matrix").joinpath(
        "schemas", "osv.schema.json").read_text())
    jsonschema.validate(json.loads((advisory_run / CASE_ID / "osv.json").read_text()), schema)
