"""The bench's arithmetic, pure: spreads, the process-time floor, cell selection, comparisons,
and the results table. bench.py measures; everything it concludes is computed here."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

FORMAT = 2  # results.json: {"format": 2, "measures": {name: measure}}

# Run inside a cell's container (any Python from 3.6 on) around the cell's own command: the
# command runs REPEATS times in a row, each a fresh process, and one marker line reports each
# run's wall seconds, CPU seconds (the process and every child it waited for) and exit code.
FLOOR_MARKER = "repro-matrix-bench-floor"
WRAPPER = """\
import resource, subprocess, sys, time
runs = []
for _ in range(int(sys.argv[1])):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    code = subprocess.call(sys.argv[2:])
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    runs.append("%.6f:%.6f:%d" % (wall, cpu, code))
sys.stdout.flush()
sys.stderr.write("\\n%s %s\\n" % ({marker!r}, " ".join(runs)))
sys.exit(0)  # the runs' codes are in the line
""".replace("{marker!r}", repr(FLOOR_MARKER))


def spread(samples: Sequence[float]) -> dict[str, Any]:
    """min, median and max of repeated measurements (n of them), and the samples."""
    if not samples:
        raise ValueError("no samples")
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "n": len(samples), "samples": [round(s, 3) for s in samples]}


def parse_floor(output: str) -> list[tuple[float, float, int]] | None:
    """The wrapper's (wall, cpu, exit code) per run, from a container's output; None when
    the marker line is missing (the container was killed before the wrapper could write it)."""
    for line in reversed(output.splitlines()):
        if line.startswith(FLOOR_MARKER + " "):
            runs = []
            for item in line.split()[1:]:
                wall, cpu, code = item.split(":")
                # Killed by a signal: Python says -N, the engine 128+N; the classifier reads
                # the engine's.
                runs.append((float(wall), float(cpu), 128 - int(code) if int(code) < 0
                             else int(code)))
            return runs
    return None


def without_floor_line(output: str) -> str:
    """``output`` without the wrapper's marker line (what the repro itself printed)."""
    return "\n".join(line for line in output.splitlines()
                     if not line.startswith(FLOOR_MARKER + " ")) + "\n"


@dataclass(frozen=True)
class FloorCell:
    """One cell's floor measurement: each run's wall and CPU seconds inside the container, and
    the round trip of the whole container (create, start, every run, exit, remove) outside."""

    cell: str
    walls: tuple[float, ...]
    cpus: tuple[float, ...]
    round_trip_s: float


def floor_of(cells: Sequence[FloorCell], cores: int, jobs: int) -> dict[str, Any]:
    """The process-time floor per repeat, and what containers add.

    For repeat k (every cell's k-th run): a runner with ``jobs`` slots on ``cores`` cores
    needs at least the repros' CPU over the cores, their wall time over the slots, and the
    longest one; the floor is the largest of the three (``bound`` says which). The container
    overhead is each round trip less its runs' wall time: start, exit and removal, with the
    wrapper's own start."""
    repeats = min((len(c.walls) for c in cells), default=0)
    if not repeats:
        raise ValueError("no floor measurements")
    floors, cpu_sums, wall_sums, bounds = [], [], [], []
    for k in range(repeats):
        cpu = sum(c.cpus[k] for c in cells)
        wall = sum(c.walls[k] for c in cells)
        terms = {"cpu": cpu / cores, "wall": wall / jobs, "longest": max(c.walls[k] for c in cells)}
        bound = max(terms, key=lambda name: terms[name])
        floors.append(terms[bound])
        cpu_sums.append(cpu)
        wall_sums.append(wall)
        bounds.append(bound)
    overhead = sum(c.round_trip_s - sum(c.walls) for c in cells)
    return {"floor_s": spread(floors), "repro_cpu_sum_s": spread(cpu_sums),
            "repro_wall_sum_s": spread(wall_sums), "bound": statistics.mode(bounds),
            "cells": len(cells), "cores": cores, "jobs": jobs,
            "container_overhead_sum_s": overhead,
            "container_overhead_per_cell_s": overhead / len(cells)}


UV_FROM = (3, 8)  # the oldest Python uv installs into (the harness's builder says the same)


def baseline_exclusion(python: str, build_lock: Sequence[str], host_pythons: Iterable[str]) -> str:
    """Why a cell the harness ran is left out of the nox+uv baseline ('' if it is in): the
    baseline installs with uv, so only Pythons uv installs into and locks of wheels alone
    (a lock with an sdist has setuptools in its build lock: the harness builds those with
    the era's pip and setuptools), on Pythons this host has."""
    if tuple(int(p) for p in python.split(".")) < UV_FROM:
        return f"Python {python}: uv does not install into it (the harness uses the era's pip)"
    if any(not line.startswith("pip==") for line in build_lock):
        return "the lock holds an sdist (the harness builds it with the era's pip and setuptools)"
    if python not in set(host_pythons):
        return f"Python {python}: no interpreter on this host"
    return ""


def versions_spec(case_spec: str, case_versions: Sequence[str], chosen: Iterable[str]) -> str:
    """A PEP 440 specifier that selects exactly ``chosen`` among ``case_versions`` (the
    releases the case's own ``case_spec`` selects): the case's spec, the range, and an
    exclusion for each release inside the range that is not chosen."""
    wanted = sorted({Version(v) for v in chosen})
    if not wanted:
        raise ValueError("no versions chosen")
    low, high = wanted[0], wanted[-1]
    parts = [p for p in case_spec.split(",") if p.strip()]
    parts += [f">={low}", f"<={high}"]
    parts += [f"!={v}" for v in sorted({Version(v) for v in case_versions})
              if low < v < high and v not in wanted]
    spec = ",".join(parts)
    selected = {Version(v) for v in case_versions if Version(v) in SpecifierSet(spec)}
    if selected != set(wanted):
        raise ValueError(f"{spec!r} selects {sorted(map(str, selected))}, not the chosen")
    return spec


def disagreements(harness: Mapping[str, tuple[str, str]],
                  baseline: Mapping[str, tuple[str, str]]) -> list[dict[str, str]]:
    """Cells whose status differs between the harness and the baseline (a cell only one side
    has is a disagreement too): cell, each side's status and reason."""
    rows = []
    for cell in sorted(harness.keys() | baseline.keys()):
        ours, theirs = harness.get(cell, ("missing", "")), baseline.get(cell, ("missing", ""))
        if ours[0] != theirs[0]:
            rows.append({"cell": cell, "harness": ours[0], "harness_reason": ours[1],
                         "baseline": theirs[0], "baseline_reason": theirs[1]})
    return rows


def status_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """'cell: before -> after' for each cell both have whose status differs, and each cell
    only one of them has."""
    return [f"{cell}: {before.get(cell, 'missing')} -> {after.get(cell, 'missing')}"
            for cell in sorted(before.keys() | after.keys())
            if before.get(cell) != after.get(cell)]


def status_comparison(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, Any]:
    """Two runs' statuses cell by cell: how many cells both have, those of them whose status
    differs ('cell: before -> after'), and the cells only one run has (a run that left cells
    out, or ran others, is not "identical")."""
    shared = before.keys() & after.keys()
    return {"shared": len(shared),
            "changed": [f"{cell}: {before[cell]} -> {after[cell]}" for cell in sorted(shared)
                        if before[cell] != after[cell]],
            "only_before": sorted(before.keys() - after.keys()),
            "only_after": sorted(after.keys() - before.keys())}


def describe_comparison(found: Mapping[str, Any] | Sequence[str], before: str) -> str:
    """One line for ``status_comparison``'s result (a list: the earlier form, changes only)."""
    if not isinstance(found, Mapping):
        return "identical" if not found else f"{len(found)} differ: {'; '.join(found[:10])}"
    changed, only_before, only_after = (found["changed"], found["only_before"],
                                        found["only_after"])
    line = (f"{'identical' if not changed else f'{len(changed)} differ'} on the "
            f"{found['shared']} cells both have")
    if changed:
        line += f" ({'; '.join(changed[:10])})"
    if only_before or only_after:
        line += (f"; only in {before}: {len(only_before)} ({', '.join(only_before[:5])}); "
                 f"only in this run: {len(only_after)} ({', '.join(only_after[:5])})")
    else:
        line += f"; no cell only in {before} or only in this run"
    return line


def cell_counts(records: Iterable[tuple[str, bool]]) -> dict[str, int]:
    """Planned cells, how many ran a repro in a container, and how many ended in each status,
    from (status, whether it ran) per cell: one way of counting for every measure."""
    counts: dict[str, int] = {"planned": 0, "repro_run": 0}
    for status, ran in records:
        counts["planned"] += 1
        counts["repro_run"] += int(ran)
        counts[status] = counts.get(status, 0) + 1
    return counts


def containers_delta(before: float | None, after: float | None) -> float | None:
    """The containers' CPU seconds between two readings. The engine makes its cgroup parent
    with its first container, so a parent missing before and present after (a cold run on a
    fresh engine) held nothing before: all it holds was charged in between."""
    if after is None:
        return None
    return after - (before or 0.0)


def axis_bisect_summary(found: dict[str, Any], full: dict[str, Any] | None) -> dict[str, Any]:
    """An axis bisection's rows against the full run's: a case that bisects by default
    (`bisect: true`) was bisected in the full run too, so the check is that both found the
    same boundaries, not that the bisection matches every pair."""
    boundaries = {row: r["boundaries"] for row, r in found["rows"].items()}
    summary: dict[str, Any] = {"cells_run": found["cells_run"], "rows": len(boundaries)}
    if full and "rows" in full:
        summary["agrees"] = boundaries == {row: r["boundaries"]
                                           for row, r in full["rows"].items()}
        summary["note"] = "the full run bisects this case too: compared with its boundaries"
    else:
        summary["agrees"] = "the full run has no bisection of this case to compare with"
    return summary


def meminfo_gib(text: str) -> float:
    """MemTotal of /proc/meminfo, in GiB."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / (1 << 20), 1)
    return 0.0


def ratio(numerator: Mapping[str, Any] | None, denominator: Mapping[str, Any] | None,
          key: str = "wall_s") -> float | None:
    """Median over median of two measures' ``key`` spreads (None if either is missing)."""
    if not numerator or not denominator or key not in numerator or key not in denominator:
        return None
    bottom = denominator[key]["median"]
    return numerator[key]["median"] / bottom if bottom else None


# ---- results.md ---------------------------------------------------------------------------

TARGETS = {  # measure: (what it is compared with, the bound, how it reads)
    "warm_full": ("floor", 1.5, "≤ 1.5× floor"),
    "no_change": (None, 2.0, "< 2 s"),
    "cold_full": (None, 600.0, "≤ 600 s"),
}
RSS_TARGET_MIB = 150.0


def _seconds(measure: Mapping[str, Any], key: str = "wall_s") -> str:
    figure = measure.get(key)
    if not figure:
        return "-"
    if figure["n"] == 1:
        return f"{figure['median']:.1f}"
    return f"{figure['median']:.1f} ({figure['min']:.1f}–{figure['max']:.1f})"


def check(name: str, measures: Mapping[str, Mapping[str, Any]]) -> str:
    """Whether ``name`` meets its target (a word and the figure), '' without a target."""
    if name not in TARGETS or name not in measures:
        return ""
    against, bound, words = TARGETS[name]
    measure = measures[name]
    if against is None:
        value = measure["wall_s"]["median"]
        met = value < bound if words.startswith("<") else value <= bound
        return f"{words}: {'met' if met else 'NOT met'}"
    value_ratio = ratio(measure, measures.get(against), "wall_s") if against != "floor" \
        else _floor_ratio(measure, measures.get("floor"))
    if value_ratio is None:
        return f"{words}: no {against} measured"
    return f"{value_ratio:.2f}× {against}, {words}: {'met' if value_ratio <= bound else 'NOT met'}"


def _floor_ratio(measure: Mapping[str, Any], floor: Mapping[str, Any] | None) -> float | None:
    if not floor or "floor_s" not in floor:
        return None
    return float(measure["wall_s"]["median"]) / float(floor["floor_s"]["median"])


def _provenance_line(measure: Mapping[str, Any]) -> str:
    p = measure.get("provenance", {})
    machine = p.get("machine", {})
    load = p.get("load_before")
    return (f"{p.get('date', '?')}, commit {str(p.get('commit', '?'))[:10]}"
            + (" (+ uncommitted changes)" if p.get("dirty") else "")
            + f", {machine.get('cores', '?')} cores, {machine.get('memory_gib', '?')} GiB"
            + (f", load {load[0]:.1f} before" if load else ""))


ORDER = ("warm_full", "no_change", "floor", "harness_same_warm", "baseline_warm",
         "harness_same_cold", "baseline_cold", "bisect", "cold_full")


def render(results: Mapping[str, Any]) -> str:
    """results.md: one table of every measure (median, min to max, n, its comparison), then each
    measure's provenance, cells, CPU and stages."""
    measures: Mapping[str, Mapping[str, Any]] = results.get("measures", {})
    rows = ["| measure | seconds: median (min–max) | n | compared |", "|---|---:|---:|---|"]
    for name in ORDER:
        if name not in measures:
            continue
        m = measures[name]
        if name == "floor":
            rows.append(f"| {m['label']} | {_seconds(m, 'floor_s')} | {m['floor_s']['n']} | "
                        f"bound by {m['bound']} |")
            rows.append(f"| container start, exit and removal (sum over {m['cells']} cells, "
                        f"{m['container_overhead_per_cell_s']:.2f} s each) | "
                        f"{m['container_overhead_sum_s']:.1f} | 1 | |")
            continue
        compared = check(name, measures)
        if name.startswith("harness_same_"):
            base = measures.get(name.replace("harness_same_", "baseline_"))
            r = ratio(m, base)
            compared = f"{r:.2f}× baseline" if r is not None else ""
        rows.append(f"| {m['label']} | {_seconds(m)} | {m['wall_s']['n']} | {compared} |")
    lines = [*rows, ""]
    for name in ORDER:
        if name in measures:
            lines += _details(name, measures[name])
    return "\n".join(lines).rstrip() + "\n"


def _details(name: str, m: Mapping[str, Any]) -> list[str]:
    lines = [f"### {name}", "", f"- {m['label']}", f"- measured {_provenance_line(m)}"]
    if m.get("cells"):
        cells = m["cells"]
        if isinstance(cells, Mapping):
            lines.append("- cells: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                 for k, v in cells.items()))
        else:
            lines.append(f"- cells: {cells}")
    for note in m.get("notes", ()):
        lines.append(f"- {note}")
    if "rss_mib" in m:
        rss = m["rss_mib"]
        whose = m.get("rss_of", "the harness process")
        lines.append(f"- peak RSS of {whose}: {rss:.0f} MiB "
                     f"(target < {RSS_TARGET_MIB:.0f} MiB: "
                     f"{'met' if rss < RSS_TARGET_MIB else 'NOT met'})")
    if name == "floor":
        lines.append(f"- repro CPU, summed over cells: {_seconds(m, 'repro_cpu_sum_s')} s; "
                     f"repro wall, summed: {_seconds(m, 'repro_wall_sum_s')} s; floor = the "
                     f"largest of CPU / {m['cores']} cores, wall / {m['jobs']} jobs and the "
                     "longest cell")
    cpu = m.get("cpu_s")
    if cpu:
        lines.append("- CPU seconds (one run): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.1f}" for k, v in cpu.items() if v is not None))
    if m.get("disagreements") is not None:
        rows = m["disagreements"]
        lines.append(f"- outcome disagreements with the harness: {len(rows)}")
        lines += [f"  - {r['cell']}: harness {r['harness']} ({r['harness_reason']}), baseline "
                  f"{r['baseline']} ({r['baseline_reason']})" for r in rows[:20]]
    for key, words, before in (
            ("statuses_vs_warm", "statuses against the warm run", "the warm run"),
            ("statuses_vs_committed", "statuses against the committed results",
             "the committed results")):
        if key in m:
            lines.append(f"- {words}: {describe_comparison(m[key], before)}")
    if m.get("excluded"):
        lines.append("- left out: " + "; ".join(f"{n} cells: {why}"
                                                for why, n in m["excluded"].items()))
    stages = m.get("stages")
    if stages:
        lines += ["", "| stage | busy s | count | harness CPU s | subprocess CPU s |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {stage} | {e['s']:.1f} | {e['n']} | {e.get('cpu', 0):.1f} | "
                  f"{e.get('sub', 0):.1f} |" for stage, e in stages.items()]
    if m.get("bisect"):
        lines.append("")
        for key, b in m["bisect"].items():
            ran = (f"{b['cells_run']} cells over {b['rows']} rows along the axis" if "rows" in b
                   else f"{b['cells_run']} of {b['versions']} versions, budget {b['budget']}")
            lines.append(f"- {key}: {ran}, " + (
                b["agrees"] if isinstance(b["agrees"], str)
                else f"agrees with the full run: {b['agrees']}")
                + (f" ({b['note']})" if b.get("note") else ""))
    return [*lines, ""]
