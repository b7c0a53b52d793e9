"""Fault injection against the real engine and real images: hostile repros, a harness killed or
terminated mid-run, a Docker daemon killed and restarted mid-run, a damaged wheel cache, no
engine at all. Each test checks what the harness did and that nothing was left behind.

The package is small and wheel-only (no dependencies); every repro is written here, in tmp_path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.model import CellRecord, Status
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan
from tests.integration.daemons import DAEMON2_HOST, SecondDaemon

REPO = Path(__file__).resolve().parents[3]
PACKAGE = "six"  # tiny, one pure wheel per release, no dependencies
PYTHON = "3.11"
SLOW_VERSIONS = ">=1.15,<1.18"  # three releases: 1.15.0, 1.16.0, 1.17.0
SLOW_CELLS = 3
ESCAPED = "REPRO ESCAPED"  # what a hostile repro prints if the sandbox let it through

pytestmark = pytest.mark.integration


# ---- helpers --------------------------------------------------------------------------------


def write_matrix(folder: Path, cases: dict[str, tuple[str, str, dict[str, Any]]],
                 spec: str = "==1.17.0") -> Path:
    """cases: id → (repro file name, repro source, limits)."""
    entries = []
    for case_id, (name, source, limits) in cases.items():
        (folder / name).write_text(source)
        entries.append({"id": case_id, "package": PACKAGE, "versions": {"spec": spec},
                        "pythons": [PYTHON], "repro": name,
                        "outcome": {"signature": ESCAPED}, "limits": limits})
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": entries}))
    return path


def run_in_process(matrix: Path, results: Path, cache_dir: Path, jobs: int = 2) -> None:
    MatrixRun(config.load(matrix), RunOptions(results=results, cache_dir=cache_dir, jobs=jobs)) \
        .run(plan.Selection())


def records(results: Path, case_id: str) -> list[CellRecord]:
    path = store.case_dir(results, case_id) / "cells.json"
    if not path.exists():
        return []
    return store.read_cells(path)[1]


def one(results: Path, case_id: str) -> CellRecord:
    (record,) = records(results, case_id)
    return record


def containers(client: Any, label: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": label},
                                        ignore_removed=True))


def harness_command(matrix: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "repro_matrix", "run", "--matrix", str(matrix), "--results",
            str(results), "--jobs", "1", "-q"]


def start_harness(matrix: Path, results: Path, env: dict[str, str] | None = None) \
        -> subprocess.Popen[str]:
    return subprocess.Popen(harness_command(matrix, results), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def rerun_harness(matrix: Path, results: Path,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(harness_command(matrix, results), cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=240,
                          check=False)


def wait_for_cells(proc: subprocess.Popen[str], results: Path, case_id: str, count: int,
                   limit_s: float = 180) -> list[CellRecord]:
    """Until ``count`` cells are recorded (the harness must still be running)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = records(results, case_id)
        if len(found) >= count:
            return found
        if proc.poll() is not None:
            error = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"the harness ended early ({proc.returncode}): {error}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no {count} cell(s) recorded within {limit_s} s")


def wait_for_running_container(client: Any, owner: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if client.containers.list(filters={"label": f"{engine.LABEL}.owner={owner}",
                                           "status": "running"}):
            return
        time.sleep(0.1)
    pytest.fail(f"no running cell container of {owner} within {limit_s} s")


def owner_of(proc: subprocess.Popen[str]) -> str:
    return f"{socket.gethostname()}:{proc.pid}"


def assert_each_cell_once(results: Path, case_id: str, expected: int) -> list[CellRecord]:
    found = records(results, case_id)
    ids = [r.cell.id for r in found]
    assert len(ids) == len(set(ids)) == expected, ids
    assert {r.status for r in found} == {Status.NOT_REPRODUCED}, found
    return found


def host_processes_running(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


# ---- hostile repros, all in one run (one image, two jobs) -------------------------------------

HANG = "import time\ntime.sleep(10 ** 6)\n"

SIGTERM_FORKER = """\
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(4):
    if os.fork() == 0:
        os.setsid()                      # its own session, then a grandchild detached from it
        if os.fork() == 0:
            while True:
                time.sleep(1)
        while True:
            time.sleep(1)
print("children started", flush=True)
while True:
    time.sleep(1)
"""

FORK_BOMB = """\
import os, sys, time
children = 0
try:
    while True:
        if os.fork() == 0:               # every child forks on too: exponential
            try:
                while True:
                    os.fork()
            except OSError:
                time.sleep(3600)         # hold the process slot
            os._exit(0)
        children += 1
except OSError as exc:
    print(f"fork failed after {children} children: {exc.strerror}", flush=True)
    sys.exit(3)
print("REPRO ESCAPED: no process limit")
"""

MEMORY_HOG = """\
chunks = []
while True:
    chunks.append(b"\\x01" * (8 << 20))   # written, so really resident
"""

NETWORK = """\
import socket, sys, time
started = time.monotonic()
try:
    socket.create_connection(("1.1.1.1", 53), timeout=5).close()
except OSError as exc:
    print(f"connect failed after {time.monotonic() - started:.2f} s: errno {exc.errno} "
          f"({exc.strerror})")
    sys.exit(0)
print("REPRO ESCAPED: connected to 1.1.1.1:53")
sys.exit(1)
"""

WRITE_OUTSIDE = """\
import errno
def attempt(label, path, size=1):
    try:
        with open(path, "wb") as handle:
            handle.write(b"x" * size)
        print(f"{label}: written")
    except OSError as exc:
        print(f"{label}: {errno.errorcode.get(exc.errno, exc.errno)}")
attempt("/etc", "/etc/escaped")
attempt("/opt/venv", "/opt/venv/escaped")
attempt("/", "/escaped")
attempt("/tmp", "/tmp/allowed")
attempt("/tmp beyond its size", "/tmp/big", 16 << 20)
"""

HOSTILE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "faults-hang": ("hang.py", HANG, {"timeout": 2}),
    "faults-sigterm": ("sigterm_forker.py", SIGTERM_FORKER, {"timeout": 3}),
    "faults-forkbomb": ("fork_bomb.py", FORK_BOMB, {"pids": 32, "timeout": 30}),
    "faults-memory": ("memory_hog.py", MEMORY_HOG, {"memory": "64m", "timeout": 30}),
    "faults-network": ("network.py", NETWORK, {"timeout": 30}),
    "faults-write": ("write_outside.py", WRITE_OUTSIDE, {"tmpfs": "8m", "timeout": 30}),
}


def cell_label(case_id: str) -> str:
    return f"{engine.LABEL}.cell={case_id}/py{PYTHON}/1.17.0"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine,
            cache_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    results = folder / "results"
    run_in_process(write_matrix(folder, HOSTILE), results, cache_dir)
    return results


def test_hanging_repro_times_out_and_its_container_is_gone(
        hostile: Path, docker_engine: engine.Engine) -> None:
    record = one(hostile, "faults-hang")
    assert record.status is Status.TIMEOUT
    assert record.duration_s is not None and 2 <= record.duration_s < 10
    assert containers(docker_engine.client, cell_label("faults-hang")) == []


def test_repro_ignoring_sigterm_and_forking_is_killed_with_all_its_children(
        hostile: Path, docker_engine: engine.Engine) -> None:
    record = one(hostile, "faults-sigterm")
    assert record.status is Status.TIMEOUT
    assert "children started" in record.output_excerpt
    assert containers(docker_engine.client, cell_label("faults-sigterm")) == []
    assert host_processes_running("/repro/sigterm_forker.py") == []


def test_fork_bomb_is_contained_by_the_pids_limit_and_the_run_goes_on(hostile: Path) -> None:
    record = one(hostile, "faults-forkbomb")
    assert record.status is Status.OTHER_FAILURE
    assert record.reason == "exit 3 without the failure signature"
    assert "fork failed after" in record.output_excerpt
    assert "Resource temporarily unavailable" in record.output_excerpt
    assert all(records(hostile, case_id) for case_id in HOSTILE)  # every other cell ran
    assert host_processes_running("/repro/fork_bomb.py") == []


def test_memory_hog_is_classified_out_of_memory(hostile: Path) -> None:
    record = one(hostile, "faults-memory")
    assert record.status is Status.OTHER_FAILURE
    assert record.reason.startswith("out of memory: ")
    assert record.exit_code == 137


def test_network_is_unreachable_from_a_cell(hostile: Path) -> None:
    record = one(hostile, "faults-network")
    assert record.status is Status.NOT_REPRODUCED, record.output_excerpt
    assert "errno 101 (Network is unreachable)" in record.output_excerpt
    seconds = float(record.output_excerpt.split("after ")[1].split(" s")[0])
    assert seconds < 1  # no route: refused at once, nothing left the container


def test_writes_outside_tmp_hit_a_read_only_root(hostile: Path) -> None:
    record = one(hostile, "faults-write")
    assert record.status is Status.NOT_REPRODUCED
    assert record.output_excerpt.splitlines() == [
        "/etc: EROFS", "/opt/venv: EROFS", "/: EROFS", "/tmp: written",
        "/tmp beyond its size: ENOSPC"]


# ---- a harness killed or terminated mid-run ------------------------------------------------

SLOW = "import time\ntime.sleep({seconds})\nprint('slept')\n"


def slow_matrix(folder: Path, case_id: str, seconds: int) -> Path:
    return write_matrix(folder, {case_id: ("slow.py", SLOW.format(seconds=seconds),
                                           {"timeout": 60})}, spec=SLOW_VERSIONS)


def test_harness_killed_mid_run_loses_and_duplicates_nothing(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    matrix, results = slow_matrix(tmp_path, "faults-killed", 2), tmp_path / "results"
    proc = start_harness(matrix, results)
    first = wait_for_cells(proc, results, "faults-killed", 1)[0]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    dead_owner = owner_of(proc)

    rerun = rerun_harness(matrix, results)
    assert rerun.returncode == 0, rerun.stderr
    cells = assert_each_cell_once(results, "faults-killed", SLOW_CELLS)
    kept = next(r for r in cells if r.cell.id == first.cell.id)
    assert (kept.finished_at, kept.input_key) == (first.finished_at, first.input_key)
    assert containers(docker_engine.client, f"{engine.LABEL}.owner={dead_owner}") == []


def test_sigterm_stops_the_run_like_ctrl_c(tmp_path: Path, docker_engine: engine.Engine) -> None:
    matrix, results = slow_matrix(tmp_path, "faults-sigterm-run", 2), tmp_path / "results"
    proc = start_harness(matrix, results)
    wait_for_cells(proc, results, "faults-sigterm-run", 1)
    wait_for_running_container(docker_engine.client, owner_of(proc))
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - signalled < 10  # the cell in flight is removed, not awaited
    assert proc.returncode == 143
    assert err.splitlines() == [
        "repro-matrix: interrupted (SIGTERM); finished cells are kept in the results folder, "
        "run the same command again to finish"]
    kept = assert_each_cell_once(results, "faults-sigterm-run", len(records(
        results, "faults-sigterm-run")))
    assert 1 <= len(kept) < SLOW_CELLS  # the killed cell in flight was not recorded
    assert containers(docker_engine.client, f"{engine.LABEL}.owner={owner_of(proc)}") == []

    rerun = rerun_harness(matrix, results)
    assert rerun.returncode == 0, rerun.stderr
    assert_each_cell_once(results, "faults-sigterm-run", SLOW_CELLS)


# ---- the Docker daemon killed and restarted mid-run ------------------------------------------



def test_daemon_killed_and_restarted_mid_run(tmp_path: Path,
                                             second_daemon: SecondDaemon) -> None:
    matrix, results = slow_matrix(tmp_path, "faults-restart", 3), tmp_path / "results"
    env = {"DOCKER_HOST": DAEMON2_HOST}
    client = second_daemon.client()
    kept: list[CellRecord] = []
    owners = []
    # Twice: the daemon dies (SIGKILL), then stops cleanly (SIGTERM: it kills its containers
    # first), each while a cell runs after at least one more cell was recorded.
    for signum in (signal.SIGKILL, signal.SIGTERM):
        proc = start_harness(matrix, results, env)
        owners.append(owner_of(proc))
        wait_for_cells(proc, results, "faults-restart", len(kept) + 1)
        wait_for_running_container(client, owner_of(proc))
        second_daemon.signal(signum)
        _, err = proc.communicate(timeout=60)
        print(f"daemon {signal.Signals(signum).name}: {err}")
        assert proc.returncode == 3, err
        (line,) = err.splitlines()
        assert line.startswith("repro-matrix: error: "), line
        assert "run the same command again: finished cells are kept" in line
        second_daemon.start()
        now = assert_each_cell_once(results, "faults-restart", len(records(
            results, "faults-restart")))
        assert len(kept) < len(now) < SLOW_CELLS  # the cell in flight was not recorded
        for earlier in kept:  # and nothing recorded before changed
            assert earlier in now
        kept = now

    rerun = rerun_harness(matrix, results, env)
    assert rerun.returncode == 0, rerun.stderr
    final = assert_each_cell_once(results, "faults-restart", SLOW_CELLS)
    for earlier in kept:
        assert earlier in final
    client = second_daemon.client()
    for owner in owners:
        assert containers(client, f"{engine.LABEL}.owner={owner}") == []


# ---- a damaged cache, and no engine at all ---------------------------------------------------


def test_corrupted_wheel_in_the_cache_is_refetched_and_the_cell_succeeds(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    cache = tmp_path / "cache"  # isolated: the lock is cached there, so no resolve re-checks
    quick = ("quick.py", "print('fine')\n", {"timeout": 30})
    run_in_process(write_matrix(tmp_path, {"faults-wheel": quick}), tmp_path / "a", cache)
    assert one(tmp_path / "a", "faults-wheel").status is Status.NOT_REPRODUCED
    (wheel,) = (cache / "wheelhouse").glob(f"{PACKAGE}-*.whl")
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    damaged = bytearray(wheel.read_bytes())
    for offset in (10, len(damaged) // 2, len(damaged) - 10):
        damaged[offset] ^= 0xFF
    wheel.write_bytes(bytes(damaged))

    # A case id never built before: its image must really be built from the wheelhouse.
    fresh = f"faults-wheel-{uuid.uuid4().hex[:8]}"
    run_in_process(write_matrix(tmp_path, {fresh: quick}), tmp_path / "b", cache)
    record = one(tmp_path / "b", fresh)
    try:
        assert record.status is Status.NOT_REPRODUCED, record
        assert [a.result for a in record.attempts] == ["ok"]  # no "install failed" attempt
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() == good
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_engine.client.images.remove(record.image_ref, noprune=True)


def test_unreachable_engine_is_one_line_exit_3_and_nothing_written(tmp_path: Path) -> None:
    matrix = write_matrix(tmp_path, {"faults-noengine": ("quick.py", "print('fine')\n", {})})
    results = tmp_path / "results"
    done = subprocess.run(harness_command(matrix, results), cwd=REPO, text=True,
                          capture_output=True, timeout=60, check=False,
                          env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 3
    (line,) = done.stderr.splitlines()
    assert line.startswith("repro-matrix: error: no Docker engine answers at "
                           "unix:///nonexistent.sock")
    assert "start one (scripts/ensure-docker.sh as root) or point DOCKER_HOST at one" in line
    assert not results.exists()

