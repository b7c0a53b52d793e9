"""The debian provider: a Debian suite's own pythonX.Y on a debootstrapped root; and the plain
Debian roots the local provider copies interpreters onto."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from repro_matrix import cpu, pythons
from repro_matrix.containers.engine import LABEL, ContainerEngine
from repro_matrix.model import BaseImage

_DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")


_ROOTS_LOCK = threading.Lock()  # two Pythons may want the same Debian root at once


def debian_reference(python: str, suite: str) -> str:
    return f"repro-matrix/base:py{python}-debian-{suite}"


def base(engine: ContainerEngine, python: str, suite: str | None, work_dir: Path,
            build: bool) -> BaseImage:
    if suite is None:
        return BaseImage.unavailable(python, "debian", "no Debian suite is known to ship "
                                     f"Python {python} (map one under base_images.debian_suites)")
    reference = debian_reference(python, suite)
    image_id = engine.image_id(reference)
    if image_id is None and not build:
        return BaseImage.unavailable(python, "debian", f"{reference} not present locally")
    if image_id is None:
        problem = _bootstrap_problem()
        if problem:
            return BaseImage.unavailable(python, "debian", problem)
        failure = _bootstrap(engine, python, suite, reference, work_dir)
        if failure:
            return BaseImage.unavailable(python, "debian", failure)
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


def _bootstrap(engine: ContainerEngine, python: str, suite: str, reference: str,
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


def _import_root(engine: ContainerEngine, root: Path, tarball: Path, reference: str,
                 changes: list[str]) -> None:
    cpu.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
    engine.import_rootfs(tarball, reference, changes=[
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        *changes,
    ])


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def root_reference(suite: str) -> str:
    return f"repro-matrix/root:debian-{suite}"


def plain_root(engine: ContainerEngine, suite: str, work_dir: Path) -> str:
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
