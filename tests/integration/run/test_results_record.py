"""Results are a record, against the real engine: a slice merges into full results, an outage
keeps decided cells, a second writer is refused, a killed run's lock is taken over, a deleted
cell alerts the baseline, files follow the umask, corrupt cache entries are misses, and
`cache clean` removes a case's images that a rerun then rebuilds.

The package is small and wheel-only; the "bug" is synthetic, written here: the repro
reproduces on the oldest of three releases. Expectations are consistency between the cells and
the verdict, never a real package's history. Case ids are fixed and start with "record-", so the
images these tests build (and `cache clean --case` removes) are theirs alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.containers.bases.registry import REGISTRY_IMAGE_ENV
from repro_matrix.model import CaseMeta, CellRecord
from tests.integration.registries import Registry

REPO = Path(__file__).resolve().parents[3]
PACKAGE, PYTHON, SPEC = "six", "3.11", ">=1.15,<1.18"  # 1.15.0, 1.16.0, 1.17.0
SIGNATURE = "SYNTHETIC BUG"
CELLS = 3

pytestmark = pytest.mark.integration

_REPRO = f"""
import sys, time
import six
time.sleep(float({{sleep!r}}))
if six.__version__.startswith("1.15."):
    print("{SIGNATURE}")
    sys.exit(1)
"""


def write_matrix(folder: Path, case_id: str, sleep: float = 0.0) -> Path:
    (folder / "repro.py").write_text(_REPRO.format(sleep=sleep))
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": [{
        "id": case_id, "package": PACKAGE, "versions": {"spec": SPEC}, "pythons": [PYTHON],
        "repro": "repro.py", "outcome": {"signature": SIGNATURE, "timeout": 60}}]}))
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "repro_matrix", *args]


def harness(*args: str, env: dict[str, str] | None = None,
            umask: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=REPO, text=True, capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=600, check=False,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(command(*args), cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def records(results: Path, case_id: str) -> dict[str, CellRecord]:
    path = store.case_dir(results, case_id) / "cells.json"
    return {r.cell.id: r for r in store.read_cells(path)[1]} if path.exists() else {}


def run_args(matrix: Path, results: Path, *extra: str) -> list[str]:
    return ["run", "--matrix", str(matrix), "--results", str(results), "--jobs", "2", "-v",
            *extra]


def consistent(results: Path, case_id: str) -> dict[str, object]:
    """The verdict agrees with the cells: introduced where the first cell reproduces."""
    cells = records(results, case_id)
    verdict: dict[str, object] = json.loads((results / case_id / "verdict.json").read_text())
    reproducing = sorted(r.cell.version for r in cells.values() if r.status.value ==
                         "reproduced")
    overall = verdict["observed"]["overall"]  # type: ignore[index]
    assert overall["introduced"] == (reproducing[0] if reproducing else None)
    return verdict


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine) -> Path:
    """A complete results folder of the synthetic case (every cell decided)."""
    folder = tmp_path_factory.mktemp("record-full")
    matrix = write_matrix(folder, "record-merge")
    done = harness(*run_args(matrix, folder / "results"))
    assert done.returncode == 0, done.stderr
    cells = records(folder / "results", "record-merge")
    assert len(cells) == CELLS and all(r.status.decisive for r in cells.values()), cells
    return folder


def _copy(full: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(full, tmp_path / "f", dirs_exist_ok=True)
    (tmp_path / "f" / "results" / ".lock").unlink(missing_ok=True)
    return tmp_path / "f" / "matrix.yaml", tmp_path / "f" / "results"


def test_a_slice_into_full_results_keeps_every_other_cell_and_the_verdict(
        full: Path, tmp_path: Path) -> None:
    matrix, results = _copy(full, tmp_path)
    sliced = "record-merge/py3.11/1.16.0"
    # finished_at has a resolution of one second: mark the stored record so a rerun within the
    # same second still shows.
    cells = results / "record-merge" / "cells.json"
    stored = json.loads(cells.read_text())
    for cell in stored["cells"]:
        if cell["cell"]["id"] == sliced:
            cell["finished_at"] = "2000-01-01T00:00:00Z"
    cells.write_text(json.dumps(stored))
    before = records(results, "record-merge")
    verdict = (results / "record-merge" / "verdict.json").read_text()
    done = harness(*run_args(matrix, results, "--versions", "1.16.0", "--rerun"))
    assert done.returncode == 0, done.stderr
    after = records(results, "record-merge")
    assert set(after) == set(before)
    assert after[sliced].finished_at != before[sliced].finished_at  # it did run again
    assert {k: v for k, v in after.items() if k != sliced} == \
        {k: v for k, v in before.items() if k != sliced}
    assert (results / "record-merge" / "verdict.json").read_text() == verdict
    consistent(results, "record-merge")


def test_a_provider_outage_keeps_the_stored_decided_cells(full: Path, tmp_path: Path) -> None:
    """`--provider registry` pulls from a registry of the test's own (Debian's docker-registry
    on a loopback port) that holds no Python image: an outage, whichever other registry this
    machine could reach."""
    matrix, results = _copy(full, tmp_path)
    before = records(results, "record-merge")
    registry = Registry(tmp_path / "registry")
    try:
        registry.start()
    except RuntimeError as exc:
        if os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"):
            pytest.fail(f"the outage needs a registry of the test's own: {exc}")
        pytest.skip(f"the outage needs a registry of the test's own: {exc}")
    try:
        done = harness(*run_args(matrix, results, "--provider", "registry"), env={
            REGISTRY_IMAGE_ENV: f"{registry.address}/library/python:{{python}}-slim"})
    finally:
        registry.stop()
    assert done.returncode == 0, done.stderr
    assert (f"unavailable: cannot pull {registry.address}/library/python:{PYTHON}-slim "
            "(no such image in the registry)") in done.stderr
    assert records(results, "record-merge") == before
    assert (f"record-merge: kept {CELLS} stored record(s) over an infrastructure outage of "
            f"this run ({CELLS} unavailable)") in done.stderr


def test_two_concurrent_runs_one_refused_nothing_lost(docker_engine: engine.Engine,
                                                      tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path, "record-concurrent", sleep=3)
    results = tmp_path / "results"
    first = start(*run_args(matrix, results, "--versions", "1.15.0,1.16.0", "--rerun"))
    try:
        deadline = time.monotonic() + 120
        while not (results / ".lock").exists() or not (results / ".lock").read_text():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = harness(*run_args(matrix, results, "--versions", "1.17.0"))
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2
    (line,) = second.stderr.splitlines()
    assert f"another repro-matrix run is writing here (pid {first.pid} on " in line
    assert "--versions 1.15.0,1.16.0" in line
    # The refused slice runs once the first is done; nothing of the first is lost.
    kept = records(results, "record-concurrent")
    assert harness(*run_args(matrix, results, "--versions", "1.17.0")).returncode == 0
    now = records(results, "record-concurrent")
    assert len(now) == CELLS and all(now[k] == v for k, v in kept.items())
    consistent(results, "record-concurrent")


def test_sigkill_while_holding_the_lock_the_next_run_proceeds(docker_engine: engine.Engine,
                                                              tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path, "record-killed", sleep=3)
    results = tmp_path / "results"
    first = start(*run_args(matrix, results, "--rerun"))
    deadline = time.monotonic() + 180
    while not records(results, "record-killed"):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert json.loads((results / ".lock").read_text())["pid"] == first.pid
    done = harness(*run_args(matrix, results))
    assert done.returncode == 0, done.stderr
    assert f"previous run (pid {first.pid}) ended without releasing" in done.stderr
    assert len(records(results, "record-killed")) == CELLS
    assert (results / ".lock").read_text() == ""


def test_a_deleted_cell_alerts_the_baseline(full: Path, tmp_path: Path) -> None:
    _, results = _copy(full, tmp_path)
    baseline = tmp_path / "baseline"
    shutil.copytree(results, baseline)
    cells = results / "record-merge" / "cells.json"
    payload = json.loads(cells.read_text())
    gone = payload["cells"].pop()["cell"]["id"]
    cells.write_text(json.dumps(payload))
    done = harness("report", "--results", str(results), "--baseline", str(baseline))
    assert done.returncode == 5, done.stderr
    assert f"changed: {gone}: vanished (was " in done.stderr


def test_files_follow_the_umask(full: Path, tmp_path: Path) -> None:
    _, results = _copy(full, tmp_path)
    done = harness("report", "--results", str(results), umask=0o022)
    assert done.returncode == 0, done.stderr
    written = [p for p in results.rglob("*") if p.is_file() and p.name != ".lock"]
    assert {p.name for p in written} >= {"cells.json", "verdict.json", "osv.json", "matrix.svg",
                                         "report.md", "report.html"}
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written
             if p.name != "cells.json"}  # cells.json is the copy's; the rest rewritten now
    assert set(modes.values()) == {"0o644"}, modes
    run = harness(*run_args(tmp_path / "f" / "matrix.yaml", results, "--versions", "1.16.0",
                            "--rerun"), umask=0o022)
    assert run.returncode == 0, run.stderr
    assert oct(stat.S_IMODE((results / "record-merge" / "cells.json").stat().st_mode)) == \
        "0o644"


def test_corrupt_cache_entries_are_misses(docker_engine: engine.Engine, tmp_path: Path) -> None:
    scratch = {"REPRO_MATRIX_CACHE": str(tmp_path / "cache")}
    matrix = write_matrix(tmp_path, "record-merge")
    results = tmp_path / "results"
    assert harness(*run_args(matrix, results), env=scratch).returncode == 0
    damaged = [*sorted((tmp_path / "cache" / "index").rglob("*.json")),
               *sorted((tmp_path / "cache" / "locks").rglob("*.json"))]
    assert damaged
    for path in damaged:
        path.write_text("{truncated")
    (tmp_path / "cache" / "build-failures").mkdir(exist_ok=True)
    (tmp_path / "cache" / "build-failures" / "0123456789abcdef0123.json").write_text("[1,")
    done = harness(*run_args(matrix, results, "--rerun"), env=scratch)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(records(results, "record-merge")) == CELLS
    assert all(json.loads(p.read_text()) for p in damaged)  # rewritten whole
    consistent(results, "record-merge")


def test_cache_clean_then_a_rerun_rebuilds_what_it_needs(full: Path, docker_engine: engine.Engine,
                                                         tmp_path: Path) -> None:
    """Scoped to this test's own case (label org.repro-matrix.case): the engine is shared."""
    scratch = {"REPRO_MATRIX_CACHE": str(tmp_path / "cache")}
    matrix = write_matrix(tmp_path, "record-clean")
    results = tmp_path / "results"
    assert harness(*run_args(matrix, results), env=scratch).returncode == 0
    label = f"{engine.LABEL}.case=record-clean"
    client = docker_engine.client
    assert len(client.images.list(filters={"label": label})) == CELLS
    shown = harness("cache", env=scratch)
    assert shown.returncode == 0 and "wheelhouse" in shown.stdout and "images cell" in shown.stdout
    # The record that keeps images is another case's: this case's images are unreferenced.
    cleaned = harness("cache", "clean", "--kind", "images", "--case", "record-clean",
                      "--results", str(full / "results"), env=scratch)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"removed {CELLS} unreferenced cell images of case record-clean" in cleaned.stdout
    assert client.images.list(filters={"label": label}) == []
    files = harness("cache", "clean", "--kind", "index,locks,wheelhouse,failures,rootfs",
                    env=scratch)
    assert files.returncode == 0 and not (tmp_path / "cache" / "wheelhouse").exists()
    again = harness(*run_args(matrix, results), env=scratch)
    assert again.returncode == 0, again.stderr
    assert len(client.images.list(filters={"label": label})) == CELLS
    assert all(r.status.decisive for r in records(results, "record-clean").values())
    consistent(results, "record-clean")


def test_the_reports_rerun_command_works_from_any_folder_and_fails_loudly_without_the_repro(
        full: Path, tmp_path: Path) -> None:
    from repro_matrix.report.cells import rerun_command

    meta, cells = store.read_cells(full / "results" / "record-merge" / "cells.json")
    reproduced = next(r for r in cells if r.status.value == "reproduced")
    command = rerun_command(reproduced, CaseMeta.from_json(meta))
    assert command is not None and command in (full / "results" / "report.md").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(["bash", "-c", command], cwd=elsewhere, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == reproduced.exit_code and SIGNATURE in done.stdout, done.stderr
    assert list(elsewhere.iterdir()) == []  # nothing created where it ran
    gone = rerun_command(reproduced, CaseMeta.from_json(
        {**meta, "repro_path": str(tmp_path / "gone.py")}))
    assert gone is not None
    failed = subprocess.run(["bash", "-c", gone], cwd=elsewhere, capture_output=True,
                            text=True, timeout=120, check=False)
    assert failed.returncode == 125 and "gone.py" in failed.stderr
    assert not (tmp_path / "gone.py").exists()
