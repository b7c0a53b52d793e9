"""Drive one matrix run: plan → resolve → build → run → classify → store → report."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

from repro_matrix import pythons, store
from repro_matrix.containers import bases, engine
from repro_matrix.containers.build import Builder, without_commands
from repro_matrix.errors import UsageError
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
    claim_to_json,
)
from repro_matrix.report.render import CASE_FILES, REPORTS, case_verdict, render_results
from repro_matrix.resolve.dists import dist_finder
from repro_matrix.resolve.index import IndexClient
from repro_matrix.resolve.lock import ResolveFailure, Resolver, era_cutoffs
from repro_matrix.run import timing
from repro_matrix.run.bisect import bisect_row, bisect_versions
from repro_matrix.run.classify import (
    Classification,
    classify_build_failure,
    classify_declared_incompatible,
    classify_import_broken,
    classify_import_only,
    classify_not_for_python,
    classify_run,
    classify_unavailable,
    import_error_naming,
    is_no_solution,
    matched_signature,
)
from repro_matrix.run.columns import ColumnBases, column_failures, describe_base
from repro_matrix.run.inputs import (
    cell_input_key,
    cell_pins,
    pinned_modules,
    read_repros,
    repro_command,
)
from repro_matrix.run.prefetch import LockKey, LockPrefetch, lock_key
from repro_matrix.run.progress import Progress
from repro_matrix.run.record import CaseRecorder, new_record, now_utc
from repro_matrix.run.shard import ShardSpec, shard_plans
from repro_matrix.spec import plan
from repro_matrix.store import STEP_SUMMARY_ENV
from repro_matrix.verdict.derive import AFFECTED, UNAFFECTED, UNDETERMINED, Verdict
from repro_matrix.verdict.grid import axis_state

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


def make_plan(config: MatrixConfig, selection: plan.Selection,
              index: IndexClient) -> tuple[tuple[plan.CasePlan, ...], dict[str, list[Release]]]:
    cases = plan.select_cases(config.cases, selection.case_ids)
    releases = {name: index.releases(name) for name in plan.packages(cases)}
    return plan.plan(cases, releases, selection), releases


def _upload_days(releases: Sequence[Release], versions: Sequence[str]) -> dict[str, str]:
    wanted = set(versions)
    return {r.version: r.upload_time.date().isoformat() for r in releases
            if r.upload_time and r.version in wanted}


def _display_path(path: Path, root: Path) -> str:
    """``path`` relative to the matrix file's folder when inside it (results are shared)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class RunContext:
    """What every cell of a run shares: the engine, the builder, the base image per Python."""

    engine: engine.ContainerEngine
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


class MatrixRun:
    """One invocation of the matrix: owns the engine, resolver, builder and progress output.

    The package index, the resolver and the engine (``connect``) default to the real ones;
    tests pass fakes to drive the run loop without Docker or a network."""

    def __init__(self, config: MatrixConfig, options: RunOptions,
                 progress: Progress | None = None, *, index: IndexClient | None = None,
                 resolver: Resolver | None = None,
                 connect: Callable[[], engine.ContainerEngine] = engine.connect) -> None:
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
        self.clock = timing.StageClock()
        self._prefetch = LockPrefetch(self.resolver, self.clock)

    def run(self, selection: plan.Selection, bisect: bool | None = None,
            shard: ShardSpec | None = None) -> list[tuple[str, Verdict]]:
        """Run every planned cell (of one shard), or in bisect mode only those a boundary
        search needs: every case with ``bisect`` True, none with False, and with None the
        cases whose matrix entry says so."""
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
        bisected = frozenset(cp.case.id for cp in case_plans if plan.bisects(cp.case, bisect))
        # A bisection needs a few cells, not every lock.
        self._resolve_ahead([cp for cp in case_plans if cp.case.id not in bisected], releases)
        try:
            return self._run_cells(eng, builder, case_plans, releases, repros, bisected,
                                   started)
        finally:
            self._prefetch.stop()
            eng.close()

    def _run_cells(self, eng: engine.ContainerEngine, builder: Builder,
                   case_plans: Sequence[plan.CasePlan], releases: Mapping[str, list[Release]],
                   repros: Mapping[str, Mapping[str, bytes]], bisected: frozenset[str],
                   started: float) -> list[tuple[str, Verdict]]:
        base_images = self._bases(eng, sorted({p for cp in case_plans for p in cp.pythons},
                                               key=pythons.sort_key))
        recorders = [self._recorder(cp, releases, base_images, repros[cp.case.id])
                     for cp in case_plans]
        for recorder in recorders:
            if self.options.start_over:
                self._say(f"--replace: starting {recorder.plan.case.id} over; "
                          f"{recorder.discarded} stored record(s) discarded")
        if self.options.rerun and builder.remembered_failures():
            self._say(f"--rerun: cells whose build failed before are built again (the cache "
                      f"remembers {builder.remembered_failures()} build failure(s))")
        context = RunContext(eng, builder, base_images)
        # (its Python, the task): a bisection per (case, Python), else a task per cell.
        searches: list[tuple[str, Callable[[], None]]] = [
            (python, partial(self._bisect_task, context, recorder, python))
            for recorder in recorders if recorder.plan.case.id in bisected
            for python in recorder.plan.pythons]
        cells: list[tuple[str, Callable[[], None]]] = [
            (cell.python, partial(self._cell_task, context, recorder, cell))
            for recorder in recorders if recorder.plan.case.id not in bisected
            for cell in recorder.plan.cells]
        if cells:
            if not searches:  # a bisection's cell count is known only as it goes
                self.progress.total = len(cells)
            self._say(f"running {len(cells)} cells with {self.options.jobs} job(s)")
        if searches:
            self._say(f"bisecting {len(searches)} (case, Python) pairs "
                      f"({', '.join(sorted(bisected))}) with {self.options.jobs} job(s)")
        tasks = [*searches, *cells]  # the searches first: each runs its probes in sequence
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
        # Nothing to write when every record and the way each case ran are as stored: the
        # files (and the run they name) stay those of the run that found these cells.
        unchanged = all(recorder.unchanged() for recorder in recorders) and _rendered(
            self.options.results, [recorder.plan.case.id for recorder in recorders])
        for recorder in recorders:
            if not unchanged:
                recorder.meta.update(finished_at=now_utc(), wall_time_s=round(wall, 1),
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
        if unchanged:
            self._say(f"done: {self.progress.done} cells, every one unchanged since the last "
                      f"run (not rerun), in {wall:.0f} s; nothing in "
                      f"{self.options.results} rewritten; report: "
                      f"{self.options.results / 'report.md'}")
            return [(r.plan.case.id, case_verdict(r.stored_meta, list(r.records.values())))
                    for r in recorders]
        with self.clock.stage("report"):
            verdicts = render_results(self.options.results,
                                      [c.plan.case.id for c in recorders],
                                      find=dist_finder(self.options.cache_dir, index=self.index),
                                      releases=self.index.releases)
        self._say(timing.describe(self.clock.totals(), self.options.jobs))
        self._say(f"done: {self.progress.done} cells ({len(self._reused)} unchanged since the "
                  f"last run, not rerun) in {wall:.0f} s; report: "
                  f"{self.options.results / 'report.md'}")
        return verdicts

    def _run_as_bases_ready(self, tasks: Sequence[tuple[str, Callable[[], None]]],
                            base_images: ColumnBases) -> None:
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
        context = RunContext(eng, Builder(eng, self.resolver.wheelhouse, self.options.cache_dir),
                       base_images)
        recorder = self._recorder(case_plan, releases, base_images, files)
        recorder.previous = {}  # always run: the author is watching this run's output
        self._say(f"{cells[0].id}: locking, building (an image built before is reused) and "
                  "running; the repro's output follows")
        try:
            return self._cell(context, recorder, cells[0])
        finally:
            eng.close()

    def _bases(self, eng: engine.ContainerEngine, pythons: Sequence[str]) -> ColumnBases:
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

        pool = ThreadPoolExecutor(max_workers=ColumnBases.AT_ONCE, thread_name_prefix="bases")
        futures = {python: pool.submit(one, python) for python in pythons}
        pool.shutdown(wait=False)  # every base is submitted; the pool ends with the last one
        return ColumnBases(futures)

    def _recorder(self, case_plan: plan.CasePlan, all_releases: Mapping[str, Sequence[Release]],
                  base_images: ColumnBases, files: Mapping[str, bytes]) -> CaseRecorder:
        case = case_plan.case
        releases = all_releases[case.package]
        dates = _upload_days(releases, case_plan.versions)
        axis_dates = (_upload_days(all_releases[case.axis.package], case_plan.axis_versions)
                      if case.axis is not None else {})
        meta = CaseMeta(
            case=case.id, package=case.package, description=case.description,
            claim=claim_to_json(case.claim), matrix_digest=self.config.digest,
            started_at=now_utc(),
            repro=(_display_path(case.repro, self.config.path.parent) if case.has_repro
                   else ""),
            requirements=case.requirements,
            repro_path=str(case.repro.resolve()) if case.has_repro else "",
            limits=case.outcome.limits, versions=case_plan.versions,
            pythons=case_plan.pythons,
            plan_cells=tuple(c.id for c in self._full_plans[case.id].cells),
            engine=os.environ.get("DOCKER_HOST", "default"), release_dates=dates,
            command=case.command, env=dict(case.env), folder=case.folder,
            kind=case.outcome.kind, axis_package=case.axis.package if case.axis else "",
            axis_versions=case_plan.axis_versions, axis_release_dates=axis_dates,
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

    def _cell_task(self, context: RunContext, recorder: CaseRecorder, cell: Cell) -> None:
        self.progress.cell_started(cell.id)
        self._finish(recorder, self._cell(context, recorder, cell))

    def _bisect_task(self, context: RunContext, recorder: CaseRecorder, python: str) -> None:
        """Per Python: a boundary search over the package's releases, or, with an axis, one
        along the axis per package release."""
        case = recorder.plan.case
        case_plan = recorder.plan
        if case.axis is not None:
            self._bisect_rows(context, recorder, python)
            return
        for axis_version in case_plan.axis_versions or ("",):
            line = {cell.version: cell for cell in case_plan.cells
                    if cell.python == python and cell.axis_version == axis_version}
            cells = [line[version] for version in case_plan.versions]
            key = python if not axis_version else f"{python}/{cells[0].axis_requirement}"
            self._bisect_line(context, recorder, cells, case.claim.named_versions(), key)

    def _bisect_rows(self, context: RunContext, recorder: CaseRecorder, python: str) -> None:
        """With an axis: per package release (a row, oldest first) a search along the axis
        releases, each row starting from the boundaries of the row before (neighbouring rows
        usually share them). Stored in the case's "bisect" meta under ``python``."""
        case_plan = recorder.plan
        case = case_plan.case
        axis = case.axis.package if case.axis is not None else ""
        cells = {(c.version, c.axis_version): c for c in case_plan.cells if c.python == python}
        if not context.bases[python].available:
            for cell in cells.values():  # every cell unavailable, as in a full run
                self._finish(recorder, self._cell(context, recorder, cell))
            with recorder.mutex:
                recorder.meta.setdefault("bisect", {})[python] = {
                    "along": axis, "cells_run": 0, "rows": {}, "note": "Python unavailable"}
            return
        seeds: list[tuple[str, str]] = []
        rows: dict[str, dict[str, object]] = {}
        run = 0
        for version in case_plan.versions:
            def probe(axis_version: str, version: str = version) -> str:
                cell = cells[(version, axis_version)]
                self.progress.cell_started(cell.id)
                record = self._cell(context, recorder, cell)
                self._finish(recorder, record)
                return axis_state(record.status)

            # Pairs not for this Python are known without a probe: recorded, never searched.
            searched = []
            for axis_version in case_plan.axis_versions:
                if cells[(version, axis_version)].id in recorder.not_for_python:
                    probe(axis_version)
                else:
                    searched.append(axis_version)
            result = bisect_row(searched, probe, seeds)
            seeds = result.boundaries or seeds
            run += result.runs
            rows[version] = {"cells_run": result.runs,
                             "boundaries": [list(pair) for pair in result.boundaries],
                             "non_monotonic": result.non_monotonic, "note": result.note}
        with recorder.mutex:
            recorder.meta.setdefault("bisect", {})[python] = {
                "along": axis, "cells_run": run, "rows": rows}
        self._say(f"bisect {case.id} py{python} along {axis}: {run} of {len(cells)} cells run")

    def _bisect_line(self, context: RunContext, recorder: CaseRecorder, cells: Sequence[Cell],
                     hints: Sequence[str], key: str, along: Callable[[Cell], str] | None = None,
                     ) -> None:
        """A boundary search over ``cells`` (one line of the matrix, oldest first) by the
        version ``along`` reads of each (default: the package's); its summary is stored under
        ``key`` in the case's "bisect" meta."""
        version_of = along or (lambda cell: cell.version)
        by_version = {version_of(cell): cell for cell in cells}
        case = recorder.plan.case
        python = cells[0].python if cells else ""
        if cells and not context.bases[python].available:
            # Nothing to search: every cell of the column is unavailable, as in a full run.
            for cell in cells:
                self._finish(recorder, self._cell(context, recorder, cell))
            with recorder.mutex:
                recorder.meta.setdefault("bisect", {})[key] = {
                    "cells_run": 0, "introduced": None, "fixed": None,
                    "non_monotonic": False, "note": "Python unavailable"}
            return

        def probe(version: str) -> str:
            cell = by_version[version]
            self.progress.cell_started(cell.id)
            record = self._cell(context, recorder, cell)
            self._finish(recorder, record)
            return (AFFECTED if record.status.affected else UNAFFECTED if record.status.unaffected
                    else UNDETERMINED)

        # Releases not for this Python are known without a probe: recorded, never searched.
        searched = []
        for cell in cells:
            if cell.id in recorder.not_for_python:
                probe(version_of(cell))
            else:
                searched.append(version_of(cell))
        result = bisect_versions(tuple(searched), probe, [v for v in hints if v in searched])
        summary = {"cells_run": result.runs, "introduced": result.introduced,
                   "fixed": result.fixed, "non_monotonic": result.non_monotonic,
                   "note": result.note}
        with recorder.mutex:
            recorder.meta.setdefault("bisect", {})[key] = summary
        self._say(f"bisect {case.id} py{key}: {result.runs} cells run, introduced "
                  f"{result.introduced or '-'}, fixed {result.fixed or '-'}"
                  + (f"; {result.note}" if result.note else ""))

    def _cell(self, context: RunContext, recorder: CaseRecorder, cell: Cell) -> CellRecord:
        """Reuse or run one cell: decided by metadata alone, kept from the last run when its
        inputs are unchanged, else run in the image of the first era cutoff that builds."""
        base = context.bases[cell.python]
        case = recorder.plan.case
        excluded = recorder.not_for_python.get(cell.id)
        if excluded:  # decided by metadata alone: nothing to resolve, build or run
            return new_record(cell, classify_not_for_python(excluded), base)
        if not base.available:
            return new_record(cell, classify_unavailable(base.unavailable_reason), base)
        era = self._build_in_era(context.builder, base, case, cell,
                                 recorder.uploads.get(cell.version))
        if era.lock is None or era.image is None:
            assert era.failure is not None
            failed = replace(new_record(cell, era.failure, base), attempts=era.attempts,
                             output_excerpt=era.failure_log[-_EXCERPT_CHARS:])
            # A lock that installed but whose import broke on the pin: what was installed is
            # part of the evidence.
            return _with_lock(failed, era.lock, era.cutoff) if era.lock else failed
        key = cell_input_key(era.image.image_id, case, recorder.files)
        previous = recorder.previous.get(cell.id)
        if previous and previous.input_key == key and not self.options.rerun \
                and not _signature_exit_0_as_passed(previous, case):
            with self._reused_mutex:
                self._reused.add(cell.id)
            # The outcome is kept; the attempts are this run's account of the same cutoffs
            # (from the same remembered builds), so a clearer account replaces an older one.
            return replace(previous, attempts=era.attempts)
        built = replace(new_record(cell, classify_import_only(cell_pins(case, cell)), base),
                        attempts=era.attempts, image_id=era.image.image_id,
                        image_ref=era.image.image_ref, input_key=key)
        if not case.has_repro:  # compatibility mode without a repro: the import check decides
            return _with_lock(built, era.lock, era.cutoff)
        # An engine lost mid-run raises EngineError here: the cell gets no record at all.
        command, workdir = repro_command(case)
        rule = case.outcome
        with self.clock.stage("run"):
            raw = context.engine.run(era.image.image_id, command, recorder.files,
                                   rule.timeout_s, labels={f"{engine.LABEL}.cell": cell.id},
                                   memory=rule.memory, pids=rule.pids, tmpfs=rule.tmpfs,
                                   workdir=workdir, env=dict(case.env),
                                   on_output=self.options.on_output)
        result = classify_run(raw, rule)
        return _with_lock(replace(
            built, status=result.status, reason=result.reason,
            exit_code=raw.exit_code, duration_s=round(raw.duration_s, 3),
            output_excerpt=raw.output[-_EXCERPT_CHARS:]), era.lock, era.cutoff)

    def _cutoffs(self, cell: Cell, uploaded: datetime | None) -> tuple[tuple[str, ...], str]:
        """The era cutoffs to try for ``cell``, in order, and the floor of its tools' cutoff."""
        release_day = date.fromisoformat(dict(self.config.python_release_dates)[cell.python])
        cutoffs = era_cutoffs(uploaded, release_day, self.today, self.config.era)
        return cutoffs, f"{(release_day + timedelta(days=1)).isoformat()}T00:00:00Z"

    def _resolve_only(self, key: LockKey) -> Lock | ResolveFailure:
        """A lock made only to learn whether one exists: its files are not fetched."""
        requirement, python, cutoff, tools_cutoff, extra = key
        with self.clock.stage("resolve"):
            return self.resolver.lock(requirement, python, cutoff, tools_cutoff, extra=extra)

    def _today_cutoff(self) -> str:
        """The end of today: every release the index has now (the declared-requirements
        check)."""
        return f"{(self.today + timedelta(days=1)).isoformat()}T00:00:00Z"

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
                    keys.append(lock_key(case, cell, cutoffs[0], tools_floor))
        self._prefetch.start(keys)

    def _build_in_era(self, builder: Builder, base: BaseImage, case: Case, cell: Cell,
                      uploaded: datetime | None) -> _EraBuild:
        """Find a working era cutoff and build: the first cutoff (in ``era_cutoffs``' order)
        whose lock resolves and whose image builds, else why none did, classified."""
        cutoffs, tools_floor = self._cutoffs(cell, uploaded)
        attempts: list[Attempt] = []
        last_log, last_step = "", "install"
        pins = cell_pins(case, cell)
        declared_checked = False
        for cutoff in cutoffs:
            lock = self._prefetch.get(lock_key(case, cell, cutoff, tools_floor))
            if isinstance(lock, ResolveFailure):
                attempts.append(Attempt(cutoff, "resolve failed", lock.detail[-500:]))
                last_log = lock.detail
                if cell.axis_package and not declared_checked and is_no_solution(lock.detail):
                    # No cutoff can help a pair the declared requirements exclude: with every
                    # release the index has today there is still no solution.
                    declared_checked = True
                    today = self._today_cutoff()
                    latest = lock if today == cutoff else self._resolve_only(
                        lock_key(case, cell, today, tools_floor))
                    if isinstance(latest, ResolveFailure) and is_no_solution(latest.detail):
                        if today != cutoff:
                            attempts.append(Attempt(today, "resolve failed",
                                                    latest.detail[-500:]))
                        return _EraBuild(tuple(attempts),
                                         failure=classify_declared_incompatible(latest.detail),
                                         failure_log=latest.detail)
                continue
            with self.clock.stage("build"):
                built = builder.build(base, lock, case.import_name, cell.id)
            if not built.ok:
                log = without_commands(built.log_excerpt)
                attempts.append(Attempt(cutoff, f"{built.failed_step} failed", log[-500:]))
                last_log, last_step = log, built.failed_step
                error = (import_error_naming(log, pinned_modules(case, cell))
                         if built.failed_step == "import" and pins else "")
                if error:
                    # The pin broke the import: the same pin at another cutoff would too.
                    return _EraBuild(tuple(attempts), cutoff, lock,
                                     failure=classify_import_broken(error, pins,
                                                                    case.outcome.kind),
                                     failure_log=log)
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


def _rendered(results: Path, case_ids: Sequence[str]) -> bool:
    """Whether the files a run renders are there: the reports, and each case's verdict and
    picture (a CI job's summary is rendered in every run: it is the job's, not the folder's)."""
    return (all((results / name).is_file() for name in REPORTS)
            and all((store.case_dir(results, case_id) / name).is_file()
                    for case_id in case_ids for name in CASE_FILES)
            and not os.environ.get(STEP_SUMMARY_ENV))


def _with_lock(record: CellRecord, lock: Lock, cutoff: str) -> CellRecord:
    """``record`` with the lock it installed as evidence: pins, build tools, both cutoffs."""
    return replace(record, lock=tuple(lock.as_text().split("\n")[:-1]),
                   build_lock=tuple(lock.requirement_lines(lock.build).split("\n")[:-1]),
                   cutoff=cutoff, package_cutoffs=lock.package_cutoffs)


def _signature_exit_0_as_passed(record: CellRecord, case: Case) -> bool:
    """A stored "not reproduced" whose output has the signature: recorded before an exit 0 with
    the signature decided nothing, so its outcome is not reused but run again."""
    return (record.status is Status.NOT_REPRODUCED
            and matched_signature(record.output_excerpt, case.outcome.signatures) is not None)
