"""Expand cases into cells: pure functions of the configuration and the index's release list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from repro_matrix import pythons
from repro_matrix.errors import UsageError
from repro_matrix.model import Case, Cell, Release, VersionSelection


@dataclass(frozen=True)
class Selection:
    """Narrowing the user asked for on the command line."""

    case_ids: tuple[str, ...] = ()
    pythons: tuple[str, ...] = ()
    versions: str = ""
    axis_versions: str = ""  # --axis-versions: narrows a case's axis as --versions its package


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
    # The case's axis releases, in PEP 440 order (empty: the case has no axis).
    axis_versions: tuple[str, ...] = ()


def select_cases(cases: Sequence[Case], case_ids: Iterable[str]) -> tuple[Case, ...]:
    wanted = tuple(case_ids)
    known = {case.id for case in cases}
    for case_id in wanted:
        if case_id not in known:
            raise UsageError(f"--case: no case '{case_id}' in the matrix",
                             f"known cases: {', '.join(sorted(known))}")
    return tuple(case for case in cases if not wanted or case.id in wanted)


def bisects(case: Case, requested: bool | None) -> bool:
    """Whether ``case`` runs in bisect mode: as --bisect / --no-bisect say, else as its matrix
    entry does (``bisect: true``)."""
    return case.bisect if requested is None else requested


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


def parse_version_request(text: str, option: str = "--versions",
                          ) -> tuple[SpecifierSet | None, tuple[str, ...]]:
    """``--versions`` (and ``--axis-versions``) take a PEP 440 specifier (">=1.0,<2") or a comma
    list of exact versions."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return None, ()
    if all(part[0].isdigit() for part in parts):
        try:
            return None, tuple(str(Version(part)) for part in parts)
        except InvalidVersion as exc:
            raise UsageError(f"{option}: {exc}") from None
    try:
        return SpecifierSet(text), ()
    except InvalidSpecifier:
        raise UsageError(f"{option}: '{text}' is neither a specifier nor a list of versions")\
            from None


def select_versions(case: Case, releases: Sequence[Release], request: str = "") -> tuple[str, ...]:
    """Versions of the case's package to test, in PEP 440 order."""
    return _select(case.id, case.package, case.versions, "versions.spec", releases, request,
                   "--versions")


def select_axis_versions(case: Case, releases: Sequence[Release],
                         request: str = "") -> tuple[str, ...]:
    """Versions of the case's axis package to pin, in PEP 440 order (none without an axis)."""
    if case.axis is None:
        return ()
    return _select(case.id, case.axis.package, case.axis.versions, "axis.versions.spec",
                   releases, request, "--axis-versions")


def _select(case_id: str, package: str, selection: VersionSelection, key: str,
            releases: Sequence[Release], request: str, option: str) -> tuple[str, ...]:
    spec = SpecifierSet(selection.spec)
    known = {Version(r.version): r for r in releases}
    extra_spec, exact = parse_version_request(request, option)
    for version in exact:
        if Version(version) not in known:
            raise UsageError(f"{option}: {package} has no release {version} on the index")
    exact_versions = {Version(v) for v in exact}
    chosen = []
    for parsed, release in sorted(known.items()):
        if exact:
            if parsed in exact_versions:
                chosen.append(release.version)
            continue
        if release.yanked and not selection.include_yanked:
            continue
        if parsed.is_prerelease and not selection.include_prereleases:
            continue
        if parsed not in spec or (extra_spec is not None and parsed not in extra_spec):
            continue
        chosen.append(release.version)
    if not chosen:
        where = f"{key} '{selection.spec}'" + (f" and {option} '{request}'" if request else "")
        raise UsageError(f"case {case_id}: {where} select no release of {package}")
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


def plan_case(case: Case, releases: Sequence[Release], selection: Selection,
              axis_releases: Sequence[Release] = ()) -> CasePlan:
    """The case's cells: each Python, each package release (and each axis release, when the
    case has an axis), in that order."""
    versions = select_versions(case, releases, selection.versions)
    chosen_pythons = select_pythons(case, selection.pythons)
    axis_versions = select_axis_versions(case, axis_releases, selection.axis_versions)
    if case.axis is None:
        cells = tuple(Cell(case.id, python, version)
                      for python in chosen_pythons for version in versions)
    else:
        cells = tuple(Cell(case.id, python, version, case.axis.package, axis_version)
                      for python in chosen_pythons for version in versions
                      for axis_version in axis_versions)
    by_version = {r.version: r for r in releases}
    axis_by_version = {r.version: r for r in axis_releases}
    excluded = []
    for cell in cells:
        reason = (repro_exclusion(case, cell.python)
                  or release_exclusion(by_version[cell.version], cell.python))
        if not reason and cell.axis_package:
            reason = release_exclusion(axis_by_version[cell.axis_version], cell.python)
            reason = reason.replace("the release", f"{cell.axis_requirement}", 1)
        if reason:
            excluded.append((cell.id, f"not for Python {cell.python}: {reason}"))
    return CasePlan(case=case, versions=versions, pythons=chosen_pythons, cells=cells,
                    not_for_python=tuple(excluded), axis_versions=axis_versions)


def packages(cases: Sequence[Case]) -> tuple[str, ...]:
    """Every project the cases' plans need releases of: packages, then axis packages."""
    names = [case.package for case in cases]
    names += [case.axis.package for case in cases if case.axis is not None]
    return tuple(dict.fromkeys(names))


def plan(cases: Sequence[Case], releases: Mapping[str, Sequence[Release]],
         selection: Selection) -> tuple[CasePlan, ...]:
    """Every cell to run, grouped by case; ``releases`` maps package name (the cases' packages
    and axis packages) to its releases."""
    return tuple(plan_case(case, releases[case.package], selection,
                           releases[case.axis.package] if case.axis is not None else ())
                 for case in select_cases(cases, selection.case_ids))
