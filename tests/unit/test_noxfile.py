"""noxfile: when `matrix` and `tests` start an engine themselves, and that `nox` alone runs none.

The noxfile is loaded with a stand-in `nox` module (the test environment need not have nox)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class Session:
    invoked_from = "."

    def __init__(self, posargs: list[str] | None = None) -> None:
        self.posargs = posargs or []
        self.logged: list[str] = []
        self.installed: list[tuple[str, ...]] = []

    def log(self, message: str) -> None:
        self.logged.append(message)

    def install(self, *args: str) -> None:
        self.installed.append(args)

    def run(self, *args: str, **kwargs: Any) -> None:
        pass

    def error(self, message: str) -> None:
        raise RuntimeError(message)


@pytest.fixture
def noxfile(monkeypatch: pytest.MonkeyPatch) -> Any:
    stub = types.ModuleType("nox")
    stub.options = types.SimpleNamespace()  # type: ignore[attr-defined]
    stub.Session = Session  # type: ignore[attr-defined]
    stub.session = lambda **_: (lambda fn: fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nox", stub)
    spec = importlib.util.spec_from_file_location("noxfile_under_test", REPO / "noxfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recorder:
    def __init__(self) -> None:
        self.scripts: list[list[str]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> Any:
        self.scripts.append(command)
        return types.SimpleNamespace(returncode=0)


def _machine(monkeypatch: pytest.MonkeyPatch, noxfile: Any, *, answers: bool, root: bool,
             debian: bool) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(noxfile, "_engine_answers", lambda: answers)
    monkeypatch.setattr(noxfile.os, "geteuid", lambda: 0 if root else 1000)
    monkeypatch.setattr(noxfile, "DEBIAN_MARKER",
                        REPO / "noxfile.py" if debian else REPO / "no-such-file")
    monkeypatch.setattr(noxfile.subprocess, "run", recorder)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv(noxfile.NO_SETUP, raising=False)
    return recorder


def test_nox_alone_selects_no_session(noxfile: Any) -> None:
    assert noxfile.nox.options.sessions == []


def test_root_on_debian_without_an_engine_runs_ensure_docker_and_says_so_once(
        noxfile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _machine(monkeypatch, noxfile, answers=False, root=True, debian=True)
    session = Session()
    noxfile.matrix(session)
    assert recorder.scripts == [["bash", str(REPO / "scripts" / "ensure-docker.sh")]]
    (line,) = session.logged
    assert "ensure-docker.sh" in line and noxfile.NO_SETUP in line


@pytest.mark.parametrize(("answers", "root", "debian", "env"), [
    (True, True, True, {}),                                    # an engine answers already
    (False, False, True, {}),                                  # not root
    (False, True, False, {}),                                  # not Debian or Ubuntu
    (False, True, True, {"REPRO_MATRIX_NO_ENGINE_SETUP": "1"}),  # turned off
    (False, True, True, {"DOCKER_HOST": "ssh://builder@host2"}),  # the user chose an engine
])
def test_no_setup_otherwise(noxfile: Any, monkeypatch: pytest.MonkeyPatch, answers: bool,
                            root: bool, debian: bool, env: dict[str, str]) -> None:
    recorder = _machine(monkeypatch, noxfile, answers=answers, root=root, debian=debian)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = Session()
    noxfile.tests(session)
    assert recorder.scripts == [] and session.logged == []


def test_unit_tests_alone_need_no_engine(noxfile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _machine(monkeypatch, noxfile, answers=False, root=True, debian=True)
    noxfile.tests(Session(["tests/unit"]))
    assert recorder.scripts == []
    noxfile.tests(Session(["tests/integration/test_install.py"]))
    assert len(recorder.scripts) == 1
