"""Base images with a given CPython: from a registry, or bootstrapped from a Debian suite.

A Python version no provider can supply becomes an unavailable BaseImage carrying the reasons.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from repro_matrix import pythons
from repro_matrix.engine import LABEL, Engine
from repro_matrix.model import BaseImage, ProviderSettings

_DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")


def prepare(engine: Engine, python: str, settings: ProviderSettings,
            work_dir: Path, provider: str | None = None) -> BaseImage:
    """A usable base image for ``python``, or an unavailable one with every provider's reason."""
    chosen = provider or settings.provider
    suites = dict(settings.debian_suites)
    if chosen == "registry":
        return _registry(engine, python)
    if chosen == "debian":
        return _debian(engine, python, suites.get(python), work_dir, build=True)
    # auto: what is already here first (no network), then the registry, then a bootstrap.
    for found in (_registry(engine, python, pull=False),
                  _debian(engine, python, suites.get(python), work_dir, build=False)):
        if found.available:
            return found
    registry = _registry(engine, python)
    if registry.available:
        return registry
    debian = _debian(engine, python, suites.get(python), work_dir, build=True)
    if debian.available:
        return debian
    return BaseImage(python=python, provider="none", reference="", interpreter="", source="",
                     unavailable_reason=f"registry: {registry.unavailable_reason}; "
                                        f"debian: {debian.unavailable_reason}")


def _registry(engine: Engine, python: str, pull: bool = True) -> BaseImage:
    reference = f"python:{python}-slim"
    image_id = engine.image_id(reference)
    why = "not present locally"
    if image_id is None and pull:
        image_id, why = engine.pull(reference)
    if image_id is None:
        return BaseImage(python=python, provider="registry", reference=reference,
                         interpreter="", source="", unavailable_reason=f"cannot pull {reference}"
                         f" ({why})" if pull else why)
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
                     image_id=image_id or "")


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


def _bootstrap(engine: Engine, python: str, suite: str, reference: str,
               work_dir: Path) -> str:
    """debootstrap a minimal root with pythonX.Y and import it; returns '' or why it failed."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"rootfs-{suite}-", dir=work_dir) as tmp:
        root = Path(tmp) / "root"
        # Suites newer than the host's debootstrap know are bootstrapped with the sid script.
        script = [] if (_DEBOOTSTRAP_SCRIPTS / suite).exists() else ["", "sid"]
        if script:
            script[1] = str(_DEBOOTSTRAP_SCRIPTS / "sid")
        packages = ",".join(debian_packages(python))
        command = ["debootstrap", "--variant=minbase", f"--include={packages}", suite,
                   str(root), *script]
        proc = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=1800)
        if proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            return f"debootstrap {suite} failed: {tail}"
        version = subprocess.run(["chroot", str(root), f"python{python}", "-c",
                                  "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        if not version:
            return f"debootstrap {suite} gave no working python{python}"
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        source = (f"debian {suite} via debootstrap --variant=minbase --include={packages} "
                  f"(default mirror), {stamp}")
        engine.import_rootfs(tarball, reference, changes=[
            "ENV LANG=C.UTF-8",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f'LABEL {LABEL}.managed="1" {LABEL}.source="{source}" '
            f'{LABEL}.python-version="{version}"',
        ])
    return ""
