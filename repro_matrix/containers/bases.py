"""Base images with a given CPython: from a registry, a Debian suite, or an interpreter already
on this machine copied onto a Debian root.

A Python version no provider can supply becomes an unavailable BaseImage carrying the reasons.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from importlib import resources
from pathlib import Path

import jinja2

from repro_matrix import cpu, pythons, store
from repro_matrix.containers import interpreters, sandbox
from repro_matrix.containers.engine import LABEL, Engine
from repro_matrix.containers.interpreters import Interpreter
from repro_matrix.errors import UsageError
from repro_matrix.model import BaseImage, ProviderSettings
from repro_matrix.spec.config import registry_image_problem

_DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
_IMAGES = "repro_matrix.images"  # the top-level images/ folder, shipped as package data


def _image_file(name: str) -> str:
    """A file of images/, the same in an installed tool and in a checkout."""
    return resources.files(_IMAGES).joinpath(name).read_text(encoding="utf-8")
REGISTRY_IMAGE_ENV = "REPRO_MATRIX_REGISTRY_IMAGE"
# `auto` takes, per Python, the first provider in this order that has a base: first among
# images already present (no network, and what an earlier run used), then by pulling or
# building. A registry image is what users of Docker Hub or a mirror expect and costs one pull;
# a Debian suite's own python is built by the distribution for exactly that root, with every
# library from the same archive; an interpreter copied from this machine comes last, because
# it depends on how it was built here (the in-image check guards that).
ORDER = ("registry", "debian", "local")
# Bumped when the recipe of a local base changes, so older bases are not taken as present.
_LOCAL_RECIPE = "1"
_ROOTS_LOCK = threading.Lock()  # two Pythons may want the same Debian root at once


def prepare(engine: Engine, python: str, settings: ProviderSettings,
            work_dir: Path, provider: str | None = None,
            environ: Mapping[str, str] | None = None) -> BaseImage:
    """A usable base image for ``python``, or an unavailable one with every provider's reason."""
    environ = os.environ if environ is None else environ
    chosen = provider or settings.provider
    suites = dict(settings.debian_suites)
    reference = registry_reference(python, settings, environ)
    sources: dict[str, Callable[[bool], BaseImage]] = {
        "registry": lambda build: _registry(engine, python, reference, pull=build),
        "debian": lambda build: _debian(engine, python, suites.get(python), work_dir, build),
        "local": lambda build: _local(engine, python, settings, work_dir, build, environ),
    }
    if chosen != "auto":
        return sources[chosen](True)
    attempts = [(name, partial(sources[name], False)) for name in ORDER]
    attempts += [(name, partial(sources[name], True)) for name in ORDER]
    return choose(python, attempts)


def choose(python: str, attempts: Sequence[tuple[str, Callable[[], BaseImage]]]) -> BaseImage:
    """The first available base of ``attempts`` (tried lazily, in order), carrying why each
    provider before it was passed over (a provider's latest reason); else an unavailable base
    naming every provider's reason."""
    reasons: dict[str, str] = {}
    for name, attempt in attempts:
        found = attempt()
        if found.available:
            passed = tuple((other, why) for other, why in reasons.items() if other != name)
            return replace(found, passed_over=passed)
        reasons.pop(name, None)  # keep insertion order = the order providers were last tried
        reasons[name] = found.unavailable_reason
    return BaseImage(python=python, provider="none", reference="", interpreter="", source="",
                     unavailable_reason="; ".join(f"{n}: {why}" for n, why in reasons.items()),
                     passed_over=tuple(reasons.items()))


def registry_reference(python: str, settings: ProviderSettings,
                       environ: Mapping[str, str]) -> str:
    """The image the registry provider pulls: $REPRO_MATRIX_REGISTRY_IMAGE, else the matrix
    file's base_images.registry_image, else python:X.Y-slim (Docker Hub or the engine's
    registry-mirrors)."""
    template = environ.get(REGISTRY_IMAGE_ENV) or settings.registry_image
    problem = registry_image_problem(template)
    if problem and environ.get(REGISTRY_IMAGE_ENV):
        raise UsageError(f"{REGISTRY_IMAGE_ENV}: {problem}")
    return template.replace("{python}", python)


def _registry(engine: Engine, python: str, reference: str, pull: bool = True) -> BaseImage:
    image_id = engine.image_id(reference)
    why = f"{reference} not present locally"
    if image_id is None and pull:
        image_id, why = engine.pull(reference)
        why = f"cannot pull {reference} ({why})"
    if image_id is None:
        return _unavailable(python, "registry", why)
    return BaseImage(python=python, provider="registry", reference=reference,
                     interpreter=f"python{python}", source=f"registry image {reference}",
                     interpreter_version=engine.image_env(reference).get("PYTHON_VERSION", ""),
                     image_id=image_id)


def debian_reference(python: str, suite: str) -> str:
    return f"repro-matrix/base:py{python}-debian-{suite}"


def _debian(engine: Engine, python: str, suite: str | None, work_dir: Path,
            build: bool) -> BaseImage:
    if suite is None:
        return _unavailable(python, "debian", f"no Debian suite is known to ship Python {python}"
                            " (map one under base_images.debian_suites)")
    reference = debian_reference(python, suite)
    image_id = engine.image_id(reference)
    if image_id is None and not build:
        return _unavailable(python, "debian", f"{reference} not present locally")
    if image_id is None:
        problem = _bootstrap_problem()
        if problem:
            return _unavailable(python, "debian", problem)
        failure = _bootstrap(engine, python, suite, reference, work_dir)
        if failure:
            return _unavailable(python, "debian", failure)
        image_id = engine.image_id(reference)
    labels = engine.image_labels(reference)
    return BaseImage(python=python, provider="debian", reference=reference,
                     interpreter=f"python{python}",
                     source=labels.get(f"{LABEL}.source", f"debian {suite} via debootstrap"),
                     interpreter_version=labels.get(f"{LABEL}.python-version", ""),
                     image_id=image_id or "", suite=suite)


def debian_packages(python: str) -> list[str]:
    """Debian ships distutils apart from the interpreter; pip and setuptools of the 3.11-and-older
    era import it, so those images need it (3.12 dropped distutils altogether)."""
    packages = [f"python{python}"]
    if pythons.sort_key(python) < (3, 12):
        packages.append("python3-distutils")
    return packages


def _unavailable(python: str, provider: str, reason: str) -> BaseImage:
    return BaseImage(python=python, provider=provider, reference="", interpreter="", source="",
                     unavailable_reason=reason)


def _bootstrap_problem() -> str:
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "debootstrap needs root"
    return ""


DEB_CACHE_ENV = "REPRO_MATRIX_DEB_CACHE"
_APT_ARCHIVES = Path("/var/cache/apt/archives")


def deb_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """Where debootstrap keeps the packages it fetches: $REPRO_MATRIX_DEB_CACHE ("off": none),
    else the OS's own package cache when writable. debootstrap checks every package against the
    suite's signed index either way; the cache only spares the downloads."""
    configured = environ.get(DEB_CACHE_ENV, "")
    if configured.lower() in ("off", "0", "no"):
        return None
    if configured:
        folder = Path(configured).resolve()  # debootstrap wants it absolute
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return _APT_ARCHIVES if os.access(_APT_ARCHIVES, os.W_OK) else None


def _debootstrap(suite: str, packages: Sequence[str], root: Path) -> str:
    """debootstrap a minbase root of ``suite`` with ``packages``; '' or why it failed."""
    # Suites newer than the host's debootstrap knows are bootstrapped with the sid script: the
    # script is debootstrap's fourth argument, after the mirror ("": its default mirror).
    script = ([] if (_DEBOOTSTRAP_SCRIPTS / suite).exists()
              else ["", str(_DEBOOTSTRAP_SCRIPTS / "sid")])
    command = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}"]
    cache = deb_cache_dir(os.environ)
    if cache is not None:
        # Two bootstraps fetching one package into a shared folder at once corrupt it: fetch
        # one bootstrap at a time (the network is shared anyway), then install in parallel
        # from the folder, where every package is now present and only checked.
        fetched = root.with_name(f"{root.name}-fetch")
        with _locked(cache):
            failure = _run_debootstrap([*command, "--download-only", f"--cache-dir={cache}",
                                        suite, str(fetched), *script], suite)
        shutil.rmtree(fetched, ignore_errors=True)
        if failure:
            return failure
        command.append(f"--cache-dir={cache}")
    return _run_debootstrap([*command, suite, str(root), *script], suite)


def _run_debootstrap(command: Sequence[str], suite: str) -> str:
    # cpu.run: the CPU of debootstrap (and the dpkg runs under it) counts towards "bases".
    proc = cpu.run(command, timeout=1800)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        return f"debootstrap {suite} failed: {tail}"
    return ""


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (flock on the folder itself: other threads and
    other harness processes wait, nothing is written into it)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _bootstrap(engine: Engine, python: str, suite: str, reference: str,
               work_dir: Path) -> str:
    """debootstrap a minimal root with pythonX.Y and import it; returns '' or why it failed."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"rootfs-{suite}-", dir=work_dir) as tmp:
        root = Path(tmp) / "root"
        packages = debian_packages(python)
        failure = _debootstrap(suite, packages, root)
        if failure:
            return failure
        version = cpu.run(["chroot", str(root), f"python{python}", "-c",
                           "import platform; print(platform.python_version())"]).stdout.strip()
        if not version:
            return f"debootstrap {suite} gave no working python{python}"
        source = (f"debian {suite} via debootstrap --variant=minbase "
                  f"--include={','.join(packages)} (default mirror), {_today()}")
        _import_root(engine, root, Path(tmp) / "rootfs.tar", reference, [
            f'LABEL {LABEL}.managed="1" {LABEL}.source="{source}" '
            f'{LABEL}.python-version="{version}"'])
    return ""


def _import_root(engine: Engine, root: Path, tarball: Path, reference: str,
                 changes: list[str]) -> None:
    cpu.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
    engine.import_rootfs(tarball, reference, changes=[
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        *changes,
    ])


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


# ---- local interpreters --------------------------------------------------------------------


def root_reference(suite: str) -> str:
    return f"repro-matrix/root:debian-{suite}"


def _root(engine: Engine, suite: str, work_dir: Path) -> str:
    """A plain Debian root (no Python) with the libraries CPython's extension modules use,
    bootstrapped on the host (the only place with network) once per suite; '' or why not."""
    reference = root_reference(suite)
    with _ROOTS_LOCK:
        if engine.image_id(reference):
            return ""
        problem = _bootstrap_problem()
        if problem:
            return problem
        packages = pythons.DEBIAN_ROOT_LIBRARIES.get(suite)
        if packages is None:
            return f"no library list for a Debian {suite} root (pythons.DEBIAN_ROOT_LIBRARIES)"
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"root-{suite}-", dir=work_dir) as tmp:
            failure = _debootstrap(suite, packages, Path(tmp) / "root")
            if failure:
                return failure
            source = (f"debian {suite} via debootstrap --variant=minbase "
                      f"--include={','.join(packages)} (default mirror), {_today()}")
            _import_root(engine, Path(tmp) / "root", Path(tmp) / "rootfs.tar", reference,
                         [f'LABEL {LABEL}.managed="1" {LABEL}.source="{source}"'])
    return ""


# Folders the sandbox mounts over (its /tmp is a tmpfs, the repro goes to /repro): a prefix
# there would be hidden at run time, so it is installed under /opt instead.
_HIDDEN_AT_RUN_TIME = (Path(sandbox.WORKDIR), Path(sandbox.REPRO_DIR))


def install_path(interpreter: Interpreter) -> Path:
    """Where the prefix goes in the image: its own path, so a RUNPATH into it stays right."""
    if any(interpreter.prefix.is_relative_to(hidden) for hidden in _HIDDEN_AT_RUN_TIME):
        return Path("/opt/repro-matrix/python") / interpreter.version
    return interpreter.prefix


def _fingerprint(interpreter: Interpreter, dockerfile: str) -> str:
    """Same recipe, Dockerfile and interpreter files (by size and time): same base."""
    digest = hashlib.sha256(f"{_LOCAL_RECIPE}\0{interpreter.prefix}\0{dockerfile}".encode())
    for path in interpreters.elf_files(interpreter)[:2]:  # the executable and libpython
        stat = path.stat()
        digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:10]


def local_reference(interpreter: Interpreter, suite: str, fingerprint: str) -> str:
    return (f"repro-matrix/base:py{interpreter.version}-{interpreter.origin}-{suite}-"
            f"{fingerprint}")


def render_local_dockerfile(interpreter: Interpreter, suite: str, target: Path,
                            library_path: bool) -> str:
    """The Dockerfile that puts a prefix (as prefix.tar) onto the suite's root: pure."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_image_file("local-base.Dockerfile.j2")).render(
        root=root_reference(suite), suite=suite, python=interpreter.python,
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


def _local(engine: Engine, python: str, settings: ProviderSettings, work_dir: Path,
           build: bool, environ: Mapping[str, str]) -> BaseImage:
    found = interpreters.find(python, dict(settings.interpreters), environ,
                              interpreters.uv_python_dir(environ))
    if isinstance(found, str):
        return _unavailable(python, "local", found)
    elf_files = interpreters.elf_files(found)
    needed = interpreters.glibc_needed_by(elf_files)
    suite = interpreters.oldest_suite(needed)
    if suite is None:
        return _unavailable(python, "local", f"{found.describe()} needs glibc "
                            f"{needed[0]}.{needed[1]}, newer than any known Debian suite")
    target = install_path(found)
    library_path = interpreters.is_shared_build(found) and \
        not interpreters.keeps_runpath(elf_files[0].read_bytes(), target)
    dockerfile = render_local_dockerfile(found, suite, target, library_path)
    reference = local_reference(found, suite, _fingerprint(found, dockerfile))
    image_id = engine.image_id(reference)
    if image_id is None and not build:
        return _unavailable(python, "local", f"{reference} not present locally")
    if image_id is None:
        failure = _root(engine, suite, work_dir)
        if failure:
            return _unavailable(python, "local", failure)
        image_id, failure = _build_local(engine, found, target, dockerfile, reference,
                                         work_dir)
        if image_id is None:
            return _unavailable(python, "local", failure)
    verdict = _checked(engine, image_id, python, work_dir.parent / "base-checks")
    if verdict.problem:
        return replace(_unavailable(python, "local", verdict.problem), suite=suite)
    relocated = install_path(found) != found.prefix
    source = (f"{found.describe()} on debian {suite} (needs glibc {needed[0]}.{needed[1]})"
              + (f", installed at {install_path(found)}" if relocated else "")
              + "".join(f"; {note}" for note in verdict.notes if note.startswith("built without")))
    return BaseImage(python=python, provider="local", reference=reference,
                     interpreter=f"python{python}", source=source,
                     interpreter_version=found.version, image_id=image_id, suite=suite,
                     notes="; ".join(verdict.notes))


def _build_local(engine: Engine, interpreter: Interpreter, target: Path, dockerfile: str,
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


def _checked(engine: Engine, image_id: str, python: str,
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
        store.write_atomic(entry, json.dumps({"notes": list(verdict.notes)}), results=False)
    return verdict


def _check(engine: Engine, image_id: str, python: str) -> interpreters.ProbeVerdict:
    """Run the interpreter in the base as the sandbox runs cells (uid 65534, no network) and
    check its extension modules find every shared library."""
    raw = engine.run(image_id, [f"python{python}", f"{sandbox.REPRO_DIR}/{_PROBE}"],
                     {_PROBE: _image_file(_PROBE).encode()}, timeout_s=120,
                     labels={f"{LABEL}.kind": "base-check"})
    return interpreters.judge_probe(raw.exit_code, raw.output, python)
