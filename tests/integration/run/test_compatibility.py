"""Two packages' releases tried together, end to end: pins newer than the package's era, and a
compatibility case with a dependency axis.

Flask and Werkzeug are the pair. Which pairs work is not written here: the expectations are read
from the released files themselves (Flask's imports from ``werkzeug.urls``, what Werkzeug's
``urls`` module defines, Flask's declared requirement on Werkzeug), and the cells must agree.
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.model import CellRecord, Status
from repro_matrix.resolve.index import IndexClient
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan

pytestmark = pytest.mark.integration

PYTHON = "3.11"

PIN_REPRO = '''\
from importlib.metadata import version

import flask

app = flask.Flask("probe")


@app.route("/")
def index():
    return "ok"


body = app.test_client().get("/").data
print("werkzeug", version("werkzeug"), "flask", version("flask"), body.decode())
'''


def _run(folder: Path, case: dict[str, object], cache_dir: Path,
         selection: plan.Selection) -> list[CellRecord]:
    matrix = folder / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [case]}))
    results = folder / "results"
    MatrixRun(config.load(matrix), RunOptions(results=results, cache_dir=cache_dir, jobs=2)) \
        .run(selection)
    _, records = store.read_cells(results / str(case["id"]) / "cells.json")
    return records


def _wheel(cache_dir: Path, project: str, version: str) -> Path:
    """The release's wheel, as the index has it (in the harness's wheelhouse)."""
    index = IndexClient(cache_dir)
    release = next(r for r in index.releases(project) if Version(r.version) == Version(version))
    dist = next(f for f in release.files if f.filename.endswith(".whl"))
    return index.download(dist, cache_dir / "wheelhouse")


def _sources(wheel: Path, package: str) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name).decode("utf-8", "replace")
                for name in archive.namelist()
                if name.startswith(f"{package}/") and name.endswith(".py")}


def _declared(wheel: Path, dependency: str) -> Requirement:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist()
                        if n.endswith(".dist-info/METADATA"))
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.split(":", 1)[1].strip())
            if canonicalize_name(requirement.name) == canonicalize_name(dependency):
                return requirement
    raise AssertionError(f"{wheel.name} declares no {dependency}")


def test_a_pin_newer_than_the_packages_era_resolves_installs_and_runs(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    (tmp_path / "repro.py").write_text(PIN_REPRO)
    (record,) = _run(tmp_path, {
        "id": "flask-pinned", "package": "flask", "pythons": [PYTHON], "repro": "repro.py",
        "requirements": ["werkzeug==2.3.8"],
        "outcome": {"signature": "NEVER PRINTED", "timeout": 60}}, cache_dir,
        plan.Selection(versions="2.2.2"))
    werkzeug = next(r for r in IndexClient(cache_dir).releases("werkzeug")
                    if r.version == "2.3.8")
    assert werkzeug.upload_time is not None
    uploaded = werkzeug.upload_time
    # The era cutoff comes before the pin existed; the pin's own cutoff lets it in.
    assert datetime.fromisoformat(record.cutoff.replace("Z", "+00:00")) < uploaded, record
    own = dict(record.package_cutoffs)["werkzeug"]
    assert datetime.fromisoformat(own.replace("Z", "+00:00")) >= uploaded
    assert any(line.startswith("werkzeug==2.3.8 ") for line in record.lock), record.lock
    # It ran: the container's own account of what it imported.
    assert record.exit_code == 0, record.output_excerpt
    assert "werkzeug 2.3.8 flask 2.2.2 ok" in record.output_excerpt
    assert record.status is Status.NOT_REPRODUCED


FLASKS = ("2.2.3", "2.3.3")
WERKZEUGS = ("2.2.3", "2.3.8", "3.0.1")


def test_a_compatibility_axis_tells_works_broken_and_declared_incompatible_as_released(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    records = _run(tmp_path, {
        "id": "flask-werkzeug", "package": "flask", "pythons": [PYTHON],
        "versions": {"spec": ">=2.2,<2.4"},
        "axis": {"package": "werkzeug", "versions": {"spec": ">=2.2,<3.1"}},
        "outcome": {"kind": "compatibility", "timeout": 60}}, cache_dir,
        plan.Selection(versions=",".join(FLASKS), axis_versions=",".join(WERKZEUGS)))
    assert sorted(r.cell.id for r in records) == sorted(
        f"flask-werkzeug/py{PYTHON}/{f}/werkzeug=={w}" for f in FLASKS for w in WERKZEUGS)
    seen: set[Status] = set()
    for record in records:
        flask, werkzeug = record.cell.version, record.cell.axis_version
        flask_wheel = _wheel(cache_dir, "flask", flask)
        declared = _declared(flask_wheel, "werkzeug")
        if not declared.specifier.contains(werkzeug):
            assert record.status is Status.DECLARED_INCOMPATIBLE, record
            assert "werkzeug" in record.reason.lower() and not record.image_id
            seen.add(record.status)
            continue
        assert record.status in (Status.WORKS, Status.BROKEN), record
        # What was installed is the pair asked for.
        assert any(line.startswith(f"werkzeug=={werkzeug} ") for line in record.lock), record
        imported = {name.strip() for text in _sources(flask_wheel, "flask").values()
                    for names in re.findall(r"^from werkzeug\.urls import ([^\n(]+)$", text,
                                            re.MULTILINE)
                    for name in names.split(",")}
        urls = _sources(_wheel(cache_dir, "werkzeug", werkzeug), "werkzeug")["werkzeug/urls.py"]
        missing = "url_quote" in imported and not re.search(r"^def url_quote\b", urls,
                                                             re.MULTILINE)
        if missing:
            # The released code cannot import: broken, with the ImportError as the evidence.
            assert record.status is Status.BROKEN, record
            assert "cannot import name 'url_quote' from 'werkzeug.urls'" in record.reason
            assert "url_quote" in record.output_excerpt
        if record.status is Status.WORKS:
            assert record.image_id and not missing
        else:
            assert "werkzeug" in record.reason, record.reason
        seen.add(record.status)
    # The grid holds each of the three answers (else the pairs chosen test less than meant).
    assert seen == {Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE}
