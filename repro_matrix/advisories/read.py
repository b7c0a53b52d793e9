"""Read a published OSV record (one JSON file): the claim it makes for a package."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro_matrix.errors import UsageError
from repro_matrix.model import Claim, ClaimRange, is_claim_version

ECOSYSTEM = "PyPI"
_END_EVENTS = ("fixed", "last_affected")


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
    if not is_claim_version(text, allow_zero=True):
        raise UsageError(f"{where}: '{text}' is not a PEP 440 version")
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
