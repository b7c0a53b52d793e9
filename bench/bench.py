"""Benchmark: the harness against the machine's floor and a nox+uv baseline, as ratios of one run.

Measures, side by side on the same cells:
  floor      the repro's own process time in warm images (exec in a running container), and a
             bare container start (`python -c pass`) for the same images;
  baseline   a nox session per (Python, version) with a uv venv each, no containers, on the
             Pythons this host has, installing the same locks;
  harness    warm full matrix (a fresh results folder: every cell runs; images, locks and
             remembered build failures cached), no-change rerun, bisect mode, and with --cold
             a cold full matrix from nothing but the OS package cache (every harness image
             removed, an empty harness cache), whose statuses must equal the warm run's.
Each harness run also reports its stages (busy seconds per stage, from cells.json), its own
peak RSS, and the CPU of the harness, the engine's daemons and the whole machine.
Writes bench/results.json and bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from repro_matrix import store  # noqa: E402
from repro_matrix.containers import engine, sandbox  # noqa: E402
from repro_matrix.model import Status  # noqa: E402

CPU: dict[str, float] = {}  # per measure: CPU seconds of the harness, the daemons, the machine
RSS: dict[str, float] = {}  # per measure: peak RSS (MiB) of the harness process (its uv runs too)


def _daemons_cpu() -> float:
    """CPU seconds used so far by dockerd and containerd (where /proc shows them)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            if name in ("dockerd", "containerd"):
                parts = fields[1].split()
                total += (int(parts[11]) + int(parts[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every process, every core)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def harness_run(results: Path, *extra: str, env: dict[str, str] | None = None,
                measure: str = "") -> float:
    """Wall seconds of one `python -m repro_matrix run` (quiet), end to end; with ``measure``,
    its CPU seconds (harness, engine daemons, whole machine) go into CPU and the harness
    process's own peak RSS into RSS."""
    started, daemons_cpu, busy = time.monotonic(), _daemons_cpu(), _machine_busy()
    child = subprocess.Popen([sys.executable, "-m", "repro_matrix", "run", "--quiet",
                              "--results", str(results), *extra], cwd=REPO,
                             env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: the harness failed ({' '.join(extra)})")
    if measure:
        CPU[f"{measure}_harness"] = usage.ru_utime + usage.ru_stime
        CPU[f"{measure}_daemons"] = _daemons_cpu() - daemons_cpu
        CPU[f"{measure}_machine"] = _machine_busy() - busy
        RSS[measure] = usage.ru_maxrss / 1024
    return wall


def stages_of(results: Path) -> dict[str, Any]:
    """The stage breakdown the last run stored (every case folder holds the same one)."""
    for path in sorted(results.glob("*/cells.json")):
        meta, _ = store.read_cells(path)
        return dict(meta.get("stages") or {})
    return {}


def cells(results: Path) -> list[Any]:
    records = []
    for path in sorted(results.glob("*/cells.json")):
        records += store.read_cells(path)[1]
    return records


def floor(records: list[Any], repro: Path) -> tuple[float, float, int]:
    """(sum of repro exec seconds, sum of bare container runs, cells measured)."""
    eng = engine.connect()
    files = {repro.name: repro.read_bytes()}
    run_sum = start_sum = 0.0
    measured = 0
    try:
        for record in records:
            if not record.image_id:
                continue
            run_sum += eng.exec_seconds(record.image_id, [
                sandbox.VENV_PYTHON, f"{engine.REPRO_DIR}/{repro.name}"], files)
            bare = eng.run(record.image_id, [sandbox.VENV_PYTHON, "-c", "pass"], {}, 60, {})
            start_sum += bare.duration_s
            measured += 1
    finally:
        eng.close()  # the repro's volumes
    return run_sum, start_sum, measured


def baseline(records: list[Any], repro: Path,
             interpreters: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of nox+uv over the cells whose Python this host has (sequential sessions)."""
    chosen = [r for r in records if r.cell.python in interpreters and r.lock]
    with tempfile.TemporaryDirectory() as tmp:
        spec = [{"id": f"py{r.cell.python}-{r.cell.version}",
                 "python": interpreters[r.cell.python],
                 "lock": list(r.lock), "repro": str(repro)} for r in chosen]
        (Path(tmp) / "cells.json").write_text(json.dumps(spec))
        noxfile = Path(tmp) / "noxfile.py"
        noxfile.write_text(_noxfile(spec))
        started = time.monotonic()
        subprocess.run(["nox", "-f", str(noxfile), "--no-color", "--reuse-venv=no"], cwd=tmp,
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - started, len(chosen)


def _noxfile(spec: list[dict[str, Any]]) -> str:
    """One session per cell, each a fresh uv venv of that cell's Python with its lock."""
    return (
        "import json, os, nox\n"
        "nox.options.default_venv_backend = 'uv'\n"
        "CELLS = json.load(open(os.path.join(os.path.dirname(__file__), 'cells.json')))\n"
        "for spec in CELLS:\n"
        "    def make(spec):\n"
        "        def session(s):\n"
        "            req = os.path.join(s.create_tmp(), 'req.txt')\n"
        "            open(req, 'w').write('\\n'.join(spec['lock']) + '\\n')\n"
        "            s.install('--no-deps', '-r', req)\n"
        "            s.run('python', spec['repro'], success_codes=list(range(256)))\n"
        "        return session\n"
        "    nox.session(name=spec['id'], python=spec['python'])(make(spec))\n"
    )


def host_interpreter(version: str) -> str | None:
    """A working pythonX.Y on this host: on PATH, or under pyenv's versions folder."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True,
                                        check=False).returncode == 0:
            return candidate
    return None


def host_pythons(wanted: list[str]) -> dict[str, str]:
    found = {p: host_interpreter(p) for p in wanted}
    return {p: path for p, path in found.items() if path}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--cold", action="store_true",
                        help="also time a cold full matrix (removes cell images and uses an "
                             "empty cache; base images are kept)")
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--only-cold", action="store_true",
                        help="time only the cold run, adding it to bench/results.json")
    args, harness_args = parser.parse_known_args()
    if not any(a == "--case" or a.startswith("--case=") for a in harness_args):
        # The floor execs one repro in every image: one case at a time (the matrix file's first).
        from repro_matrix.spec import config

        harness_args += ["--case", config.load(REPO / "matrix.yaml").cases[0].id]
    work = args.work
    figures: dict[str, Any] = {"cores": os.cpu_count()}
    if args.only_cold:
        figures = json.loads((REPO / "bench" / "results.json").read_text())
        _add_cold(figures, cold_run(work, harness_args))
        return write(figures)

    full = work / "full"
    harness_run(full, *harness_args)  # make sure everything is warm
    # Warm: images, locks and remembered build failures cached; no stored record, so every
    # cell runs (--replace starts the folder over).
    figures["warm_full_s"] = harness_run(full, "--replace", *harness_args, measure="warm_full")
    figures["stages"] = {"warm_full": stages_of(full)}
    figures["no_change_rerun_s"] = harness_run(full, *harness_args, measure="no_change")
    records = [r for r in cells(full)
               if r.status not in (Status.UNAVAILABLE, Status.NOT_FOR_PYTHON)]
    ran = [r for r in records if r.image_id]
    figures["cells_available"] = len(records)
    figures["cells_run"] = len(ran)
    from repro_matrix.spec import config

    case_id = harness_args[harness_args.index("--case") + 1] if "--case" in harness_args \
        else next(a.split("=", 1)[1] for a in harness_args if a.startswith("--case="))
    repro = next(c.repro for c in config.load(REPO / "matrix.yaml").cases if c.id == case_id)
    if not args.skip_floor:
        run_sum, start_sum, measured = floor(ran, repro)
        figures.update(floor_repro_sum_s=run_sum, floor_bare_start_sum_s=start_sum,
                       floor_cells=measured, floor_s=run_sum / (os.cpu_count() or 1))
    pythons = host_pythons(sorted({r.cell.python for r in ran}))
    base_s, base_cells = baseline(ran, repro, pythons)
    figures.update(baseline_s=base_s, baseline_cells=base_cells,
                   baseline_pythons=sorted(pythons, key=lambda p: tuple(map(int, p.split(".")))))
    # The harness on exactly the baseline's cells (its Pythons), in this same bench run.
    figures["harness_same_cells_s"] = harness_run(
        work / "same-cells", "--replace", "--python", ",".join(sorted(pythons)),
        *harness_args)

    bisect_dir = work / "bisect"
    # --replace: each bench run starts over (a run merges into what the folder holds).
    figures["bisect_s"] = harness_run(bisect_dir, "--bisect", "--replace",
                                      *harness_args, measure="bisect")
    figures["bisect"] = _bisect_summary(bisect_dir, full)

    if args.cold:
        _add_cold(figures, cold_run(work, harness_args))
    return write(figures)


def _add_cold(figures: dict[str, Any], cold: dict[str, Any]) -> None:
    figures["stages"] = {**figures.get("stages", {}), **cold.pop("stages")}
    figures.update(cold)


def cold_run(work: Path, harness_args: list[str]) -> dict[str, Any]:
    """A full matrix from nothing but the OS package cache: every harness image (cells, bases,
    Debian roots) removed, an empty harness cache (index, locks, wheelhouse, bootstraps) and an
    empty uv cache.
    Its statuses are compared with the warm run's."""
    _drop_harness_images()
    with tempfile.TemporaryDirectory() as cache:
        # uv's own cache too: index pages, metadata and sdist builds are fetched again.
        seconds = harness_run(work / "cold", "--replace", *harness_args,
                              env={"REPRO_MATRIX_CACHE": cache,
                                   "UV_CACHE_DIR": str(Path(cache) / "uv")},
                              measure="cold_full")
    warm = {r.cell.id: r.status for r in cells(work / "full")}
    cold = {r.cell.id: r.status for r in cells(work / "cold")}
    differ = sorted(cell for cell in warm.keys() | cold.keys() if warm.get(cell) != cold.get(cell))
    stages = {"cold_full": stages_of(work / "cold")}
    return {"cold_full_s": seconds, "cold_cells": len(cold), "cold_differs_from_warm": differ,
            "stages": stages}


def write(figures: dict[str, Any]) -> int:
    figures["cpu_s"] = {**figures.get("cpu_s", {}), **CPU}
    figures["rss_mib"] = {**figures.get("rss_mib", {}), **RSS}
    figures.pop("peak_rss_mib", None)  # an older form: every child of the bench, nox included
    (REPO / "bench" / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    table = render(figures)
    (REPO / "bench" / "results.md").write_text(table)
    print(table)
    return 0


def _bisect_summary(bisect_dir: Path, full: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for path in bisect_dir.glob("*/cells.json"):
        meta, _ = store.read_cells(path)
        verdict = json.loads((full / path.parent.name / "verdict.json").read_text())
        for python, found in (meta.get("bisect") or {}).items():
            truth = verdict["observed"]["per_python"].get(python, {})
            n = len(meta["versions"])
            summary[f"{path.parent.name}/py{python}"] = {
                "cells_run": found["cells_run"], "versions": n,
                "budget": 2 * (max(n - 1, 1).bit_length() + 3),
                "agrees": (found["introduced"], found["fixed"])
                == (truth.get("introduced"), truth.get("first_fixed"))
                if truth.get("introduced") or found["introduced"] else "nothing to find",
                "note": found["note"]}
    return summary


def _drop_harness_images() -> None:
    """Remove every image carrying the harness's label: children before their parents, so
    rounds repeat until none is left (the engine refuses a parent while a child exists)."""
    for _ in range(10):
        ids = subprocess.run(["docker", "images", "-q", "--filter",
                              f"label={engine.LABEL}.managed=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raise SystemExit("bench: harness images are left after ten rounds of removal")


def render(f: dict[str, Any]) -> str:
    floor_s = f.get("floor_s")
    rows = [("measure", "seconds", "ratio")]
    if floor_s:
        rows += [("floor: repro process time / cores", f"{floor_s:.1f}", "1.00×"),
                 ("bare container starts (sum)", f"{f['floor_bare_start_sum_s']:.1f}",
                  f"{f['floor_bare_start_sum_s'] / f['floor_repro_sum_s']:.2f}× repro sum")]

    def ratio(seconds: float) -> str:
        return f"{seconds / floor_s:.2f}× floor" if floor_s else ""

    rows += [(f"harness warm full matrix ({f['cells_run']} cells)", f"{f['warm_full_s']:.1f}",
              ratio(f["warm_full_s"])),
             ("harness no-change rerun", f"{f['no_change_rerun_s']:.1f}",
              ratio(f["no_change_rerun_s"])),
             (f"nox+uv baseline ({f['baseline_cells']} cells, Pythons "
              f"{', '.join(f['baseline_pythons'])})", f"{f['baseline_s']:.1f}", "1.00× baseline"),
             ("harness warm on exactly those cells (same run)",
              f"{f['harness_same_cells_s']:.1f}",
              f"{f['harness_same_cells_s'] / f['baseline_s']:.2f}× baseline"),
             ("harness bisect mode", f"{f['bisect_s']:.1f}", ratio(f["bisect_s"]))]
    if "cold_full_s" in f:
        rows.append((f"harness cold full matrix ({f.get('cold_cells', '?')} cells; bases, "
                     "locks, downloads, builds and runs)", f"{f['cold_full_s']:.1f}",
                     ratio(f["cold_full_s"])))
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|---|---:|---|")
    rss = f.get("rss_mib", {})
    lines += ["", f"{f['cores']} cores. Peak RSS of the harness process: "
              + ", ".join(f"{m.replace('_', ' ')} {v:.0f} MiB" for m, v in rss.items()) + "."]
    if "cold_differs_from_warm" in f:
        differ = f["cold_differs_from_warm"]
        lines.append("Cold run's statuses against the warm run's: "
                     + ("identical." if not differ else
                        f"{len(differ)} cells differ: {', '.join(differ[:10])}"))
    wall = {"warm_full": f.get("warm_full_s"), "no_change": f.get("no_change_rerun_s"),
            "bisect": f.get("bisect_s"), "cold_full": f.get("cold_full_s")}
    cpu = f.get("cpu_s", {})
    lines += ["", "CPU use (seconds of CPU; share of all cores over the wall time):", ""]
    for measure, seconds in wall.items():
        if seconds and f"{measure}_harness" in cpu:
            machine = cpu.get(f"{measure}_machine")
            lines.append(f"- {measure.replace('_', ' ')}: harness "
                         f"{cpu[f'{measure}_harness']:.1f} s, dockerd+containerd "
                         f"{cpu[f'{measure}_daemons']:.1f} s"
                         + (f", whole machine {machine:.0f} s = "
                            f"{machine / seconds / f['cores']:.0%} of the cores"
                            if machine is not None else ""))
    for measure, breakdown in f.get("stages", {}).items():
        if breakdown:
            lines += ["", f"Stages, {measure.replace('_', ' ')} (busy seconds summed over the "
                      "threads that spent them, and how many times each ran):", "",
                      "| stage | busy s | count |", "|---|---:|---:|"]
            lines += [f"| {name} | {entry['s']:.1f} | {entry['n']} |"
                      for name, entry in breakdown.items()]
    lines += ["", "Bisect (cells run vs. budget 2·(⌈log2 n⌉+3)):"]
    for key, b in f.get("bisect", {}).items():
        lines.append(f"- {key}: {b['cells_run']} of {b['versions']} versions, budget "
                     f"{b['budget']}, " + (b["agrees"] if isinstance(b["agrees"], str)
                                          else f"agrees with the full matrix: {b['agrees']}")
                     + (f" ({b['note']})" if b["note"] else ""))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
