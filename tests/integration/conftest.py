"""Integration fixtures: a real Docker engine, or a failure in CI (never a silent skip there)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from repro_matrix.containers import engine
from repro_matrix.errors import EngineError
from tests.integration.daemons import BASE, DAEMON2_HOST, SecondDaemon

REPO = Path(__file__).resolve().parents[2]


def _engine_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"))


@pytest.fixture(scope="session")
def docker_engine() -> engine.Engine:
    try:
        return engine.connect()
    except EngineError as exc:
        if _engine_required():
            pytest.fail(f"integration tests need a Docker engine in CI: {exc.one_line()}")
        pytest.skip(f"no Docker engine: {exc.one_line()}")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The user's cache, so repeated runs reuse locks, wheels and images like a real user."""
    from repro_matrix.containers.cache import default_cache_dir

    return default_cache_dir()


def _ensure_base_on_the_main_engine(docker_engine: engine.Engine) -> None:
    """On a new machine no test may have bootstrapped the base yet: make it as a run would."""
    if docker_engine.image_id(BASE):
        return
    from repro_matrix import pythons
    from repro_matrix.containers import bases
    from repro_matrix.containers.cache import default_cache_dir
    from repro_matrix.model import ProviderSettings

    settings = ProviderSettings("debian", tuple(pythons.DEBIAN_SUITES.items()))
    image = bases.prepare(docker_engine, "3.11", settings, default_cache_dir() / "rootfs")
    if not image.available or image.reference != BASE:
        raise RuntimeError(f"cannot bootstrap {BASE}: {image.unavailable_reason}")


@pytest.fixture(scope="module")
def second_daemon(docker_engine: engine.Engine) -> Iterator[SecondDaemon]:
    """Starts the second dockerd with the base image loaded; fails in CI if it cannot."""
    daemon = SecondDaemon()
    try:
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            raise RuntimeError("needs root and dockerd")
        _ensure_base_on_the_main_engine(docker_engine)
        daemon.start()
        if not any(BASE in image.tags for image in daemon.client().images.list()):
            saved = subprocess.Popen(["docker", "save", BASE], stdout=subprocess.PIPE)
            loaded = subprocess.run(["docker", "load", "-q"], stdin=saved.stdout,
                                    capture_output=True, env={**os.environ,
                                                              "DOCKER_HOST": DAEMON2_HOST},
                                    timeout=300, check=False)
            if saved.wait(timeout=60) != 0 or loaded.returncode != 0:
                raise RuntimeError(f"cannot load {BASE}: {loaded.stderr.decode()[-300:]}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        daemon.stop()
        if os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"):
            pytest.fail(f"cannot start a second Docker daemon: {exc}")
        pytest.skip(f"cannot start a second Docker daemon: {exc}")
    yield daemon
    daemon.stop()
