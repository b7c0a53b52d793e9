"""Integration fixtures: a real Docker engine, or a failure in CI (never a silent skip there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import engine
from harness.errors import EngineError

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
    from harness.pipeline import default_cache_dir

    return default_cache_dir()
