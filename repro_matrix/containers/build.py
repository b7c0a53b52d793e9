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
from packaging.version import Version

from repro_matrix import atomic
from repro_matrix.containers import sandbox
from repro_matrix.containers.engine import LABEL, ContainerEngine
from repro_matrix.errors import EngineError, HarnessError
from repro_matrix.model import BaseImage, BuildOutcome, Lock, Pin

TEMPLATE = "cell.Dockerfile.j2"  # the tools image every cell image is committed from
INSTALL_TEMPLATE = "cell-install.sh.j2"  # what a cell's container runs before its commit
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


def render_install(lock: Lock, import_name: str, cell_label: str, uv: str = "") -> str:
    """The script that installs a cell's lock in a container of its tools image and checks the
    import: pure, so golden tests can pin it. With ``uv``, uv installs the lock, not pip."""
    return _template(INSTALL_TEMPLATE).render(
        uv=uv, import_name=import_name, import_failed=IMPORT_FAILED, cell_label=cell_label,
        venv_python=sandbox.VENV_PYTHON,
        # pip before 10 has no build isolation, and no option to turn it off.
        no_build_isolation="--no-build-isolation " if Version(_pip(lock).version) >= Version("10")
        else "")


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
        self.retry_failures = retry_failures
        self._listed: Future[dict[str, str]] | None = None
        self.uv = _uv_binary() if use_uv else None  # (path, "uv X.Y.Z"), or pip for every cell
        self._uv_mutex = threading.Lock()
        self._uv_bases: dict[str, BaseImage | None] = {}  # base image id → it with uv added
        self._tools_mutex = threading.Lock()
        self._tools_mutexes: dict[str, threading.Lock] = {}  # tools tag → its build's
        self._tools: dict[str, tuple[str | None, str]] = {}  # tools tag → (image id, log)

    def list_present(self) -> None:
        """Ask the engine for every cell image now, in the background: one listing instead of
        one lookup per cell (a rerun with nothing to build is mostly lookups)."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="list-images")
        self._listed = pool.submit(self.engine.tagged, REPOSITORY)
        pool.shutdown(wait=False)  # the listing goes on; nothing else is submitted

    def _present(self, tag: str) -> str | None:
        """The image ``tag`` names, if the engine has it (listed at the start, else asked)."""
        if self._listed is not None:
            try:
                found = self._listed.result().get(tag)
            except EngineError:
                found = None  # asked one by one instead
            if found:
                return found
        return self.engine.image_id(tag)  # built since the listing, or never listed

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
        with_uv = self._with_uv(base) if uv_can_install(base.python, lock) else None
        if with_uv is not None:
            base = with_uv
        uv = UV_IN_IMAGE if with_uv else ""
        dockerfile = render_dockerfile(base, lock, uv=uv)
        script = render_install(lock, import_name, cell_label, uv=uv)
        tag = image_tag(dockerfile + script, lock, base)
        existing = self._present(tag)
        if existing:
            return BuildOutcome(ok=True, image_ref=tag, image_id=existing, log_excerpt="")
        failure = self.failures_dir / f"{tag.split(':')[1]}.json"
        remembered = None if self.retry_failures else _remembered(failure)
        if remembered is not None:
            return remembered
        case_id = cell_label.split("/")[0]
        outcome = self._build(base, dockerfile, script, lock, tag, {
            f"{LABEL}.kind": "cell", f"{LABEL}.case": case_id, f"{LABEL}.cell": cell_label})
        if not outcome.ok and not outcome.interrupted:
            atomic.write_atomic(failure, json.dumps({"format": FAILURE_FORMAT,
                                                    **outcome.__dict__}))
        elif outcome.ok:
            failure.unlink(missing_ok=True)  # retried and built: forget the failure
        return outcome

    def _build(self, base: BaseImage, dockerfile: str, script: str, lock: Lock, tag: str,
               labels: dict[str, str]) -> BuildOutcome:
        """The tools image (once per base and tools), then the lock installed in a container of
        it, committed as ``tag``."""
        tools, log = self._tools_image(base, dockerfile, lock)
        if tools is None:
            return BuildOutcome(ok=False, image_ref=tag, image_id="", log_excerpt=_excerpt(log),
                                failed_step="install", interrupted=killed(log))
        files = {f"wheelhouse/{pin.filename}": (self.wheelhouse / pin.filename).read_bytes()
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
