"""Read a published OSV record (one JSON file) into a claim, and scaffold a case around it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from repro_matrix.errors import UsageError
from repro_matrix.model import OSV_ZERO, Claim, ClaimRange
from repro_matrix.spec.scaffold import insert_case

ECOSYSTEM = "PyPI"
_END_EVENTS = ("fixed", "last_affected")
# How many releases a scaffolded window keeps on each side of a claimed bound, and at most in
# all: enough to see each boundary move by a release or two, few enough to run on a laptop.
WINDOW_MARGIN = 3
WINDOW_MAX = 24


def normalize(name: str) -> str:
    """A project name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_record(path: Path) -> dict[str, Any]:
    """The parsed OSV record at ``path``; a missing, unreadable or non-JSON file is a UsageError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such OSV record file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise UsageError(f"{path}: not an OSV record (no 'id')")
    return data


def _affected_entries(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = record.get("affected")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def packages(record: Mapping[str, Any]) -> list[str]:
    """The PyPI package names the record's affected entries name, first spelling kept."""
    names: dict[str, str] = {}
    for entry in _affected_entries(record):
        package = entry.get("package") or {}
        if package.get("ecosystem") == ECOSYSTEM and isinstance(package.get("name"), str):
            names.setdefault(normalize(package["name"]), package["name"])
    return list(names.values())


def _version(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text:
        raise UsageError(f"{where}: expected a version string")
    if text == OSV_ZERO:
        return text
    try:
        Version(text)
    except InvalidVersion:
        raise UsageError(f"{where}: '{text}' is not a PEP 440 version") from None
    return text


def _ranges_of(events: Sequence[Any], where: str) -> list[ClaimRange]:
    """OSV events in order: each introduced opens a range, a fixed or last_affected closes it."""
    ranges: list[ClaimRange] = []
    opened: str | None = None
    for i, event in enumerate(events):
        if not isinstance(event, dict) or len(event) != 1:
            raise UsageError(f"{where}.events[{i}]: expected one key per event")
        ((kind, value),) = event.items()
        version = _version(value, f"{where}.events[{i}].{kind}")
        if kind == "introduced":
            if opened is not None:
                ranges.append(ClaimRange(opened))
            opened = version
        elif kind in _END_EVENTS:
            if opened is None:
                raise UsageError(f"{where}.events[{i}]: {kind} with no introduced before it")
            ranges.append(ClaimRange(opened, **{kind: version}))
            opened = None
        # "limit" only bounds a search in git history; it says nothing about releases.
    if opened is not None:
        ranges.append(ClaimRange(opened))
    return ranges


def claim_ranges(record: Mapping[str, Any], package: str, where: str) -> tuple[ClaimRange, ...]:
    """The ECOSYSTEM ranges the record states for ``package`` (PyPI, PEP 503-normalized)."""
    found: list[ClaimRange] = []
    for i, entry in enumerate(_affected_entries(record)):
        named = entry.get("package") or {}
        if named.get("ecosystem") != ECOSYSTEM or \
                normalize(str(named.get("name", ""))) != normalize(package):
            continue
        for j, rng in enumerate(entry.get("ranges") or ()):
            if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
                found += _ranges_of(rng.get("events") or (),
                                    f"{where}: affected[{i}].ranges[{j}]")
    if not found:
        named_here = ", ".join(packages(record)) or "none"
        raise UsageError(f"{where}: no {ECOSYSTEM} ECOSYSTEM range for package '{package}' "
                         f"(PyPI packages in the record: {named_here})")
    return tuple(dict.fromkeys(found))


def claim_from_record(record: Mapping[str, Any], package: str, where: str) -> Claim:
    """A claim holding the record's ranges for ``package``, its id and aliases as the source."""
    advisory_id = str(record["id"])
    aliases = tuple(str(a) for a in record.get("aliases") or () if isinstance(a, str))
    also = f" ({', '.join(aliases)})" if aliases else ""
    return Claim(ranges=claim_ranges(record, package, where), advisory_id=advisory_id,
                 aliases=aliases, source=f"OSV record {advisory_id}{also}")


def load_claim(path: Path, package: str) -> Claim:
    """The claim of the OSV record file at ``path`` for ``package``."""
    return claim_from_record(read_record(path), package, str(path))


# ---- scaffolding a case (`repro-matrix new --from-osv`) -------------------------------------


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


def choose_package(record: Mapping[str, Any], requested: str | None, where: str) -> str:
    """The record's PyPI package, or the one asked for; a choice is needed when it names many."""
    named = packages(record)
    if requested:
        if normalize(requested) not in {normalize(n) for n in named}:
            raise UsageError(f"{where}: names no PyPI package '{requested}'",
                             f"it names: {', '.join(named) or 'none'}")
        return requested
    if len(named) != 1:
        raise UsageError(f"{where}: names {len(named)} PyPI packages "
                         f"({', '.join(named) or 'none'})", "choose one with --package")
    return named[0]


def scaffold(record_path: Path, case_id: str, matrix: Path, releases: Sequence[str],
             package: str | None = None, pythons: Sequence[str] = ("3.9", "3.11", "3.13"),
             module: str = "") -> list[Path]:
    """Write cases/<id>/ (the record and a repro stub) next to the matrix file and add the case
    to it; returns the files written. Nothing is overwritten."""
    record = read_record(record_path)
    chosen = choose_package(record, package, str(record_path))
    claim = claim_from_record(record, chosen, str(record_path))
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
