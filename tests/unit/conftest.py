"""Shared fixtures: a purity guard (no sockets, cache in tmp) and golden-file comparison."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE_ENV = "REPRO_MATRIX_UPDATE_GOLDEN"

Golden = Callable[[str, str], None]


@pytest.fixture(autouse=True)
def _pure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unit tests are pure: any socket connect (Docker, index) fails, caches live in tmp_path."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unit tests must not use the network or a Docker engine")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setenv("REPRO_MATRIX_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def golden() -> Golden:
    """``golden(name, text)`` compares ``text`` to golden/<name> byte for byte.

    With REPRO_MATRIX_UPDATE_GOLDEN=1 the file is (re)written instead.
    """

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if os.environ.get(UPDATE_ENV) == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
            return
        assert path.exists(), f"no golden file {path}; regenerate with {UPDATE_ENV}=1"
        assert text == path.read_bytes().decode("utf-8")

    return check
