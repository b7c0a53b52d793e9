"""Expand cases into cells: pure functions of the configuration and the index's release list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from repro_matrix import pythons
from repro_matrix.errors import UsageError
from repro_matrix.model import Case, Cell, Release


@dataclass(frozen=True)
class Selection:
    """Narrowing the user asked for on the command line."""

    case_ids: tuple[str, ...] = ()
    pythons: tuple[str, ...] = ()
    versions: str = ""


@dataclass(frozen=True)
class CasePlan:
    """The cells of one case, with the versions and Pythons they span."""

    case: Case
    versions: tuple[str, ...]
    pythons: tuple[str, ...]
    cells: tuple[Cell, ...]
    # (cell id, reason) of cells whose release or repro excludes the Python by requires-python:
    # they get Status.NOT_FOR_PYTHON without being resolved, built or run.
    not_for_python: tuple[tuple[str, str], ...] = ()


def select_cases(cases: Sequence[Case], case_ids: Iterable[str]) -> tuple[Case, ...]:
    wanted = tuple(case_ids)
    known = {case.id for case in cases}
    for case_id in wanted:
        if case_id not in known:
            raise UsageError(f"--case: no case '{case_id}' in the matrix",
                             f"known cases: {', '.join(sorted(known))}")
    return tuple(case for case in cases if not wanted or case.id in wanted)


def select_pythons(case: Case, requested: Sequence[str]) -> tuple[str, ...]:
    if not requested:
        return case.pythons
    for python in requested:
        if not pythons.is_feature_version(python):
            raise UsageError(f"--python: '{python}' is not a Python version spelled X.Y")
        if python not in case.pythons:
            raise UsageError(f"--python: {python} is not among case {case.id}'s Pythons",
                             f"the case covers {', '.join(case.pythons)}")
    return tuple(p for p in case.pythons if p in requested)


def parse_version_request(text: str) -> tuple[SpecifierSet | None, tuple[str, ...]]:
    """``--versions`` takes a PEP 440 specifier (">=1.0,<2") or a comma list of exact versions."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return None, ()
    if all(part[0].isdigit() for part in parts):
        try:
            return None, tuple(str(Version(part)) for part in parts)
        except InvalidVersion as exc:
            raise UsageError(f"--versions: {exc}") from None
    try:
        return SpecifierSet(text), ()
    except InvalidSpecifier:
        raise UsageError(f"--versions: '{text}' is neither a specifier nor a list of versions")\
            from None


def select_versions(case: Case, releases: Sequence[Release], request: str = "") -> tuple[str, ...]:
    """Versions of the case's package to test, in PEP 440 order."""
    spec = SpecifierSet(case.versions.spec)
    known = {Version(r.version): r for r in releases}
    extra_spec, exact = parse_version_request(request)
    for version in exact:
        if Version(version) not in known:
            raise UsageError(f"--versions: {case.package} has no release {version} on the index")
    exact_versions = {Version(v) for v in exact}
    chosen = []
    for parsed, release in sorted(known.items()):
        if exact:
            if parsed in exact_versions:
                chosen.append(release.version)
            continue
        if release.yanked and not case.versions.include_yanked:
            continue
        if parsed.is_prerelease and not case.versions.include_prereleases:
            continue
        if parsed not in spec or (extra_spec is not None and parsed not in extra_spec):
            continue
        chosen.append(release.version)
    if not chosen:
        where = f"versions.spec '{case.versions.spec}'" + (f" and --versions '{request}'"
                                                           if request else "")
        raise UsageError(f"case {case.id}: {where} select no release of {case.package}")
    return tuple(chosen)


def admits(requires_python: str, python: str) -> bool:
    """Whether a requires-python specifier admits some release of Python ``python`` (X.Y).

    Its first and a late patch release stand for the series; an unreadable specifier (old
    uploads have some) excludes nothing.
    """
    try:
        spec = SpecifierSet(requires_python, prereleases=True)
    except InvalidSpecifier:
        return True
    return any(spec.contains(f"{python}.{patch}") for patch in (0, 99))


def release_exclusion(release: Release, python: str) -> str:
    """Why ``release`` is not for ``python`` by its files' requires-python ('' if it may be).

    A file that declares nothing admits every Python (old releases often declare nothing), so
    only a release none of whose files admits the Python is excluded.
    """
    files = [f for f in release.files if not f.yanked] or list(release.files)
    if not files or any(f.requires_python is None or admits(f.requires_python, python)
                        for f in files):
        return ""
    declared = sorted({str(f.requires_python) for f in files})
    return f"the release requires Python {' or '.join(declared)}"


def repro_exclusion(case: Case, python: str) -> str:
    """Why the repro is not for ``python`` by its PEP 723 requires-python ('' if it may be)."""
    if case.requires_python and not admits(case.requires_python, python):
        return f"the repro's requires-python is '{case.requires_python}'"
    return ""


def plan_case(case: Case, releases: Sequence[Release], selection: Selection) -> CasePlan:
    versions = select_versions(case, releases, selection.versions)
    chosen_pythons = select_pythons(case, selection.pythons)
    cells = tuple(Cell(case.id, python, version)
                  for python in chosen_pythons for version in versions)
    by_version = {r.version: r for r in releases}
    excluded = []
    for cell in cells:
        reason = (repro_exclusion(case, cell.python)
                  or release_exclusion(by_version[cell.version], cell.python))
        if reason:
            excluded.append((cell.id, f"not for Python {cell.python}: {reason}"))
    return CasePlan(case=case, versions=versions, pythons=chosen_pythons, cells=cells,
                    not_for_python=tuple(excluded))


def plan(cases: Sequence[Case], releases: Mapping[str, Sequence[Release]],
         selection: Selection) -> tuple[CasePlan, ...]:
    """Every cell to run, grouped by case; ``releases`` maps package name to its releases."""
    return tuple(plan_case(case, releases[case.package], selection)
                 for case in select_cases(cases, selection.case_ids))
