"""Resolve era-correct locks with uv, choose each pin's file for the target, fill the wheelhouse.

A lock is keyed by its inputs and resolved once; failures are returned as data, so the caller can
move the era cutoff and try again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import sys
import sysconfig
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from repro_matrix import atomic, cpu
from repro_matrix.errors import HarnessError, IndexUnavailable, ResolveToolError
from repro_matrix.model import DistFile, EraPolicy, Lock, Pin, Release
from repro_matrix.resolve.index import IndexClient, file_sha256

# Oldest glibc among the supported base images (Debian bullseye): wheels newer than this are out.
_GLIBC_FLOOR = 31
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def era_cutoffs(upload_time: datetime | None, python_release: date, today: date,
                policy: EraPolicy) -> tuple[str, ...]:
    """Cutoffs to try, in order: the later of the release and the interpreter's own release, one
    step later (fixes that came after the interpreter), then halving back towards the release's
    own era (its contemporaries, before later majors of its dependencies broke it), and that era
    itself; attempts still left go further forward, a step at a time (a release newer than the
    interpreter has no earlier era, but its dependencies' first releases may need later fixes).
    A cutoff ends a UTC day.
    """
    released = upload_time.astimezone(timezone.utc).date() if upload_time else python_release
    first = max(released, python_release)
    span = first - released
    step = timedelta(days=policy.step_days)
    ordered = [first, first + step, released + span / 2, released + span / 4, released,
               *(first + step * k for k in range(2, policy.max_attempts))]
    days: list[date] = []
    for day in ordered:
        day = min(day, today)
        if day not in days and len(days) < policy.max_attempts:
            days.append(day)
    return tuple(_end_of_day(day) for day in days)


def _end_of_day(day: date) -> str:
    return f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z"


def _instant(cutoff: str) -> datetime:
    return datetime.fromisoformat(cutoff.replace("Z", "+00:00"))


def package_cutoffs(requirements: Sequence[str], cutoff: str,
                    releases_of: Callable[[str], Sequence[Release]],
                    ) -> tuple[tuple[str, str], ...]:
    """Per-package cutoffs that let pins newer than ``cutoff`` resolve (sorted by name).

    A requirement whose specifier admits no release uploaded by ``cutoff`` (a pin, or a lower
    bound, newer than the cell's era) gets the end of the upload day of the oldest release it
    admits: the pin exists, and nothing of that package newer than needed. A requirement that
    some era release satisfies gets none (the era decides it, as before); one the index cannot
    tell about is left to the resolver, which says what is wrong with it.
    """
    limit = _instant(cutoff)
    found: dict[str, str] = {}
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.url:
            continue
        name = str(canonicalize_name(requirement.name))
        try:
            releases = releases_of(name)
        except HarnessError:
            continue
        admitted = [r for r in releases if r.upload_time is not None and not r.yanked
                    and _contains(requirement.specifier, r.version)]
        # A yanked release counts only when nothing else is admitted (an exact pin to it).
        admitted = admitted or [r for r in releases if r.upload_time is not None
                                and _contains(requirement.specifier, r.version)]
        times = [r.upload_time for r in admitted if r.upload_time is not None]
        if not times or any(t <= limit for t in times):
            continue
        day = _end_of_day(min(times).astimezone(timezone.utc).date())
        found[name] = max(found.get(name, ""), day)
    return tuple(sorted(found.items()))


def _contains(specifier: SpecifierSet, version: str) -> bool:
    parsed = _parsed_version(version)
    return parsed is not None and specifier.contains(parsed)


@functools.cache
def _parsed_version(text: str) -> Version | None:
    """A release's version, parsed once per process: every lock checks its pins against every
    release of each package, and parsing was most of a no-change rerun's resolve stage."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def target_tags(python: str, machine: str | None = None) -> list[Tag]:
    """Wheel tags a CPython ``python`` on glibc Linux accepts, best first."""
    arch = machine or platform.machine()
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(_GLIBC_FLOOR, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    version = tuple(int(part) for part in python.split("."))
    interpreter = f"cp{version[0]}{version[1]}"
    return [*cpython_tags(version, platforms=platforms),
            *compatible_tags(version, interpreter=interpreter, platforms=platforms)]


def choose_file(files: Sequence[DistFile], tags: Sequence[Tag],
                allowed_hashes: set[str]) -> DistFile | None:
    """The best wheel for ``tags`` among files whose hash the lock allows, else the sdist."""
    rank = {tag: i for i, tag in enumerate(tags)}
    best: tuple[int, DistFile] | None = None
    sdist = None
    for dist in files:
        if allowed_hashes and dist.sha256 not in allowed_hashes:
            continue
        if dist.filename.endswith(".whl"):
            positions = [rank[t] for t in parse_wheel_filename(dist.filename)[3] if t in rank]
            if positions and (best is None or min(positions) < best[0]):
                best = (min(positions), dist)
        elif dist.filename.endswith((".tar.gz", ".zip", ".tar.bz2")):
            sdist = sdist or dist
    return best[1] if best else sdist


def parse_compiled(text: str) -> dict[str, tuple[str, set[str]]]:
    """Map canonical name to (version, allowed sha256s) from ``uv pip compile`` output."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = ""
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            current = str(canonicalize_name(match.group(1)))
            pins[current] = (match.group(2), set())
        if current:
            pins[current][1].update(_HASH.findall(line))
    return pins


def tool_pin(name: str, releases: Sequence[Release], python: str, cutoff: str,
             tags: Sequence[Tag]) -> Pin | None:
    """The build tool ``name`` as of ``cutoff``, read from its index page: the newest final
    release with a file uploaded by ``cutoff`` whose requires-python admits ``python`` and that
    fits ``tags`` (what uv chooses for a tool without dependencies, without running uv)."""
    moment = datetime.fromisoformat(cutoff.replace("Z", "+00:00"))
    target = Version(python)
    for release in sorted(releases, key=lambda r: Version(r.version), reverse=True):
        version = Version(release.version)
        if version.is_prerelease or version.is_devrelease:
            continue
        files = [f for f in release.files
                 if not f.yanked and f.upload_time is not None and f.upload_time <= moment
                 and _admits(f.requires_python, target)]
        chosen = choose_file(files, tags, set())
        if chosen is not None:
            return Pin(str(canonicalize_name(name)), release.version, chosen.filename,
                       chosen.sha256)
    return None


def _admits(requires_python: str | None, python: Version) -> bool:
    """Whether a file's requires-python admits the target Python X.Y (an unreadable one
    admits it, as installers read it)."""
    if not requires_python:
        return True
    try:
        return python in SpecifierSet(requires_python, prereleases=True)
    except InvalidSpecifier:
        return True


@dataclass(frozen=True)
class ResolveFailure:
    """Why no lock could be made for one cutoff (cell data, not an exception)."""

    cutoff: str
    detail: str


class Resolver:
    """Makes locks for (requirement, Python, cutoff) and fetches their files into a wheelhouse."""

    def __init__(self, index: IndexClient, cache_dir: Path) -> None:
        self.index = index
        self.locks_dir = cache_dir / "locks"
        self.wheelhouse = cache_dir / "wheelhouse"
        self.uv = find_uv()
        self._guard = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._verified: set[str] = set()

    def lock(self, requirement: str, python: str, cutoff: str, tools_cutoff: str,
             extra: Sequence[str] = ()) -> Lock | ResolveFailure:
        """Lock ``requirement`` together with the repro's ``extra`` requirements as of
        ``cutoff``; build tools as of ``tools_cutoff``."""
        # Without extras the requirement is a string, as it was before extras existed.
        wanted: str | list[str] = [requirement, *extra] if extra else requirement
        # Pins newer than the era get their own cutoff, part of the key when there are any (a
        # lock cached without them, a failure most likely, is never taken for one with them).
        pinned = package_cutoffs([requirement, *extra], cutoff, self.index.releases)
        inputs: list[object] = [wanted, python, cutoff, tools_cutoff, platform.machine(),
                                _GLIBC_FLOOR]
        if pinned:
            inputs.append(dict(pinned))
        # The format is in the key too: locks of an older harness (build tools resolved by uv)
        # and of this one sit side by side and never stand in for each other.
        inputs.append(f"format {LOCK_FORMAT}")
        key = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24]
        with self._lock_for(key):
            cached = _read_lock(self.locks_dir / f"{key}.json")
            if cached is not None:
                return cached
            result = self._resolve([requirement, *extra], python, cutoff, tools_cutoff, pinned)
            if isinstance(result, Lock) or not is_transient(result.detail):
                _write_json(self.locks_dir / f"{key}.json", _lock_to_json(result))
            return result

    def ensure_files(self, lock: Lock) -> None:
        """Every file of ``lock`` is in the wheelhouse with its hash; a damaged or missing one is
        fetched again (a cached lock skips the download and its check). Once per process."""
        for pin in (*lock.runtime, *lock.build):
            with self._lock_for(f"file:{pin.filename}"):
                if pin.filename in self._verified:
                    continue
                wheel = self.wheelhouse / pin.filename
                if pin.sha256 and not _intact(wheel, pin.sha256):
                    dist = next((f for r in self.index.releases(pin.name) for f in r.files
                                 if f.filename == pin.filename), None)
                    if dist is None:
                        raise IndexUnavailable(f"{wheel}: damaged, and the index no longer has it",
                                          "delete the cache's locks folder and run again")
                    self.index.download(dist, self.wheelhouse)
                self._verified.add(pin.filename)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def _resolve(self, requirements: list[str], python: str, cutoff: str,
                 tools_cutoff: str, pinned: tuple[tuple[str, str], ...] = (),
                 ) -> Lock | ResolveFailure:
        tags = target_tags(python)
        try:
            runtime = self._pins(requirements, python, cutoff, tags, host_build_tools=True,
                                 pinned=pinned)
            has_sdist = any(not pin.filename.endswith(".whl") for pin in runtime)
            tools = ["pip", "setuptools", "wheel"] if has_sdist else ["pip"]
            build = self._tool_pins(tools, python, tools_cutoff, tags)
        except _Unresolvable as exc:
            return ResolveFailure(cutoff, str(exc))
        return Lock(cutoff=cutoff, runtime=runtime, build=build, package_cutoffs=pinned)

    def _tool_pins(self, tools: list[str], python: str, cutoff: str,
                   tags: list[Tag]) -> tuple[Pin, ...]:
        """The build tools, which have no dependencies, from the index pages (``tool_pin``):
        a second uv run per lock cost as much as the lock itself."""
        pins = []
        for name in tools:
            pin = tool_pin(name, self.index.releases(name), python, cutoff, tags)
            if pin is None:
                raise _Unresolvable(f"{name}: no release by {cutoff} for CPython {python}")
            pins.append(pin)
        return tuple(sorted(pins, key=lambda pin: pin.name))

    def _pins(self, requirements: list[str], python: str, cutoff: str,
              tags: list[Tag], host_build_tools: bool,
              pinned: tuple[tuple[str, str], ...] = ()) -> tuple[Pin, ...]:
        compiled = self._compile(requirements, python, cutoff, host_build_tools, pinned)
        pins = []
        for name, (version, hashes) in sorted(compiled.items()):
            release = next((r for r in self.index.releases(name)
                            if Version(r.version) == Version(version)), None)
            chosen = choose_file(release.files, tags, hashes) if release else None
            if chosen is None:
                raise _Unresolvable(f"{name}=={version}: no file for CPython {python} on Linux")
            # Fetched by ensure_files, in its own stage: a resolution only chooses the files.
            pins.append(Pin(name, version, chosen.filename, chosen.sha256))
        return tuple(pins)

    def _compile(self, requirements: list[str], python: str, cutoff: str,
                 host_build_tools: bool, pinned: tuple[tuple[str, str], ...] = (),
                 ) -> dict[str, tuple[str, set[str]]]:
        command = compile_command(self.uv, python, cutoff, self.index.index_url, pinned,
                                  host_build_tools)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
        # cpu.run: uv's CPU seconds count towards the stage clock's "resolve".
        proc = cpu.run(command, input="\n".join(requirements) + "\n", env=env, timeout=600)
        if proc.returncode != 0:
            raise _Unresolvable(_tail(proc.stderr))
        return parse_compiled(proc.stdout)


def compile_command(uv: str, python: str, cutoff: str, index_url: str,
                    pinned: Sequence[tuple[str, str]], host_build_tools: bool,
                    build_python: str = sys.executable) -> list[str]:
    """The ``uv pip compile`` of one lock (requirements on stdin).

    ``--python`` names the interpreter that builds old sdists' metadata on the host: this
    process's own, which is the one uv falls back to under nox anyway (the active venv). Left
    to discovery, uv first looks for a pythonX.Y of the *target* version on PATH for every
    lock, and a miss is not cached: behind pyenv's shims each lookup is a shell script that
    fails, which cost ~0.5 CPU-seconds per lock, eight times the resolution itself.
    """
    return [
        uv, "pip", "compile", "-", "--quiet", "--no-header", "--generate-hashes",
        "--python", build_python,
        "--python-version", python,
        "--python-platform", f"{platform.machine()}-manylinux_2_{_GLIBC_FLOOR}",
        "--exclude-newer", cutoff,
        "--index-url", index_url,
        *exclude_newer_package_options(pinned, host_build_tools),
    ]


def exclude_newer_package_options(pinned: Sequence[tuple[str, str]],
                                  host_build_tools: bool) -> list[str]:
    """uv's per-package cutoffs: the pins' own, and today's for the host-side build tools."""
    cutoffs = dict(pinned)
    if host_build_tools:
        # Metadata of old sdists is built on the host: era setuptools fails on a modern host
        # interpreter, so the host-side build tools are today's (they do not enter the lock;
        # today is later than any pin's own cutoff).
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        cutoffs.update(setuptools=now, wheel=now)
    options = []
    for name, day in cutoffs.items():
        options += ["--exclude-newer-package", f"{name}={day}"]
    return options


# Beside the wheelhouse: for each file whose hash was checked, its hash, size and time.
_STAMPS = ".checked"


def _intact(wheel: Path, sha256: str) -> bool:
    """Whether ``wheel`` has the hash ``sha256``: hashed once, then trusted while its size and
    time are those it was hashed with (a rerun would hash 100 MiB of wheels to learn nothing)."""
    try:
        stat = wheel.stat()
    except OSError:
        return False
    seen = f"{sha256} {stat.st_size} {stat.st_mtime_ns}"
    stamp = wheel.parent / _STAMPS / wheel.name
    try:
        if stamp.read_text() == seen:
            return True
    except OSError:
        pass
    if file_sha256(wheel) != sha256:
        return False
    atomic.write_atomic(stamp, seen)
    return True


class _Unresolvable(Exception):
    """Internal: this cutoff gives no installable environment."""


_TRANSIENT = re.compile(r"error sending request|failed to fetch|dns|timed? ?out|connection|"
                        r"network|temporar|status code 5\d\d", re.IGNORECASE)


def is_transient(detail: str) -> bool:
    """A resolution failure that may pass (network, index trouble): never remembered on disk.

    Anything else (no solution, a build that fails) depends only on the lock's inputs.
    """
    return bool(_TRANSIENT.search(detail))


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def find_uv() -> str:
    """The uv binary: the uv package's, else on PATH, else beside this interpreter."""
    candidates = [shutil.which("uv"), str(Path(sysconfig.get_path("scripts")) / "uv")]
    try:
        from uv import find_uv_bin

        candidates.insert(0, find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise ResolveToolError("uv is not installed", "pip install uv (nox -s matrix does this)")


# The on-disk format of cached locks; entries written before it had a field are format 1.
# Format 2: build tools read from the index pages (tool_pin), not resolved by uv.
LOCK_FORMAT = 2


def _read_lock(path: Path) -> Lock | ResolveFailure | None:
    """A cached lock; a missing, corrupt or other-format entry is a miss (resolved again)."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("format", 1) != LOCK_FORMAT:
            return None
        return _lock_from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return None


def _lock_to_json(result: Lock | ResolveFailure) -> dict[str, object]:
    if isinstance(result, ResolveFailure):
        return {"format": LOCK_FORMAT, "failure": asdict(result)}
    return {"format": LOCK_FORMAT, "lock": asdict(result)}


def _lock_from_json(data: dict[str, object]) -> Lock | ResolveFailure:
    if "failure" in data:
        return ResolveFailure(**data["failure"])  # type: ignore[arg-type]
    raw = data["lock"]
    assert isinstance(raw, dict)
    return Lock(cutoff=raw["cutoff"], runtime=tuple(Pin(**p) for p in raw["runtime"]),
                build=tuple(Pin(**p) for p in raw["build"]),
                package_cutoffs=tuple((str(name), str(day))
                                      for name, day in raw.get("package_cutoffs", ())))


def _write_json(path: Path, data: object) -> None:
    atomic.write_atomic(path, json.dumps(data, indent=1))

