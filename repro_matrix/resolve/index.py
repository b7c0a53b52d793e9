"""Read a project's releases from the package index (PEP 691 JSON), with a small on-disk cache.

The index is the one the user's tools are configured for; the harness names no index itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from repro_matrix import atomic
from repro_matrix.errors import IndexUnavailable, UsageError
from repro_matrix.model import DistFile, Release

_ACCEPT = "application/vnd.pypi.simple.v1+json"
_INDEX_ENV = ("REPRO_MATRIX_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
# The on-disk format of cached project pages: a folder per format, then per index (by hash).
CACHE_FORMAT = 2
TTL_ENV = "REPRO_MATRIX_INDEX_TTL"  # seconds a cached project page is used (default 1 h)
DEFAULT_TTL_S = 3600.0


def cache_ttl() -> float:
    """How long a cached project page stands: ``$REPRO_MATRIX_INDEX_TTL`` seconds, else 1 h."""
    text = os.environ.get(TTL_ENV, "")
    if not text:
        return DEFAULT_TTL_S
    try:
        ttl = float(text)
    except ValueError:
        raise UsageError(f"{TTL_ENV}={text!r}: not a number of seconds",
                         "set it to e.g. 3600, or 0 to always ask the index") from None
    return max(ttl, 0.0)


def configured_index_url() -> str:
    """The simple-API root the user's tools use: environment, pip's config, then pip's default."""
    for name in _INDEX_ENV:
        if os.environ.get(name):
            return os.environ[name].rstrip("/") + "/"
    return _pip_index_url()


@functools.cache
def _pip_index_url() -> str:
    """pip's configured or default index, asked once per process: pip's own configuration
    reader when pip is importable here (a subprocess costs a third of a second), else
    `pip config get`."""
    try:
        from pip._internal.configuration import Configuration
        from pip._internal.exceptions import ConfigurationError

        configuration = Configuration(isolated=False)
        configuration.load()
        try:
            return str(configuration.get_value("global.index-url")).rstrip("/") + "/"
        except ConfigurationError:  # not set: pip's default, below
            return _pip_default_index()
    except Exception:  # pip's internals moved or broke: ask pip itself
        pass
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().rstrip("/") + "/"
    except (OSError, subprocess.SubprocessError):
        pass
    return _pip_default_index()


def _pip_default_index() -> str:
    try:
        from pip._internal.models.index import PyPI  # the tool's own default, not ours

        return str(PyPI.simple_url).rstrip("/") + "/"
    except ImportError:
        raise IndexUnavailable(
            "no package index configured and pip is not importable to tell its default",
            "set REPRO_MATRIX_INDEX_URL or PIP_INDEX_URL",
        ) from None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _file_version(project: str, filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        # Old uploads (".zip", ".exe", ".egg") do not parse; try the name-version convention.
        match = re.match(rf"^{re.escape(project)}-(.+?)(\.tar\.gz|\.zip|\.tar\.bz2)$", filename,
                         re.IGNORECASE)
        return match.group(1) if match else None


def releases_from_json(project: str, payload: dict[str, Any]) -> list[Release]:
    """Group a PEP 691 project page into releases, oldest first by upload time."""
    by_version: dict[str, list[DistFile]] = defaultdict(list)
    for item in payload.get("files", []):
        version = _file_version(project, item["filename"])
        if version is None:
            continue
        try:
            version = str(Version(version))
        except InvalidVersion:
            continue
        by_version[version].append(DistFile(
            filename=item["filename"],
            url=item["url"],
            sha256=item.get("hashes", {}).get("sha256", ""),
            upload_time=_parse_time(item.get("upload-time")),
            requires_python=item.get("requires-python"),
            yanked=bool(item.get("yanked")),
        ))
    releases = []
    for version, files in by_version.items():
        times = [f.upload_time for f in files if f.upload_time]
        releases.append(Release(
            version=version,
            upload_time=min(times) if times else None,
            yanked=all(f.yanked for f in files),
            files=tuple(files),
        ))
    return sorted(releases, key=lambda r: Version(r.version))


class IndexClient:
    """Fetches project pages from the configured index; caches them on disk for ``ttl_s``
    (default ``cache_ttl()``), per index URL, so switching indexes never serves another's."""

    def __init__(self, cache_dir: Path, index_url: str | None = None,
                 ttl_s: float | None = None) -> None:
        self.cache_root = cache_dir / "index"
        self._index_url = index_url
        self.ttl_s = cache_ttl() if ttl_s is None else ttl_s
        self._memory: dict[str, list[Release]] = {}

    @property
    def cache_dir(self) -> Path:
        url_key = hashlib.sha256(self.index_url.encode()).hexdigest()[:16]
        return self.cache_root / f"v{CACHE_FORMAT}" / url_key

    @property
    def index_url(self) -> str:
        if self._index_url is None:
            self._index_url = configured_index_url()
        return self._index_url

    def releases(self, project: str) -> list[Release]:
        name = canonicalize_name(project)
        if name not in self._memory:
            self._memory[name] = releases_from_json(name, self._payload(name))
        return self._memory[name]

    def _payload(self, name: str) -> dict[str, Any]:
        cached = self.cache_dir / f"{name}.json"
        payload = self._cached(cached)
        if payload is not None:
            return payload
        payload = self._fetch(name)
        atomic.write_atomic(cached, json.dumps({"format": CACHE_FORMAT,
                                               "index_url": self.index_url,
                                               "payload": payload}))
        return payload

    def _cached(self, path: Path) -> dict[str, Any] | None:
        """The cached page if fresh and intact; anything else (old, corrupt, another format or
        index) is a miss, fetched again."""
        try:
            if time.time() - path.stat().st_mtime >= self.ttl_s:
                return None
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if (not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT
                or entry.get("index_url") != self.index_url
                or not isinstance(entry.get("payload"), dict)):
            return None
        payload: dict[str, Any] = entry["payload"]
        return payload

    def _fetch(self, name: str) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.index_url}{name}/", headers={"Accept": _ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=60, context=ssl.create_default_context()) \
                    as response:
                payload: dict[str, Any] = json.load(response)
                return payload
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UsageError(f"the package index has no project '{name}'",
                                 "check the case's package name in the matrix file") from None
            raise IndexUnavailable(f"the package index answered HTTP {exc.code} for '{name}'",
                              "retry later or check your index settings") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise IndexUnavailable(f"cannot read the package index for '{name}': {exc}",
                              "check the network and your pip/uv index settings") from None

    def download(self, dist: DistFile, dest_dir: Path) -> Path:
        """Fetch one file into ``dest_dir`` (kept when its hash matches), verifying sha256."""

        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / dist.filename
        if target.exists() and file_sha256(target) == dist.sha256:
            return target
        digest = hashlib.sha256()
        # Raising inside the block leaves no partial file; the file appears once verified.
        with atomic.atomic_file(target) as out:
            try:
                with urllib.request.urlopen(dist.url, timeout=120,
                                            context=ssl.create_default_context()) as response:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                raise IndexUnavailable(f"cannot download {dist.filename}: {exc}",
                                       "check the network and retry") from None
            if dist.sha256 and digest.hexdigest() != dist.sha256:
                raise IndexUnavailable(f"{dist.filename}: sha256 mismatch after download",
                                       "the index or a proxy altered the file; retry") from None
        return target


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
