"""Drive one matrix run: plan → resolve → build → run → classify → store → report."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from packaging.version import Version

from repro_matrix import (
    __version__,
    bases,
    boundary,
    engine,
    html_report,
    osv,
    plan,
    pythons,
    report,
    repro_files,
    sandbox,
    stages,
    store,
    svg,
)
from repro_matrix.bisect import bisect_versions
from repro_matrix.build import Builder, without_commands
from repro_matrix.classify import (
    Classification,
    classify,
    classify_build_failure,
    classify_not_for_python,
    classify_unavailable,
    common_failure,
    matched_signature,
)
from repro_matrix.compare import compare
from repro_matrix.errors import HarnessError, UsageError
from repro_matrix.index import IndexClient
from repro_matrix.model import (
    Attempt,
    BaseImage,
    BuildOutcome,
    Case,
    CaseMeta,
    Cell,
    CellRecord,
    Lock,
    MatrixConfig,
    Release,
    Status,
    claim_from_json,
    claim_to_json,
)
from repro_matrix.progress import Progress
from repro_matrix.resolve import ResolveFailure, Resolver, era_cutoffs
from repro_matrix.shard import ShardSpec, merge_records, partition, shard_loads
from repro_matrix.verdict import (
    AFFECTED,
    UNAFFECTED,
    UNDETERMINED,
    CaseResult,
    Observation,
    Verdict,
    derive,
)

_EXCERPT_CHARS = 4000


@dataclass(frozen=True)
class RunOptions:
    results: Path
    cache_dir: Path
    jobs: int
    provider: str | None = None
    rerun: bool = False
    cost_from: Path | None = None  # earlier results whose durations balance shards
    start_over: bool = False  # --replace: discard the stored records of the cases run
    on_output: Callable[[str], None] | None = None  # a repro's output, live (`try`)


def default_cache_dir() -> Path:
    """REPRO_MATRIX_CACHE, else $XDG_CACHE_HOME/repro-matrix, else ~/.cache/repro-matrix."""
    if os.environ.get("REPRO_MATRIX_CACHE"):
        return Path(os.environ["REPRO_MATRIX_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "repro-matrix"


def make_plan(config: MatrixConfig, selection: plan.Selection,
              index: IndexClient) -> tuple[tuple[plan.CasePlan, ...], dict[str, list[Release]]]:
    cases = plan.select_cases(config.cases, selection.case_ids)
    releases = {case.package: index.releases(case.package) for case in cases}
    return plan.plan(cases, releases, selection), releases


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to the matrix file's folder when inside it (results are shared)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CaseRecorder:
    """Merges one case's new records into its stored record and rewrites cells.json as cells
    finish.

    Every stored record the run does not reach stays (a slice, a shard, an interrupted run or
    cells outside today's plan never drop evidence); a reached one is replaced only by a record
    of the same or better standing (``store.supersedes``), so an outage never overwrites a
    decided cell. Rewrites are spaced by FLUSH_EVERY_S (a full rewrite per cell costs more than
    the cells themselves on a warm matrix); a crash loses at most that much, and those cells
    rerun.
    """

    FLUSH_EVERY_S = 2.0

    def __init__(self, case_plan: plan.CasePlan, results: Path, meta: dict[str, Any],
                 files: Mapping[str, bytes], start_over: bool = False,
                 uploads: Mapping[str, datetime | None] | None = None) -> None:
        self.plan = case_plan
        self.results = results
        self.meta = meta
        self.mutex = threading.Lock()
        self.stored_meta, stored = ({}, {}) if start_over else _stored(results,
                                                                       case_plan.case.id)
        self.discarded = 0 if not start_over else len(_stored(results, case_plan.case.id,
                                                              strict=False)[1])
        self.previous = {k: v for k, v in stored.items() if v.input_key}  # reusable outcomes
        self.files = files  # the repro's files, read once per run, not once per cell
        self.not_for_python = dict(case_plan.not_for_python)
        self.records = dict(stored)
        self.uploads = dict(uploads or {})  # version → when the index got it (era cutoffs)
        self.kept: dict[Status, int] = {}  # outcomes of this run that could not replace a record
        self._flushed_at = 0.0

    def set_base(self, image: BaseImage) -> None:
        """Record where a column's interpreter came from, once its base is ready."""
        with self.mutex:
            found = {**self.meta.get("bases", {}), image.python: base_meta(image)}
            self.meta["bases"] = {p: found[p] for p in sorted(found, key=pythons.sort_key)}

    def add(self, record: CellRecord) -> None:
        with self.mutex:
            stored = self.records.get(record.cell.id)
            if store.supersedes(record, stored):
                self.records[record.cell.id] = record
            else:
                self.kept[record.status] = self.kept.get(record.status, 0) + 1
            if time.monotonic() - self._flushed_at >= self.FLUSH_EVERY_S:
                self._write()

    def flush(self) -> None:
        with self.mutex:
            self._write()

    def kept_line(self) -> str | None:
        """One line on the stored records this run's outcomes could not replace, if any."""
        if not self.kept:
            return None
        total = sum(self.kept.values())
        outage = self.kept.get(Status.UNAVAILABLE, 0)
        parts = [f"{count} {status.value}" for status, count in sorted(
            self.kept.items(), key=lambda item: item[0].value)]
        why, then = (("an infrastructure outage", "rerun when it is over")
                     if outage == total else ("outcomes of lower standing",
                                              "look into them"))
        return (f"{self.plan.case.id}: kept {total} stored record(s) over {why} of this run "
                f"({', '.join(parts)}); {then}, or --replace to start over")

    def _write(self) -> None:
        store.write_cells(self.results, self.plan.case.id,
                          store.cell_order(list(self.records.values())),
                          store.merge_meta(self.stored_meta, self.meta))
        self._flushed_at = time.monotonic()


def _stored(results: Path, case_id: str, strict: bool = True,
            ) -> tuple[dict[str, Any], dict[str, CellRecord]]:
    """The case's stored meta and records; an unreadable cells.json is a UsageError (never
    silently overwritten) unless ``strict`` is off."""
    path = store.case_dir(results, case_id) / "cells.json"
    if not path.exists():
        return {}, {}
    try:
        meta, records = store.read_cells(path)
    except HarnessError as exc:
        if not strict:
            return {}, {}
        raise UsageError(exc.message, "move it away, or pass --replace to start over") from None
    return meta, {r.cell.id: r for r in records}


def _previous_records(results: Path, case_id: str) -> dict[str, CellRecord]:
    """Records of an earlier run in this folder; unreadable ones are simply not reused."""
    return {k: v for k, v in _stored(results, case_id, strict=False)[1].items() if v.input_key}


def cell_input_key(image_id: str, case: Case, files: Mapping[str, bytes]) -> str:
    """A cell's input key: ``run_input_key``, and the case's own limits when it sets any."""
    key = run_input_key(image_id, case, files)
    rule = case.outcome
    limits = engine.sandbox(rule.memory, rule.pids, rule.tmpfs)
    if limits != engine.SANDBOX:  # a case's own limits are part of what decides it
        key = hashlib.sha256(f"{key}\0{limits}".encode()).hexdigest()[:32]
    return key


def run_input_key(image_id: str, case: Case, files: Mapping[str, bytes]) -> str:
    """What a cell's outcome depends on once its image exists."""
    digest = hashlib.sha256()
    repro_digest = (repro_files.files_digest(files) if case.folder
                    else hashlib.sha256(files[case.repro.name]).hexdigest())
    parts = [__version__, engine.SANDBOX, image_id, repro_digest, case.repro.name,
             json.dumps(case.outcome.signatures), str(case.outcome.timeout_s)]
    if case.folder or case.command or case.env or case.outcome.exit_codes != "default":
        # Only a case that sets these adds them, so a plain script's cells keep their keys.
        parts.append(json.dumps({"folder": case.folder, "command": case.command,
                                 "env": case.env, "exit_codes": case.outcome.exit_codes}))
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:32]


def repro_command(case: Case) -> tuple[list[str], str]:
    """The command a cell runs and its working directory. A plain script runs as it always
    has; a case's own `command:` runs in the repro folder, its `python` being the venv's."""
    if not case.command:
        return [sandbox.VENV_PYTHON, f"{sandbox.REPRO_DIR}/{case.repro.name}"], sandbox.WORKDIR
    first, *rest = case.command
    return ([sandbox.VENV_PYTHON if first in ("python", "python3") else first, *rest],
            sandbox.REPRO_DIR)


def read_repros(cases: Sequence[Case]) -> dict[str, dict[str, bytes]]:
    """Every case's repro files, each compiled on the host first: a syntax error stops the run
    (UsageError, exit 2) before anything is built."""
    found = {}
    for case in cases:
        files = repro_files.read_files(case.repro, case.folder)
        repro_files.check_syntax(case, files)
        found[case.id] = files
    return found


class _Bases(Mapping[str, BaseImage]):
    """Each Python's base image as it becomes ready; looking one up waits for it."""

    # Bases prepared at once: bootstraps mostly wait on the network, and the local interpreters
    # wait for their shared Debian root; one at a time, the last column would start late.
    AT_ONCE = 9

    def __init__(self, futures: Mapping[str, Future[BaseImage]]) -> None:
        self._futures = dict(futures)

    def __getitem__(self, python: str) -> BaseImage:
        return self._futures[python].result()

    def __iter__(self) -> Iterator[str]:
        return iter(self._futures)

    def __len__(self) -> int:
        return len(self._futures)

    def when_done(self, python: str, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with ``python`` once preparing its base has ended, however."""
        self._futures[python].add_done_callback(lambda _: callback(python))

    def when_ready(self, python: str, callback: Callable[[BaseImage], None]) -> None:
        """Call ``callback`` with ``python``'s base once it is prepared (now, if it is)."""
        def done(future: Future[BaseImage]) -> None:
            if not future.cancelled() and future.exception() is None:
                callback(future.result())

        self._futures[python].add_done_callback(done)


@dataclass(frozen=True)
class _Stage:
    """What every cell of a run shares: the engine, the builder, the base image per Python."""

    engine: engine.Engine
    builder: Builder
    bases: Mapping[str, BaseImage]


@dataclass(frozen=True)
class _EraBuild:
    """The image of the first era cutoff that resolved and built (with its lock), or why no
    cutoff did (classified, with the last log); the attempts either way."""

    attempts: tuple[Attempt, ...]
    cutoff: str = ""
    lock: Lock | None = None
    image: BuildOutcome | None = None
    failure: Classification | None = None
    failure_log: str = ""


_LockKey = tuple[str, str, str, str, tuple[str, ...]]


def _lock_key(case: Case, cell: Cell, cutoff: str, tools_floor: str) -> _LockKey:
    """What a cell's lock for one era cutoff depends on: requirement, Python, both cutoffs and
    the repro's own requirements."""
    return (f"{case.package}=={cell.version}", cell.python, cutoff, max(cutoff, tools_floor),
            tuple(case.requirements))


class _Ahead:
    """Locks resolved, and their files fetched, before their cells ask for them.

    Resolution and downloads wait on the network and builds on the CPU: run ahead in their own
    threads, they overlap. A lock asked for that was not started ahead is made on the spot."""

    WORKERS = 3

    def __init__(self, resolver: Resolver, clock: stages.StageClock) -> None:
        self.resolver = resolver
        self.clock = clock
        self._mutex = threading.Lock()
        self._futures: dict[_LockKey, Future[Lock | ResolveFailure]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(self, keys: Sequence[_LockKey]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.WORKERS,
                                        thread_name_prefix="resolve-ahead")
        with self._mutex:
            for key in keys:
                if key not in self._futures:
                    self._futures[key] = self._pool.submit(self._fetch, key)

    def get(self, key: _LockKey) -> Lock | ResolveFailure:
        with self._mutex:
            future = self._futures.pop(key, None)
        if future is None or future.cancel():
            # Never started ahead, or still queued behind others (cells start in the order
            # their bases become ready, not the queue's): made on the spot, not waited for.
            return self._fetch(key)
        if future.done():
            return future.result()
        with self.clock.stage("wait"):
            return future.result()

    def stop(self) -> None:
        """Drop what no cell asked for; wait for the resolutions already running."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._mutex:
            self._futures.clear()

    def _fetch(self, key: _LockKey) -> Lock | ResolveFailure:
        requirement, python, cutoff, tools_cutoff, extra = key
        with self.clock.stage("resolve"):
            lock = self.resolver.lock(requirement, python, cutoff, tools_cutoff, extra=extra)
        if not isinstance(lock, ResolveFailure):
            with self.clock.stage("download"):
                self.resolver.ensure_files(lock)
        return lock


_STATE_OF = {Status.REPRODUCED: AFFECTED, Status.NOT_REPRODUCED: UNAFFECTED}


def _partition(case_plans: Sequence[plan.CasePlan], count: int, cost_from: Path | None,
               ) -> tuple[list[list[Cell]], dict[str, CellRecord]]:
    previous: dict[str, CellRecord] = {}
    for cp in case_plans:
        if cost_from is not None:
            previous.update(_previous_records(cost_from, cp.case.id))
    cells = [cell for cp in case_plans for cell in cp.cells]
    package_of = {cp.case.id: cp.case.package for cp in case_plans}
    return partition(cells, package_of, count, previous), previous


def shard_plans(case_plans: Sequence[plan.CasePlan], spec: ShardSpec,
                cost_from: Path | None) -> tuple[plan.CasePlan, ...]:
    """The plans narrowed to shard ``spec``; every job computes the same split from the same
    plan and the same cost source."""
    keep = {cell.id for cell in _partition(case_plans, spec.count, cost_from)[0][spec.index - 1]}
    return tuple(replace(cp, cells=tuple(c for c in cp.cells if c.id in keep))
                 for cp in case_plans)


def shard_matrix(case_plans: Sequence[plan.CasePlan], count: int,
                 cost_from: Path | None) -> list[dict[str, Any]]:
    """The shard list in the form a CI job matrix's ``include`` takes."""
    shards, previous = _partition(case_plans, count, cost_from)
    return [{"shard": f"{i}/{count}", "index": i, "cells": len(shard), "expected_s": load}
            for i, (shard, load) in enumerate(zip(shards, shard_loads(shards, previous)), 1)]


class MatrixRun:
    """One invocation of the matrix: owns the engine, resolver, builder and progress output.

    The package index, the resolver and the engine (``connect``) default to the real ones;
    tests pass fakes to drive the run loop without Docker or a network."""

    def __init__(self, config: MatrixConfig, options: RunOptions,
                 progress: Progress | None = None, *, index: IndexClient | None = None,
                 resolver: Resolver | None = None,
                 connect: Callable[[], engine.Engine] = engine.connect) -> None:
        self.config = config
        self.options = options
        self.progress = progress or Progress(sys.stderr)
        self.index = index or IndexClient(options.cache_dir)
        self.resolver = resolver or Resolver(self.index, options.cache_dir)
        self._connect = connect
        self.today = date.today()
        self._reused_mutex = threading.Lock()
        self._reused: set[str] = set()
        self._full_plans: dict[str, plan.CasePlan] = {}
        self.clock = stages.StageClock()
        self._ahead = _Ahead(self.resolver, self.clock)

    def run(self, selection: plan.Selection, bisect: bool = False,
            shard: ShardSpec | None = None) -> list[tuple[str, Verdict]]:
        """Run every planned cell (of one shard), or in ``bisect`` mode only those a boundary
        search needs."""
        started = time.monotonic()
        full_plans, releases = make_plan(self.config, selection, self.index)
        case_plans = full_plans
        if shard is not None:
            case_plans = shard_plans(full_plans, shard, self.options.cost_from)
            self._say(f"shard {shard}: {sum(len(cp.cells) for cp in case_plans)} of "
                      f"{sum(len(cp.cells) for cp in full_plans)} cells")
        self._full_plans = {cp.case.id: cp for cp in full_plans}
        repros = read_repros([cp.case for cp in case_plans])
        eng = self._connect()
        eng.remove_leftovers()
        builder = Builder(eng, self.resolver.wheelhouse, self.options.cache_dir,
                          retry_failures=self.options.rerun)
        builder.list_present()
        if not bisect:  # a bisection needs a few cells, not every lock
            self._resolve_ahead(case_plans, releases)
        try:
            return self._run_cells(eng, builder, case_plans, releases, repros, bisect, started)
        finally:
            self._ahead.stop()
            eng.close()

    def _run_cells(self, eng: engine.Engine, builder: Builder,
                   case_plans: Sequence[plan.CasePlan], releases: Mapping[str, list[Release]],
                   repros: Mapping[str, Mapping[str, bytes]], bisect: bool,
                   started: float) -> list[tuple[str, Verdict]]:
        base_images = self._bases(eng, sorted({p for cp in case_plans for p in cp.pythons},
                                               key=pythons.sort_key))
        recorders = [self._recorder(cp, releases[cp.case.package], base_images,
                                    repros[cp.case.id]) for cp in case_plans]
        for recorder in recorders:
            if self.options.start_over:
                self._say(f"--replace: starting {recorder.plan.case.id} over; "
                          f"{recorder.discarded} stored record(s) discarded")
        if self.options.rerun and builder.remembered_failures():
            self._say(f"--rerun: cells whose build failed before are built again (the cache "
                      f"remembers {builder.remembered_failures()} build failure(s))")
        stage = _Stage(eng, builder, base_images)
        tasks: list[tuple[str, Callable[[], None]]]  # (its Python, the task)
        if bisect:
            tasks = [(python, partial(self._bisect_task, stage, recorder, python))
                     for recorder in recorders for python in recorder.plan.pythons]
            self._say(f"bisecting {len(tasks)} (case, Python) pairs with {self.options.jobs} "
                      "job(s)")
        else:
            tasks = [(cell.python, partial(self._cell_task, stage, recorder, cell))
                     for recorder in recorders for cell in recorder.plan.cells]
            self.progress.total = len(tasks)
            self._say(f"running {len(tasks)} cells with {self.options.jobs} job(s)")
        try:
            self._run_as_bases_ready(tasks, base_images)
        except BaseException:
            # Whatever finished is written before the exception goes on.
            self.progress.close()
            for recorder in recorders:
                recorder.flush()
            raise
        self.progress.close()
        wall = time.monotonic() - started
        for recorder in recorders:
            recorder.meta.update(finished_at=_now(), wall_time_s=round(wall, 1),
                                 stages=self.clock.totals())
            recorder.flush()
            planned = {cell.id for cell in recorder.plan.cells}
            for line in column_failures(recorder.plan.case,
                                        [r for r in recorder.records.values()
                                         if r.cell.id in planned]):
                self._say(line)
            kept = recorder.kept_line()
            if kept:
                self._say(kept)
        with self.clock.stage("report"):
            verdicts = render_results(self.options.results,
                                      [c.plan.case.id for c in recorders],
                                      find=dist_finder(self.options.cache_dir, index=self.index),
                                      releases=self.index.releases)
        self._say(stages.describe(self.clock.totals(), self.options.jobs))
        self._say(f"done: {self.progress.done} cells ({len(self._reused)} unchanged since the "
                  f"last run, not rerun) in {wall:.0f} s; report: "
                  f"{self.options.results / 'report.md'}")
        return verdicts

    def _run_as_bases_ready(self, tasks: Sequence[tuple[str, Callable[[], None]]],
                            base_images: _Bases) -> None:
        """Run the tasks ``jobs`` at a time, each once its Python's base is prepared: no job is
        held by a cell waiting for a base, so the columns whose base is ready go first."""
        by_python: dict[str, list[Callable[[], None]]] = {}
        for python, task in tasks:
            by_python.setdefault(python, []).append(task)
        finished: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
        pool = ThreadPoolExecutor(max_workers=self.options.jobs)

        def release(python: str) -> None:
            for task in by_python[python]:
                try:
                    pool.submit(task).add_done_callback(finished.put)
                except RuntimeError:
                    return  # the run is stopping: the pool takes nothing more

        try:
            for python in by_python:
                # Also when preparing the base failed: its tasks then raise that failure.
                base_images.when_done(python, release)
            remaining = len(tasks)
            while remaining:
                try:
                    done = finished.get(timeout=0.5)  # a timeout keeps Ctrl-C prompt
                except queue.Empty:
                    continue
                done.result()
                remaining -= 1
        except BaseException:
            # On Ctrl-C or an engine failure, queued cells must not keep the process alive.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def try_cell(self, selection: plan.Selection) -> CellRecord:
        """Build and run the one cell ``selection`` names, as a run would (same lock, image,
        sandbox and limit), and return its record: never one stored earlier, and nothing is
        written to the results folder."""
        full_plans, releases = make_plan(self.config, selection, self.index)
        cells = [cell for cp in full_plans for cell in cp.cells]
        if len(cells) != 1:
            raise UsageError(f"try: the selection names {len(cells)} cells, not one",
                             "give one --case, one --python and one --version")
        (case_plan,) = (cp for cp in full_plans if cp.cells)
        self._full_plans = {case_plan.case.id: case_plan}
        files = read_repros([case_plan.case])[case_plan.case.id]  # a syntax error stops here
        eng = self._connect()
        eng.remove_leftovers()
        base_images = self._bases(eng, case_plan.pythons)
        stage = _Stage(eng, Builder(eng, self.resolver.wheelhouse, self.options.cache_dir),
                       base_images)
        recorder = self._recorder(case_plan, releases[case_plan.case.package], base_images,
                                  files)
        recorder.previous = {}  # always run: the author is watching this run's output
        self._say(f"{cells[0].id}: locking, building (an image built before is reused) and "
                  "running; the repro's output follows")
        try:
            return self._cell(stage, recorder, cells[0])
        finally:
            eng.close()

    def _bases(self, eng: engine.Engine, pythons: Sequence[str]) -> _Bases:
        """Each Python's base, prepared in the background (a few at once: bootstraps wait on
        the network); a cell waits only for its own Python's."""
        work_dir = self.options.cache_dir / "rootfs"

        def one(python: str) -> BaseImage:
            self._say(f"base image for Python {python}: preparing")
            with self.clock.stage("bases"):
                image = bases.prepare(eng, python, self.config.providers, work_dir,
                                      self.options.provider)
            self._say(f"base image for Python {python}: {describe_base(image)}")
            return image

        pool = ThreadPoolExecutor(max_workers=_Bases.AT_ONCE, thread_name_prefix="bases")
        futures = {python: pool.submit(one, python) for python in pythons}
        pool.shutdown(wait=False)  # every base is submitted; the pool ends with the last one
        return _Bases(futures)

    def _recorder(self, case_plan: plan.CasePlan, releases: Sequence[Release],
                  base_images: _Bases, files: Mapping[str, bytes]) -> CaseRecorder:
        case = case_plan.case
        dates = {r.version: r.upload_time.date().isoformat() for r in releases
                 if r.upload_time and r.version in case_plan.versions}
        meta = CaseMeta(
            case=case.id, package=case.package, description=case.description,
            claim=claim_to_json(case.claim), matrix_digest=self.config.digest,
            started_at=_now(), repro=_display_path(case.repro, self.config.path.parent),
            requirements=case.requirements, repro_path=str(case.repro.resolve()),
            limits=case.outcome.limits, versions=case_plan.versions,
            pythons=case_plan.pythons,
            plan_cells=tuple(c.id for c in self._full_plans[case.id].cells),
            engine=os.environ.get("DOCKER_HOST", "default"), release_dates=dates,
            command=case.command, env=dict(case.env), folder=case.folder,
        ).to_json()
        recorder = CaseRecorder(case_plan, self.options.results, meta, files,
                                self.options.start_over,
                                uploads={r.version: r.upload_time for r in releases})
        for python in case_plan.pythons:
            base_images.when_ready(python, recorder.set_base)
        return recorder

    def _finish(self, recorder: CaseRecorder, record: CellRecord) -> None:
        recorder.add(record)
        kept = record.cell.id in self._reused
        self.progress.cell_finished(record, " (inputs unchanged: kept from the last run)"
                                    if kept else "")

    def _cell_task(self, stage: _Stage, recorder: CaseRecorder, cell: Cell) -> None:
        self.progress.cell_started(cell.id)
        self._finish(recorder, self._cell(stage, recorder, cell))

    def _bisect_task(self, stage: _Stage, recorder: CaseRecorder, python: str) -> None:
        case = recorder.plan.case
        if not stage.bases[python].available:
            # Nothing to search: every cell of the column is unavailable, as in a full run.
            for version in recorder.plan.versions:
                self._finish(recorder, self._cell(stage, recorder, Cell(case.id, python,
                                                                        version)))
            with recorder.mutex:
                recorder.meta.setdefault("bisect", {})[python] = {
                    "cells_run": 0, "introduced": None, "fixed": None,
                    "non_monotonic": False, "note": "Python unavailable"}
            return

        def probe(version: str) -> str:
            cell = Cell(case.id, python, version)
            self.progress.cell_started(cell.id)
            record = self._cell(stage, recorder, cell)
            self._finish(recorder, record)
            return _STATE_OF.get(record.status, UNDETERMINED)

        # Releases not for this Python are known without a probe: recorded, never searched.
        searched = []
        for version in recorder.plan.versions:
            if Cell(case.id, python, version).id in recorder.not_for_python:
                probe(version)
            else:
                searched.append(version)
        hints = [v for v in case.claim.named_versions() if v in searched]
        result = bisect_versions(tuple(searched), probe, hints)
        summary = {"cells_run": result.runs, "introduced": result.introduced,
                   "fixed": result.fixed, "non_monotonic": result.non_monotonic,
                   "note": result.note}
        with recorder.mutex:
            recorder.meta.setdefault("bisect", {})[python] = summary
        self._say(f"bisect {case.id} py{python}: {result.runs} cells run, introduced "
                  f"{result.introduced or '-'}, fixed {result.fixed or '-'}"
                  + (f"; {result.note}" if result.note else ""))

    def _cell(self, stage: _Stage, recorder: CaseRecorder, cell: Cell) -> CellRecord:
        """Reuse or run one cell: decided by metadata alone, kept from the last run when its
        inputs are unchanged, else run in the image of the first era cutoff that builds."""
        base = stage.bases[cell.python]
        case = recorder.plan.case
        excluded = recorder.not_for_python.get(cell.id)
        if excluded:  # decided by metadata alone: nothing to resolve, build or run
            return _record(cell, classify_not_for_python(excluded), base)
        if not base.available:
            return _record(cell, classify_unavailable(base.unavailable_reason), base)
        era = self._build_in_era(stage.builder, base, case, cell,
                                 recorder.uploads.get(cell.version))
        if era.lock is None or era.image is None:
            assert era.failure is not None
            return replace(_record(cell, era.failure, base), attempts=era.attempts,
                           output_excerpt=era.failure_log[-_EXCERPT_CHARS:])
        key = cell_input_key(era.image.image_id, case, recorder.files)
        previous = recorder.previous.get(cell.id)
        if previous and previous.input_key == key and not self.options.rerun \
                and not _signature_exit_0_as_passed(previous, case):
            with self._reused_mutex:
                self._reused.add(cell.id)
            # The outcome is kept; the attempts are this run's account of the same cutoffs
            # (from the same remembered builds), so a clearer account replaces an older one.
            return replace(previous, attempts=era.attempts)
        # An engine lost mid-run raises EngineError here: the cell gets no record at all.
        command, workdir = repro_command(case)
        rule = case.outcome
        with self.clock.stage("run"):
            raw = stage.engine.run(era.image.image_id, command, recorder.files,
                                   rule.timeout_s, labels={f"{engine.LABEL}.cell": cell.id},
                                   memory=rule.memory, pids=rule.pids, tmpfs=rule.tmpfs,
                                   workdir=workdir, env=dict(case.env),
                                   on_output=self.options.on_output)
        lock = era.lock
        return replace(
            _record(cell, classify(raw, rule.signatures, rule.exit_codes), base),
            exit_code=raw.exit_code, duration_s=round(raw.duration_s, 3),
            lock=tuple(lock.as_text().split("\n")[:-1]),
            build_lock=tuple(lock.requirement_lines(lock.build).split("\n")[:-1]),
            cutoff=era.cutoff, attempts=era.attempts, image_id=era.image.image_id,
            image_ref=era.image.image_ref, output_excerpt=raw.output[-_EXCERPT_CHARS:],
            input_key=key)

    def _cutoffs(self, cell: Cell, uploaded: datetime | None) -> tuple[tuple[str, ...], str]:
        """The era cutoffs to try for ``cell``, in order, and the floor of its tools' cutoff."""
        release_day = date.fromisoformat(dict(self.config.python_release_dates)[cell.python])
        cutoffs = era_cutoffs(uploaded, release_day, self.today, self.config.era)
        return cutoffs, f"{(release_day + timedelta(days=1)).isoformat()}T00:00:00Z"

    def _resolve_ahead(self, case_plans: Sequence[plan.CasePlan],
                       releases: Mapping[str, Sequence[Release]]) -> None:
        """Start resolving every cell's first era cutoff (and fetching its files) now, so that
        resolution and downloads overlap base preparation and the builds of earlier cells."""
        keys = []
        for case_plan in case_plans:
            case = case_plan.case
            uploads = {r.version: r.upload_time for r in releases[case.package]}
            excluded = dict(case_plan.not_for_python)
            for cell in case_plan.cells:
                if cell.id not in excluded:
                    cutoffs, tools_floor = self._cutoffs(cell, uploads.get(cell.version))
                    keys.append(_lock_key(case, cell, cutoffs[0], tools_floor))
        self._ahead.start(keys)

    def _build_in_era(self, builder: Builder, base: BaseImage, case: Case, cell: Cell,
                      uploaded: datetime | None) -> _EraBuild:
        """Find a working era cutoff and build: the first cutoff (in ``era_cutoffs``' order)
        whose lock resolves and whose image builds, else why none did, classified."""
        cutoffs, tools_floor = self._cutoffs(cell, uploaded)
        attempts: list[Attempt] = []
        last_log, last_step = "", "install"
        for cutoff in cutoffs:
            lock = self._ahead.get(_lock_key(case, cell, cutoff, tools_floor))
            if isinstance(lock, ResolveFailure):
                attempts.append(Attempt(cutoff, "resolve failed", lock.detail[-500:]))
                last_log = lock.detail
                continue
            with self.clock.stage("build"):
                built = builder.build(base, lock, case.import_name, cell.id)
            if not built.ok:
                log = without_commands(built.log_excerpt)
                attempts.append(Attempt(cutoff, f"{built.failed_step} failed", log[-500:]))
                last_log, last_step = log, built.failed_step
                continue
            attempts.append(Attempt(cutoff, "ok"))
            return _EraBuild(tuple(attempts), cutoff, lock, built)
        # Interrupted meanwhile (Ctrl-C also kills a resolver's subprocess): no verdict on it.
        engine.check_stopping()
        never_resolved = all(a.result == "resolve failed" for a in attempts)
        failure = classify_build_failure(last_step, len(cutoffs),
                                         last_log if never_resolved else "")
        return _EraBuild(tuple(attempts), failure=failure, failure_log=last_log)

    def _say(self, line: str) -> None:
        self.progress.say(line)


def column_failures(case: Case, records: Sequence[CellRecord]) -> list[str]:
    """One line per Python column whose every cell failed the same way, with the error line
    and what to check (the repro and its requirements, or the case's `import:`)."""
    lines = []
    for python in sorted({r.cell.python for r in records}, key=pythons.sort_key):
        column = [r for r in records if r.cell.python == python]
        error = common_failure((r.status, r.output_excerpt) for r in column)
        if not error:
            continue
        if all(r.status is Status.CANNOT_INSTALL for r in column):
            hint = "check the case's `import:`"  # the image's own import check failed
        elif error.startswith(("ModuleNotFoundError", "ImportError")):
            hint = "check the repro's dependencies (`requirements:` or its PEP 723 block)"
        else:
            hint = "check the repro"
        lines.append(f"{case.id} py{python}: every cell ({len(column)}): {error} — {hint}")
    return lines


def describe_base(image: BaseImage) -> str:
    """One line per column: which provider was taken, and why the others were passed over."""
    if image.available:
        line = (f"{image.provider}: {image.reference} ({image.source}, Python "
                f"{image.interpreter_version or '?'})")
        if image.notes:
            line += f"; noted: {image.notes}"
        if image.passed_over:
            line += "; passed over " + "; ".join(f"{name} ({why})"
                                                 for name, why in image.passed_over)
        return line
    return f"unavailable: {image.unavailable_reason}"


def base_meta(image: BaseImage) -> dict[str, Any]:
    """A column's base in cells.json: where its interpreter came from, and what was passed over."""
    return {"provider": image.provider, "reference": image.reference, "source": image.source,
            "interpreter_version": image.interpreter_version, "suite": image.suite,
            "notes": image.notes, "passed_over": dict(image.passed_over),
            "unavailable_reason": image.unavailable_reason}


def _signature_exit_0_as_passed(record: CellRecord, case: Case) -> bool:
    """A stored "not reproduced" whose output has the signature: recorded before an exit 0 with
    the signature decided nothing, so its outcome is not reused but run again."""
    return (record.status is Status.NOT_REPRODUCED
            and matched_signature(record.output_excerpt, case.outcome.signatures) is not None)


def _record(cell: Cell, result: Classification, base: BaseImage) -> CellRecord:
    return CellRecord(cell=cell, status=result.status, reason=result.reason,
                      base_provider=base.provider, base_source=base.source,
                      interpreter_version=base.interpreter_version, finished_at=_now())


def merge_results(sources: Sequence[Path], results: Path) -> list[str]:
    """Merge shard folders into ``results``: one cells.json per case; refuses mixtures."""
    case_ids = sorted({p.parent.name for source in sources for p in source.glob("*/cells.json")})
    if not case_ids:
        raise UsageError(f"--merge: no cells.json under {', '.join(map(str, sources))}")
    for case_id in case_ids:
        parts = []
        for source in sources:
            path = store.case_dir(source, case_id) / "cells.json"
            if path.exists():
                meta, records = store.read_cells(path)
                parts.append((str(source), meta, records))
        meta, records = merge_records(parts)
        # Into whatever the folder already holds, by the same rules as a run.
        stored_meta, stored = _stored(results, case_id)
        for record in records:
            if store.supersedes(record, stored.get(record.cell.id)):
                stored[record.cell.id] = record
        store.write_cells(results, case_id, store.cell_order(list(stored.values())),
                          store.merge_meta(stored_meta, meta))
    return case_ids


def alert_changes(results: Path, baseline: Path) -> list[str]:
    """What changed in ``results`` against ``baseline``, per case, for a scheduled job."""
    lines: list[str] = []
    now_cases = {p.parent.name for p in results.glob("*/cells.json")}
    for path in sorted(baseline.glob("*/cells.json")):
        if path.parent.name not in now_cases:
            lines.append(f"{path.parent.name}: vanished (in the baseline, not in {results})")
    for path in sorted(results.glob("*/cells.json")):
        case_id = path.parent.name
        _, records = store.read_cells(path)
        before_path = store.case_dir(baseline, case_id) / "cells.json"
        if not before_path.exists():
            lines.append(f"{case_id}: not in the baseline")
            continue
        _, before = store.read_cells(before_path)
        now = json.loads((path.parent / "verdict.json").read_text())
        old_verdict = store.case_dir(baseline, case_id) / "verdict.json"
        old = json.loads(old_verdict.read_text()) if old_verdict.exists() else {}
        lines += compare(case_id, now.get("claim_holds"), old.get("claim_holds"), records,
                         {r.cell.id: r for r in before},
                         (now.get("claim_answer"), old.get("claim_answer"))).lines()
    return lines


def render_results(results: Path, case_ids: Sequence[str] | None = None,
                   on_case: Callable[[str], None] | None = None,
                   find: boundary.Locate | None = None,
                   releases: Callable[[str], Sequence[Release]] | None = None,
                   ) -> list[tuple[str, Verdict]]:
    """Re-derive the verdict of each case in ``case_ids`` (default: all) from its cells.json;
    write verdict.json, osv.json, boundaries.json and matrix.svg per case, then report.md and
    report.html (and the CI step summary, if any), which always cover every case folder in
    ``results``. ``find`` locates released files to explain the boundaries; without it (or
    without the files) what an earlier render stored in boundaries.json is kept. ``releases``
    lists a package's releases on the index, so osv.json can name those inside the tested
    window that were not run; without it (or the index) what osv.json named before is kept."""
    every_case = sorted(p.parent.name for p in results.glob("*/cells.json"))
    if case_ids is None:
        case_ids = every_case
    if not case_ids:
        raise UsageError(f"{results}: no cells.json found", "run `nox -s matrix` first")
    rendered = rendered_cases(results, sorted({*every_case, *case_ids}))
    explained: dict[str, list[boundary.Explained]] = {}
    verdicts = []
    for case_id, meta, records, verdict in rendered:
        if case_id not in case_ids:
            # another case's folder: in the reports, its own files untouched
            explained[case_id] = _stored_boundaries(results, case_id)
            continue
        store.write_verdict(results, case_id, verdict)
        store.write_case_file(results, case_id, "osv.json", osv.dumps(osv.to_osv(
            case_id, meta, records, verdict, _not_run(results, case_id, meta, records,
                                                      releases))))
        explained[case_id] = _explain_boundaries(results, case_id, meta, records, verdict, find)
        store.write_case_file(results, case_id, "matrix.svg",
                              svg.matrix_svg(case_id, records, verdict))
        verdicts.append((case_id, verdict))
        if on_case:
            on_case(case_id)
    store.write_report(results, "report.md", report.render(rendered, explained))
    store.write_report(results, "report.html", html_report.render(rendered, explained))
    store.append_step_summary(report.step_summary(rendered))
    return verdicts


def rendered_cases(results: Path, case_ids: Sequence[str] | None = None) \
        -> list[CaseResult]:
    """Each case's stored cells (default: every case folder) with the verdict derived from
    them."""
    if case_ids is None:
        case_ids = sorted(p.parent.name for p in results.glob("*/cells.json"))
    if not case_ids:
        raise UsageError(f"{results}: no cells.json found", "run `nox -s matrix` first")
    cases: list[CaseResult] = []
    for case_id in case_ids:
        meta, records = store.read_cells(store.case_dir(results, case_id) / "cells.json")
        verdict = derive([Observation(r.cell.python, r.cell.version, r.status) for r in records],
                         claim_from_json(CaseMeta.from_json(meta).claim))
        cases.append(CaseResult(case_id, meta, records, verdict))
    return cases


def _not_run(results: Path, case_id: str, meta: dict[str, Any], records: Sequence[CellRecord],
             releases: Callable[[str], Sequence[Release]] | None) -> dict[str, str] | None:
    """The index's releases inside the case's tested window that have no cell, and why; from
    the index when it answers, else as the case's osv.json named them, else unknown (None)."""
    package = CaseMeta.from_json(meta).package
    if releases is not None and package:
        try:
            return osv.releases_not_run(sorted({r.cell.version for r in records}, key=Version),
                                        releases(package))
        except HarnessError:
            pass  # no index here: what the last export found stands
    try:
        stored = json.loads((store.case_dir(results, case_id) / "osv.json").read_text(
            encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return osv.stored_not_run(stored) if isinstance(stored, dict) else None


def _stored_boundaries(results: Path, case_id: str) -> list[boundary.Explained]:
    path = store.case_dir(results, case_id) / "boundaries.json"
    try:
        return boundary.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def _explain_boundaries(results: Path, case_id: str, meta: dict[str, Any],
                        records: Sequence[CellRecord], verdict: Verdict,
                        find: boundary.Locate | None) -> list[boundary.Explained]:
    explained = boundary.explain_case(meta, records, verdict, find,
                                      _stored_boundaries(results, case_id))
    store.write_atomic(store.case_dir(results, case_id) / "boundaries.json",
                       json.dumps(boundary.to_json(explained), indent=2, ensure_ascii=False)
                       + "\n")
    return explained


def dist_finder(cache_dir: Path, fetch: bool = True,
                index: IndexClient | None = None) -> boundary.DistFinder:
    """Released files from the wheelhouse, or fetched from the index into the cache's
    ``sources`` folder when absent (never the wheelhouse: builds read only their locks' files)."""
    sources = cache_dir / "sources"
    index = index or IndexClient(cache_dir)

    def download(project: str, version: str, prefer_sdist: bool) -> Path | None:
        try:
            release = next((r for r in index.releases(project)
                            if Version(r.version) == Version(version)), None)
        except HarnessError:
            return None  # no index here: the boundary stays unexplained (or as stored)
        if release is None:
            return None
        files = sorted(release.files, key=lambda f: f.filename.endswith(".whl") == prefer_sdist)
        for dist in files:
            try:
                return index.download(dist, sources)
            except HarnessError:
                continue
        return None

    return boundary.DistFinder([cache_dir / "wheelhouse", sources],
                               download if fetch else None)


def index_releases(cache_dir: Path) -> Callable[[str], Sequence[Release]] | None:
    """A package's releases on the index (cached in ``cache_dir``): what osv.json's
    untested-in-window releases are read from when a report is rendered."""
    return IndexClient(cache_dir).releases
