"""The command line's parser: every subcommand, and each shared option declared once."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_matrix import __version__
from repro_matrix.errors import UsageError
from repro_matrix.spec import config


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: `--engine a,b` would be taken for --engines, and options the
        # harness strips or adds by their exact name (a shard's command line) would slip by.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", "see --help")


def split(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for value in values or () for part in value.split(",")
                 if part.strip())


@dataclass(frozen=True)
class _Option:
    """One option, declared once and attached to every subcommand that takes it."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any]

    def add_to(self, parser: argparse.ArgumentParser, **changes: Any) -> None:
        parser.add_argument(*self.flags, **{**self.settings, **changes})


_CACHE_DIR_HELP = "(default: $REPRO_MATRIX_CACHE or ~/.cache/repro-matrix)"

# The options more than one subcommand takes (nox's `_option_set` style); an option of one
# subcommand only is declared where that subcommand is built.
_OPTIONS = {
    "matrix": _Option(("--matrix",), dict(type=Path, default=Path("matrix.yaml"),
                                           help="matrix file (default: matrix.yaml)")),
    "case": _Option(("--case",), dict(action="append", help="only this case id (repeatable)")),
    "python": _Option(("--python",), dict(action="append", help="only these Pythons, e.g. "
                                          "3.9,3.11 (repeatable)")),
    "versions": _Option(("--versions",), dict(default="", help="a PEP 440 specifier "
                                              "('>=1.0,<1.2') or exact versions ('1.0.2,1.0.3')")),
    "axis_versions": _Option(("--axis-versions",), dict(
        default="", help="the same for a case's axis (the dependency its `axis:` names)")),
    "results": _Option(("--results",), dict(type=Path,
                                            help="results folder (default: results)")),
    "invoked_from": _Option(("--invoked-from",), dict(
        type=Path, metavar="DIR", help="resolve relative paths given on the command line "
        "against DIR (nox passes the folder it was started in)")),
    "provider": _Option(("--provider",), dict(
        choices=config.PROVIDERS, help="base image provider (default: the matrix file's, "
        "else auto)")),
    "cost_from": _Option(("--cost-from",), dict(
        type=Path, help="earlier results whose durations balance shards (default: results)")),
    "cache_dir": _Option(("--cache-dir",), dict(
        type=Path, help=f"locks, wheelhouse and index cache {_CACHE_DIR_HELP}")),
    "fail_on": _Option(("--fail-on",), dict(
        action="append", default=[], metavar="WHAT",
        help="exit 6 when a case's claim is refuted, a cell reproduced the bug, or a verdict "
             "changed since the last results: refuted|reproduced|changed (comma-separated or "
             "repeated)")),
}
# What a run or plan covers.
_SELECTION = ("matrix", "case", "python", "versions", "axis_versions", "results")


def _options(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        _OPTIONS[name].add_to(parser)


def build_parser() -> argparse.ArgumentParser:
    # The console script's name, also under `python -m repro_matrix` (nox's sessions run that).
    parser = _Parser(prog="repro-matrix", description=(
        "Run a reproduction across Python and package versions in real containers and render "
        "a compatibility table with a verdict."))
    parser.add_argument("--version", action="version", version=f"repro-matrix {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run the matrix and write results and the report")
    _options(run, *_SELECTION, "invoked_from")
    # Twice the cores: a cell's container spends part of its life waiting on the engine
    # (create, start, exit, remove), and another cell's repro can use the core meanwhile.
    run.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1),
                     help="cells built and run in parallel (default: twice the cores)")
    _options(run, "provider")
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="one line per finished cell even on a terminal")
    run.add_argument("--engines", help="spread the run over these Docker engines (comma-"
                     "separated endpoints or context names): shard i runs on engine i")
    run.add_argument("--bisect", action=argparse.BooleanOptionalAction, default=None,
                     help="per Python, run only the cells needed to find where the bug starts "
                          "and stops (logarithmic), then confirm the boundaries; --no-bisect "
                          "runs every cell (default: bisect the cases whose matrix entry says "
                          "`bisect: true`)")
    run.add_argument("--shard", help="run only shard K of N (K/N): a deterministic slice "
                     "balanced by expected cost; cells that share an image stay together")
    _options(run, "cost_from")
    run.add_argument("--rerun", action="store_true",
                     help="run every cell again, even those whose inputs did not change, and "
                          "retry remembered build failures")
    run.add_argument("--replace", action="store_true",
                     help="discard the stored records of the cases run and start over "
                          "(default: merge this run into them)")
    _options(run, "cache_dir", "fail_on")

    show = commands.add_parser("plan", help="print the cells a run would execute")
    _options(show, *_SELECTION, "invoked_from")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--shards", type=int, default=0,
                      help="also split into N shards (the CI job matrix under 'matrix')")
    _options(show, "cost_from")

    new = commands.add_parser("new", help="scaffold a case: an entry appended to the matrix "
                              "file and a repro skeleton in cases/ID/")
    new.add_argument("id", help="the case id (lowercase letters, digits, '.', '_', '-')")
    new.add_argument("--package", help="the project name on the index (required unless "
                     "--from-osv names exactly one)")
    new.add_argument("--from-osv", type=Path, metavar="RECORD",
                     help="a published OSV record (JSON): its ranges become the claim and the "
                          "version window is chosen around its bounds")
    new.add_argument("--import", dest="import_name", default="",
                     help="the module the cell imports (default: read from the wheel of the "
                          "package's newest release, else the package name)")
    new.add_argument("--description", default="", help="the bug in one line")
    _OPTIONS["versions"].add_to(new, help="the releases to test: versions.spec, a PEP 440 "
                                "specifier such as '>=2.0' (default: every release)")
    new.add_argument("--axis", metavar="PACKAGE", default="",
                     help="a dependency whose releases form a second axis: the case asks "
                          "whether each pair works (outcome.kind: compatibility)")
    _OPTIONS["axis_versions"].add_to(new, help="the axis releases to test: a PEP 440 "
                                     "specifier (default: every release)")
    new.add_argument("--requirements", action="append", metavar="REQ", default=[],
                     help="a requirement the repro needs besides the package, PEP 508 "
                          "(repeatable: one requirement per option)")
    new.add_argument("--signature", action="append", metavar="TEXT", default=[],
                     help="text the repro prints when the bug shows (repeatable; default "
                          "'BUG: ID reproduced'; with --axis none is needed)")
    _OPTIONS["matrix"].add_to(new, help="matrix file to append to, created when missing "
                              "(default: matrix.yaml)")
    _OPTIONS["python"].add_to(new, help="the case's Pythons, e.g. 3.9,3.11 (default: 3.9, "
                              "3.11, 3.13)")
    _options(new, "invoked_from")

    attempt = commands.add_parser("try", help="build one cell and run its repro with the "
                                  "output shown live; writes no results")
    _options(attempt, "matrix")
    # One cell: one case, one Python and one release (not the lists a run takes).
    _OPTIONS["case"].add_to(attempt, action=None,
                            help="the case id (default: the matrix file's only case)")
    _OPTIONS["python"].add_to(attempt, action=None, required=True,
                              help="one Python, e.g. 3.11")
    attempt.add_argument("--version", dest="release", required=True,
                         help="one release of the case's package, e.g. 1.0.2")
    attempt.add_argument("--axis-version", dest="axis_release", default="",
                         help="one release of the case's axis package (required when the case "
                              "has an axis), e.g. 3.0.1")
    _options(attempt, "provider", "cache_dir")

    rep = commands.add_parser("report", help="re-render verdicts and report.md from results")
    rep.add_argument("--merge", type=Path, nargs="+", metavar="DIR",
                     help="combine these shard results folders into --results first")
    rep.add_argument("--baseline", type=Path, metavar="DIR",
                     help="an earlier results folder: report what changed; exit 5 when a "
                          "claim check or a decisive cell changed")
    _options(rep, "results", "fail_on", "invoked_from")

    cache = commands.add_parser("cache", help="show the cache's sizes by kind, or clean it")
    cache.add_argument("action", nargs="?", choices=("show", "clean"), default="show",
                       help="show sizes by kind (default), or clean: clear the kinds chosen "
                            "and remove images no stored record references")
    cache.add_argument("--kind", action="append", metavar="KIND",
                       help="only these kinds (comma-separated, repeatable): "
                            f"{', '.join(_cache_kinds())} (default: all)")
    _OPTIONS["results"].add_to(cache, nargs="+", metavar="DIR", help="results folders whose "
                               "records keep their images (default: results)")
    _OPTIONS["case"].add_to(cache, help="images: only those built for this case id "
                            "(repeatable)")
    _OPTIONS["cache_dir"].add_to(cache, help=f"the cache {_CACHE_DIR_HELP}")
    _options(cache, "invoked_from")
    return parser


def _cache_kinds() -> tuple[str, ...]:
    from repro_matrix.containers.cache import KINDS

    return KINDS
