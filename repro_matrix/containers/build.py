"""Render cell recipes from images/ templates and build cell images; same inputs, same image."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jinja2
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from repro_matrix import atomic
from repro_matrix.containers import sandbox
from repro_matrix.containers.engine import LABEL, ContainerEngine
from repro_matrix.errors import EngineError, HarnessError
from repro_matrix.model import BaseImage, BuildOutcome, Lock, Pin
from repro_matrix.resolve.index import file_sha256

TEMPLATE = "cell.Dockerfile.j2"  # the tools image every cell image is committed from
INSTALL_TEMPLATE = "cell-install.sh.j2"  # what a cell's container runs before its commit
WHEELS_TEMPLATE = "sdist-wheels.sh.j2"  # builds a lock's sdists as wheels, once per tools image
REPOSITORY = "repro-matrix/cell"
TOOLS_REPOSITORY = "repro-matrix/tools"
UV_FROM = (3, 8)  # the oldest Python uv installs into; older ones keep the era's pip
UV_IN_IMAGE = "/opt/repro-matrix/bin/uv"  # where the installer base puts uv
# What the install script prints when the installed package does not import (images/).
IMPORT_FAILED = "repro-matrix: the installed package does not import"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FAILED_STEP = re.compile(r"The command '/bin/sh -c (.*?)' returned a non-zero code", re.S)
# A committed cell image runs what a run asks for; by default, the venv's Python.
_CELL_CHANGES = ['CMD ["python"]']


def image_file(name: str) -> str:
    """A file of the top-level images/ folder, read as the package data repro_matrix.images
    (the same in an installed tool and in a checkout)."""
    return resources.files("repro_matrix.images").joinpath(name).read_text(encoding="utf-8")


def template_source() -> str:
    """The tools image's Dockerfile template."""
    return image_file(TEMPLATE)


@functools.cache
def _template(name: str) -> jinja2.Template:
    """A template of images/, compiled once per process (a rerun renders it for every cell)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(image_file(name))


def uv_can_install(python: str, lock: Lock) -> bool:
    """Whether uv installs this cell: every pin a wheel (sdists build through the era's pip and
    setuptools, as they did then) on a Python uv supports."""
    return (tuple(int(part) for part in python.split(".")) >= UV_FROM
            and all(pin.filename.endswith(".whl") for pin in (*lock.runtime, *lock.build)))


def render_dockerfile(base: BaseImage, lock: Lock, uv: str = "") -> str:
    """The Dockerfile of a cell's tools image (``base``, a venv, the lock's build tools): pure,
    so golden tests can pin it. With ``uv`` (its path in ``base``), uv installs the tools."""
    pip = _pip(lock)
    return _template(TEMPLATE).render(
        uv=uv, base_reference=base.reference, interpreter=base.interpreter,
        pip_wheel=pip.filename, venv=sandbox.VENV, venv_python=sandbox.VENV_PYTHON,
        no_cache_dir=no_cache_dir(pip.version))


def render_install(lock: Lock, import_name: str, cell_label: str, uv: str = "",
                   prebuilt: str = "") -> str:
    """The script that installs a cell's lock in a container of its tools image and checks the
    import: pure, so golden tests can pin it. With ``uv``, uv installs the lock, not pip;
    ``prebuilt`` names the lock's sdists that come built as wheels."""
    return _template(INSTALL_TEMPLATE).render(
        uv=uv, import_name=import_name, import_failed=IMPORT_FAILED, cell_label=cell_label,
        venv_python=sandbox.VENV_PYTHON, prebuilt=prebuilt,
        no_build_isolation=_no_build_isolation(lock))


def _no_build_isolation(lock: Lock) -> str:
    # pip before 10 has no build isolation, and no option to turn it off.
    return "--no-build-isolation " if Version(_pip(lock).version) >= Version("10") else ""


def _pip(lock: Lock) -> Pin:
    return next(p for p in lock.build if p.name == "pip")


def no_cache_dir(pip_version: str) -> str:
    """PIP_NO_CACHE_DIR's value: pip before 19 stores a true value as the cache folder itself
    (and fails on the integer), but reads "0" as no cache; pip 19 on disables it for either."""
    return "0" if Version(pip_version) < Version("19") else "1"


def image_tag(recipe: str, lock: Lock, base: BaseImage, repository: str = REPOSITORY) -> str:
    """A content address: same base image, recipe (Dockerfile, install script) and files give
    the same tag."""
    digest = hashlib.sha256()
    for part in (base.image_id, recipe, lock.requirement_lines(lock.build),
                 lock.requirement_lines(lock.runtime)):
        digest.update(part.encode())
        digest.update(b"\0")
    return f"{repository}:{digest.hexdigest()[:20]}"


def failed_step(log: str) -> str:
    """Which step broke: 'import' when the package did not import, else 'install'."""
    if any(line.strip() == IMPORT_FAILED for line in _ANSI.sub("", log).splitlines()):
        return "import"  # printed on a line of its own (the script only quotes it)
    match = _FAILED_STEP.search(log)
    command = match.group(1) if match else ""
    # A build log of the template's earlier forms: the import check a step of its own.
    return "import" if "-c \"import " in command or "-c 'import " in command else "install"


def without_commands(log: str) -> str:
    """``log`` with each failed step's command left out of the builder's last line: the
    command, tens of flags long, would push the error itself out of a short excerpt (which step
    failed is ``failed_step``'s to tell, from the whole log)."""
    return _FAILED_STEP.sub(lambda m: m[0].replace(f"'/bin/sh -c {m[1]}'", "of the step"), log)


def killed(log: str) -> bool:
    """A step killed by a signal (exit ≥ 128) says nothing about the lock: do not remember it."""
    codes = re.findall(r"returned a non-zero code: (\d+)", log)
    return bool(codes) and int(codes[-1]) >= 128


# The on-disk format of remembered build failures; entries without the field are format 1.
FAILURE_FORMAT = 1


class Builder:
    """Builds cell images from locks; remembers failures by content address for this cache
    (``retry_failures``, as with --rerun, builds them again)."""

    def __init__(self, engine: ContainerEngine, wheelhouse: Path, cache_dir: Path,
                 retry_failures: bool = False, use_uv: bool = True) -> None:
        self.engine = engine
        self.wheelhouse = wheelhouse
        self.failures_dir = cache_dir / "build-failures"
        self.work_dir = cache_dir / "contexts"
        self.wheels_dir = cache_dir / "sdist-wheels"  # tools image → sdist hash → its wheel
        self.retry_failures = retry_failures
        self._listed: Future[dict[str, str]] | None = None
        self._built_mutex = threading.Lock()
        self._built: dict[str, str] = {}  # cell tag → image id, for cells built by this run
        self.uv = _uv_binary() if use_uv else None  # (path, "uv X.Y.Z"), or pip for every cell
        self._uv_mutex = threading.Lock()
        self._uv_bases: dict[str, BaseImage | None] = {}  # base image id → it with uv added
        self._tools_mutex = threading.Lock()
        self._tools_mutexes: dict[str, threading.Lock] = {}  # tools tag → its build's
        self._tools: dict[str, tuple[str | None, str]] = {}  # tools tag → (image id, log)
        self._wheels_mutexes: dict[str, threading.Lock] = {}  # tools tag → its sdists' builds

    def list_present(self) -> None:
        """Ask the engine for every cell image now, in the background: one listing instead of
        one lookup per cell (a rerun with nothing to build is mostly lookups)."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-images")
        self._listed = pool.submit(self.engine.tagged, REPOSITORY)
        pool.shutdown(wait=False)  # the listing goes on; nothing else is submitted

    def _listed_id(self, tag: str) -> str | None:
        """The image ``tag`` names if the start listing has it or this run built it; None
        when neither knows (no listing, or an image that was not there)."""
        with self._built_mutex:
            if tag in self._built:
                return self._built[tag]
        if self._listed is None:
            return None
        try:
            return self._listed.result().get(tag)
        except EngineError:
            return None  # asked one by one instead

    def _with_uv(self, base: BaseImage) -> BaseImage | None:
        """``base`` with the host's uv added (built once per base and uv), or None when uv is
        not found or does not run there: the cell is then installed by pip."""
        if self.uv is None:
            return None
        with self._uv_mutex:
            if base.image_id not in self._uv_bases:
                self._uv_bases[base.image_id] = self._build_uv_base(base, *self.uv)
            return self._uv_bases[base.image_id]

    def _build_uv_base(self, base: BaseImage, uv: Path, version: str) -> BaseImage | None:
        dockerfile = (f"# Generated by repro-matrix: {base.reference} with {version} as the "
                      f"installer.\nFROM {base.reference}\nCOPY uv {UV_IN_IMAGE}\n"
                      f"RUN {UV_IN_IMAGE} --version\n")  # it must run on this base's libc
        digest = hashlib.sha256(f"{base.image_id}\0{version}\0{dockerfile}".encode())
        tag = f"repro-matrix/installer:{digest.hexdigest()[:20]}"
        image_id = self.engine.image_id(tag)
        if image_id is None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
                (Path(tmp) / "Dockerfile").write_text(dockerfile)
                shutil.copy2(uv, Path(tmp) / "uv")
                image_id, _ = self.engine.build(Path(tmp), tag, labels={
                    f"{LABEL}.kind": "installer", f"{LABEL}.installer": version})
        if image_id is None:
            return None
        return replace(base, reference=tag, image_id=image_id)

    def remembered_failures(self) -> int:
        """How many build failures this cache remembers."""
        return len(list(self.failures_dir.glob("*.json"))) if self.failures_dir.is_dir() else 0

    def build(self, base: BaseImage, lock: Lock, import_name: str,
              cell_label: str) -> BuildOutcome:
        """The cell's image. A lock's sdists are built as wheels first, once per tools image
        (``_sdist_wheels``), and the cell installs those; when they do not build as wheels,
        the era's pip installs the sdists in the cell itself, as it always did."""
        if _sdists(lock):
            outcome = self._build_cell(base, lock, import_name, cell_label, prebuild=True)
            if outcome is not None:
                return outcome
        outcome = self._build_cell(base, lock, import_name, cell_label, prebuild=False)
        assert outcome is not None  # only a prebuild gives up
        return outcome

    def _build_cell(self, base: BaseImage, lock: Lock, import_name: str, cell_label: str,
                    prebuild: bool) -> BuildOutcome | None:
        """The image of one recipe: found, remembered as failed, or built; None when the
        recipe installs sdists built as wheels and they did not build."""
        plain = base
        if prebuild and self._wheels_failed(self._wheels_folder(plain, lock), lock):
            return None
        installs_wheels = prebuild or not _sdists(lock)
        with_uv = (self._with_uv(base)
                   if installs_wheels and uv_can_install(base.python, _as_wheels(lock)) else None)
        if with_uv is not None:
            base = with_uv
        uv = UV_IN_IMAGE if with_uv else ""
        dockerfile = render_dockerfile(base, lock, uv=uv)
        prebuilt = " ".join(pin.filename for pin in _sdists(lock)) if prebuild else ""
        script = render_install(lock, import_name, cell_label, uv=uv, prebuilt=prebuilt)
        # The lock as resolved names the image: a wheel built again has other bytes, the same
        # content.
        tag = image_tag(dockerfile + script, lock, base)
        existing = self._listed_id(tag)
        if existing:
            return BuildOutcome(ok=True, image_ref=tag, image_id=existing, log_excerpt="")
        failure = self.failures_dir / f"{tag.split(':')[1]}.json"
        remembered = None if self.retry_failures else _remembered(failure)
        if remembered is not None:
            # Before any lookup: a failed build has no image, and a rerun would otherwise ask
            # the engine once per remembered failure.
            return remembered
        existing = self.engine.image_id(tag)  # built since the listing, or never listed
        if existing:
            return BuildOutcome(ok=True, image_ref=tag, image_id=existing, log_excerpt="")
        sources = {pin.filename: self.wheelhouse / pin.filename for pin in lock.runtime}
        install = lock
        if prebuild:
            wheels = self._sdist_wheels(plain, lock)
            if wheels is None:
                return None
            install = replace(lock, runtime=tuple(wheels[pin.filename][0] if pin.filename in wheels
                                                  else pin for pin in lock.runtime))
            sources.update({pin.filename: path for pin, path in wheels.values()})
        case_id = cell_label.split("/")[0]
        outcome = self._build(base, dockerfile, script, install, sources, tag, {
            f"{LABEL}.kind": "cell", f"{LABEL}.case": case_id, f"{LABEL}.cell": cell_label})
        if not outcome.ok and not outcome.interrupted:
            atomic.write_atomic(failure, json.dumps({"format": FAILURE_FORMAT,
                                                    **outcome.__dict__}))
        elif outcome.ok:
            failure.unlink(missing_ok=True)  # retried and built: forget the failure
            with self._built_mutex:
                self._built[tag] = outcome.image_id
        return outcome

    def _sdist_wheels(self, base: BaseImage, lock: Lock) -> dict[str, tuple[Pin, Path]] | None:
        """Each sdist of ``lock`` (by file name) as a wheel built by the era's pip in the
        lock's pip tools image on ``base`` (its pin, with the wheel's name and hash, and the
        file): built once per tools image and sdist, kept in the cache. None when one does
        not build (a failure is remembered unless killed)."""
        dockerfile = render_dockerfile(base, lock)
        folder = self._wheels_folder(base, lock, dockerfile)
        with self._tools_mutex:
            mutex = self._wheels_mutexes.setdefault(folder.name, threading.Lock())
        with mutex:
            sdists = _sdists(lock)
            if self._wheels_failed(folder, lock):  # (another cell's build, meanwhile)
                return None
            missing = [pin for pin in sdists if not _built_wheel(folder / pin.sha256)]
            if missing and not self._build_wheels(base, dockerfile, lock, missing, folder):
                return None
            found: dict[str, tuple[Pin, Path]] = {}
            for pin in sdists:
                wheel = _built_wheel(folder / pin.sha256)
                if wheel is None:
                    return None
                found[pin.filename] = (replace(pin, filename=wheel.name,
                                               sha256=file_sha256(wheel)), wheel)
            return found

    def _wheels_folder(self, base: BaseImage, lock: Lock, dockerfile: str = "") -> Path:
        """Where the wheels built from sdists by the lock's pip tools image on ``base`` (its
        ``dockerfile``, rendered here when not given) are."""
        tools = image_tag(dockerfile or render_dockerfile(base, lock), replace(lock, runtime=()),
                          base, TOOLS_REPOSITORY)
        return self.wheels_dir / tools.split(":")[1]

    @staticmethod
    def _wheels_failed(folder: Path, lock: Lock) -> bool:
        """Whether one of the lock's sdists is remembered not to build as a wheel there."""
        return any((folder / f"{pin.sha256}.failed").exists() for pin in _sdists(lock))

    def _build_wheels(self, base: BaseImage, dockerfile: str, lock: Lock,
                      sdists: list[Pin], folder: Path) -> bool:
        """Build ``sdists`` as wheels into ``folder`` (one folder per sdist's hash)."""
        tools, _ = self._tools_image(base, dockerfile, lock)
        if tools is None:
            return False  # the cell's own build says why
        files = {f"wheelhouse/{pin.filename}": (self.wheelhouse / pin.filename).read_bytes()
                 for pin in sdists}
        files["wheelhouse/requirements.txt"] = lock.requirement_lines(tuple(sdists)).encode()
        script = _template(WHEELS_TEMPLATE).render(
            venv_python=sandbox.VENV_PYTHON, no_build_isolation=_no_build_isolation(lock))
        built, output, exit_code = self.engine.run_collect(
            tools, ["/bin/sh", "-c", script], "/tmp", files, "/tmp/built")
        by_name = {_wheel_project(name): (name, data) for name, data in built.items()
                   if name.endswith(".whl")}
        if exit_code != 0 or any(canonicalize_name(pin.name) not in by_name for pin in sdists):
            if exit_code is not None and exit_code < 128:  # a signal says nothing of the sdist
                for pin in sdists:
                    atomic.write_atomic(folder / f"{pin.sha256}.failed", output)
            return False
        for pin in sdists:
            name, data = by_name[canonicalize_name(pin.name)]
            with atomic.atomic_file(folder / pin.sha256 / name) as handle:
                handle.write(data)
        return True

    def _build(self, base: BaseImage, dockerfile: str, script: str, lock: Lock,
               sources: dict[str, Path], tag: str, labels: dict[str, str]) -> BuildOutcome:
        """The tools image (once per base and tools), then the lock (its files from
        ``sources``) installed in a container of it, committed as ``tag``."""
        tools, log = self._tools_image(base, dockerfile, lock)
        if tools is None:
            return BuildOutcome(ok=False, image_ref=tag, image_id="", log_excerpt=_excerpt(log),
                                failed_step="install", interrupted=killed(log))
        files = {f"wheelhouse/{pin.filename}": sources[pin.filename].read_bytes()
                 for pin in lock.runtime}
        files["wheelhouse/requirements.txt"] = lock.requirement_lines(lock.runtime).encode()
        image_id, output, exit_code = self.engine.commit_run(
            tools, ["/bin/sh", "-c", script], "/tmp", files, tag, labels, _CELL_CHANGES)
        excerpt = _excerpt(output)
        if image_id is None:
            return BuildOutcome(ok=False, image_ref=tag, image_id="", log_excerpt=excerpt,
                                failed_step=failed_step(output),
                                # Killed (a signal: 128 + its number), not the lock's doing.
                                interrupted=exit_code is None or exit_code >= 128)
        return BuildOutcome(ok=True, image_ref=tag, image_id=image_id, log_excerpt=excerpt)

    def _tools_image(self, base: BaseImage, dockerfile: str, lock: Lock) -> tuple[str | None, str]:
        """The tools image's id (built the first time any cell asks), or None and the build's
        log; one build per tag at a time, the other cells of those tools wait for it."""
        tag = image_tag(dockerfile, replace(lock, runtime=()), base, TOOLS_REPOSITORY)
        with self._tools_mutex:
            tag_mutex = self._tools_mutexes.setdefault(tag, threading.Lock())
        with tag_mutex:
            if tag in self._tools:
                return self._tools[tag]
            image_id = self.engine.image_id(tag)
            log = ""
            if image_id is None:
                self.work_dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=self.work_dir) as tmp:
                    context = Path(tmp)
                    (context / "Dockerfile").write_text(dockerfile)
                    (context / "tools").mkdir()
                    (context / "tools" / "build-requirements.txt").write_text(
                        lock.requirement_lines(lock.build))
                    for pin in lock.build:
                        _link(self.wheelhouse / pin.filename, context / "tools" / pin.filename)
                    image_id, log = self.engine.build(context, tag,
                                                      labels={f"{LABEL}.kind": "tools"})
            if image_id is not None or not killed(log):  # a killed build is tried again
                self._tools[tag] = (image_id, log)
            return image_id, log


@functools.cache
def _uv_binary() -> tuple[Path, str] | None:
    """The uv the resolver uses, and its version line; None when there is none that runs."""
    from repro_matrix.resolve.lock import find_uv  # the resolver's own lookup

    try:
        uv = Path(find_uv()).resolve()
        version = subprocess.run([str(uv), "--version"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.strip()
    except (HarnessError, OSError, subprocess.SubprocessError):
        return None
    return (uv, version) if version else None


def _sdists(lock: Lock) -> tuple[Pin, ...]:
    return tuple(pin for pin in lock.runtime if not pin.filename.endswith(".whl"))


def _as_wheels(lock: Lock) -> Lock:
    """``lock`` as a cell installs it once its sdists are built as wheels (names only)."""
    return replace(lock, runtime=tuple(replace(pin, filename=f"{pin.name}.whl")
                                       for pin in lock.runtime))


def _built_wheel(folder: Path) -> Path | None:
    """The wheel built from one sdist, if the cache has it."""
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def _wheel_project(filename: str) -> str:
    try:
        return str(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        return ""


def _remembered(path: Path) -> BuildOutcome | None:
    """A remembered failure; a missing, corrupt or other-format entry is a miss (built again)."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.pop("format", 1) != FAILURE_FORMAT:
            return None
        return BuildOutcome(**data)
    except (OSError, ValueError, TypeError):
        return None


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _excerpt(log: str, lines: int = 25) -> str:
    kept = [line for line in _ANSI.sub("", log).splitlines()
            if line.strip() and not line.startswith((" ---> ", "Removing intermediate"))]
    return "\n".join(kept[-lines:])
