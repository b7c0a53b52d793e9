"""Author mode: scaffold a case (an entry appended to the matrix file and a repro skeleton),
from options or from a published OSV record."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version

from repro_matrix import atomic, pythons
from repro_matrix.advisories import read as advisory
from repro_matrix.errors import HarnessError, UsageError, unwritable_results
from repro_matrix.model import OSV_ZERO, ClaimRange, DistFile
from repro_matrix.resolve.index import IndexClient

CASE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")  # the same rule the matrix file's loader applies
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_PYTHONS = ("3.9", "3.11", "3.13")
_TOP_LEVEL_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


@dataclass(frozen=True)
class CaseDraft:
    """What a new case starts from; `new` fills it from options (another source, such as an
    advisory, may fill more of it)."""

    case_id: str
    package: str
    import_name: str = ""
    description: str = ""
    spec: str = ""
    pythons: tuple[str, ...] = DEFAULT_PYTHONS
    first_fixed: str = ""
    introduced: str = ""
    claim_source: str = ""

    @property
    def signature(self) -> str:
        return f"BUG: {self.case_id} reproduced"

    @property
    def module(self) -> str:
        return self.import_name or guessed_module(self.package)


def guessed_module(package: str) -> str:
    """The project name as a module name: what `new` falls back to without a wheel to read."""
    return canonicalize_name(package).replace("-", "_")


# Folders some wheels install at the top level that are never the package's own import.
_NOT_THE_PACKAGE = {"tests", "test", "testing", "docs", "doc", "examples", "benchmarks"}
_MODULE_SUFFIXES = (".py", ".so", ".pyd")


def _top_level_of(paths: Sequence[str]) -> list[str]:
    """Importable top-level names among a wheel's file paths: packages (folders with Python or
    extension modules) and single-file modules, never its .dist-info or .data folders."""
    found: dict[str, None] = {}
    for path in paths:
        parts = path.split("/")
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(_MODULE_SUFFIXES):
                name = first.split(".", 1)[0]
                if name.isidentifier():
                    found[name] = None
        elif (first.isidentifier() and first != "__pycache__"
              and path.endswith(_MODULE_SUFFIXES)):
            found[first] = None
    return list(found)


def wheel_top_level(wheel: Path) -> list[str]:
    """The top-level import names a wheel installs: its top_level.txt when it has one, else
    the top-level packages and modules its RECORD lists (else its file names)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = [n for n in names if n.count("/") == 1
                and n.split("/", 1)[0].endswith(".dist-info")]
        listed = next((n for n in info if n.endswith("/top_level.txt")), None)
        if listed:
            top = [line.strip().split("/", 1)[0] for line in
                   archive.read(listed).decode("utf-8", "replace").splitlines()]
            found = list(dict.fromkeys(t for t in top if t.isidentifier()))
            if found:
                return found
        record = next((n for n in info if n.endswith("/RECORD")), None)
        if record:
            names = [row.split(",", 1)[0] for row in
                     archive.read(record).decode("utf-8", "replace").splitlines() if row]
    return _top_level_of(names)


def choose_module(package: str, names: Sequence[str]) -> str | None:
    """The one of a wheel's top-level names a repro imports: the project's own name, else one
    its name contains (python-dateutil: dateutil, PyYAML: yaml), else the first; private
    (``_yaml``) and test folders only when nothing else is there."""
    public = [n for n in names if not n.startswith("_") and n.lower() not in _NOT_THE_PACKAGE]
    candidates = public or list(names)
    if not candidates:
        return None
    plain = re.sub(r"[^a-z0-9]", "", package.lower())
    for name in candidates:
        if name.lower().replace("_", "") == plain:
            return name
    inside = [n for n in candidates if n.lower().replace("_", "") in plain]
    return max(inside, key=len) if inside else candidates[0]


def _newest_wheel(index: IndexClient, package: str) -> DistFile | None:
    """A wheel of the package's newest final, non-yanked release that has one (a pure-Python
    wheel when there is one: smaller, and the same names)."""
    for release in sorted(index.releases(package), key=lambda r: Version(r.version),
                          reverse=True):
        if release.yanked or Version(release.version).is_prerelease:
            continue
        wheels = [f for f in release.files if f.filename.endswith(".whl") and not f.yanked]
        if wheels:
            return min(wheels, key=lambda f: not f.filename.endswith("-none-any.whl"))
    return None


def learn_module(package: str, cache_dir: Path,
                 index: IndexClient | None = None) -> tuple[str, str]:
    """The module a repro of ``package`` imports, read from the wheel of its newest release
    (fetched into the cache's ``sources`` folder), and a note on where it came from; the project
    name as a module name, with a note saying so, when there is no wheel or no index."""
    fallback = guessed_module(package)
    client = index or IndexClient(cache_dir)
    try:
        dist = _newest_wheel(client, package)
        if dist is None:
            return fallback, (f"import: {fallback} (the project name: no wheel of {package} on "
                              "the index to read it from; check it, or pass --import)")
        names = wheel_top_level(client.download(dist, cache_dir / "sources"))
    except (HarnessError, zipfile.BadZipFile) as exc:
        why = exc.message if isinstance(exc, HarnessError) else f"a broken wheel: {exc}"
        return fallback, (f"import: {fallback} (the project name: could not read a wheel of "
                          f"{package}: {why}; check it, or pass --import)")
    module = choose_module(package, names)
    if module is None:
        return fallback, (f"import: {fallback} (the project name: {dist.filename} names no "
                          "top-level module; check it, or pass --import)")
    others = [n for n in names if n != module]
    return module, (f"import: {module} (from {dist.filename}"
                    + (f"; it also installs {', '.join(others)}" if others else "")
                    + "; pass --import to choose another)")


@dataclass(frozen=True)
class Scaffolded:
    matrix: Path
    repro: Path
    created_matrix: bool


def check_draft(draft: CaseDraft) -> None:
    """The case id and project name a matrix file accepts (one line, exit 2, otherwise)."""
    if not CASE_ID.match(draft.case_id):
        raise UsageError(f"case id '{draft.case_id}': use lowercase letters, digits, '.', '_' "
                         "and '-'")
    if not PROJECT_NAME.match(draft.package):
        raise UsageError(f"--package: '{draft.package}' is not a valid project name")
    for python in draft.pythons:
        if not pythons.is_feature_version(python):
            raise UsageError(f"--python: '{python}' is not a Python version spelled X.Y")


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def case_entry(draft: CaseDraft, repro: str) -> str:
    """The YAML text of one `cases:` item, indented as a list item of the matrix file."""
    columns = ", ".join(_quoted(p) for p in draft.pythons)
    lines = [
        f"  - id: {draft.case_id}",
        f"    description: {_quoted(draft.description or 'TODO: the bug in one line')}",
        f"    package: {draft.package}",
        f"    import: {draft.module}",
        "    versions:",
        f"      spec: {_quoted(draft.spec)}" if draft.spec else
        '      spec: ">=0"                # every release; narrow it (PEP 440)',
        f"    pythons: [{columns}]",
        f"    repro: {repro}",
        "    outcome:",
        f"      signature: {_quoted(draft.signature)}   # printed by the repro when the bug shows",
        "      timeout: 60",
    ]
    claim = [f"      {key}: {_quoted(value)}" for key, value in (
        ("first_fixed", draft.first_fixed), ("introduced", draft.introduced),
        ("source", draft.claim_source)) if value]
    if claim:
        lines += ["    claim:", *claim]
    else:
        lines += ["    # claim:                   # what a changelog or an issue says",
                  '    #   first_fixed: "X.Y.Z"',
                  '    #   source: "where the claim comes from"']
    return "\n".join(lines) + "\n"


def repro_skeleton(draft: CaseDraft) -> str:
    """A repro script following the exit-code convention, with a PEP 723 block."""
    return f'''# /// script
# dependencies = []   # other packages the repro needs (PEP 508), locked in the cell's era
# ///
"""{draft.case_id}: {draft.description or "TODO: the bug in one line"}

Runs inside one cell (one Python, one {draft.package} release, no network). Exit codes:
  0    the bug does not show
  1    the bug shows (print SIGNATURE, the case's outcome.signature)
  125  this release cannot tell (for example the API the test needs does not exist yet)
Anything else (an uncaught exception, a crash) is an "other failure", never the bug.
"""

import sys

import {draft.module}

SIGNATURE = {_quoted(draft.signature)}


def reproduces():
    """True when the bug shows, False when it does not, None when this release cannot tell."""
    # TODO: exercise {draft.module} here, for example:
    #   return {draft.module}.some_call(...) != expected
    return None


def main():
    shown = reproduces()
    if shown is None:
        print("cannot tell: the reproduction is not written yet")
        return 125
    if shown:
        print(SIGNATURE)
        return 1
    print("not reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def insert_case(matrix_text: str, entry: str, path: Path) -> str:
    """``matrix_text`` with ``entry`` added at the end of its `cases:` list, every other line
    (comments included) unchanged; a file without `cases:` gets one at its end."""
    lines = matrix_text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if re.match(r"^cases\s*:", line)), None)
    if start is None:
        return "".join(lines) + ("\n" if lines else "") + "cases:\n" + entry
    if lines[start].split(":", 1)[1].split("#", 1)[0].strip():
        raise UsageError(f"{path}: line {start + 1}: `cases:` is written inline; write it as a "
                         "block list (one '- id: …' item per case) to let `new` append")
    end = start + 1
    last_content = start
    while end < len(lines) and not _TOP_LEVEL_KEY.match(lines[end]):
        # An indented comment belongs to the list (a case's own commented `# claim:` hint);
        # one at the left margin belongs to the key after the list.
        if lines[end].strip() and (not lines[end].lstrip().startswith("#")
                                   or lines[end][:1] in (" ", "\t")):
            last_content = end
        end += 1
    # After the last line of the list itself: comments that follow belong to the next key.
    return "".join(lines[:last_content + 1]) + entry + "".join(lines[last_content + 1:])


def _cases_in(text: str, path: Path) -> list[Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})",
                         "fix it before adding a case") from None
    cases = data.get("cases") if isinstance(data, dict) else None
    return cases if isinstance(cases, list) else []


def write_case(draft: CaseDraft, matrix: Path) -> Scaffolded:
    """Append the case to ``matrix`` (created when missing) and write its repro skeleton next to
    it under cases/ID/repro.py; refuses to overwrite either (UsageError, exit 2)."""
    check_draft(draft)
    relative = f"cases/{draft.case_id}/repro.py"
    repro = matrix.parent / relative
    before = matrix.read_text(encoding="utf-8") if matrix.exists() else ""
    if any(isinstance(c, dict) and c.get("id") == draft.case_id
           for c in _cases_in(before, matrix)):
        raise UsageError(f"{matrix}: case '{draft.case_id}' exists already",
                         "choose another id or edit the existing case")
    if repro.exists():
        raise UsageError(f"{repro}: exists already; not overwritten",
                         "choose another id or remove the file")
    after = insert_case(before, case_entry(draft, relative), matrix)
    added = [c for c in _cases_in(after, matrix) if isinstance(c, dict)
             and c.get("id") == draft.case_id]
    if len(added) != 1:  # never leave a matrix file the loader would read differently
        raise UsageError(f"{matrix}: could not place the new case in its `cases:` list",
                         "add it by hand (see README, 'Adding a case')")
    mode = matrix.stat().st_mode & 0o777 if matrix.exists() else None
    repro.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_atomic(repro, repro_skeleton(draft), unwritable_results)  # umask
    atomic.write_atomic(matrix, after, unwritable_results)
    if mode is not None:  # an existing matrix file keeps its own permissions
        matrix.chmod(mode)
    return Scaffolded(matrix=matrix, repro=repro, created_matrix=not before)


# ---- a case from an OSV record (`repro-matrix new --from-osv`) -----------------------------

# How many releases a scaffolded window keeps on each side of a claimed bound, and at most in
# all: enough to see each boundary move by a release or two, few enough to run on a laptop.
WINDOW_MARGIN = 3
WINDOW_MAX = 24


@dataclass(frozen=True)
class Window:
    """The releases a scaffolded case tests, and the claimed bounds left outside them."""

    spec: str
    versions: tuple[str, ...]
    outside: tuple[str, ...]


def _bound_versions(ranges: Sequence[ClaimRange]) -> list[str]:
    named = [v for r in ranges for v in (r.introduced, r.fixed, r.last_affected)
             if v and v != OSV_ZERO]
    return sorted(set(named), key=Version)


def window(ranges: Sequence[ClaimRange], releases: Sequence[str],
           margin: int = WINDOW_MARGIN, most: int = WINDOW_MAX) -> Window:
    """Releases around the claimed bounds: ``margin`` on each side of each bound, all releases
    between bounds, at most ``most`` in all. When the bounds span more, the newest bounds are
    kept (fixes are what users upgrade to) and the older ones are left outside, where the
    check reports them as not checked. ``"0"`` needs no release of its own: the oldest releases
    of the window stand for it only if they are the package's first."""
    ordered = sorted(set(releases), key=Version)
    if not ordered:
        raise UsageError("the package index lists no release to build a window from")

    def position(bound: str) -> int:  # index of the first release at or after the bound
        return next((i for i, v in enumerate(ordered) if Version(v) >= Version(bound)),
                    len(ordered))

    bounds = _bound_versions(ranges)
    if not bounds:  # only "introduced: 0" and no end: the newest releases
        chosen = ordered[-most:]
    else:
        positions = [position(b) for b in bounds]
        high = min(len(ordered), positions[-1] + margin + 1)  # the bound's release, then more
        low = max(0, positions[-1] - margin)
        for pos in reversed(positions):  # older bounds while the window stays small enough
            if high - max(0, pos - margin) > most:
                # Bounds left out: use the room left for releases before the kept ones.
                low = min(low, max(0, high - most))
                break
            low = max(0, pos - margin)
        chosen = ordered[low:high] or ordered[-1:]
    outside = tuple(b for b in bounds if not Version(chosen[0]) < Version(b) <= Version(chosen[-1]))
    if any(r.introduced == OSV_ZERO for r in ranges):  # no tested release precedes the first
        outside = (OSV_ZERO, *outside)
    return Window(spec=f">={chosen[0]},<={chosen[-1]}", versions=tuple(chosen), outside=outside)


def case_yaml(case_id: str, package: str, record_file: str, repro_file: str, win: Window,
              record: Mapping[str, Any], pythons: Sequence[str], module: str = "") -> str:
    """The matrix entry of a scaffolded case (YAML text, to append under ``cases:``); ``module``
    is its `import:` (none: the loader's default, the package name)."""
    summary = str(record.get("summary") or record["id"]).replace('"', "'")
    note = (f"claimed bounds outside it (reported as not checked): {', '.join(win.outside)}"
            if win.outside else "every claimed bound lies inside it")
    return "\n".join([
        f"  - id: {case_id}",
        f'    description: "{summary}"',
        f"    package: {package}",
        *([f"    import: {module}"] if module else []),
        "    versions:",
        f"      # {len(win.versions)} releases around the claimed bounds ({WINDOW_MARGIN} on "
        f"each side, at most {WINDOW_MAX});",
        f"      # {note}",
        f'      spec: "{win.spec}"',
        f"    pythons: [{', '.join(json.dumps(p) for p in pythons)}]",
        f"    repro: {repro_file}",
        "    outcome:",
        '      signature: "REPLACE: text the repro prints when the bug shows"',
        "      timeout: 60",
        "    claim:",
        f"      osv: {record_file}",
        "",
    ])


REPRO_TEMPLATE = '''"""Reproduce {advisory} in {package}: exit 1 printing the case's signature
when the bug shows, 0 when it does not, 125 when this script cannot tell (no network here)."""

import sys

print("write the reproduction of {advisory} here")
sys.exit(125)
'''


def scaffold_from_osv(record_path: Path, case_id: str, matrix: Path, releases: Sequence[str],
             package: str | None = None, pythons: Sequence[str] = ("3.9", "3.11", "3.13"),
             module: str = "") -> list[Path]:
    """Write cases/<id>/ (the record and a repro stub) next to the matrix file and add the case
    to it; returns the files written. Nothing is overwritten."""
    record = advisory.read_record(record_path)
    chosen = advisory.choose_package(record, package, str(record_path))
    claim = advisory.claim_from_record(record, chosen, str(record_path))
    folder = matrix.parent / "cases" / case_id
    record_file = folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', claim.advisory_id)}.json"
    repro_file = folder / "repro.py"
    for path in (record_file, repro_file):
        if path.exists():
            raise UsageError(f"{path}: already exists", "choose another case id")
    matrix_text = matrix.read_text(encoding="utf-8") if matrix.exists() else ""
    if re.search(rf"^\s*-\s*id:\s*{re.escape(case_id)}\s*$", matrix_text, re.MULTILINE):
        raise UsageError(f"{matrix}: already has a case '{case_id}'", "choose another case id")
    win = window(claim.ranges, releases)
    entry = case_yaml(case_id, chosen, record_file.relative_to(matrix.parent).as_posix(),
                      repro_file.relative_to(matrix.parent).as_posix(), win, record, pythons,
                      module)
    folder.mkdir(parents=True, exist_ok=True)
    record_file.write_text(record_path.read_text(encoding="utf-8"), encoding="utf-8")
    repro_file.write_text(REPRO_TEMPLATE.format(advisory=claim.advisory_id, package=chosen),
                          encoding="utf-8")
    matrix.write_text(insert_case(matrix_text, entry, matrix), encoding="utf-8")
    return [record_file, repro_file, matrix]
