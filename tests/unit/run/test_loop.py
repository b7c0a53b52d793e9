"""The run loop (MatrixRun) without Docker or a network: a fake index, resolver and engine are
injected; the plan, era-cutoff search, builds, reuse, records and reports are the real ones."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from repro_matrix import store
from repro_matrix.containers import bases
from repro_matrix.errors import IndexUnavailable
from repro_matrix.model import BaseImage, DistFile, Lock, Pin, RawRun, Release, Status
from repro_matrix.report.render import case_verdict
from repro_matrix.resolve.index import IndexClient
from repro_matrix.resolve.lock import ResolveFailure
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.run.progress import Progress
from repro_matrix.spec import config, plan
from tests import fakes

# Synthetic releases: the fake repro "reproduces" below 1.1 (the claim: fixed in 1.1).
VERSIONS = {"1.0": datetime(2020, 1, 1, tzinfo=timezone.utc),
            "1.1": datetime(2021, 1, 1, tzinfo=timezone.utc),
            "2.0": datetime(2022, 1, 1, tzinfo=timezone.utc)}
PIP = Pin("pip", "23.0", "pip-23.0-py3-none-any.whl", "1" * 64)


class FakeIndex(IndexClient):
    """The index's answers for the synthetic releases; mypy checks them against the client's."""

    def __init__(self) -> None:
        super().__init__(Path("unused-index-cache"))

    def releases(self, project: str) -> list[Release]:
        return [Release(v, day, False, files=(DistFile(f"{project}-{v}-py3-none-any.whl",
                                                       f"file:///{v}", "0" * 64, day, None,
                                                       False),))
                for v, day in VERSIONS.items()]

    def download(self, dist: DistFile, dest_dir: Path) -> Path:
        raise IndexUnavailable("no index in unit tests")


class FakeResolver:
    """Locks ``pkg==V`` for any cutoff; a cutoff in ``refuse`` (or every one, for a version in
    ``unresolvable``) fails to resolve."""

    def __init__(self, wheelhouse: Path) -> None:
        self.wheelhouse = wheelhouse
        self.refuse: Callable[[str, str], bool] = lambda requirement, cutoff: False
        self.calls: list[tuple[str, str, str]] = []

    def lock(self, requirement: str, python: str, cutoff: str, tools_cutoff: str,
             extra: tuple[str, ...] = ()) -> Lock | ResolveFailure:
        self.calls.append((requirement, python, cutoff))
        if self.refuse(requirement, cutoff):
            return ResolveFailure(cutoff, f"no solution for {requirement} at {cutoff}")
        name, version = requirement.split("==")
        pin = Pin(name, version, f"{name}-{version}-py3-none-any.whl", "0" * 64)
        for wheel in (pin, PIP):
            (self.wheelhouse / wheel.filename).write_bytes(b"wheel")
        return Lock(cutoff, (pin,), (PIP,))

    def ensure_files(self, lock: Lock) -> None:
        pass


class FakeEngine(fakes.FakeEngine):
    """Builds every image; a run prints the signature when the image's version is below 1.1."""

    def __init__(self) -> None:
        self.images: dict[str, str] = {}  # tag -> image id
        self.version_of: dict[str, str] = {}  # image id -> package version
        self.runs: list[str] = []  # cell ids

    def tagged(self, repository: str) -> dict[str, str]:
        return {tag: image for tag, image in self.images.items()
                if tag.startswith(repository + ":")}

    def image_id(self, reference: str) -> str | None:
        return self.images.get(reference)

    def build(self, context: Path, tag: str,
              labels: Mapping[str, str]) -> tuple[str | None, str]:
        image_id = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
        self.images[tag] = image_id
        if labels["org.repro-matrix.kind"] == "cell":  # not a base with the installer added
            self.version_of[image_id] = labels["org.repro-matrix.cell"].rsplit("/", 1)[1]
        return image_id, "built"

    def commit_run(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                   tag: str, labels: Mapping[str, str],
                   changes: list[str]) -> tuple[str | None, str, int | None]:
        """A cell's install, committed: as ``build`` decides (a subclass's too)."""
        image_id, log = self.build(Path(), tag, labels)
        return image_id, log, 0 if image_id else 1

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str], **options: Any) -> RawRun:
        self.runs.append(labels["org.repro-matrix.cell"])
        fixed = self.version_of[image] >= "1.1"
        return RawRun(exit_code=0 if fixed else 1, timed_out=False,
                      output="fine\n" if fixed else "Traceback\nBOOM\n", duration_s=0.5)


def _base(engine: object, python: str, *args: object, **kwargs: object) -> BaseImage:
    return BaseImage(python, "debian", f"base:{python}", f"python{python}", "test",
                     interpreter_version=f"{python}.0", image_id=f"sha256:base{python}")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(bases, "prepare", _base)
    (tmp_path / "repro.py").write_text("print('BOOM')\n")
    matrix = config.parse({"cases": [{
        "id": "demo", "package": "pkg", "pythons": ["3.9", "3.11"], "repro": "repro.py",
        "outcome": {"signature": "BOOM"}, "claim": {"first_fixed": "1.1"}}]},
        tmp_path / "matrix.yaml", digest="d")
    wheelhouse = tmp_path / "cache" / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    return {"config": matrix, "tmp": tmp_path, "engine": FakeEngine(),
            "resolver": FakeResolver(wheelhouse)}


def _run(world: dict[str, Any], rerun: bool = False) -> list[tuple[str, Any]]:
    options = RunOptions(results=world["tmp"] / "results", cache_dir=world["tmp"] / "cache",
                         jobs=2, rerun=rerun)
    run = MatrixRun(world["config"], options, Progress(io.StringIO()), index=FakeIndex(),
                    resolver=world["resolver"], connect=lambda: world["engine"])
    return run.run(plan.Selection())


def _cells(world: dict[str, Any]) -> dict[str, Any]:
    _, records = store.read_cells(world["tmp"] / "results" / "demo" / "cells.json")
    return {r.cell.id: r for r in records}


def test_a_run_records_every_planned_cell_and_derives_the_verdict_from_them(
        world: dict[str, Any]) -> None:
    ((case_id, verdict),) = _run(world)
    cells = _cells(world)
    assert case_id == "demo"
    assert sorted(cells) == sorted(f"demo/py{p}/{v}" for p in ("3.9", "3.11") for v in VERSIONS)
    assert sorted(world["engine"].runs) == sorted(cells)
    for record in cells.values():
        expected = Status.REPRODUCED if record.cell.version < "1.1" else Status.NOT_REPRODUCED
        assert record.status is expected, record
        assert record.input_key and record.image_id and record.lock == (
            f"pkg=={record.cell.version} --hash=sha256:{'0' * 64}",)
    # A release newer than its Python locks in its own era: the day after its upload.
    assert cells["demo/py3.9/2.0"].cutoff == "2022-01-02T00:00:00Z"
    stored = json.loads((world["tmp"] / "results" / "demo" / "verdict.json").read_text())
    assert stored["claim_holds"] is verdict.claim.holds is True
    assert (world["tmp"] / "results" / "report.md").exists()


def test_a_second_run_keeps_cells_whose_inputs_are_unchanged_and_rerun_runs_them_again(
        world: dict[str, Any]) -> None:
    _run(world)
    first = _cells(world)
    world["engine"].runs.clear()
    _run(world)
    assert world["engine"].runs == []  # every input unchanged: nothing ran
    assert {k: r.input_key for k, r in _cells(world).items()} == {
        k: r.input_key for k, r in first.items()}
    _run(world, rerun=True)
    assert sorted(world["engine"].runs) == sorted(first)


def test_a_rerun_that_changes_nothing_rewrites_nothing_and_returns_the_same_verdicts(
        world: dict[str, Any]) -> None:
    first = _run(world)
    results = world["tmp"] / "results"
    written = {path: (path.stat().st_mtime_ns, path.read_bytes())
               for path in results.rglob("*") if path.is_file()}
    again = _run(world)
    assert again == first
    assert {path: (path.stat().st_mtime_ns, path.read_bytes())
            for path in results.rglob("*") if path.is_file()} == written
    # A report gone: the run renders again, and cells.json names this run.
    (results / "report.html").unlink()
    _run(world)
    assert (results / "report.html").exists()
    assert (results / "demo" / "cells.json").stat().st_mtime_ns \
        != written[results / "demo" / "cells.json"][0]


def test_a_rerun_whose_case_changed_rewrites_its_cells(world: dict[str, Any]) -> None:
    _run(world)
    path = world["tmp"] / "results" / "demo" / "cells.json"
    before = json.loads(path.read_text())
    world["config"] = replace(world["config"], digest="e")  # the matrix file was edited
    _run(world)
    after = json.loads(path.read_text())
    assert after["matrix_digest"] == "e" and after["finished_at"] >= before["finished_at"]
    assert after["cells"] == before["cells"]  # every input unchanged: the same records

def test_a_stored_pass_whose_output_has_the_signature_runs_again(world: dict[str, Any]) -> None:
    """Recorded before exit 0 with the signature had its own status: not reused as a pass."""
    _run(world)
    path = world["tmp"] / "results" / "demo" / "cells.json"
    stored = json.loads(path.read_text())
    for cell in stored["cells"]:
        if cell["cell"]["id"] == "demo/py3.9/1.0":
            cell.update(status="not_reproduced", exit_code=0, reason="exit 0")
    path.write_text(json.dumps(stored))
    world["engine"].runs.clear()
    _run(world)
    assert world["engine"].runs == ["demo/py3.9/1.0"]
    assert _cells(world)["demo/py3.9/1.0"].status is Status.REPRODUCED


def test_a_cutoff_that_does_not_resolve_gives_way_to_the_next_one(
        world: dict[str, Any]) -> None:
    tried: set[str] = set()

    def refuse_first(requirement: str, cutoff: str) -> bool:
        first_try = requirement not in tried
        tried.add(requirement)
        return requirement == "pkg==1.0" and first_try

    world["resolver"].refuse = refuse_first
    _run(world)
    cell = next(r for r in _cells(world).values() if r.cell.version == "1.0"
                and len(r.attempts) > 1)
    assert [a.result for a in cell.attempts] == ["resolve failed", "ok"]
    assert cell.cutoff == cell.attempts[1].cutoff != cell.attempts[0].cutoff
    assert cell.status is Status.REPRODUCED


def test_a_version_no_cutoff_resolves_is_recorded_without_a_build_or_a_run(
        world: dict[str, Any]) -> None:
    world["resolver"].refuse = lambda requirement, cutoff: requirement == "pkg==2.0"
    _run(world)
    cells = _cells(world)
    for python in ("3.9", "3.11"):
        record = cells[f"demo/py{python}/2.0"]
        assert record.status is Status.CANNOT_INSTALL
        assert record.attempts and all(a.result == "resolve failed" for a in record.attempts)
        assert not record.image_id
        assert f"demo/py{python}/2.0" not in world["engine"].runs
    assert len(world["engine"].runs) == 4


def test_each_lock_is_resolved_once_and_the_stages_are_timed_in_cells_json(
        world: dict[str, Any]) -> None:
    _run(world)
    calls = world["resolver"].calls
    assert len(calls) == len(set(calls)) == 6  # resolved ahead; no cell resolved it again
    meta, _ = store.read_cells(world["tmp"] / "results" / "demo" / "cells.json")
    stages = meta["stages"]
    assert stages["run"]["n"] == len(world["engine"].runs) == 6
    assert stages["build"]["n"] == 6 and stages["bases"]["n"] == 2
    assert stages["resolve"]["n"] == 6 and all(entry["s"] >= 0 for entry in stages.values())
    assert sorted(meta["bases"]) == ["3.11", "3.9"]


def test_a_cell_waits_only_for_its_own_pythons_base(world: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def late_311(engine: object, python: str, *args: object, **kwargs: object) -> BaseImage:
        if python == "3.11":  # ready only once every 3.9 cell has run
            deadline = time.monotonic() + 10
            while sum("py3.9" in cell for cell in world["engine"].runs) < 3:
                if time.monotonic() > deadline:
                    raise AssertionError("the 3.9 cells waited for the 3.11 base")
                time.sleep(0.01)
        return _base(engine, python)

    monkeypatch.setattr(bases, "prepare", late_311)
    _run(world)
    assert [cell.split("/")[1] for cell in world["engine"].runs][:3] == ["py3.9"] * 3
    meta, _ = store.read_cells(world["tmp"] / "results" / "demo" / "cells.json")
    assert list(meta["bases"]) == ["3.9", "3.11"]  # in column order, whatever came first


def test_a_lock_still_queued_ahead_is_made_by_the_cell_that_needs_it(
        world: dict[str, Any]) -> None:
    import threading

    from repro_matrix.run import timing
    from repro_matrix.run.prefetch import LockKey, LockPrefetch

    release = threading.Event()
    made: list[str] = []

    class SlowResolver:
        def lock(self, requirement: str, python: str, cutoff: str, tools_cutoff: str,
                 extra: tuple[str, ...] = ()) -> Lock:
            if requirement == "pkg==1.0":
                release.wait(10)  # the one ahead worker is busy with this one
            made.append(f"{requirement}@{threading.current_thread().name}")
            lock: Lock = world["resolver"].lock(requirement, python, cutoff, tools_cutoff)
            return lock

        def ensure_files(self, lock: Lock) -> None:
            pass

    ahead = LockPrefetch(SlowResolver(), timing.StageClock())  # type: ignore[arg-type]
    ahead.WORKERS = 1
    keys: list[LockKey] = [("pkg==1.0", "3.9", "c", "c", ()), ("pkg==2.0", "3.9", "c", "c", ())]
    ahead.start(keys)
    lock = ahead.get(keys[1])  # queued behind pkg==1.0: made here, at once
    assert not isinstance(lock, ResolveFailure) and lock.runtime[0].version == "2.0"
    assert made == [f"pkg==2.0@{threading.current_thread().name}"]
    release.set()
    ahead.stop()


# ---- a second axis, compatibility mode --------------------------------------------------------

DEP_VERSIONS = {"1.0": datetime(2019, 1, 1, tzinfo=timezone.utc),
                "2.0": datetime(2021, 6, 1, tzinfo=timezone.utc),
                "3.0": datetime(2023, 1, 1, tzinfo=timezone.utc)}
NO_SOLUTION = "  × No solution found when resolving dependencies:\n  ╰─▶ Because {why}"


class AxisIndex(FakeIndex):
    def releases(self, package: str) -> list[Release]:
        if package != "dep":
            return super().releases(package)
        return [Release(v, day, False, files=(DistFile(f"dep-{v}-py3-none-any.whl", "", "0" * 64,
                                                       day, None, False),))
                for v, day in DEP_VERSIONS.items()]


class AxisResolver(FakeResolver):
    """pkg 2.0 declares dep>=2.0 (no solution with dep 1.0 at any cutoff); pkg 1.0 with dep 2.0
    finds no solution at its own era's first cutoff only (a dependency of dep is too new)."""

    def lock(self, requirement: str, python: str, cutoff: str, tools_cutoff: str,
             extra: tuple[str, ...] = ()) -> Lock | ResolveFailure:
        self.calls.append((requirement, python, cutoff))
        wanted = {r.split("==")[0]: r.split("==")[1] for r in (requirement, *extra)}
        if wanted["pkg"] == "2.0" and wanted["dep"] == "1.0":
            return ResolveFailure(cutoff, NO_SOLUTION.format(
                why="pkg==2.0 depends on dep>=2.0 and you require dep==1.0, we can conclude "
                    "that your requirements are unsatisfiable."))
        if (wanted["pkg"], wanted["dep"]) == ("1.0", "2.0") and cutoff < "2023":
            return ResolveFailure(cutoff, NO_SOLUTION.format(
                why="only helper<1 is available and dep==2.0 depends on helper>=1"))
        pins = tuple(Pin(name, version, f"{name}-{version}-py3-none-any.whl", "0" * 64)
                     for name, version in sorted(wanted.items()))
        for wheel in (*pins, PIP):
            (self.wheelhouse / wheel.filename).write_bytes(b"wheel")
        return Lock(cutoff, pins, (PIP,), package_cutoffs=(("dep", "2023-01-02T00:00:00Z"),)
                    if wanted["dep"] == "3.0" and cutoff < "2023" else ())


def _import_log(module: str) -> str:
    return ("Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\n"
            "  File \"/opt/venv/lib/python3.11/site-packages/pkg/__init__.py\", line 3, in "
            f"<module>\n    from {module}.urls import url_quote\n"
            f"ImportError: cannot import name 'url_quote' from '{module}.urls'\n"
            "repro-matrix: the installed package does not import\n"
            "The command '/bin/sh -c pip install ...' returned a non-zero code: 1\n")


class AxisEngine(FakeEngine):
    """pkg below 2.0 does not import with dep 3.0 (the error names dep); pkg 1.1 with dep 1.0
    does not import for another package's sake (the error names 'other'); the repro of pkg 2.0
    fails with dep 3.0."""

    def __init__(self) -> None:
        super().__init__()
        self.builds: list[str] = []

    def build(self, context: Path, tag: str,
              labels: Mapping[str, str]) -> tuple[str | None, str]:
        if labels["org.repro-matrix.kind"] != "cell":
            return super().build(context, tag, labels)
        cell = labels["org.repro-matrix.cell"]
        self.builds.append(cell)
        version, pin = cell.split("/")[2:]
        dep = pin.split("==")[1]
        if version < "2.0" and dep == "3.0":
            return None, _import_log("dep")
        if (version, dep) == ("1.1", "1.0"):
            return None, _import_log("other")
        image_id, log = super().build(context, tag, labels)
        assert image_id is not None
        self.version_of[image_id] = f"{version}+{dep}"
        return image_id, log

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str], **options: Any) -> RawRun:
        self.runs.append(labels["org.repro-matrix.cell"])
        broken = self.version_of[image] == "2.0+3.0"
        return RawRun(exit_code=1 if broken else 0, timed_out=False,
                      output="Traceback\nTypeError: dep changed\n" if broken else "ok\n",
                      duration_s=0.5)


AXIS_CASE: dict[str, Any] = {
    "id": "demo", "package": "pkg", "pythons": ["3.11"], "repro": "repro.py",
    "axis": {"package": "dep"}, "outcome": {"kind": "compatibility"}}


@pytest.fixture
def axis_world(world: dict[str, Any]) -> dict[str, Any]:
    world["config"] = config.parse({"cases": [AXIS_CASE]}, world["tmp"] / "matrix.yaml",
                                   digest="d")
    world["engine"] = AxisEngine()
    world["resolver"] = AxisResolver(world["resolver"].wheelhouse)
    return world


def _axis_run(world: dict[str, Any], selection: plan.Selection | None = None,
              bisect: bool | None = False) -> list[tuple[str, Any]]:
    options = RunOptions(results=world["tmp"] / "results", cache_dir=world["tmp"] / "cache",
                         jobs=2)
    run = MatrixRun(world["config"], options, Progress(io.StringIO()), index=AxisIndex(),
                    resolver=world["resolver"], connect=lambda: world["engine"])
    return run.run(selection or plan.Selection(), bisect=bisect)


def test_an_axis_case_runs_every_pair_and_tells_works_broken_and_declared_incompatible(
        axis_world: dict[str, Any]) -> None:
    _axis_run(axis_world)
    cells = _cells(axis_world)
    assert sorted(cells) == sorted(f"demo/py3.11/{v}/dep=={d}" for v in VERSIONS
                                   for d in DEP_VERSIONS)
    status = {cell_id.split("/", 2)[2]: r.status for cell_id, r in cells.items()}
    W, B, D, CI = (Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE,
                   Status.CANNOT_INSTALL)
    assert status == {"1.0/dep==1.0": W, "1.0/dep==2.0": W, "1.0/dep==3.0": B,
                      "1.1/dep==1.0": CI, "1.1/dep==2.0": W, "1.1/dep==3.0": B,
                      "2.0/dep==1.0": D, "2.0/dep==2.0": W, "2.0/dep==3.0": B}
    # Broken on import: the error is the evidence, the pin is in the recorded lock, and no
    # other era cutoff was tried (the pin is the same at every one).
    broken = cells["demo/py3.11/1.0/dep==3.0"]
    assert "ImportError: cannot import name 'url_quote' from 'dep.urls'" in broken.reason
    assert "dep.urls" in broken.output_excerpt
    assert [a.result for a in broken.attempts] == ["import failed"]
    assert any(line.startswith("dep==3.0 ") for line in broken.lock)
    assert broken.package_cutoffs == (("dep", "2023-01-02T00:00:00Z"),)
    assert not broken.image_id
    # An import failure that names another package keeps the era search: cannot install.
    other = cells["demo/py3.11/1.1/dep==1.0"]
    assert len(other.attempts) > 1 and other.status is Status.CANNOT_INSTALL
    # Declared incompatible: the resolver's words, checked against today's index, no build.
    declared = cells["demo/py3.11/2.0/dep==1.0"]
    assert "pkg==2.0 depends on dep>=2.0" in declared.reason
    assert declared.attempts[-1].cutoff == (f"{(date.today() + timedelta(days=1)).isoformat()}"
                                           "T00:00:00Z")
    assert not any(c.startswith("demo/py3.11/2.0/dep==1.0") for c in axis_world["engine"].builds)
    # A no-solution the era explains (a dependency of the pin too new then) is searched on.
    era = cells["demo/py3.11/1.0/dep==2.0"]
    assert [a.result for a in era.attempts][-1] == "ok" and len(era.attempts) > 1
    # Broken by the repro: its last error line.
    assert cells["demo/py3.11/2.0/dep==3.0"].reason == "exit 1: TypeError: dep changed"
    meta, _ = store.read_cells(axis_world["tmp"] / "results" / "demo" / "cells.json")
    assert (meta["kind"], meta["axis_package"], meta["axis_versions"]) == (
        "compatibility", "dep", list(DEP_VERSIONS))
    assert meta["axis_release_dates"]["3.0"] == "2023-01-01"


def test_each_axis_cell_locks_with_its_pin_and_a_rerun_keeps_them(
        axis_world: dict[str, Any]) -> None:
    _axis_run(axis_world)
    first = _cells(axis_world)
    assert all(r.lock for r in first.values() if r.status is Status.WORKS)
    axis_world["engine"].runs.clear()
    axis_world["engine"].builds.clear()
    _axis_run(axis_world)
    assert axis_world["engine"].runs == []
    assert {k: r.status for k, r in _cells(axis_world).items()} == {
        k: r.status for k, r in first.items()}


def test_axis_versions_narrow_the_axis_as_versions_narrow_the_package(
        axis_world: dict[str, Any]) -> None:
    _axis_run(axis_world, plan.Selection(versions="2.0", axis_versions=">=2"))
    assert sorted(_cells(axis_world)) == ["demo/py3.11/2.0/dep==2.0", "demo/py3.11/2.0/dep==3.0"]
    _axis_run(axis_world, plan.Selection(versions="1.0", axis_versions="1.0"))
    # A slice merges into the stored record: both runs' cells are there.
    assert len(_cells(axis_world)) == 3


def test_without_a_repro_the_import_check_alone_decides(axis_world: dict[str, Any]) -> None:
    case = {k: v for k, v in AXIS_CASE.items() if k != "repro"}
    axis_world["config"] = config.parse({"cases": [case]}, axis_world["tmp"] / "matrix.yaml",
                                        digest="d")
    _axis_run(axis_world, plan.Selection(versions="2.0"))
    cells = _cells(axis_world)
    assert axis_world["engine"].runs == []
    assert cells["demo/py3.11/2.0/dep==2.0"].status is Status.WORKS
    assert "dep==2.0" in cells["demo/py3.11/2.0/dep==2.0"].reason
    assert cells["demo/py3.11/2.0/dep==3.0"].status is Status.WORKS  # the repro's failure
    assert cells["demo/py3.11/2.0/dep==1.0"].status is Status.DECLARED_INCOMPATIBLE


def test_a_case_that_says_bisect_is_bisected_unless_the_run_says_no_bisect(
        axis_world: dict[str, Any]) -> None:
    axis_world["config"] = config.parse({"cases": [{**AXIS_CASE, "bisect": True}]},
                                        axis_world["tmp"] / "matrix.yaml", digest="d")
    _axis_run(axis_world, bisect=None)
    meta, _ = store.read_cells(axis_world["tmp"] / "results" / "demo" / "cells.json")
    assert "3.11" in meta["bisect"]  # searched, as the matrix file says
    results = axis_world["tmp"] / "results"
    shutil.rmtree(results)
    _axis_run(axis_world, bisect=False)
    meta, records = store.read_cells(results / "demo" / "cells.json")
    assert "bisect" not in meta
    assert len(records) == len(VERSIONS) * len(DEP_VERSIONS)  # every pair


def test_bisect_searches_along_the_axis_row_by_row(axis_world: dict[str, Any]) -> None:
    _axis_run(axis_world, bisect=True)
    meta, records = store.read_cells(axis_world["tmp"] / "results" / "demo" / "cells.json")
    summary = meta["bisect"]["3.11"]
    assert summary["along"] == "dep" and list(summary["rows"]) == list(VERSIONS)
    assert summary["cells_run"] == len(records)
    assert summary["rows"]["2.0"]["boundaries"] == [["1.0", "2.0"], ["2.0", "3.0"]]
    assert all(r.cell.axis_package == "dep" for r in records)
    found = case_verdict(meta, records).grid
    assert found is not None
    assert [row.words for row in found.per_python[0].rows] == [
        "works with dep >=1.0,<3.0; first dep that breaks: 3.0",
        "works with dep >=2.0,<3.0; first dep that breaks: 3.0; not decided: 1.0 (cannot "
        "install)",
        "works with dep >=2.0,<3.0; first dep that breaks: 3.0; declared incompatible below 2.0"]


def test_a_bug_case_with_an_axis_stops_at_an_import_failure_of_the_pin(
        axis_world: dict[str, Any]) -> None:
    bug = {**AXIS_CASE, "outcome": {"signature": "TypeError: dep changed"}}
    axis_world["config"] = config.parse({"cases": [bug]}, axis_world["tmp"] / "matrix.yaml",
                                        digest="d")
    _axis_run(axis_world, plan.Selection(versions="1.0,2.0"))
    cells = _cells(axis_world)
    broken = cells["demo/py3.11/1.0/dep==3.0"]
    assert broken.status is Status.CANNOT_INSTALL and len(broken.attempts) == 1
    assert "did not import with dep==3.0" in broken.reason
    assert cells["demo/py3.11/2.0/dep==3.0"].status is Status.REPRODUCED
    assert cells["demo/py3.11/2.0/dep==1.0"].status is Status.DECLARED_INCOMPATIBLE
