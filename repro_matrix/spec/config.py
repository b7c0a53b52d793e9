"""Load and validate the matrix file into frozen dataclasses; each mistake is one UsageError."""

from __future__ import annotations

import difflib
import hashlib
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from repro_matrix import pythons
from repro_matrix.advisories import read as advisory
from repro_matrix.errors import UsageError
from repro_matrix.model import (
    DEFAULT_LIMITS,
    KIND_BUG,
    KIND_COMPATIBILITY,
    OUTCOME_KINDS,
    Axis,
    Case,
    Claim,
    ClaimRange,
    EraPolicy,
    MatrixConfig,
    OutcomeRule,
    ProviderSettings,
    Release,
    VersionSelection,
    is_claim_version,
    registry_image_problem,
)
from repro_matrix.spec import plan, repro_files

PROVIDERS = ("auto", "registry", "debian", "local")
CASE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TOP_KEYS = ("cases", "base_images", "era", "python_release_dates")
_CASE_KEYS = (
    "id", "package", "import", "description", "versions", "pythons", "repro", "outcome", "claim",
    "limits", "command", "env", "requirements", "axis", "bisect",
)
_AXIS_KEYS = ("package", "versions", "import")
_VERSIONS_KEYS = ("spec", "include_prereleases", "include_yanked")
_OUTCOME_KEYS = ("signature", "timeout", "exit_codes", "kind")
EXIT_CODES = ("default", "pytest")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LIMITS_KEYS = ("memory", "pids", "tmpfs", "timeout")
_SIZE = re.compile(r"^(\d+)([kmg]?)$")
_SIZE_FACTOR = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_MIN_MEMORY = 6 << 20  # the engine refuses less
_CLAIM_KEYS = ("first_fixed", "introduced", "source", "ranges", "osv")
_RANGE_KEYS = ("introduced", "fixed", "last_affected")
_BASE_KEYS = ("provider", "debian_suites", "interpreters", "registry_image")
_ERA_KEYS = ("max_attempts", "step_days")


class _Reader:
    """Reads values out of parsed YAML, naming the file and key path in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> UsageError:
        return UsageError(f"{self.path}: {key or '(top level)'}: {problem}")

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_type_name(value)}")
        for name in value:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.fail(f"{key}.{name}".lstrip("."), f"unknown key{hint}; expected one of "
                                f"{', '.join(allowed)}")
        return value

    def string(self, value: Any, key: str) -> str:
        if isinstance(value, float):
            # YAML reads 3.10 as the number 3.1: refuse rather than silently change a version.
            raise self.fail(key, f"{value!r} was read as a number; quote it ('\"{value}\"')")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(key, f"expected a string, got {_type_name(value)}")
        text = str(value).strip()
        if not text:
            raise self.fail(key, "must not be empty")
        return text

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_type_name(value)}")
        return value

    def number(self, value: Any, key: str, minimum: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {_type_name(value)}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum:g}")
        return float(value)

    def string_list(self, value: Any, key: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        return tuple(self.string(item, f"{key}[{i}]") for i, item in enumerate(items))

    def optional(self, data: Mapping[str, Any], name: str, key: str,
                 read: Callable[[Any, str], Any], default: Any) -> Any:
        return read(data[name], f"{key}.{name}".lstrip(".")) if name in data else default


def _type_name(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def load(path: Path) -> MatrixConfig:
    """Parse and validate the matrix file at ``path``."""
    try:
        raw_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such matrix file", "pass --matrix PATH") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: byte {exc.start}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(raw_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: {where}: malformed YAML: {problem}") from None
    return parse(data, path, hashlib.sha256(raw_text.encode()).hexdigest())


def parse(data: Any, path: Path, digest: str = "") -> MatrixConfig:
    """Validate already-parsed YAML data; relative paths are resolved against the file's folder."""
    reader = _Reader(path)
    top = reader.mapping(data, "", _TOP_KEYS)
    if "cases" not in top:
        raise reader.fail("cases", "missing; the matrix needs at least one case")
    release_dates = dict(pythons.RELEASE_DATES)
    release_dates.update(_release_dates(reader, top.get("python_release_dates", {})))
    raw_cases = top["cases"]
    if not isinstance(raw_cases, list) or not raw_cases:
        raise reader.fail("cases", "expected a non-empty list of cases")
    cases = tuple(
        _case(reader, item, f"cases[{i}]", path.parent, release_dates)
        for i, item in enumerate(raw_cases)
    )
    seen: set[str] = set()
    for i, case in enumerate(cases):
        if case.id in seen:
            raise reader.fail(f"cases[{i}].id", f"duplicate case id '{case.id}'")
        seen.add(case.id)
    return MatrixConfig(
        path=path,
        cases=cases,
        providers=_providers(reader, top.get("base_images", {}), path.parent),
        era=_era(reader, top.get("era", {})),
        python_release_dates=tuple(sorted(release_dates.items())),
        digest=digest,
    )


def _release_dates(reader: _Reader, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise reader.fail("python_release_dates", "expected a mapping of X.Y to YYYY-MM-DD")
    dates = {}
    for python, date in value.items():
        key = f"python_release_dates.{python}"
        if not pythons.is_feature_version(str(python)):
            raise reader.fail(key, "expected a Python version spelled X.Y")
        text = reader.string(date, key)
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            raise reader.fail(key, "expected a date YYYY-MM-DD")
        dates[str(python)] = text
    return dates


def _case(reader: _Reader, value: Any, key: str, root: Path,
          release_dates: Mapping[str, str]) -> Case:
    data = reader.mapping(value, key, _CASE_KEYS)
    for required in ("id", "package", "outcome"):
        if required not in data:
            raise reader.fail(f"{key}.{required}", "missing")
    case_id = reader.string(data["id"], f"{key}.id")
    if not CASE_ID.match(case_id):
        raise reader.fail(f"{key}.id", "use lowercase letters, digits, '.', '_' and '-'")
    package = reader.string(data["package"], f"{key}.package")
    if not _PROJECT.match(package):
        raise reader.fail(f"{key}.package", f"'{package}' is not a valid project name")
    kind = _kind(reader, data["outcome"], f"{key}.outcome")
    has_repro = "repro" in data
    if not has_repro and kind != KIND_COMPATIBILITY:
        raise reader.fail(f"{key}.repro", "missing (only outcome.kind: compatibility may leave "
                          "it out: the import check alone decides)")
    command = reader.optional(data, "command", key, lambda v, k: _command(reader, v, k), ())
    if not has_repro and command:
        raise reader.fail(f"{key}.command", "given without a repro; add the repro it runs")
    # Without a repro the matrix file's folder stands in (nothing of it is read or mounted).
    repro, folder = (_repro(reader, data["repro"], f"{key}.repro", root) if has_repro
                     else (root.resolve(), False))
    axis = reader.optional(data, "axis", key, lambda v, k: _axis(reader, v, k, package), None)
    if folder and not command:
        raise reader.fail(f"{key}.command", "missing; a repro folder needs the command that "
                          "runs it (for example 'python -m pytest -p no:cacheprovider test_x.py')")
    metadata = (repro_files.ScriptMetadata() if folder or not has_repro
                else _script_metadata(reader, repro, f"{key}.repro"))
    requirements = reader.optional(data, "requirements", key,
                                   lambda v, k: _requirements(reader, v, k), ())
    pinned = {canonicalize_name(package): ("the case's own package", "versions.spec")}
    if axis is not None:
        pinned[canonicalize_name(axis.package)] = ("the case's axis package", "axis.versions.spec")
    for i, requirement in enumerate((*requirements, *metadata.dependencies)):
        name = canonicalize_name(Requirement(requirement).name)
        if name in pinned:
            what, narrow = pinned[name]
            problem = (f"'{requirement}' names {what}; the matrix pins it to "
                       f"each release (narrow {narrow} instead)")
            if i < len(requirements):
                raise reader.fail(f"{key}.requirements[{i}]", problem)
            raise UsageError(f"{repro}: '# /// script' block: dependencies: {problem}")
    return Case(
        id=case_id,
        package=package,
        import_name=reader.optional(data, "import", key, reader.string,
                                    package.lower().replace("-", "_")),
        description=reader.optional(data, "description", key, reader.string, ""),
        versions=_versions(reader, data.get("versions", {}), f"{key}.versions"),
        pythons=_pythons(reader, data.get("pythons", sorted(release_dates, key=pythons.sort_key)),
                         f"{key}.pythons", release_dates),
        repro=repro,
        outcome=_outcome(reader, data["outcome"], f"{key}.outcome", data.get("limits", {}),
                         f"{key}.limits", command),
        claim=_claim(reader, data.get("claim", {}), f"{key}.claim", root, package),
        command=command,
        env=reader.optional(data, "env", key, lambda v, k: _env(reader, v, k), ()),
        requirements=tuple(dict.fromkeys((*requirements, *metadata.dependencies))),
        requires_python=metadata.requires_python,
        folder=folder,
        axis=axis,
        has_repro=has_repro,
        bisect=reader.optional(data, "bisect", key, reader.boolean, False),
    )


_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _axis(reader: _Reader, value: Any, key: str, package: str) -> Axis:
    """``axis: {package: NAME, versions: {spec: ...}}``: a dependency pinned to each of its
    selected releases in turn, as a second axis of the case's matrix."""
    data = reader.mapping(value, key, _AXIS_KEYS)
    if "package" not in data:
        raise reader.fail(f"{key}.package", "missing; name the dependency whose releases form "
                          "the second axis")
    name = reader.string(data["package"], f"{key}.package")
    if not _PROJECT.match(name):
        raise reader.fail(f"{key}.package", f"'{name}' is not a valid project name")
    if canonicalize_name(name) == canonicalize_name(package):
        raise reader.fail(f"{key}.package", f"'{name}' is the case's own package; the axis "
                          "names a dependency")
    return Axis(package=name, versions=_versions(reader, data.get("versions", {}),
                                                 f"{key}.versions"),
                import_name=reader.optional(data, "import", key, reader.string, ""))


def _kind(reader: _Reader, value: Any, key: str) -> str:
    data = reader.mapping(value, key, _OUTCOME_KEYS)
    kind = reader.optional(data, "kind", key, reader.string, KIND_BUG)
    if kind not in OUTCOME_KINDS:
        raise reader.fail(f"{key}.kind", f"expected one of {', '.join(OUTCOME_KINDS)}")
    return str(kind)


def _versions(reader: _Reader, value: Any, key: str) -> VersionSelection:
    data = reader.mapping(value, key, _VERSIONS_KEYS)
    spec = reader.optional(data, "spec", key, reader.string, "")
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise reader.fail(f"{key}.spec", f"'{spec}' is not a PEP 440 specifier "
                          "(for example '>=1.0,<3')") from None
    return VersionSelection(
        spec=spec,
        include_prereleases=reader.optional(data, "include_prereleases", key, reader.boolean,
                                            False),
        include_yanked=reader.optional(data, "include_yanked", key, reader.boolean, False),
    )


def _pythons(reader: _Reader, value: Any, key: str,
             release_dates: Mapping[str, str]) -> tuple[str, ...]:
    versions = reader.string_list(value, key)
    if not versions:
        raise reader.fail(key, "must list at least one Python version")
    for i, python in enumerate(versions):
        if not pythons.is_feature_version(python):
            raise reader.fail(f"{key}[{i}]", f"'{python}' is not a Python version spelled X.Y")
        if python not in release_dates:
            raise reader.fail(f"{key}[{i}]", f"unknown Python {python}; add its release date "
                              "under python_release_dates")
    return tuple(sorted(set(versions), key=pythons.sort_key))


def _repro(reader: _Reader, value: Any, key: str, root: Path) -> tuple[Path, bool]:
    """The repro's absolute path, and whether it is a folder."""
    repro = (root / reader.string(value, key)).resolve()
    if repro.is_dir():
        try:
            has_files = any(path.is_file() for path in repro.rglob("*"))
        except OSError as exc:
            raise reader.fail(key, f"cannot read {repro}: {exc.strerror or exc}") from None
        if not has_files:
            raise reader.fail(key, f"{repro} is an empty folder")
        return repro, True
    if not repro.exists():
        raise reader.fail(key, f"no such file: {repro}")
    if not repro.is_file():
        raise reader.fail(key, f"{repro} is not a regular file")
    try:
        with repro.open("rb"):
            pass
    except OSError as exc:
        raise reader.fail(key, f"cannot read {repro}: {exc.strerror or exc}") from None
    return repro, False


def _script_metadata(reader: _Reader, repro: Path, key: str) -> repro_files.ScriptMetadata:
    try:
        text = repro.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return repro_files.ScriptMetadata()  # not UTF-8 text: it carries no PEP 723 block
    except OSError as exc:
        raise reader.fail(key, f"cannot read {repro}: {exc.strerror or exc}") from None
    return repro_files.script_metadata(text, str(repro))


def _command(reader: _Reader, value: Any, key: str) -> tuple[str, ...]:
    """A command line: a string (split like a POSIX shell would) or a list of words."""
    if isinstance(value, str):
        try:
            words = tuple(shlex.split(value))
        except ValueError as exc:
            raise reader.fail(key, f"cannot split {value!r}: {exc}") from None
    elif isinstance(value, list):
        words = reader.string_list(value, key)
    else:
        raise reader.fail(key, f"expected a string or a list of words, got {_type_name(value)}")
    if not words:
        raise reader.fail(key, "must not be empty")
    return words


def _env(reader: _Reader, value: Any, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise reader.fail(key, f"expected a mapping of NAME: value, got {_type_name(value)}")
    pairs = []
    for name, raw in value.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise reader.fail(f"{key}.{name}", "not a variable name (letters, digits, '_')")
        # A string is kept as written (an empty or spaced value is a value); numbers as text.
        pairs.append((name, raw if isinstance(raw, str) else reader.string(raw, f"{key}.{name}")))
    return tuple(sorted(pairs))


def _requirements(reader: _Reader, value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise reader.fail(key, f"expected a list of requirements, got {_type_name(value)}")
    return tuple(repro_files.requirement_text(item, f"{reader.path}: {key}[{i}]")
                 for i, item in enumerate(value))


def runs_pytest(command: Sequence[str]) -> bool:
    """Whether a command line runs pytest (``pytest …``, ``py.test …``, ``… -m pytest …``)."""
    first = Path(command[0]).name if command else ""
    pairs = zip(command, command[1:])
    return first in ("pytest", "py.test") or any(a == "-m" and b == "pytest" for a, b in pairs)


def _outcome(reader: _Reader, value: Any, key: str, limits: Any,
             limits_key: str, command: Sequence[str]) -> OutcomeRule:
    data = reader.mapping(value, key, _OUTCOME_KEYS)
    kind = _kind(reader, value, key)
    exit_codes = reader.optional(data, "exit_codes", key, reader.string,
                                 "pytest" if runs_pytest(command) else "default")
    if exit_codes not in EXIT_CODES:
        raise reader.fail(f"{key}.exit_codes", f"expected one of {', '.join(EXIT_CODES)}")
    # Compatibility mode asks whether the pair works: a signature is optional there (given, a
    # failure without it reads as another failure rather than as broken).
    if "signature" not in data and kind == KIND_BUG:
        raise reader.fail(f"{key}.signature", "missing; give the text a real reproduction prints "
                          "(or set kind: compatibility)")
    bounds = reader.mapping(limits, limits_key, _LIMITS_KEYS)
    if "timeout" in data and "timeout" in bounds:
        raise reader.fail(f"{limits_key}.timeout", f"also given as {key}.timeout; keep one")
    timeout_from, timeout_key = (bounds, limits_key) if "timeout" in bounds else (data, key)
    return OutcomeRule(
        signatures=(reader.string_list(data["signature"], f"{key}.signature")
                    if "signature" in data else ()),
        timeout_s=reader.optional(timeout_from, "timeout", timeout_key,
                                  lambda v, k: reader.number(v, k, 1), 60.0),
        memory=reader.optional(bounds, "memory", limits_key,
                               lambda v, k: _size(reader, v, k, _MIN_MEMORY),
                               DEFAULT_LIMITS.memory),
        pids=int(reader.optional(bounds, "pids", limits_key, lambda v, k: _count(reader, v, k),
                                 DEFAULT_LIMITS.pids)),
        tmpfs=reader.optional(bounds, "tmpfs", limits_key,
                              lambda v, k: _size(reader, v, k, 1 << 10),
                              DEFAULT_LIMITS.tmpfs),
        exit_codes=exit_codes,
        kind=kind,
    )


def _size(reader: _Reader, value: Any, key: str, minimum: int) -> str:
    """A size in docker's syntax ('512m', '1g', bytes), lowercased so equal sizes key alike."""
    text = reader.string(value, key).lower()
    match = _SIZE.match(text)
    if not match:
        raise reader.fail(key, f"'{text}' is not a size; write it like '512m' or '1g'")
    if int(match.group(1)) * _SIZE_FACTOR[match.group(2)] < minimum:
        floor = f"{minimum >> 20}m" if minimum % (1 << 20) == 0 else f"{minimum >> 10}k"
        raise reader.fail(key, f"must be at least {floor}")
    return text


def _count(reader: _Reader, value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise reader.fail(key, f"expected a whole number, got {_type_name(value)}")
    if value < 1:
        raise reader.fail(key, "must be at least 1")
    return value


def _claim(reader: _Reader, value: Any, key: str, root: Path, package: str) -> Claim:
    data = reader.mapping(value, key, _CLAIM_KEYS)
    forms = [name for name in ("ranges", "osv") if name in data]
    if forms:
        also = [name for name in ("first_fixed", "introduced", *forms[1:]) if name in data]
        if also:
            raise reader.fail(f"{key}.{also[0]}", f"give the claim either as {forms[0]} or as "
                              f"{also[0]}, not both")
    if "osv" in data:
        record = (root / reader.string(data["osv"], f"{key}.osv")).resolve()
        try:
            claim = advisory.load_claim(record, package)
        except UsageError as exc:
            raise reader.fail(f"{key}.osv", exc.message) from None
        source = reader.optional(data, "source", key, reader.string, "")
        return replace(claim, source=source or claim.source)
    if "ranges" in data:
        return Claim(ranges=_ranges(reader, data["ranges"], f"{key}.ranges"),
                     source=reader.optional(data, "source", key, reader.string, ""))
    versions = {name: _claim_version(reader, data[name], f"{key}.{name}")
                for name in ("first_fixed", "introduced") if name in data}
    return Claim(
        first_fixed=versions.get("first_fixed"),
        introduced=versions.get("introduced"),
        source=reader.optional(data, "source", key, reader.string, ""),
    )


def _ranges(reader: _Reader, value: Any, key: str) -> tuple[ClaimRange, ...]:
    """``claim.ranges``: OSV-style ranges, ``introduced`` ("0": from the first release) and at
    most one of ``fixed`` / ``last_affected``."""
    if not isinstance(value, list) or not value:
        raise reader.fail(key, "expected a non-empty list of {introduced, fixed | last_affected}")
    ranges = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        data = reader.mapping(item, where, _RANGE_KEYS)
        if "introduced" not in data:
            raise reader.fail(f"{where}.introduced", "missing; use \"0\" for every release "
                              "from the first")
        if "fixed" in data and "last_affected" in data:
            raise reader.fail(f"{where}.last_affected", "a range has fixed or last_affected, "
                              "not both (OSV)")
        bounds = {name: _claim_version(reader, data[name], f"{where}.{name}",
                                       allow_zero=name == "introduced")
                  for name in _RANGE_KEYS if name in data}
        ranges.append(ClaimRange(**bounds))
    return tuple(ranges)


def _claim_version(reader: _Reader, value: Any, key: str, allow_zero: bool = False) -> str:
    text = reader.string(value, key)
    if not is_claim_version(text, allow_zero):
        raise reader.fail(key, f"'{text}' is not a version")
    return text


def _providers(reader: _Reader, value: Any, root: Path) -> ProviderSettings:
    data = reader.mapping(value, "base_images", _BASE_KEYS)
    provider = reader.optional(data, "provider", "base_images", reader.string, "auto")
    if provider not in PROVIDERS:
        raise reader.fail("base_images.provider", f"expected one of {', '.join(PROVIDERS)}")
    suites = dict(pythons.DEBIAN_SUITES)
    raw_suites = data.get("debian_suites", {})
    if not isinstance(raw_suites, dict):
        raise reader.fail("base_images.debian_suites", "expected a mapping of X.Y to suite name")
    for python, suite in raw_suites.items():
        if not pythons.is_feature_version(str(python)):
            raise reader.fail(f"base_images.debian_suites.{python}", "expected X.Y")
        suites[str(python)] = reader.string(suite, f"base_images.debian_suites.{python}")
    return ProviderSettings(
        provider=provider, debian_suites=tuple(sorted(suites.items())),
        interpreters=_interpreters(reader, data.get("interpreters", {}), root),
        registry_image=reader.optional(data, "registry_image", "base_images",
                                       lambda v, k: registry_image(reader, v, k),
                                       ProviderSettings.registry_image))


def _interpreters(reader: _Reader, value: Any, root: Path) -> tuple[tuple[str, str], ...]:
    key = "base_images.interpreters"
    if not isinstance(value, dict):
        raise reader.fail(key, "expected a mapping of X.Y to an interpreter prefix "
                          '(for example {"3.6": /opt/python3.6})')
    found = {}
    for python, prefix in value.items():
        if isinstance(python, float):
            raise reader.fail(f"{key}.{python}", f"{python!r} was read as a number; quote it")
        if not pythons.is_feature_version(str(python)):
            raise reader.fail(f"{key}.{python}", "expected a Python version spelled X.Y")
        path = root / reader.string(prefix, f"{key}.{python}")
        if not path.is_dir():
            raise reader.fail(f"{key}.{python}", f"no such folder: {path}")
        found[str(python)] = str(path.resolve())
    return tuple(sorted(found.items()))


def registry_image(reader: _Reader, value: Any, key: str) -> str:
    text = reader.string(value, key)
    problem = registry_image_problem(text)
    if problem:
        raise reader.fail(key, problem)
    return text


def _era(reader: _Reader, value: Any) -> EraPolicy:
    data = reader.mapping(value, "era", _ERA_KEYS)
    return EraPolicy(
        max_attempts=int(reader.optional(data, "max_attempts", "era",
                                         lambda v, k: reader.number(v, k, 1), 5)),
        step_days=int(reader.optional(data, "step_days", "era",
                                      lambda v, k: reader.number(v, k, 1), 365)),
    )


def check_against_index(matrix: MatrixConfig, releases_of: Callable[[str], Sequence[Release]],
                        selection: plan.Selection | None = None) -> None:
    """What only the package index can tell about the selected cases, as errors naming the
    matrix file and key: a package it does not know, a claim naming a release it does not have
    or lying outside the tested range, a version spec that selects nothing."""
    reader = _Reader(matrix.path)
    selection = selection or plan.Selection()
    for i, case in enumerate(matrix.cases):
        if selection.case_ids and case.id not in selection.case_ids:
            continue
        key = f"cases[{i}]"
        try:
            releases = releases_of(case.package)
        except UsageError as exc:  # the index answered: no such project
            raise reader.fail(f"{key}.package", exc.message) from None
        known = {Version(r.version) for r in releases}
        claims = [(name, value) for name, value in (("first_fixed", case.claim.first_fixed),
                                                    ("introduced", case.claim.introduced))
                  if value is not None]
        for name, value in claims:
            if Version(value) not in known:
                raise reader.fail(f"{key}.claim.{name}", f"{case.package} has no release "
                                  f"{value} on the package index")
        if case.axis is not None:
            _check_axis(reader, case, f"{key}.axis", releases_of, selection)
        if selection.versions:
            continue  # a narrowed run tests what the option names (plan checks it)
        # A claimed version outside the selected releases is no error: the claim check
        # reports that bound as outside the tested window.
        try:
            plan.select_versions(case, releases)
        except UsageError:
            raise reader.fail(f"{key}.versions.spec", f"'{case.versions.spec}' selects no "
                              f"release of {case.package}") from None


def _check_axis(reader: _Reader, case: Case, key: str,
                releases_of: Callable[[str], Sequence[Release]],
                selection: plan.Selection) -> None:
    assert case.axis is not None
    try:
        releases = releases_of(case.axis.package)
    except UsageError as exc:
        raise reader.fail(f"{key}.package", exc.message) from None
    if selection.axis_versions:
        return  # narrowed by --axis-versions: plan checks what it names
    try:
        plan.select_axis_versions(case, releases)
    except UsageError:
        raise reader.fail(f"{key}.versions.spec", f"'{case.axis.versions.spec}' selects no "
                          f"release of {case.axis.package}") from None
