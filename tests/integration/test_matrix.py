"""A small real subset of the matrix, end to end: real releases, real images, real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.model import Status
from repro_matrix.report.render import render_results
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan
from repro_matrix.verdict.derive import Observation, derive

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

# Releases on both sides of where the Flask case's history changes, and the two oldest Pythons
# this machine can supply. The expected outcome is not written here: the runs decide it.
FLASK_VERSIONS = "0.12.5,1.0.2,1.0.4,1.1.0"
PYTHONS = ("3.9", "3.11")


def _write_matrix(folder: Path, first_fixed: str | None) -> Path:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = source["cases"][0]
    case["repro"] = str(REPO / case["repro"])
    case["claim"] = {"first_fixed": first_fixed} if first_fixed else {}
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": [case], "base_images": {"provider": "auto"}}))
    return path


def _run(folder: Path, matrix: Path, cache_dir: Path) -> Path:
    results = folder / "results"
    run = MatrixRun(config.load(matrix), RunOptions(results=results, cache_dir=cache_dir, jobs=2))
    run.run(plan.Selection(pythons=PYTHONS, versions=FLASK_VERSIONS))
    return results


@pytest.fixture(scope="module")
def flask_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine,
              cache_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("flask")
    return _run(folder, _write_matrix(folder, None), cache_dir)


def _cells(results: Path) -> list[dict[str, object]]:
    payload = json.loads((results / "flask-2926" / "cells.json").read_text())
    cells: list[dict[str, object]] = payload["cells"]
    return cells


def test_every_cell_on_the_oldest_python_is_decisive(flask_run: Path) -> None:
    oldest = [c for c in _cells(flask_run) if c["cell"]["python"] == "3.9"]  # type: ignore[index]
    assert len(oldest) == len(FLASK_VERSIONS.split(","))
    assert {c["status"] for c in oldest} <= {"reproduced", "not_reproduced"}, oldest


def test_each_run_cell_carries_its_evidence(flask_run: Path) -> None:
    for cell in _cells(flask_run):
        if cell["status"] in ("reproduced", "not_reproduced"):
            assert str(cell["image_id"]).startswith("sha256:")
            assert any(str(line).startswith("flask==") for line in cell["lock"])  # type: ignore[attr-defined]
            assert cell["interpreter_version"] and cell["base_source"] and cell["cutoff"]
            assert cell["attempts"][-1]["result"] == "ok"  # type: ignore[index]
            assert isinstance(cell["exit_code"], int)


def test_reproduced_cells_show_the_signature(flask_run: Path) -> None:
    signature = "OSError: [Errno 98] Address already in use"
    for cell in _cells(flask_run):
        if cell["status"] == "reproduced":
            assert signature in str(cell["output_excerpt"])


def test_stored_verdict_is_the_one_the_cells_imply(flask_run: Path) -> None:
    _, records = store.read_cells(flask_run / "flask-2926" / "cells.json")
    verdict = json.loads((flask_run / "flask-2926" / "verdict.json").read_text())
    from repro_matrix.model import Claim

    derived = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     Claim())
    assert verdict["observed"]["overall"]["first_fixed"] == derived.overall.first_fixed
    assert verdict["observed"]["overall"]["introduced"] == derived.overall.introduced
    assert set(verdict["observed"]["per_python"]) == set(PYTHONS)
    report = (flask_run / "report.md").read_text()
    for record in records:
        assert record.cell.version in report


def test_changing_the_claim_changes_the_check_not_the_observations(
        tmp_path: Path, flask_run: Path, cache_dir: Path) -> None:
    observed = json.loads((flask_run / "flask-2926" / "verdict.json").read_text())
    first_fixed = observed["observed"]["overall"]["first_fixed"]
    if first_fixed is None:
        pytest.fail("the subset shows no fix; pick versions around a boundary")
    others = [v for v in FLASK_VERSIONS.split(",") if v != first_fixed]
    outcomes = {}
    for claim in (first_fixed, others[-1]):
        folder = tmp_path / claim
        folder.mkdir()
        results = _run(folder, _write_matrix(folder, claim), cache_dir)
        verdict = json.loads((results / "flask-2926" / "verdict.json").read_text())
        statuses = {c["cell"]["id"]: c["status"] for c in _cells(results)}  # type: ignore[index]
        outcomes[claim] = (verdict["claim_holds"], verdict["observed"], statuses)
    (holds_a, observed_a, cells_a), (holds_b, observed_b, cells_b) = outcomes.values()
    assert holds_a is True and holds_b is False
    assert observed_a == observed_b and cells_a == cells_b


def test_a_case_for_another_package_runs_without_code_change(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    repro = tmp_path / "repro.py"
    repro.write_text(
        "import sys\n"
        "from packaging.version import InvalidVersion, parse\n"
        "try:\n"
        "    parse('not-a-version')\n"
        "except InvalidVersion as exc:\n"
        "    print('InvalidVersion:', exc)\n"
        "    sys.exit(1)\n"
        "print('parsed as a legacy version')\n")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [{
        "id": "packaging-legacy", "package": "packaging", "versions": {"spec": ">=21.3,<22.1"},
        "pythons": ["3.11"], "repro": "repro.py",
        "outcome": {"signature": "InvalidVersion:", "timeout": 30}}]}))
    results = tmp_path / "results"
    MatrixRun(config.load(matrix), RunOptions(results=results, cache_dir=cache_dir, jobs=2)) \
        .run(plan.Selection())
    _, records = store.read_cells(results / "packaging-legacy" / "cells.json")
    assert records and all(r.status.decisive for r in records), records
    verdict = json.loads((results / "packaging-legacy" / "verdict.json").read_text())
    statuses = {r.cell.version: r.status for r in records}
    affected = sorted((v for v, s in statuses.items() if s is Status.REPRODUCED), key=Version)
    assert verdict["observed"]["overall"]["introduced"] == (affected[0] if affected else None)


def test_report_rerenders_from_results_alone(flask_run: Path) -> None:
    before = (flask_run / "report.md").read_text()
    (flask_run / "report.md").unlink()
    render_results(flask_run)
    assert (flask_run / "report.md").read_text() == before


def test_each_boundary_is_explained_from_the_released_files(flask_run: Path) -> None:
    """boundaries.json names exactly the verdict's boundaries, each computed from the releases'
    files, and every function it diffs is on a reproduced cell's stack."""
    from repro_matrix.model import Claim
    from repro_matrix.verdict import boundary

    _, records = store.read_cells(flask_run / "flask-2926" / "cells.json")
    derived = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                     Claim())
    stored = json.loads((flask_run / "flask-2926" / "boundaries.json").read_text())["boundaries"]
    pairs = boundary.boundary_pairs(records, derived)
    assert pairs, "the subset shows no boundary; pick versions around one"
    assert [(b["kind"], b["before"], b["after"], b["cell"]) for b in stored] == [
        (p.kind, p.before, p.after, p.cell) for p in pairs]
    stacks = "".join(r.output_excerpt for r in records if r.status is Status.REPRODUCED)
    for item in stored:
        assert item["missing"] == "", item["missing"]
        assert item["functions"], "a reproduced traceback runs through the package's own code"
        for function in item["functions"]:
            assert f"site-packages/{function['path']}" in stacks
            assert f"in {function['function'].rsplit('.', 1)[-1]}\n" in stacks
            if function["diff"]:
                assert function["diff"].startswith(
                    f"--- {function['path']} ({item['before']})\n"
                    f"+++ {function['path']} ({item['after']})\n")
    report = (flask_run / "report.md").read_text()
    assert all(f"**{b['before']} → {b['after']}**" in report for b in stored)
