"""The bench's arithmetic (bench/figures.py): spreads, the floor, cell choice, comparisons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from bench import figures  # the repository's top is on the path (pyproject: pythonpath)
from bench.figures import FloorCell


def test_spread_is_min_median_max_of_the_samples() -> None:
    assert figures.spread([3.0, 1.0, 2.0, 10.0]) == {
        "min": 1.0, "median": 2.5, "max": 10.0, "n": 4, "samples": [3.0, 1.0, 2.0, 10.0]}
    assert figures.spread([4.0])["median"] == 4.0
    with pytest.raises(ValueError):
        figures.spread([])


def test_the_wrapper_reports_each_runs_wall_cpu_and_exit_code(tmp_path: Path) -> None:
    script = tmp_path / "repro.py"
    script.write_text("import sys, time\nend = time.process_time() + 0.2\n"
                      "while time.process_time() < end: pass\nprint('BUG')\nsys.exit(1)\n")
    proc = subprocess.run([sys.executable, "-c", figures.WRAPPER, "2", sys.executable,
                           str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    runs = figures.parse_floor(proc.stdout + proc.stderr)
    assert runs is not None and len(runs) == 2
    for wall, cpu, code in runs:
        assert code == 1 and 0.15 <= cpu <= wall + 0.05
    assert figures.without_floor_line(proc.stdout + proc.stderr).strip() == "BUG\nBUG"


def test_parse_floor_reads_a_signal_as_the_engine_does_and_a_missing_line_as_none() -> None:
    line = f"out\n{figures.FLOOR_MARKER} 0.5:0.1:-9 0.4:0.1:0\n"
    assert figures.parse_floor(line) == [(0.5, 0.1, 137), (0.4, 0.1, 0)]
    assert figures.parse_floor("killed before the wrapper wrote\n") is None


def cell(walls: tuple[float, ...], cpus: tuple[float, ...], trip: float) -> FloorCell:
    return FloorCell("c", walls, cpus, trip)


def test_the_floor_is_the_largest_of_cpu_over_cores_wall_over_jobs_and_the_longest() -> None:
    cells = [cell((1.0, 1.2), (0.8, 0.8), 3.0), cell((1.0, 1.0), (0.8, 0.8), 2.5)]
    found = figures.floor_of(cells, cores=2, jobs=4)
    # cpu 1.6 / 2 = 0.8, wall 2.0 / 4 = 0.5, longest 1.0: the longest bounds it.
    assert found["floor_s"]["samples"] == [1.0, 1.2]
    assert found["bound"] == "longest"
    assert found["repro_cpu_sum_s"]["median"] == pytest.approx(1.6)
    assert found["container_overhead_sum_s"] == pytest.approx(3.0 - 2.2 + 2.5 - 2.0)
    many = [cell((0.5,), (0.4,), 1.0)] * 10
    assert figures.floor_of(many, cores=2, jobs=4)["floor_s"]["median"] == pytest.approx(2.0)
    assert figures.floor_of(many, cores=2, jobs=4)["bound"] == "cpu"
    idle = [cell((0.5,), (0.05,), 1.0)] * 10
    assert figures.floor_of(idle, cores=2, jobs=4)["bound"] == "wall"
    with pytest.raises(ValueError):
        figures.floor_of([], cores=2, jobs=4)


@pytest.mark.parametrize(("python", "build_lock", "host", "why"), [
    ("3.9", ["pip==23.0 --hash=sha256:0"], ["3.9"], ""),
    ("3.7", ["pip==19.0 --hash=sha256:0"], ["3.7"], "uv does not install"),
    ("3.9", ["pip==20.0 --hash=sha256:0", "setuptools==50 --hash=sha256:0"], ["3.9"], "sdist"),
    ("3.14", ["pip==25.0 --hash=sha256:0"], ["3.9"], "no interpreter"),
])
def test_baseline_exclusion(python: str, build_lock: list[str], host: list[str],
                            why: str) -> None:
    reason = figures.baseline_exclusion(python, build_lock, host)
    assert (why in reason) if why else reason == ""


def test_versions_spec_selects_exactly_the_chosen_releases() -> None:
    versions = ["0.9", "1.0", "1.0.1", "1.1", "2.0", "2.0.1", "3.0"]
    chosen = ["1.0", "1.1", "2.0.1"]
    spec = figures.versions_spec(">=0.9", versions, chosen)
    assert [v for v in versions if v in SpecifierSet(spec)] == chosen
    assert figures.versions_spec("", versions, ["3.0"]) == ">=3.0,<=3.0"
    with pytest.raises(ValueError):  # outside the case's own spec: no specifier can say it
        figures.versions_spec(">=1.0", versions, ["0.9"])
    with pytest.raises(ValueError):
        figures.versions_spec("", versions, [])


def test_disagreements_list_every_cell_whose_status_differs_or_is_missing() -> None:
    harness = {"a": ("reproduced", "exit 1"), "b": ("not_reproduced", "exit 0"),
               "c": ("reproduced", "exit 1")}
    baseline = {"a": ("reproduced", "exit 1, sig"), "b": ("other_failure", "exit 3")}
    rows = figures.disagreements(harness, baseline)
    assert [(r["cell"], r["harness"], r["baseline"]) for r in rows] == [
        ("b", "not_reproduced", "other_failure"), ("c", "reproduced", "missing")]
    assert figures.disagreements(harness, harness) == []


def test_status_changes_and_cell_counts() -> None:
    assert figures.status_changes({"a": "x", "b": "y"}, {"a": "x", "b": "z", "c": "x"}) == [
        "b: y -> z", "c: missing -> x"]
    assert figures.cell_counts([("reproduced", True), ("cannot_install", False),
                                ("reproduced", True)]) == {
        "planned": 3, "repro_run": 2, "reproduced": 2, "cannot_install": 1}


def test_a_status_comparison_keeps_cells_one_run_lacks_apart_from_changed_ones() -> None:
    found = figures.status_comparison({"a": "x", "b": "y", "d": "x"},
                                      {"a": "x", "b": "z", "c": "x"})
    assert found == {"shared": 2, "changed": ["b: y -> z"], "only_before": ["d"],
                     "only_after": ["c"]}
    line = figures.describe_comparison(found, "the committed results")
    assert line.startswith("1 differ on the 2 cells both have (b: y -> z)")
    assert "only in the committed results: 1 (d); only in this run: 1 (c)" in line
    same = figures.status_comparison({"a": "x"}, {"a": "x"})
    assert figures.describe_comparison(same, "the warm run") == (
        "identical on the 1 cells both have; no cell only in the warm run or only in this run")


def test_meminfo_and_ratio() -> None:
    assert figures.meminfo_gib("MemTotal:       24590876 kB\nMemFree: 1 kB\n") == 23.5
    assert figures.meminfo_gib("") == 0.0
    a = {"wall_s": figures.spread([3.0, 4.0, 5.0])}
    b = {"wall_s": figures.spread([2.0])}
    assert figures.ratio(a, b) == 2.0
    assert figures.ratio(a, None) is None


def measure(label: str, *walls: float, **extra: Any) -> dict[str, Any]:
    return {"label": label, "wall_s": figures.spread(list(walls)),
            "provenance": {"date": "2026-01-01T00:00:00Z", "commit": "abc", "dirty": False,
                           "machine": {"cores": 2, "memory_gib": 23.5}, "load_before": [0.1]},
            **extra}


def test_targets_read_the_medians() -> None:
    floor_cells = [cell((1.0, 1.0, 1.0), (1.8, 2.0, 2.2), 3.5)]
    floor = {"label": "floor", "provenance": {},
             **figures.floor_of(floor_cells, cores=2, jobs=4)}
    measures = {"floor": floor, "warm_full": measure("warm", 1.4, 1.5, 9.0),
                "no_change": measure("rerun", 1.9, 2.5, 1.0),
                "cold_full": measure("cold", 601.0)}
    assert figures.check("warm_full", measures) == "1.50× floor, ≤ 1.5× floor: met"
    assert figures.check("no_change", measures) == "< 2 s: met"
    assert figures.check("cold_full", measures) == "≤ 600 s: NOT met"
    assert figures.check("bisect", measures) == ""
    assert figures.check("warm_full", {"warm_full": measures["warm_full"]}) == \
        "≤ 1.5× floor: no floor measured"


def test_render_puts_every_measure_in_one_table_with_its_provenance() -> None:
    results = {"format": figures.FORMAT, "measures": {
        "warm_full": measure("harness warm", 10.0, 11.0, 12.0, rss_mib=70.0,
                             cells={"planned": 5, "repro_run": 4},
                             stages={"run": {"s": 9.0, "n": 4, "cpu": 0.5, "sub": 0.0}}),
        "harness_same_warm": measure("harness same", 4.0, 5.0, 6.0),
        "baseline_warm": measure("baseline", 10.0, 10.0, 10.0, disagreements=[],
                                 excluded={"Python 3.7": 3}),
    }}
    text = figures.render(results)
    assert "| harness warm | 11.0 (10.0–12.0) | 3 | ≤ 1.5× floor: no floor measured |" in text
    assert "| harness same | 5.0 (4.0–6.0) | 3 | 0.50× baseline |" in text
    assert "2026-01-01T00:00:00Z, commit abc, 2 cores, 23.5 GiB, load 0.1 before" in text
    assert "outcome disagreements with the harness: 0" in text
    assert "| run | 9.0 | 4 | 0.5 | 0.0 |" in text
    assert "peak RSS of the harness process: 70 MiB (target < 150 MiB: met)" in text


def test_the_containers_cpu_counts_a_cgroup_parent_made_during_the_run_from_zero() -> None:
    assert figures.containers_delta(10.0, 25.5) == 15.5
    assert figures.containers_delta(None, 25.5) == 25.5  # the engine's first container
    assert figures.containers_delta(10.0, None) is None
    assert figures.containers_delta(None, None) is None


def test_an_axis_bisection_agrees_only_when_every_rows_boundaries_match() -> None:
    row = {"cells_run": 4, "boundaries": [["2.0.3", "2.1.0"]]}
    found = {"cells_run": 8, "rows": {"2.0.0": row, "2.0.1": row}}
    same = figures.axis_bisect_summary(found, found)
    assert (same["cells_run"], same["rows"], same["agrees"]) == (8, 2, True)
    moved = {"cells_run": 8, "rows": {"2.0.0": row,
                                      "2.0.1": {**row, "boundaries": [["2.1.0", "2.1.1"]]}}}
    assert figures.axis_bisect_summary(found, moved)["agrees"] is False
    assert isinstance(figures.axis_bisect_summary(found, None)["agrees"], str)
