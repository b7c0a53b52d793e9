"""Released distributions on this host (wheelhouse, sources), fetched from the index if absent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from repro_matrix.errors import HarnessError
from repro_matrix.model import Release
from repro_matrix.resolve.index import IndexClient


@dataclass
class DistFinder:
    """Releases' files in the wheelhouse (or a sources folder), fetched from the index when a
    ``fetch`` is given and the file is absent; never raises for a file it cannot get."""

    folders: Sequence[Path]
    fetch: Callable[[str, str, bool], Path | None] | None = None
    _known: dict[tuple[str, str], list[Path]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for folder in self.folders:
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    key = _dist_key(path.name)
                    if key:
                        self._known.setdefault(key, []).append(path)

    def __call__(self, project: str, version: str, prefer_sdist: bool) -> Path | None:
        key = (str(canonicalize_name(project)), str(Version(version)))
        paths = self._known.get(key, [])
        wheels = [p for p in paths if p.name.endswith(".whl")]
        sdists = [p for p in paths if not p.name.endswith(".whl")]
        if prefer_sdist and sdists:
            return sdists[0]
        if not prefer_sdist and (wheels or sdists):
            return (wheels or sdists)[0]
        if self.fetch is None:
            return None
        fetched = self.fetch(project, version, prefer_sdist)
        if fetched is not None:
            self._known.setdefault(key, []).append(fetched)
        return fetched


def _dist_key(filename: str) -> tuple[str, str] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return str(name), str(version)


def dist_finder(cache_dir: Path, fetch: bool = True,
                index: IndexClient | None = None) -> DistFinder:
    """Released files from the wheelhouse, or fetched from the index into the cache's
    ``sources`` folder when absent (never the wheelhouse: builds read only their locks' files)."""
    sources = cache_dir / "sources"
    index = index or IndexClient(cache_dir)

    def download(project: str, version: str, prefer_sdist: bool) -> Path | None:
        try:
            release = next((r for r in index.releases(project)
                            if Version(r.version) == Version(version)), None)
        except HarnessError:
            return None  # no index here: the boundary stays unexplained (or as stored)
        if release is None:
            return None
        files = sorted(release.files, key=lambda f: f.filename.endswith(".whl") == prefer_sdist)
        for dist in files:
            try:
                return index.download(dist, sources)
            except HarnessError:
                continue
        return None

    return DistFinder([cache_dir / "wheelhouse", sources],
                               download if fetch else None)


def index_releases(cache_dir: Path) -> Callable[[str], Sequence[Release]] | None:
    """A package's releases on the index (cached in ``cache_dir``): what osv.json's
    untested-in-window releases are read from when a report is rendered."""
    return IndexClient(cache_dir).releases
