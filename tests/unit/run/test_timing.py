"""The stage clock: busy seconds per stage, summed over threads, in a stable order."""

from __future__ import annotations

import threading

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
    assert totals["run"] == {"s": 4.0, "n": 400}
    assert totals["resolve"] == {"s": 2.0, "n": 4}
    assert totals["custom"]["n"] == 1


def test_describe_names_the_jobs_and_each_stage() -> None:
    line = describe({"resolve": {"s": 12.26, "n": 40}, "run": {"s": 3.0, "n": 7}}, jobs=4)
    assert line == ("time by stage, summed over 4 job(s): resolve 12 s (40×), run 3 s (7×)")
    assert describe({}, jobs=2) == ""
