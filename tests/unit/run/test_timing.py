"""The stage clock: busy seconds per stage, summed over threads, in a stable order."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from repro_matrix import cpu
from repro_matrix.run.timing import StageClock, describe


def test_totals_sum_every_thread_and_keep_the_stage_order() -> None:
    clock = StageClock()

    def work() -> None:
        for _ in range(100):
            clock.add("run", 0.01)
        clock.add("resolve", 0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with clock.stage("custom"):
        pass
    totals = clock.totals()
    assert list(totals) == ["resolve", "run", "custom"]  # STAGES order, others after
    assert totals["run"] == {"s": 4.0, "n": 400, "cpu": 0.0, "sub": 0.0}
    assert totals["resolve"] == {"s": 2.0, "n": 4, "cpu": 0.0, "sub": 0.0}
    assert totals["custom"]["n"] == 1


def test_describe_names_the_jobs_and_each_stage() -> None:
    line = describe({"resolve": {"s": 12.26, "n": 40}, "run": {"s": 3.0, "n": 7}}, jobs=4)
    assert line == ("time by stage, summed over 4 job(s): resolve 12 s (40×), run 3 s (7×)")
    assert describe({}, jobs=2) == ""


def test_describe_adds_the_cpu_of_stages_that_spent_any() -> None:
    line = describe({"resolve": {"s": 30.0, "n": 4, "cpu": 1.0, "sub": 20.4},
                     "run": {"s": 3.0, "n": 7, "cpu": 0.1, "sub": 0.0}}, jobs=2)
    assert line.endswith("; CPU of the harness and its subprocesses: resolve 21 s")


def test_a_stage_counts_its_threads_cpu_and_the_subprocesses_it_ran() -> None:
    clock = StageClock()
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    with clock.stage("resolve"):
        cpu.run([sys.executable, "-c", burn], check=True)
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
    other: list[float] = []

    def elsewhere() -> None:
        cpu.run([sys.executable, "-c", burn])
        other.append(cpu.children_seconds())

    # Another thread's subprocess is not this stage's (RUSAGE_CHILDREN would mix them).
    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    entry = clock.totals()["resolve"]
    assert 0.25 <= entry["sub"] < 1.5
    assert 0.15 <= entry["cpu"] < 1.0
    assert other and other[0] >= 0.25


def test_cpu_run_behaves_like_subprocess_run() -> None:
    done = cpu.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
                   input="abc")
    assert (done.returncode, done.stdout.strip()) == (0, "ABC")
    with pytest.raises(subprocess.CalledProcessError):
        cpu.run([sys.executable, "-c", "raise SystemExit(3)"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        cpu.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
