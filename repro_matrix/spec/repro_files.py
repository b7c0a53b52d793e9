"""A case's repro on the host: PEP 723 metadata, its files (script or folder), a syntax check."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from repro_matrix.errors import UsageError
from repro_matrix.model import Case

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9 and 3.10 only
    import tomli as tomllib

# The reference implementation's regular expression (PEP 723, "Reference Implementation").
_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")
# Host-side leftovers that say nothing about the repro (and differ from machine to machine).
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", ".venv",
                 ".tox", ".nox"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
MAX_FOLDER_BYTES = 64 << 20  # each cell gets a copy: a repro folder is a few files, not a project


@dataclass(frozen=True)
class ScriptMetadata:
    """What a PEP 723 ``script`` block declares."""

    dependencies: tuple[str, ...] = ()
    requires_python: str = ""


def script_metadata(text: str, where: str) -> ScriptMetadata:
    """The ``# /// script`` block of ``text`` (none: empty metadata); ``where`` names the file
    in errors."""
    blocks = [m for m in _BLOCK.finditer(text) if m.group("type") == "script"]
    if not blocks:
        return ScriptMetadata()
    if len(blocks) > 1:
        raise UsageError(f"{where}: more than one '# /// script' block (PEP 723 allows one)")
    content = "".join(line[2:] if line.startswith("# ") else line[1:]
                      for line in blocks[0].group("content").splitlines(keepends=True))
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: '# /// script' block: not TOML: {exc}") from None
    return ScriptMetadata(dependencies=_dependencies(data, where),
                          requires_python=_requires_python(data, where))


def _dependencies(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = data.get("dependencies", [])
    if not isinstance(raw, list):
        raise UsageError(f"{where}: '# /// script' block: dependencies: expected a list of "
                         "requirement strings")
    for i, item in enumerate(raw):
        requirement_text(item, f"{where}: '# /// script' block: dependencies[{i}]")
    return tuple(str(item).strip() for item in raw)


def _requires_python(data: Mapping[str, Any], where: str) -> str:
    raw = data.get("requires-python", "")
    key = f"{where}: '# /// script' block: requires-python"
    if not isinstance(raw, str):
        raise UsageError(f"{key}: expected a string such as \">=3.9\"")
    try:
        SpecifierSet(raw)
    except InvalidSpecifier:
        raise UsageError(f"{key}: '{raw}' is not a version specifier") from None
    return raw.strip()


def requirement_text(value: Any, where: str) -> str:
    """A PEP 508 requirement, checked; errors name ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: expected a requirement string such as \"requests<3\"")
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        raise UsageError(f"{where}: '{value}' is not a PEP 508 requirement ({exc})") from None
    if "@" in value and Requirement(value).url:
        raise UsageError(f"{where}: '{value}': direct references (name @ url) cannot be "
                         "resolved for an era; name a version range instead")
    return value.strip()


def read_files(repro: Path, folder: bool) -> dict[str, bytes]:
    """The files a cell gets in its repro folder: relative POSIX path → content, sorted."""
    if not folder:
        return {repro.name: repro.read_bytes()}
    files = {}
    total = 0
    for path in sorted(repro.rglob("*")):
        relative = path.relative_to(repro)
        if (not path.is_file() or _SKIPPED_DIRS.intersection(relative.parts[:-1])
                or path.name.endswith(_SKIPPED_SUFFIXES)):
            continue
        files[relative.as_posix()] = path.read_bytes()
        total += len(files[relative.as_posix()])
        if total > MAX_FOLDER_BYTES:
            raise UsageError(f"{repro}: the repro folder holds more than "
                             f"{MAX_FOLDER_BYTES >> 20} MiB", "keep only the files the repro "
                             "needs in it (every cell gets a copy)")
    return files


def files_digest(files: Mapping[str, bytes]) -> str:
    """One digest of names and contents (a renamed or edited file changes it)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def check_syntax(case: Case, files: Mapping[str, bytes]) -> None:
    """Compile every Python file of the repro on the host (a script run by the default command
    is Python whatever its name); the first syntax error is one UsageError
    ``file:line: SyntaxError: message``, raised before anything is built."""
    for name, data in sorted(files.items()):
        if not name.endswith(".py") and (case.folder or case.command):
            continue
        path = case.repro / name if case.folder else case.repro
        try:
            compile(data, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            line = f":{exc.lineno}" if exc.lineno else ""
            raise UsageError(f"{path}{line}: {type(exc).__name__}: {exc.msg}") from None
        except ValueError as exc:  # null bytes
            raise UsageError(f"{path}: not Python source: {exc}") from None
