"""The local provider: an interpreter already on this machine (pyenv, uv, python.org builds)
copied onto a plain Debian root of the oldest suite whose glibc it runs on, then checked in the
image as the sandbox runs cells."""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from repro_matrix import atomic
from repro_matrix.containers import interpreters, sandbox
from repro_matrix.containers.bases import debian
from repro_matrix.containers.engine import LABEL, ContainerEngine
from repro_matrix.containers.interpreters import Interpreter
from repro_matrix.model import BaseImage, ProviderSettings

_IMAGES = "repro_matrix.images"  # the top-level images/ folder, shipped as package data


def _image_file(name: str) -> str:
    """A file of images/, the same in an installed tool and in a checkout."""
    return resources.files(_IMAGES).joinpath(name).read_text(encoding="utf-8")


# Bumped when the recipe of a local base changes, so older bases are not taken as present.
_LOCAL_RECIPE = "1"


# Folders the sandbox mounts over (its /tmp is a tmpfs, the repro goes to /repro): a prefix
# there would be hidden at run time, so it is installed under /opt instead.
_HIDDEN_AT_RUN_TIME = (Path(sandbox.WORKDIR), Path(sandbox.REPRO_DIR))


def install_path(interpreter: Interpreter) -> Path:
    """Where the prefix goes in the image: its own path, so a RUNPATH into it stays right."""
    if any(interpreter.prefix.is_relative_to(hidden) for hidden in _HIDDEN_AT_RUN_TIME):
        return Path("/opt/repro-matrix/python") / interpreter.version
    return interpreter.prefix


_GLIBC_SCAN = "glibc-scan-1"  # the format of a remembered scan (a new one rescans)


def _fingerprint(interpreter: Interpreter, dockerfile: str) -> str:
    """Same recipe, Dockerfile and interpreter files (by size and time): same base."""
    digest = hashlib.sha256(f"{_LOCAL_RECIPE}\0{interpreter.prefix}\0{dockerfile}".encode())
    _add_stats(digest, interpreters.elf_files(interpreter)[:2])  # the executable and libpython
    return digest.hexdigest()[:10]


def _add_stats(digest: Any, paths: Iterable[Path]) -> None:
    """Each file's path, size and time into ``digest``: what names its content here."""
    for path in paths:
        stat = path.stat()
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())


def local_reference(interpreter: Interpreter, suite: str, fingerprint: str) -> str:
    return (f"repro-matrix/base:py{interpreter.version}-{interpreter.origin}-{suite}-"
            f"{fingerprint}")


def render_local_dockerfile(interpreter: Interpreter, suite: str, target: Path,
                            library_path: bool) -> str:
    """The Dockerfile that puts a prefix (as prefix.tar) onto the suite's root: pure."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_image_file("local-base.Dockerfile.j2")).render(
        root=debian.root_reference(suite), suite=suite, python=interpreter.python,
        version=interpreter.version, origin=interpreter.origin, prefix=str(interpreter.prefix),
        target=str(target),
        parents=interpreters.parents_to_traverse(target), library_path=library_path)


def _skipped(python: str, relative: str) -> bool:
    """Parts of a prefix a cell never needs: the test suite, static libraries."""
    parts = relative.split("/")
    if len(parts) >= 3 and parts[0] == "lib" and parts[1] == f"python{python}":
        inner = parts[2:]
        if inner[0] == "test" or any(part in ("tests", "idle_test") for part in inner):
            return True
        if inner[0].startswith("config-") and relative.endswith(".a"):
            return True
    return False


def _prefix_tar(interpreter: Interpreter, target: Path, tarball: Path) -> None:
    """The prefix as a tar rooted at /, world-readable (the sandbox runs as uid 65534)."""
    arc_root = str(target).lstrip("/")

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        relative = info.name[len(arc_root):].lstrip("/")
        if relative and _skipped(interpreter.python, relative):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode |= 0o444
        if info.isdir() or info.mode & 0o100:
            info.mode |= 0o111
        return info

    with tarfile.open(tarball, "w") as archive:
        archive.add(str(interpreter.prefix), arcname=arc_root, filter=keep)


def base(engine: ContainerEngine, python: str, settings: ProviderSettings, work_dir: Path,
           build: bool, environ: Mapping[str, str]) -> BaseImage:
    found = interpreters.find(python, dict(settings.interpreters), environ,
                              interpreters.uv_python_dir(environ))
    if isinstance(found, str):
        return BaseImage.unavailable(python, "local", found)
    elf_files = interpreters.elf_files(found)
    needed = _glibc_needed(elf_files, work_dir.parent / "base-checks")
    suite = interpreters.oldest_suite(needed)
    if suite is None:
        return BaseImage.unavailable(python, "local", f"{found.describe()} needs glibc "
                                     f"{needed[0]}.{needed[1]}, newer than any known Debian "
                                     "suite")
    target = install_path(found)
    library_path = interpreters.is_shared_build(found) and \
        not interpreters.keeps_runpath(elf_files[0].read_bytes(), target)
    dockerfile = render_local_dockerfile(found, suite, target, library_path)
    reference = local_reference(found, suite, _fingerprint(found, dockerfile))
    image_id = engine.image_id(reference)
    if image_id is None and not build:
        return BaseImage.unavailable(python, "local", f"{reference} not present locally")
    if image_id is None:
        failure = debian.plain_root(engine, suite, work_dir)
        if failure:
            return BaseImage.unavailable(python, "local", failure)
        image_id, failure = _build_local(engine, found, target, dockerfile, reference,
                                         work_dir)
        if image_id is None:
            return BaseImage.unavailable(python, "local", failure)
    verdict = _checked(engine, image_id, python, work_dir.parent / "base-checks")
    if verdict.problem:
        return replace(BaseImage.unavailable(python, "local", verdict.problem), suite=suite)
    relocated = install_path(found) != found.prefix
    source = (f"{found.describe()} on debian {suite} (needs glibc {needed[0]}.{needed[1]})"
              + (f", installed at {install_path(found)}" if relocated else "")
              + "".join(f"; {note}" for note in verdict.notes if note.startswith("built without")))
    return BaseImage(python=python, provider="local", reference=reference,
                     interpreter=f"python{python}", source=source,
                     interpreter_version=found.version, image_id=image_id, suite=suite,
                     notes="; ".join(verdict.notes))


def _build_local(engine: ContainerEngine, interpreter: Interpreter, target: Path, dockerfile: str,
                 reference: str, work_dir: Path) -> tuple[str | None, str]:
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"local-{interpreter.version}-",
                                     dir=work_dir) as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(dockerfile)
        _prefix_tar(interpreter, target, context / "prefix.tar")
        image_id, log = engine.build(context, reference, labels={
            f"{LABEL}.kind": "base", f"{LABEL}.python-version": interpreter.version,
            f"{LABEL}.source": interpreter.describe()})
    if image_id is None:
        last = log.strip().splitlines()[-1] if log.strip() else "no log"
        return None, f"building {reference} failed: {last[:200]}"
    return image_id, ""


_PROBE = "interpreter-probe.py"


def _glibc_needed(elf_files: list[Path], remembered: Path) -> tuple[int, int]:
    """``glibc_needed_by`` of an interpreter's files, remembered by their paths, sizes and
    times (as ``_fingerprint`` names a base): the scan reads tens of MiB per interpreter, on
    every run."""
    digest = hashlib.sha256(_GLIBC_SCAN.encode())
    _add_stats(digest, elf_files)
    entry = remembered / f"glibc-{digest.hexdigest()[:24]}.json"
    try:
        major, minor = json.loads(entry.read_text())["glibc"]
        return int(major), int(minor)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not scanned yet (or an unreadable entry): scan now
    needed = interpreters.glibc_needed_by(elf_files)
    atomic.write_atomic(entry, json.dumps({"glibc": list(needed)}))
    return needed


def _checked(engine: ContainerEngine, image_id: str, python: str,
             remembered: Path) -> interpreters.ProbeVerdict:
    """``_check``'s verdict, remembered per image and probe once it passed: an image never
    changes, and the check costs a container per Python on every run."""
    probe = hashlib.sha256(_image_file(_PROBE).encode()).hexdigest()[:12]
    entry = remembered / f"{image_id.removeprefix('sha256:')}-{probe}.json"
    try:
        return interpreters.ProbeVerdict("", tuple(json.loads(entry.read_text())["notes"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not checked yet (or an unreadable entry): check now
    verdict = _check(engine, image_id, python)
    if not verdict.problem:
        atomic.write_atomic(entry, json.dumps({"notes": list(verdict.notes)}))
    return verdict


def _check(engine: ContainerEngine, image_id: str, python: str) -> interpreters.ProbeVerdict:
    """Run the interpreter in the base as the sandbox runs cells (uid 65534, no network) and
    check its extension modules find every shared library."""
    raw = engine.run(image_id, [f"python{python}", f"{sandbox.REPRO_DIR}/{_PROBE}"],
                     {_PROBE: _image_file(_PROBE).encode()}, timeout_s=120,
                     labels={f"{LABEL}.kind": "base-check"})
    return interpreters.judge_probe(raw.exit_code, raw.output, python)
