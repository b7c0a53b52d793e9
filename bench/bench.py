"""Benchmark the harness against the repros' process-time floor and a fair nox+uv baseline.

Parts (--parts, comma-separated; each can run alone and is added to bench/results.json as it
finishes, with its own provenance: commit, date, machine, load):
  warm        the harness on the selection with every image, lock and remembered build failure
              cached and a fresh results folder (every cell runs), --repeats times; then the
              no-change rerun, --repeats times.
  floor       the repros' own process time: each cell's command, wrapped, in its own warm
              image and sandbox, run --repeats times in a row inside one container; wall and
              CPU seconds measured inside, the container's round trip outside.
  baseline    nox+uv (bench/baseline_noxfile.py: a session per Python, its venv reused) on the
              cells both can install, against the harness on exactly those cells, warm,
              --repeats times each, with every outcome compared.
  bisect      the harness's --bisect mode, --repeats times, checked against the full run.
  cold-pair   the same two cold, once: every harness image removed and an empty --cache-dir
              for the harness; a fresh uv cache and fresh venvs for the baseline.
  cold-full   `nox -s matrix` from a fresh clone of HEAD, once: every harness image removed,
              its results/ emptied, empty harness and uv caches (an empty XDG_CACHE_HOME),
              nox's venv made in the timed run. Kept: the host's pyenv interpreters (copied
              into the local bases), the OS package cache (debootstrap's .debs), nox and uv.
--cold adds cold-pair and cold-full to the default parts (warm, floor, baseline, bisect). The
cold parts remove every harness image from the engine: run them on a machine nobody shares.
Harness selection options (--case, --python, --versions) apply to every part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import figures  # noqa: E402
from repro_matrix import atomic, store  # noqa: E402
from repro_matrix.containers import engine, sandbox  # noqa: E402
from repro_matrix.containers.cache import default_cache_dir  # noqa: E402
from repro_matrix.model import Case, CellRecord, RawRun, Status  # noqa: E402
from repro_matrix.resolve.index import IndexClient  # noqa: E402
from repro_matrix.run.classify import classify_run  # noqa: E402
from repro_matrix.run.inputs import read_repros, repro_command  # noqa: E402
from repro_matrix.spec import config  # noqa: E402

RESULTS = REPO / "bench" / "results.json"
PARTS = ("warm", "floor", "baseline", "bisect", "cold-pair", "cold-full")
DEFAULT_PARTS = ("warm", "floor", "baseline", "bisect")
COLD_PARTS = ("cold-pair", "cold-full")


# ---- machine readings ---------------------------------------------------------------------


def _proc_cpu(names: Sequence[str], root: int | None = None) -> float:
    """CPU seconds of the live processes with these names (or, given ``root``, of that process
    and its descendants: one engine among several), with their reaped children's."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, int, float]] = {}  # pid: (name, parent, CPU seconds)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
            fields = tail.split()
            found[int(stat.parent.name)] = (head.split("(", 1)[1], int(fields[1]),
                                            sum(int(v) for v in fields[11:15]) / tick)
        except (OSError, IndexError, ValueError):
            continue
    if root is None:
        return sum(cpu for name, _, cpu in found.values() if name in names)
    tree, grew = {root}, True
    while grew:
        grown = tree | {pid for pid, (_, parent, _) in found.items() if parent in tree}
        grew, tree = grown != tree, grown
    return sum(found[pid][2] for pid in tree if pid in found)


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (every process, every core)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def _containers_cpu(parent: str) -> float | None:
    """CPU seconds used so far by every container under the engine's cgroup parent (removed
    containers included: the kernel charges a cgroup's ancestors as it goes)."""
    v1 = Path("/sys/fs/cgroup/cpuacct") / parent / "cpuacct.usage"
    v2 = Path("/sys/fs/cgroup") / parent / "cpu.stat"
    try:
        if v1.exists():
            return int(v1.read_text()) / 1e9
        if v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            return int(usage["usage_usec"]) / 1e6
    except (OSError, ValueError, KeyError):
        pass
    return None


DAEMONS = ("dockerd", "containerd")


@dataclass
class Readings:
    """CPU counters at one moment, to subtract."""

    engine_pid: int | None = None
    daemons: float = 0.0
    machine: float = field(default_factory=_machine_busy)
    containers: float | None = None

    def __post_init__(self) -> None:
        self.daemons = _proc_cpu(DAEMONS, self.engine_pid)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=False).stdout.strip()


def provenance(options: argparse.Namespace) -> dict[str, Any]:
    """What a figure was measured on: commit, date, machine, load, engine, selection."""
    dirty = [line for line in _git("status", "--porcelain").splitlines()
             if "bench/results." not in line and "bench/work" not in line]
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, text=True, check=False).stdout.strip()
    return {"commit": _git("rev-parse", "HEAD"), "dirty": bool(dirty),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cores": os.cpu_count(),
                        "memory_gib": figures.meminfo_gib(Path("/proc/meminfo").read_text()),
                        "cpu": model, "kernel": platform.release()},
            "load_before": [round(v, 2) for v in os.getloadavg()],
            "engine": version or "?", "jobs": options.jobs,
            "selection": options.selection, "repeats": options.repeats,
            "bytecode": options.bytecode,
            "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}


# ---- the harness --------------------------------------------------------------------------


@dataclass(frozen=True)
class HarnessRun:
    """One harness run: its wall seconds, CPU seconds, peak RSS, and what it stored (read at
    once: the next repeat writes into the same folder)."""

    wall_s: float
    cpu_s: dict[str, float | None]
    rss_mib: float
    results: Path
    stages: dict[str, Any]
    cells: dict[str, int]


def harness_run(options: argparse.Namespace, results: Path, *extra: str,
                matrix: Path | None = None, env: Mapping[str, str] | None = None,
                selection: bool = True, checkout: Path = REPO,
                via_nox: bool = False) -> HarnessRun:
    """One `python -m repro_matrix run` (quiet), end to end: wall seconds, CPU seconds of the
    harness process (with its subprocesses), the engine's daemons, the containers and the whole
    machine, and the harness's own peak RSS (wait4). A failing harness stops the bench. The
    harness is ``checkout``'s (`python -m` puts the folder it starts in first on the path).
    ``via_nox``: `nox -s matrix -- …` in ``checkout``, as a user runs it (its venv made
    first, inside the timed window; the peak RSS is then the largest process of the tree)."""
    arguments = ["--quiet", "--jobs", str(options.jobs), "--matrix",
                 str(matrix or options.matrix), "--results", str(results),
                 *(options.selection if selection else ()), *extra]
    command = (["nox", "-s", "matrix", "--", *arguments] if via_nox
               else [sys.executable, "-m", "repro_matrix", "run", *arguments])
    before = Readings(options.engine_pid, containers=_containers_cpu(options.cgroup_parent))
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=checkout, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: the harness failed: {' '.join(command)}")
    after = Readings(options.engine_pid, containers=_containers_cpu(options.cgroup_parent))
    containers = figures.containers_delta(before.containers, after.containers)
    return HarnessRun(wall, {"harness": usage.ru_utime + usage.ru_stime,
                             "engine_daemons": after.daemons - before.daemons,
                             "containers": containers,
                             "whole_machine": after.machine - before.machine},
                      usage.ru_maxrss / 1024, results, stages_of(results),
                      counts(records_of(results)))


def records_of(results: Path) -> list[CellRecord]:
    records: list[CellRecord] = []
    for path in sorted(results.glob("*/cells.json")):
        records += store.read_cells(path)[1]
    return records


def stages_of(results: Path) -> dict[str, Any]:
    """The stage breakdown the run stored (every case folder holds the run's same one)."""
    for path in sorted(results.glob("*/cells.json")):
        return dict(store.read_cells(path)[0].get("stages") or {})
    return {}


def counts(records: Sequence[CellRecord]) -> dict[str, int]:
    return figures.cell_counts((r.status.value, bool(r.image_id)) for r in records)


def timed_measure(label: str, runs: Sequence[HarnessRun], options: argparse.Namespace,
                  started: dict[str, Any]) -> dict[str, Any]:
    """A measure from repeated harness runs: the wall spread; cells, stages and CPU of the run
    whose wall time is the median; the largest peak RSS."""
    middle = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    return {"label": label, "provenance": started,
            "wall_s": figures.spread([r.wall_s for r in runs]), "cells": middle.cells,
            "cpu_s": middle.cpu_s, "rss_mib": max(r.rss_mib for r in runs),
            "stages": middle.stages}


def _drop_harness_images() -> None:
    """Remove every image carrying the harness's label: children before their parents, so
    rounds repeat until none is left (the engine refuses a parent while a child exists)."""
    for _ in range(10):
        ids = subprocess.run(["docker", "images", "-aq", "--filter",
                              f"label={engine.LABEL}.managed=1"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raise SystemExit("bench: harness images are left after ten rounds of removal")


def _cold_env(cache: Path) -> tuple[list[str], dict[str, str]]:
    """Arguments and environment of a cold harness run: an empty cache, an empty uv cache."""
    return ["--cache-dir", str(cache)], {"UV_CACHE_DIR": str(cache / "uv")}


# ---- parts --------------------------------------------------------------------------------


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.work: Path = options.work
        self.full = self.work / "full"
        self.cfg = config.load(options.matrix)
        self.cases = {case.id: case for case in self.cfg.cases}
        self.out: Path = options.out
        self.results = _load_results(self.out)

    def record(self, name: str, measure: dict[str, Any]) -> None:
        """Add one measure to results.json (and results.md) at once."""
        self.results.setdefault("measures", {})[name] = measure
        write_results(self.out, self.results)
        print(f"bench: {name}: {measure['label']}: "
              + (f"{measure['wall_s']['median']:.1f} s" if "wall_s" in measure else "done"),
              flush=True)

    def ensure_full(self) -> list[CellRecord]:
        """The full run's records, with their images present: a run first (nothing to do
        when warm; after a cold part, whose bases are new, the cells are built and run
        again)."""
        harness_run(self.options, self.full)
        return records_of(self.full)

    # warm ------------------------------------------------------------------------------------

    def warm(self) -> None:
        opts = self.options
        harness_run(opts, self.full)  # everything warm: images, locks, build failures
        started = provenance(opts)
        # A fresh results folder each time (--replace): every cell runs.
        runs = [harness_run(opts, self.full, "--replace") for _ in range(opts.repeats)]
        self.record("warm_full", timed_measure(
            "harness warm, the whole selection (every cell runs; images, locks and remembered "
            "build failures cached)", runs, opts, started))
        started = provenance(opts)
        runs = [harness_run(opts, self.full) for _ in range(opts.repeats)]
        self.record("no_change", timed_measure(
            "harness no-change rerun (every cell kept)", runs, opts, started))

    # floor -----------------------------------------------------------------------------------

    def floor(self) -> None:
        opts = self.options
        # A case without a repro (compatibility mode) is decided by its image's import check.
        records = [r for r in self.ensure_full()
                   if r.image_id and self.cases[r.cell.case_id].has_repro]
        started = provenance(opts)
        wanted = {r.cell.case_id for r in records}
        repros = read_repros([self.cases[c] for c in sorted(wanted)])
        eng = engine.connect()
        cells, mismatched, notes = [], [], []
        try:
            for record in records:
                case = self.cases[record.cell.case_id]
                measured = _floor_cell(eng, case, repros[case.id], record, opts.repeats)
                if isinstance(measured, str):
                    notes.append(measured)
                    continue
                cell, status = measured
                cells.append(cell)
                if status != record.status:
                    mismatched.append(f"{record.cell.id}: harness {record.status.value}, "
                                      f"floor run {status.value}")
        finally:
            eng.close()
        measure = {"label": "floor: the repros' own process time (inside the container)",
                   "provenance": started, **figures.floor_of(cells, opts.cores, opts.jobs),
                   "notes": [*notes, "outcome of the floor's runs against the harness's: "
                             + ("identical" if not mismatched else "; ".join(mismatched[:20]))]}
        self.record("floor", measure)

    # baseline --------------------------------------------------------------------------------

    def baseline_cells(self) -> tuple[list[CellRecord], dict[str, int], dict[str, str]]:
        """The cells of the warm full run both can install, why others are left out, and the
        host interpreter per Python."""
        records = [r for r in self.ensure_full() if r.image_id and r.lock]
        host = host_pythons(sorted({r.cell.python for r in records}))
        chosen: list[CellRecord] = []
        excluded: dict[str, int] = {}
        for record in records:
            why = figures.baseline_exclusion(record.cell.python, record.build_lock, host)
            if not self.cases[record.cell.case_id].has_repro:
                why = "no repro (compatibility mode): the image's import check decides"
            if why:
                excluded[why] = excluded.get(why, 0) + 1
            else:
                chosen.append(record)
        return chosen, excluded, {p: host[p] for p in sorted({r.cell.python for r in chosen})}

    def same_cells_matrix(self, chosen: Sequence[CellRecord]) -> Path:
        """A matrix file with one case per (case, Python), or per (case, Python, release) for
        a case with an axis, whose versions (and axis versions) are exactly the chosen ones,
        and no bisection: the harness then runs exactly the baseline's cells."""
        raw = yaml.safe_load(self.options.matrix.read_text())
        by_case = {case["id"]: case for case in raw["cases"]}
        groups: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for record in chosen:
            cell = record.cell
            row = cell.version if cell.axis_package else ""  # an axis case: one per release
            groups.setdefault((cell.case_id, cell.python, row), []).append(
                (cell.version, cell.axis_version))
        # Every release on the index, not only the full run's: a release the full run's
        # --versions left out must not slip into the range either.
        index = IndexClient(default_cache_dir())
        released: dict[str, list[str]] = {}  # package → its releases, read once

        def releases_of(package: str) -> list[str]:
            if package not in released:
                released[package] = [r.version for r in index.releases(package)]
            return released[package]

        cases = []
        for (case_id, python, row), pairs in sorted(groups.items()):
            entry = json.loads(json.dumps(by_case[case_id]))
            entry["id"] = f"{case_id}--py{python}" + (f"--{row}" if row else "")
            entry["pythons"] = [python]
            entry["bisect"] = False  # a bisection would choose its own cells
            entry.setdefault("versions", {})["spec"] = figures.versions_spec(
                entry["versions"].get("spec", ""), releases_of(self.cases[case_id].package),
                [v for v, _ in pairs])
            if row:
                axis = entry["axis"]
                axis.setdefault("versions", {})["spec"] = figures.versions_spec(
                    axis["versions"].get("spec", ""), releases_of(axis["package"]),
                    [a for _, a in pairs])
            entry["repro"] = str(self.cases[case_id].repro.resolve())
            claim = entry.get("claim") or {}
            if "osv" in claim:
                claim["osv"] = str((self.options.matrix.parent / claim["osv"]).resolve())
            cases.append(entry)
        path = self.work / "same-cells.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({**raw, "cases": cases}, sort_keys=False))
        return path

    def baseline_spec(self, chosen: Sequence[CellRecord], interpreters: Mapping[str, str],
                      folder: Path) -> Path:
        """The baseline's folder: its noxfile and cells.json (each cell's exact lock)."""
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "bench" / "baseline_noxfile.py", folder / "noxfile.py")
        cells = []
        for record in chosen:
            case = self.cases[record.cell.case_id]
            cells.append({"id": record.cell.id, "python": record.cell.python,
                          "lock": list(record.lock), "repro": str(case.repro.resolve()),
                          "command": list(case.command), "env": dict(case.env),
                          "timeout_s": case.outcome.timeout_s})
        (folder / "cells.json").write_text(json.dumps(
            {"interpreters": dict(interpreters), "cells": cells,
             "outcomes": str(folder / "outcomes"), "isolate": isolation_works()}, indent=1))
        return folder

    def run_baseline(self, folder: Path, envdir: Path, uv_cache: Path,
                     pythons: Sequence[str], cell_count: int) -> tuple[float, dict[str, Any]]:
        """The baseline's sessions, as many at once as the harness's jobs: wall seconds and
        each cell's raw outcome. A session that fails stops the bench."""
        shutil.rmtree(folder / "outcomes", ignore_errors=True)
        env = {**os.environ, "UV_CACHE_DIR": str(uv_cache), "UV_PYTHON_DOWNLOADS": "never"}
        spec = json.loads((folder / "cells.json").read_text())
        sizes = {p: sum(1 for c in spec["cells"] if c["python"] == p) for p in pythons}

        def session(python: str) -> int:
            return subprocess.run(
                [sys.executable, "-m", "nox", "-f", str(folder / "noxfile.py"), "--envdir",
                 str(envdir), "--reuse-venv", "yes", "--download-python", "never",
                 "--nocolor", "-s", f"py{python}"], cwd=folder, env=env, check=False,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.options.jobs) as pool:
            codes = dict(zip(pythons, pool.map(session, sorted(
                pythons, key=lambda p: -sizes[p]))))
        wall = time.monotonic() - started
        failed = [p for p, code in codes.items() if code != 0]
        if failed:
            raise SystemExit(f"bench: baseline sessions failed: {failed} (see {folder})")
        outcomes = {}
        for path in (folder / "outcomes").glob("*.jsonl"):
            for line in path.read_text().splitlines():
                item = json.loads(line)
                outcomes[item["cell"]] = item
        if len(outcomes) != cell_count:
            raise SystemExit(f"bench: the baseline reported {len(outcomes)} of {cell_count} "
                             "cells")
        return wall, outcomes

    def classified(self, outcomes: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """Each baseline outcome classified by the harness's own classifier."""
        found = {}
        for cell_id, item in outcomes.items():
            case = self.cases[cell_id.split("/")[0]]
            raw = RawRun(exit_code=item["exit_code"], timed_out=item["timed_out"],
                         output=item["output"], duration_s=item["duration_s"])
            verdict = classify_run(raw, case.outcome)
            found[cell_id] = (verdict.status.value, verdict.reason)
        return found

    def baseline(self) -> None:
        opts = self.options
        chosen, excluded, interpreters = self.baseline_cells()
        if not chosen:
            raise SystemExit("bench: no cell for the baseline (Pythons 3.8+ with wheel locks)")
        matrix = self.same_cells_matrix(chosen)
        folder = self.baseline_spec(chosen, interpreters, self.work / "baseline")
        envdir, uv_cache = self.work / "baseline-envs", self.work / "baseline-uv-cache"
        same = self.work / "same-cells"
        # An earlier run's case folders would be counted as this run's cells: start empty.
        shutil.rmtree(same, ignore_errors=True)
        harness = {r.cell.id: (r.status.value, r.reason) for r in chosen}
        # Warm both: venvs and uv's cache for the baseline; the harness's images exist.
        self.run_baseline(folder, envdir, uv_cache, list(interpreters), len(chosen))
        harness_run(opts, same, "--replace", matrix=matrix, selection=False)
        started = provenance(opts)
        harness_runs, walls, rows = [], [], []
        for _ in range(opts.repeats):  # interleaved, so a busier moment hits both
            harness_runs.append(harness_run(opts, same, "--replace", matrix=matrix,
                                            selection=False))
            wall, outcomes = self.run_baseline(folder, envdir, uv_cache, list(interpreters),
                                               len(chosen))
            walls.append(wall)
            rows += [r for r in figures.disagreements(harness, self.classified(outcomes))
                     if r not in rows]
        notes = self._pair_notes(chosen, interpreters, same)
        self.record("harness_same_warm", {
            **timed_measure(f"harness warm on exactly the baseline's {len(chosen)} cells",
                            harness_runs, opts, started), "notes": notes})
        self.record("baseline_warm", {
            "label": f"nox+uv baseline warm ({len(chosen)} cells, Pythons "
                     f"{', '.join(interpreters)}; venvs and uv cache present)",
            "provenance": started, "wall_s": figures.spread(walls), "cells": len(chosen),
            "excluded": excluded, "disagreements": rows,
            "notes": ["installs the harness's own locks (uv pip sync): no resolution of its own",
                      "repro: same command, environment and time limit, in its own network "
                      "namespace, as the invoking user (the harness: uid 65534, read-only root)",
                      "classified by repro_matrix.run.classify, compared with the harness's "
                      "status of the same cell in the warm full run"]})

    def _pair_notes(self, chosen: Sequence[CellRecord], interpreters: Mapping[str, str],
                    same: Path) -> list[str]:
        ran = {_original_id(r.cell.id): r.status.value for r in records_of(same)}
        changed = figures.status_changes({r.cell.id: r.status.value for r in chosen}, ran)
        return ["the harness's same-cell run against its full run: "
                + ("identical statuses" if not changed else "; ".join(changed[:10])),
                "baseline interpreters: " + ", ".join(f"{p} {path}"
                                                      for p, path in interpreters.items())]

    # bisect ----------------------------------------------------------------------------------

    def bisect(self) -> None:
        opts = self.options
        self.ensure_full()
        folder = self.work / "bisect"
        started = provenance(opts)
        runs = [harness_run(opts, folder, "--bisect", "--replace") for _ in range(opts.repeats)]
        measure = timed_measure("harness --bisect mode", runs, opts, started)
        measure["bisect"] = _bisect_summary(folder, self.full)
        self.record("bisect", measure)

    # cold ------------------------------------------------------------------------------------

    def cold_pair(self) -> None:
        opts = self.options
        chosen, excluded, interpreters = self.baseline_cells()
        matrix = self.same_cells_matrix(chosen)
        folder = self.baseline_spec(chosen, interpreters, self.work / "baseline")
        harness = {r.cell.id: (r.status.value, r.reason) for r in chosen}
        same = self.work / "same-cells-cold"
        shutil.rmtree(same, ignore_errors=True)
        started = provenance(opts)
        _drop_harness_images()
        with tempfile.TemporaryDirectory(dir=self.work, prefix="cold-cache-") as cache:
            args, env = _cold_env(Path(cache))
            run = harness_run(opts, same, "--replace", *args, matrix=matrix, env=env,
                              selection=False)
        self.record("harness_same_cold", {
            **timed_measure(f"harness cold on exactly the baseline's {len(chosen)} cells "
                            "(images removed, empty --cache-dir and uv cache; once)", [run],
                            opts, started),
            "notes": self._pair_notes(chosen, interpreters, same)})
        started = provenance(opts)
        with tempfile.TemporaryDirectory(dir=self.work, prefix="cold-baseline-") as tmp:
            wall, outcomes = self.run_baseline(folder, Path(tmp) / "envs", Path(tmp) / "uv",
                                               list(interpreters), len(chosen))
        self.record("baseline_cold", {
            "label": f"nox+uv baseline cold ({len(chosen)} cells; fresh venvs, empty uv "
                     "cache; once)", "provenance": started, "wall_s": figures.spread([wall]),
            "cells": len(chosen), "excluded": excluded,
            "disagreements": figures.disagreements(harness, self.classified(outcomes))})

    def cold_full(self) -> None:
        """`nox -s matrix` from a fresh clone of HEAD, as a new user runs it, once: every
        harness image removed, and an empty XDG cache folder (the harness's cache, uv's cache
        and the wheels nox's venv is made from). It writes the clone's own results/, emptied
        first."""
        opts = self.options
        clone = self.work / "clone"
        shutil.rmtree(clone, ignore_errors=True)
        # A clone checks out the branch's HEAD: the commit provenance() records.
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
                       check=True)
        # The run's own statuses only: merged into the committed records, a cell the run left
        # out would keep its committed status and the comparison below could not tell.
        shutil.rmtree(clone / "results")
        started = provenance(opts)
        _drop_harness_images()
        with tempfile.TemporaryDirectory(dir=self.work, prefix="cold-xdg-") as xdg:
            matrix = (clone / opts.matrix.relative_to(REPO)
                      if opts.matrix.is_relative_to(REPO) else opts.matrix)
            run = harness_run(opts, clone / "results", matrix=matrix, env={
                "XDG_CACHE_HOME": xdg, "UV_CACHE_DIR": f"{xdg}/uv",
                "REPRO_MATRIX_CACHE": f"{xdg}/repro-matrix"}, checkout=clone, via_nox=True)
        measure = timed_measure(
            "`nox -s matrix` from a fresh clone, the whole selection, once (every harness "
            "image removed, empty harness and uv caches, nox's venv made in the run; kept: the "
            "host's pyenv interpreters and the OS package cache)", [run], opts, started)
        statuses = {r.cell.id: r.status.value for r in records_of(run.results)}
        if list(self.full.glob("*/cells.json")):
            warm = {r.cell.id: r.status.value for r in records_of(self.full)}
            measure["statuses_vs_warm"] = figures.status_comparison(warm, statuses)
        committed = {r.cell.id: r.status.value for r in records_of(REPO / "results")}
        measure["statuses_vs_committed"] = figures.status_comparison(committed, statuses)
        # wait4 gives the largest of the tree's processes, not the harness's own.
        measure["rss_of"] = "the largest process of nox's tree (nox, the harness, uv, pip)"
        self.record("cold_full", measure)


def _original_id(cell_id: str) -> str:
    """A same-cells matrix's cell id ("case--pyX.Y/pyX.Y/V") as the full run names it."""
    case, rest = cell_id.split("/", 1)
    return f"{case.split('--py')[0]}/{rest}"


def _floor_cell(eng: engine.Engine, case: Case, files: Mapping[str, bytes],
                record: CellRecord, repeats: int) -> tuple[figures.FloorCell, Status] | str:
    """One cell's floor: its command wrapped, ``repeats`` runs in one container of its image
    and sandbox; the cell and the status its first run classifies to, or why not measured."""
    command, workdir = repro_command(case)
    rule = case.outcome
    wrapped = [sandbox.VENV_PYTHON, "-c", figures.WRAPPER, str(repeats), *command]
    started = time.monotonic()
    raw = eng.run(record.image_id, wrapped, files, rule.timeout_s * repeats + 30,
                  labels={f"{engine.LABEL}.bench": "floor"}, memory=rule.memory,
                  pids=rule.pids, tmpfs=rule.tmpfs, workdir=workdir, env=dict(case.env))
    round_trip = time.monotonic() - started
    runs = figures.parse_floor(raw.output)
    if not runs:
        return f"{record.cell.id}: no floor line (timed out or killed)"
    output = figures.without_floor_line(raw.output)
    status = classify_run(RawRun(runs[0][2], False, output, runs[0][0]), rule).status
    return figures.FloorCell(record.cell.id, tuple(w for w, _, _ in runs),
                             tuple(c for _, c, _ in runs), round_trip), status


def _bisect_summary(bisect_dir: Path, full: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for path in sorted(bisect_dir.glob("*/cells.json")):
        meta, _ = store.read_cells(path)
        verdict = json.loads((full / path.parent.name / "verdict.json").read_text())
        full_meta, _ = store.read_cells(full / path.parent.name / "cells.json")
        for python, found in (meta.get("bisect") or {}).items():
            if "rows" in found:  # along an axis: each row's boundaries
                summary[f"{path.parent.name}/py{python}"] = figures.axis_bisect_summary(
                    found, (full_meta.get("bisect") or {}).get(python))
                continue
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


def host_interpreter(version: str) -> str | None:
    """A working pythonX.Y on this host: under pyenv's versions folder, else on PATH."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))]
    candidates.append(shutil.which(f"python{version}") or "")
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True,
                                        check=False).returncode == 0:
            return candidate
    return None


def host_pythons(wanted: Sequence[str]) -> dict[str, str]:
    found = {p: host_interpreter(p) for p in wanted}
    return {p: path for p, path in found.items() if path}


def isolation_works() -> bool:
    """Whether a repro can get a network namespace of its own here (root, unshare, ip)."""
    return subprocess.run(["unshare", "--net", "--", "sh", "-c", "ip link set lo up"],
                          capture_output=True, check=False).returncode == 0 \
        if shutil.which("unshare") and shutil.which("ip") else False


def _load_results(path: Path) -> dict[str, Any]:
    """results.json as it stands, when it is this format (an older one is started over)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"format": figures.FORMAT, "measures": {}}
    if not isinstance(data, dict) or data.get("format") != figures.FORMAT:
        return {"format": figures.FORMAT, "measures": {}}
    return data


def write_results(path: Path, results: Mapping[str, Any]) -> None:
    """``path`` (results.json) and results.md beside it, each replaced whole."""
    atomic.write_atomic(path, json.dumps(results, indent=1) + "\n")
    atomic.write_atomic(path.with_suffix(".md"), figures.render(results))


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                        help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--cold", action="store_true",
                        help="also the cold parts (cold-pair, cold-full): every harness image "
                             "is removed from the engine, bases included, and the caches are "
                             "empty")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each warm figure")
    parser.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1),
                        help="the harness's --jobs, and the baseline's sessions at once")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--matrix", type=Path, default=REPO / "matrix.yaml")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="the results file (results.md is written beside it)")
    parser.set_defaults(bytecode="as found")  # main() compiles it before any part
    parser.add_argument("--cgroup-parent", default="docker",
                        help="the engine's cgroup parent, for the containers' CPU")
    parser.add_argument("--engine-pid", type=int,
                        help="the engine's dockerd: its CPU and its children's (default: every "
                             "dockerd and containerd on the machine)")
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("--versions", default="")
    options = parser.parse_args(argv)
    options.parts = [p.strip() for p in options.parts.split(",") if p.strip()]
    if options.cold:
        options.parts += [p for p in COLD_PARTS if p not in options.parts]
    unknown = [p for p in options.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    options.selection = [*(a for c in options.case for a in ("--case", c)),
                         *(a for p in options.python for a in ("--python", p)),
                         *(("--versions", options.versions) if options.versions else ())]
    options.cores = os.cpu_count() or 1
    options.matrix = options.matrix.resolve()
    options.work = options.work.resolve()
    return options


def compile_bytecode() -> str:
    """Compile the harness and its venv's packages to bytecode, as `pip install` does, so a
    timed run imports them rather than compiling them: where PYTHONDONTWRITEBYTECODE is set
    (some machines do) an editable or uv-made install would otherwise compile ~150
    modules in every run, about a CPU-second a no-change rerun's user never pays."""
    targets = [sysconfig.get_paths()["purelib"], str(REPO / "repro_matrix")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *targets], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "compiled before timing (the harness and its venv, as pip install does)"


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    options.bytecode = compile_bytecode()
    bench = Bench(options)
    steps: dict[str, Callable[[], None]] = {
        "warm": bench.warm, "floor": bench.floor, "baseline": bench.baseline,
        "bisect": bench.bisect, "cold-pair": bench.cold_pair, "cold-full": bench.cold_full}
    for part in PARTS:  # in this order whatever the option's: the cold parts go last
        if part in options.parts:
            steps[part]()
    print(figures.render(bench.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
