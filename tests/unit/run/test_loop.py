"""The run loop (MatrixRun) without Docker or a network: a fake index, resolver and engine are
injected; the plan, era-cutoff search, builds, reuse, records and reports are the real ones."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from repro_matrix import store
from repro_matrix.containers import bases
from repro_matrix.errors import IndexUnavailable
from repro_matrix.model import BaseImage, DistFile, Lock, Pin, RawRun, Release, Status
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
