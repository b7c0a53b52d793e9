"""The registry path against a real registry process on this machine: pulled directly, through
an engine's registry mirror, and the faults (tag missing, registry down, cut mid-pull, auth)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_matrix import pythons
from repro_matrix.containers import bases, engine
from repro_matrix.containers.bases.registry import REGISTRY_IMAGE_ENV
from repro_matrix.model import BaseImage, ProviderSettings
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.spec import config, plan
from tests.integration.daemons import SecondDaemon
from tests.integration.registries import CuttingProxy, Registry, free_port

REPO = Path(__file__).resolve().parents[3]
PYTHON = "3.8"  # a Python no Debian suite ships: its base comes from a local interpreter

pytestmark = pytest.mark.integration

REGISTRY = ProviderSettings("registry", tuple(pythons.DEBIAN_SUITES.items()))


def _fail_or_skip(why: str) -> None:
    if os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def slim_base(docker_engine: engine.Engine, cache_dir: Path) -> BaseImage:
    """A base laid out like the official python:X.Y-slim (interpreter in /usr/local/bin,
    PYTHON_VERSION in its environment): the local-interpreter base is one."""
    settings = ProviderSettings("local", tuple(pythons.DEBIAN_SUITES.items()))
    base = bases.prepare(docker_engine, PYTHON, settings, cache_dir / "rootfs")
    if not base.available:
        _fail_or_skip(f"no local CPython {PYTHON} to push: {base.unavailable_reason}")
    assert docker_engine.image_env(base.reference)["PYTHON_VERSION"] == base.interpreter_version
    return base


def _push(client: Any, image_id: str, reference: str) -> None:
    repository, tag = reference.rsplit(":", 1)
    client.images.get(image_id).tag(repository, tag)
    try:
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in chunk, chunk
    finally:
        client.images.remove(reference)  # the tag only: a later pull must fetch it


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_engine: engine.Engine,
             slim_base: BaseImage) -> Iterator[Registry]:
    """docker-registry on a loopback port, holding library/python:3.8-slim."""
    if shutil.which("docker-registry") is None:
        _fail_or_skip("docker-registry is not installed (apt-get install docker-registry)")
    server = Registry(tmp_path_factory.mktemp("registry"))
    server.start()
    try:
        _push(docker_engine.client, slim_base.image_id,
              f"{server.address}/library/python:{PYTHON}-slim")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mirrored_daemon(registry: Registry) -> Iterator[SecondDaemon]:
    """A dockerd of our own whose registry-mirrors is the test registry (one download attempt,
    so a cut pull fails at once instead of after the engine's retries)."""
    daemon = SecondDaemon("docker-mirror", ["--registry-mirror", f"http://{registry.address}",
                                            "--max-download-attempts", "1"])
    try:
        if shutil.which("dockerd") is None or os.geteuid() != 0:
            raise RuntimeError("needs root and dockerd")
        daemon.start()
    except (RuntimeError, OSError) as exc:
        daemon.stop()
        _fail_or_skip(f"cannot start a Docker daemon with a registry mirror: {exc}")
    yield daemon
    daemon.stop()


def _empty(daemon: SecondDaemon) -> engine.Engine:
    """The daemon's engine with no images, so a pull downloads every layer."""
    client = daemon.client()
    for image in client.images.list():
        client.images.remove(image.id, force=True)
    return engine.Engine(client)


def _pull(eng: engine.Engine, template: str | None, work_dir: Path,
          python: str = PYTHON) -> BaseImage:
    environ = {REGISTRY_IMAGE_ENV: template} if template else {}
    return bases.prepare(eng, python, REGISTRY, work_dir, environ=environ)


def _one_line_reason(image: BaseImage) -> str:
    assert not image.available
    assert "\n" not in image.unavailable_reason
    return image.unavailable_reason


def test_a_base_is_pulled_from_a_real_registry(docker_engine: engine.Engine, registry: Registry,
                                               slim_base: BaseImage, tmp_path: Path) -> None:
    image = _pull(docker_engine, f"{registry.address}/library/python:{{python}}-slim", tmp_path)
    assert image.available, image.unavailable_reason
    assert (image.provider, image.reference) == (
        "registry", f"{registry.address}/library/python:{PYTHON}-slim")
    assert image.interpreter_version == slim_base.interpreter_version  # read from the image
    assert image.image_id == slim_base.image_id
    docker_engine.client.images.remove(image.reference)


def test_a_base_is_pulled_through_the_engines_registry_mirror(
        mirrored_daemon: SecondDaemon, slim_base: BaseImage, tmp_path: Path) -> None:
    # The plain Docker Hub name, as every user's matrix has it: the engine asks its mirror.
    image = _pull(_empty(mirrored_daemon), None, tmp_path)
    assert image.available, image.unavailable_reason
    assert image.reference == f"python:{PYTHON}-slim"
    assert image.interpreter_version == slim_base.interpreter_version
    assert image.image_id == slim_base.image_id  # every layer came through the mirror


def test_a_missing_tag_makes_the_column_unavailable(docker_engine: engine.Engine,
                                                    registry: Registry, tmp_path: Path) -> None:
    image = _pull(docker_engine, f"{registry.address}/library/python:{{python}}-slim", tmp_path,
                  python="3.7")
    assert _one_line_reason(image) == (f"cannot pull {registry.address}/library/python:3.7-slim"
                                       " (no such image in the registry)")


def test_a_registry_that_is_down_makes_the_column_unavailable(docker_engine: engine.Engine,
                                                              tmp_path: Path) -> None:
    image = _pull(docker_engine, f"127.0.0.1:{free_port()}/library/python:{{python}}-slim",
                  tmp_path)
    assert _one_line_reason(image).endswith("(registry unreachable (no connection))")


def test_a_registry_lost_mid_pull_makes_the_column_unavailable(
        mirrored_daemon: SecondDaemon, registry: Registry, tmp_path: Path) -> None:
    proxy = CuttingProxy(registry.address)
    try:
        image = _pull(_empty(mirrored_daemon), f"{proxy.address}/library/python:{{python}}-slim",
                      tmp_path)
    finally:
        proxy.close()
    assert proxy.cuts >= 1  # the manifest came through; a layer was cut midway
    assert _one_line_reason(image).endswith("(registry connection lost during the pull)")


def test_a_registry_that_needs_credentials_makes_the_column_unavailable(
        tmp_path: Path, docker_engine: engine.Engine) -> None:
    guarded = Registry(tmp_path / "guarded", auth=True)
    guarded.start()
    try:
        image = _pull(docker_engine, f"{guarded.address}/library/python:{{python}}-slim",
                      tmp_path)
    finally:
        guarded.stop()
    assert _one_line_reason(image).endswith(
        "(the registry needs credentials (docker login to it first))")


def test_a_failing_registry_loses_nothing_earlier_in_results(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    """A run whose registry is gone: the column is unavailable with the reason in one line, the
    run ends normally, and what an earlier run recorded in the folder is still there."""
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = {**source["cases"][0], "repro": str(REPO / source["cases"][0]["repro"]),
            "pythons": [PYTHON]}
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({
        "cases": [case], "base_images": {
            "provider": "registry",
            "registry_image": f"127.0.0.1:{free_port()}/library/python:{{python}}-slim"}}))
    results = tmp_path / "results"
    cells = results / case["id"] / "cells.json"

    def run(versions: str, provider: str | None) -> dict[str, dict[str, Any]]:
        options = RunOptions(results=results, cache_dir=cache_dir, jobs=1, provider=provider)
        MatrixRun(config.load(matrix), options).run(plan.Selection(versions=versions))
        return {c["cell"]["version"]: c for c in json.loads(cells.read_text())["cells"]}

    earlier = run("1.1.0", "local")["1.1.0"]  # an earlier run, on a local base
    assert earlier["status"] in ("reproduced", "not_reproduced"), earlier
    after = run("1.0.2", None)  # the matrix file's registry, which nobody serves
    assert after["1.0.2"]["status"] == "unavailable"
    assert after["1.0.2"]["reason"].endswith("(registry unreachable (no connection))")
    assert "\n" not in after["1.0.2"]["reason"]
    assert after["1.1.0"] == earlier
    assert (results / "report.md").exists()
