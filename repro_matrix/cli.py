"""Command line: parse options, run the pipeline, and turn every HarnessError into one line."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

from repro_matrix import store
from repro_matrix.errors import (
    EXIT_CHANGED,
    EXIT_FAIL_ON,
    EXIT_SIGNAL_BASE,
    EXIT_USAGE,
    HarnessError,
    UsageError,
)
from repro_matrix.model import MatrixConfig, Status
from repro_matrix.options import build_parser, split
from repro_matrix.run.shard import parse_shard
from repro_matrix.spec import config, plan

# Paths not typed by the user: relative to the current directory (the repository, under nox).
_DEFAULT_PATHS = {"matrix": Path("matrix.yaml"), "results": Path("results"),
                  "cost_from": Path("results")}


def _conditions(args: argparse.Namespace) -> tuple[str, ...]:
    from repro_matrix.verdict.fail_on import FAIL_ON, parse_fail_on

    conditions = parse_fail_on(args.fail_on)
    unknown = [c for c in conditions if c not in FAIL_ON]
    if unknown:
        raise UsageError(f"--fail-on: unknown condition {unknown[0]!r}",
                         f"choose from {', '.join(FAIL_ON)}")
    return conditions


def _summarize(results: Path, case_ids: Sequence[str] | None, conditions: Sequence[str],
               before: dict[str, object], quiet: bool = False) -> int:
    """Print each case's verdict and claim check; the exit code --fail-on asks for."""
    from repro_matrix.report.markdown import terminal_lines
    from repro_matrix.report.render import rendered_cases
    from repro_matrix.verdict.fail_on import met

    cases = rendered_cases(results, case_ids)
    if not quiet:
        for line in terminal_lines(cases):
            print(line, file=sys.stderr)
    failed = met(conditions, cases, before)
    for line in failed:
        print(f"repro-matrix: --fail-on {', '.join(conditions)}: {line}", file=sys.stderr)
    return EXIT_FAIL_ON if failed else 0


def resolve_paths(args: argparse.Namespace) -> None:
    """Paths the user typed resolve against --invoked-from (the folder they typed them in);
    defaults stay relative to the current directory."""
    base: Path | None = getattr(args, "invoked_from", None)

    def against(path: Path) -> Path:
        path = path.expanduser()
        return path if base is None or path.is_absolute() else base / path

    for name in ("matrix", "results", "cost_from", "cache_dir", "baseline", "from_osv"):
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        if value is None:
            if name in _DEFAULT_PATHS:
                setattr(args, name, _DEFAULT_PATHS[name])
        elif isinstance(value, list):
            setattr(args, name, [against(path) for path in value])
        else:
            setattr(args, name, against(value))
    if getattr(args, "merge", None):
        args.merge = [against(path) for path in args.merge]


def _selection(args: argparse.Namespace) -> plan.Selection:
    return plan.Selection(case_ids=split(args.case), pythons=split(args.python),
                          versions=args.versions, axis_versions=args.axis_versions)


def _run(args: argparse.Namespace) -> int:
    from repro_matrix.containers import engine
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.resolve.index import IndexClient
    from repro_matrix.run.inputs import read_repros
    from repro_matrix.run.loop import MatrixRun, RunOptions
    from repro_matrix.run.progress import Progress, choose_mode
    from repro_matrix.verdict.fail_on import stored_verdicts

    if args.jobs < 1:
        raise UsageError("--jobs: must be at least 1")
    if args.quiet and args.verbose:
        raise UsageError("--quiet and --verbose: choose one")
    shard = parse_shard(args.shard) if args.shard else None
    conditions = _conditions(args)
    if args.replace and (args.shard or args.engines):
        raise UsageError("--replace with --shard/--engines: a shard holds part of a run; "
                         "replace into an empty --results folder instead")
    if args.engines:
        with _writer(args.results, args):
            return _run_on_engines(args)
    matrix = config.load(args.matrix)
    selection = _selection(args)
    _check_selection(matrix, selection)
    if args.shard:
        _check_no_bisection(matrix, selection, args.bisect, "--shard")
    read_repros(plan.select_cases(matrix.cases, selection.case_ids))  # a syntax error: exit 2
    options = RunOptions(results=args.results, cache_dir=args.cache_dir or default_cache_dir(),
                         jobs=args.jobs, provider=args.provider, rerun=args.rerun,
                         cost_from=args.cost_from, start_over=args.replace)
    # A second writer stops at once; then, before any download or build: the folder takes
    # files, the engine answers, and the index knows the cases.
    with _writer(args.results, args):
        store.check_writable(args.results)
        engine.connect()
        config.check_against_index(matrix, IndexClient(options.cache_dir).releases, selection)
        before = stored_verdicts(args.results)
        progress = Progress(sys.stderr, choose_mode(sys.stderr, args.quiet, args.verbose))
        verdicts = MatrixRun(matrix, options, progress).run(selection, bisect=args.bisect,
                                                            shard=shard)
    return _summarize(args.results, [case_id for case_id, _ in verdicts], conditions, before,
                      args.quiet)


@contextmanager
def _writer(results: Path, args: argparse.Namespace) -> Iterator[None]:
    """This process is the results folder's only writer while the body runs."""
    from repro_matrix.run import results_lock

    command = "repro-matrix " + shlex.join(args.argv)
    with results_lock.hold(results, command, lambda line: print(line, file=sys.stderr)):
        yield


def _check_selection(matrix: MatrixConfig, selection: plan.Selection) -> None:
    """The options that need no index: --case, --python and the form of --versions."""
    for case in plan.select_cases(matrix.cases, selection.case_ids):
        plan.select_pythons(case, selection.pythons)
    plan.parse_version_request(selection.versions)
    plan.parse_version_request(selection.axis_versions, "--axis-versions")
    if selection.axis_versions:
        for case in plan.select_cases(matrix.cases, selection.case_ids):
            if case.axis is None and selection.case_ids:
                raise UsageError(f"--axis-versions: case {case.id} has no axis",
                                 "give the case an `axis:` in the matrix file, or leave the "
                                 "option out")


def _check_no_bisection(matrix: MatrixConfig, selection: plan.Selection,
                        requested: bool | None, option: str) -> None:
    """A shard holds a slice of a case's cells; a bisection needs all of a Python's."""
    bisected = [case.id for case in plan.select_cases(matrix.cases, selection.case_ids)
                if plan.bisects(case, requested)]
    if requested:
        raise UsageError(f"{option} and --bisect: a bisection needs every version of a "
                         "Python; choose one")
    if bisected:
        raise UsageError(f"{option}: case {', '.join(bisected)} bisects (`bisect: true` in the "
                         "matrix file), and a bisection needs every version of a Python",
                         "add --no-bisect to run its every cell, or leave it out with --case")


def _run_on_engines(args: argparse.Namespace) -> int:
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.report.render import render_results
    from repro_matrix.resolve.dists import dist_finder, index_releases
    from repro_matrix.run.fanout import parse_engines, run_on_engines
    from repro_matrix.run.shard import merge_results

    if args.shard:
        raise UsageError("--engines shards the run itself; drop --shard")
    _check_no_bisection(config.load(args.matrix), _selection(args), args.bisect, "--engines")
    from repro_matrix.verdict.fail_on import stored_verdicts

    conditions = _conditions(args)
    before = stored_verdicts(args.results)
    engines = parse_engines(args.engines)
    folders = run_on_engines(args.argv, engines, args.results / ".shards")
    merge_results(folders, args.results)
    cache_dir = args.cache_dir or default_cache_dir()
    render_results(args.results, find=dist_finder(cache_dir),
                   releases=index_releases(cache_dir))
    print(f"merged {len(folders)} engine shards into {args.results}", file=sys.stderr)
    return _summarize(args.results, None, conditions, before, args.quiet)


def _new(args: argparse.Namespace) -> int:
    if args.from_osv:
        given = [flag for flag, value in (("--axis", args.axis), ("--versions", args.versions),
                                          ("--axis-versions", args.axis_versions),
                                          ("--requirements", args.requirements),
                                          ("--signature", args.signature)) if value]
        if given:  # the record chooses the window and leaves the signature to the author
            raise UsageError(f"new: {given[0]} does not go with --from-osv",
                             "scaffold from the record, then edit the case in the matrix file")
        return _new_from_osv(args)
    if not args.package:
        raise UsageError("new: --package is required (or --from-osv RECORD)",
                         "e.g. `repro-matrix new mypkg-123 --package mypkg`")
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.spec.scaffold import (
        DEFAULT_PYTHONS,
        CaseDraft,
        check_draft,
        learn_module,
        write_case,
    )

    draft = CaseDraft(case_id=args.id, package=args.package, import_name=args.import_name,
                      description=args.description,
                      pythons=split(args.python) or DEFAULT_PYTHONS,
                      spec=args.versions.strip(), axis=args.axis.strip(),
                      axis_spec=args.axis_versions.strip(),
                      requirements=tuple(r.strip() for r in args.requirements),
                      signatures=tuple(args.signature))
    check_draft(draft)  # a bad id or name stops here, before the index is asked
    if not draft.import_name:
        module, note = learn_module(draft.package, default_cache_dir())
        draft = replace(draft, import_name=module)
        print(note, file=sys.stderr)
    made = write_case(draft, args.matrix)
    verb = "created" if made.created_matrix else "appended to"
    print(f"case {draft.case_id}: {verb} {made.matrix}; repro skeleton {made.repro}",
          file=sys.stderr)
    write = "works()" if draft.axis else "reproduces()"
    narrow = "" if draft.spec else ", set versions.spec"
    pair = " --axis-version A" if draft.axis else ""
    print(f"next: write {write} in {made.repro}{narrow}, then "
          f"`repro-matrix try --case {draft.case_id} --python 3.11 --version V{pair}`",
          file=sys.stderr)
    return 0


def _try(args: argparse.Namespace) -> int:
    import tempfile

    from repro_matrix.containers import engine
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.report.vocabulary import SYMBOLS
    from repro_matrix.resolve.index import IndexClient
    from repro_matrix.run.inputs import read_repros
    from repro_matrix.run.loop import MatrixRun, RunOptions
    from repro_matrix.run.progress import Progress

    matrix = config.load(args.matrix)
    case_ids = (args.case,) if args.case else tuple(c.id for c in matrix.cases)
    if len(case_ids) != 1:
        raise UsageError(f"{args.matrix} has {len(case_ids)} cases", "choose one with --case")
    selection = plan.Selection(case_ids=case_ids, pythons=split([args.python]),
                               versions=args.release, axis_versions=args.axis_release)
    if len(selection.pythons) != 1 or "," in args.release or "," in args.axis_release:
        raise UsageError("try: one --python and one --version", "e.g. --python 3.11 "
                         "--version 1.0.2")
    (case,) = plan.select_cases(matrix.cases, case_ids)
    if (case.axis is not None) != bool(args.axis_release):
        raise UsageError(f"try: case {case.id} has an axis: name one of its releases with "
                         "--axis-version" if case.axis else
                         f"try: --axis-version: case {case.id} has no axis")
    with _named_as_try_version(case_ids[0]):
        _check_selection(matrix, selection)
    read_repros(plan.select_cases(matrix.cases, case_ids))  # a syntax error: exit 2, no engine
    cache_dir = args.cache_dir or default_cache_dir()
    engine.connect()
    index = IndexClient(cache_dir)
    with _named_as_try_version(case_ids[0]):
        config.check_against_index(matrix, index.releases, selection)
        (case,) = plan.select_cases(matrix.cases, case_ids)
        plan.select_versions(case, index.releases(case.package), selection.versions)

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    with tempfile.TemporaryDirectory(prefix="repro-matrix-try-") as scratch:
        options = RunOptions(results=Path(scratch), cache_dir=cache_dir, jobs=1,
                             provider=args.provider, rerun=True, on_output=show)
        record = MatrixRun(matrix, options, Progress(sys.stderr)).try_cell(selection)
    status = record.status
    print(f"{record.cell.id}: {SYMBOLS[status]} {status.value.replace('_', ' ')} "
          f"({record.reason}); nothing written to the results", file=sys.stderr)
    if status is Status.SIGNATURE_EXIT_0:
        # The author is here to see it: a run would count this cell as deciding nothing.
        print(f"repro-matrix: warning: {SYMBOLS[status]} the repro printed the failure "
              "signature but exited 0, so this cell decides nothing: check the repro's exit "
              "code (exit 1 when the bug shows, e.g. sys.exit(1))", file=sys.stderr)
    if status is Status.CANNOT_INSTALL and record.output_excerpt:
        print(record.output_excerpt[-2000:], file=sys.stderr)  # the build's log: not streamed
    return 0


@contextmanager
def _named_as_try_version(case_id: str) -> Iterator[None]:
    """`try` passes its one --version as the selection's versions: an error about them names
    the option the user typed."""
    try:
        yield
    except UsageError as exc:
        if not exc.message.startswith("--versions: "):
            raise
        raise UsageError("try --version: " + exc.message.removeprefix("--versions: "),
                         exc.hint or f"`repro-matrix plan --case {case_id}` lists the case's "
                         "releases") from None


def _plan(args: argparse.Namespace) -> int:
    import json

    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.resolve.index import IndexClient
    from repro_matrix.run.loop import make_plan
    from repro_matrix.run.shard import shard_matrix

    matrix = config.load(args.matrix)
    selection = _selection(args)
    index = IndexClient(default_cache_dir())
    config.check_against_index(matrix, index.releases, selection)
    case_plans, _ = make_plan(matrix, selection, index)
    if args.shards < 0:
        raise UsageError("--shards: must be at least 1")
    shards = shard_matrix(case_plans, args.shards, args.cost_from) if args.shards else []
    if args.json:
        payload: dict[str, object] = {
            "cases": {cp.case.id: [c.id for c in cp.cells] for cp in case_plans}}
        if shards:
            payload["matrix"] = {"include": shards}
        print(json.dumps(payload, indent=2))
        return 0
    for entry in shards:
        print(f"shard {entry['shard']}: {entry['cells']} cells, ~{entry['expected_s']:.0f} s")
    for cp in case_plans:
        axis = (f" × {len(cp.axis_versions)} {cp.case.axis.package} releases"
                if cp.case.axis is not None else "")
        bisected = (" (bisect: true, so a run bisects them and runs only the cells its "
                    "search needs)" if cp.case.bisect else "")
        print(f"{cp.case.id}: {len(cp.versions)} versions{axis} × {len(cp.pythons)} Pythons = "
              f"{len(cp.cells)} cells{bisected}")
        print(f"  Pythons: {', '.join(cp.pythons)}")
        print(f"  versions: {', '.join(cp.versions)}")
        if cp.case.axis is not None:
            print(f"  {cp.case.axis.package} (axis): {', '.join(cp.axis_versions)}")
        if cp.not_for_python:
            print(f"  not for their Python (requires-python; nothing built): "
                  f"{', '.join(cell_id for cell_id, _ in cp.not_for_python)}")
    return 0


def _new_from_osv(args: argparse.Namespace) -> int:
    from packaging.version import Version

    from repro_matrix.advisories import read as advisory
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.resolve.index import IndexClient
    from repro_matrix.spec.scaffold import learn_module, scaffold_from_osv

    if not config.CASE_ID.match(args.id):
        raise UsageError(f"new: '{args.id}' is not a case id",
                         "use lowercase letters, digits, '.', '_' and '-'")
    record = advisory.read_record(args.from_osv)
    package = advisory.choose_package(record, args.package, str(args.from_osv))
    releases = [r.version for r in IndexClient(default_cache_dir()).releases(package)
                if not r.yanked and not Version(r.version).is_prerelease]
    module = args.import_name
    if not module:
        module, note = learn_module(package, default_cache_dir())
        print(note, file=sys.stderr)
    written = scaffold_from_osv(args.from_osv, args.id, args.matrix, releases, package,
                                split(args.python) or ("3.9", "3.11", "3.13"), module)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    print(f"next: write the repro in {written[1]} and its signature in {args.matrix}, then "
          f"`repro-matrix run --case {args.id}`", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.report.render import render_results
    from repro_matrix.resolve.dists import dist_finder, index_releases
    from repro_matrix.run.shard import merge_results
    from repro_matrix.verdict.baseline import alert_changes
    from repro_matrix.verdict.fail_on import stored_verdicts

    conditions = _conditions(args)
    before = stored_verdicts(args.results)
    with _writer(args.results, args):
        if args.merge:
            merged = merge_results(args.merge, args.results)
            print(f"merged {len(args.merge)} shard folders: {', '.join(merged)}",
                  file=sys.stderr)
        render_results(args.results, on_case=lambda case: print(f"rendered {case}",
                                                                file=sys.stderr),
                       find=dist_finder(default_cache_dir()),
                       releases=index_releases(default_cache_dir()))
    print(f"report: {args.results / 'report.md'}", file=sys.stderr)
    code = _summarize(args.results, None, conditions, before)
    if args.baseline:
        changes = alert_changes(args.results, args.baseline)
        for line in changes:
            print(f"changed: {line}", file=sys.stderr)
        if changes:
            return EXIT_CHANGED
        print(f"no change against {args.baseline}", file=sys.stderr)
    return code


def _cache(args: argparse.Namespace) -> int:
    from repro_matrix.containers import cache
    from repro_matrix.containers.cache import default_cache_dir

    kinds = split(args.kind) or cache.KINDS
    unknown = [kind for kind in kinds if kind not in cache.KINDS]
    if unknown:
        raise UsageError(f"--kind: unknown kind {', '.join(unknown)}",
                         f"choose from {', '.join(cache.KINDS)}")
    cache_dir = args.cache_dir or default_cache_dir()
    results = args.results or [Path("results")]
    if args.action == "show":
        for line in cache.show(cache_dir, kinds):
            print(line)
        return 0
    for line in cache.clean(cache_dir, kinds, results, split(args.case)):
        print(line)
    return 0


class _Signals:
    """SIGINT and SIGTERM both unwind the run like Ctrl-C: the containers of this process are
    removed at once (in a thread, so the main thread unwinds meanwhile), cells in flight are not
    recorded, finished ones stay in cells.json."""

    def __init__(self) -> None:
        self.received: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            # Not imported: no containers either.
            running = sys.modules.get("repro_matrix.containers.engine")
            if running is not None:
                threading.Thread(target=running.stop_all, name="stop-containers").start()
        raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT,
                                                                     signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    signals = _Signals()
    try:
        with signals.installed():
            args = build_parser().parse_args(argv)
            args.argv = list(sys.argv[1:] if argv is None else argv)
            resolve_paths(args)
            command = {"run": _run, "plan": _plan, "report": _report, "cache": _cache,
                       "new": _new, "try": _try}[args.command]
            return command(args)
    except HarnessError as exc:
        print(f"repro-matrix: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        signum = signals.received or signal.SIGINT
        print(f"repro-matrix: interrupted ({signal.Signals(signum).name}); finished cells are "
              "kept in the results folder, run the same command again to finish",
              file=sys.stderr)
        return EXIT_SIGNAL_BASE + signum  # 130 after SIGINT, 143 after SIGTERM
    except OSError as exc:  # a file the harness reads or writes (cache, results, repro)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"repro-matrix: error: {where}{exc.strerror or exc}; free space or fix the path "
              "or its permissions, then run the same command again", file=sys.stderr)
        return EXIT_USAGE
