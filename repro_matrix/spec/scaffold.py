"""Author mode: scaffold a case (an entry appended to the matrix file and a repro skeleton)."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version

from repro_matrix import pythons, store
from repro_matrix.errors import HarnessError, UsageError
from repro_matrix.model import DistFile
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
    store.write_atomic(repro, repro_skeleton(draft))  # new files follow the umask
    store.write_atomic(matrix, after)
    if mode is not None:  # an existing matrix file keeps its own permissions
        matrix.chmod(mode)
    return Scaffolded(matrix=matrix, repro=repro, created_matrix=not before)
