"""bases: the auto order per Python, the registry image setting, the local base's Dockerfile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from repro_matrix import cpu
from repro_matrix.containers import bases, interpreters
from repro_matrix.containers.bases import debian, local, registry
from repro_matrix.containers.interpreters import Interpreter
from repro_matrix.errors import UsageError
from repro_matrix.model import BaseImage, CaseMeta, ProviderSettings
from tests import fakes


def base(provider: str, reason: str = "") -> BaseImage:
    return BaseImage(python="3.6", provider=provider, reference="" if reason else f"{provider}:1",
                     interpreter="python3.6", source=provider, unavailable_reason=reason)


def attempts(*results: BaseImage) -> tuple[list[tuple[str, Callable[[], BaseImage]]], list[str]]:
    tried: list[str] = []

    def attempt(result: BaseImage) -> Callable[[], BaseImage]:
        def run() -> BaseImage:
            tried.append(result.provider)
            return result
        return run

    return [(r.provider, attempt(r)) for r in results], tried


def test_a_present_base_is_taken_before_anything_is_pulled_or_built() -> None:
    steps, tried = attempts(base("registry", "python:3.6-slim not present locally"),
                            base("debian"), base("local"), base("registry"))
    chosen = bases.choose("3.6", steps)
    assert chosen.provider == "debian"
    assert tried == ["registry", "debian"]  # lazily: nothing after the first available one
    assert chosen.passed_over == (("registry", "python:3.6-slim not present locally"),)


def test_the_latest_reason_of_each_provider_is_what_was_passed_over() -> None:
    steps, tried = attempts(
        base("registry", "not present"), base("debian", "not present"),
        base("local", "not present"), base("registry", "cannot pull (no connection)"),
        base("debian", "no Debian suite ships 3.6"), base("local"))
    chosen = bases.choose("3.6", steps)
    assert chosen.provider == "local"
    assert tried == ["registry", "debian", "local", "registry", "debian", "local"]
    assert chosen.passed_over == (("registry", "cannot pull (no connection)"),
                                  ("debian", "no Debian suite ships 3.6"))


def test_no_provider_makes_the_column_unavailable_with_every_reason() -> None:
    steps, _ = attempts(base("registry", "a"), base("debian", "b"), base("local", "c"))
    chosen = bases.choose("3.6", steps)
    assert not chosen.available
    assert chosen.unavailable_reason == "registry: a; debian: b; local: c"


def test_the_order_is_registry_then_debian_then_local() -> None:
    assert bases.ORDER == ("registry", "debian", "local")


def test_registry_image_from_environment_before_matrix_file() -> None:
    settings = ProviderSettings(registry_image="mirror.example/library/python:{python}-slim")
    assert registry.registry_reference("3.8", ProviderSettings(), {}) == "python:3.8-slim"
    assert registry.registry_reference("3.8", settings, {}) == \
        "mirror.example/library/python:3.8-slim"
    env = {registry.REGISTRY_IMAGE_ENV: "127.0.0.1:5000/library/python:{python}-slim"}
    assert registry.registry_reference("3.8", settings, env) == \
        "127.0.0.1:5000/library/python:3.8-slim"


def test_a_malformed_registry_image_in_the_environment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"REPRO_MATRIX_REGISTRY_IMAGE: .* has no"):
        registry.registry_reference("3.8", ProviderSettings(),
                                 {registry.REGISTRY_IMAGE_ENV: "python:3.8-slim"})


PYENV_36 = Interpreter("3.6", "3.6.15", Path("/root/.pyenv/versions/3.6.15"), "pyenv")


def test_local_dockerfile_keeps_the_prefix_path_and_opens_its_parents() -> None:
    text = local.render_local_dockerfile(PYENV_36, "bookworm", PYENV_36.prefix, False)
    assert "FROM repro-matrix/root:debian-bookworm\n" in text
    assert "chmod o+x /root /root/.pyenv /root/.pyenv/versions &&" in text
    assert "ln -sf /root/.pyenv/versions/3.6.15/bin/python3.6 /usr/local/bin/python3.6" in text
    assert "ENV PYTHON_VERSION=3.6.15" in text
    assert "LD_LIBRARY_PATH" not in text


def test_a_moved_prefix_gets_its_library_path() -> None:
    moved = Interpreter("3.8", "3.8.18", Path("/tmp/pytest/broken"), "explicit")
    target = local.install_path(moved)
    assert target == Path("/opt/repro-matrix/python/3.8.18")  # /tmp is a tmpfs in a cell
    text = local.render_local_dockerfile(moved, "bookworm", target, True)
    assert "ENV LD_LIBRARY_PATH=/opt/repro-matrix/python/3.8.18/lib\n" in text
    assert local.install_path(PYENV_36) == PYENV_36.prefix


@pytest.mark.parametrize(("relative", "skipped"), [
    ("lib/python3.6/test/test_os.py", True),
    ("lib/python3.6/ctypes/test/test_x.py", False),
    ("lib/python3.6/lib2to3/tests/data/x.py", True),
    ("lib/python3.6/idlelib/idle_test/x.py", True),
    ("lib/python3.6/config-3.6m-x86_64-linux-gnu/libpython3.6m.a", True),
    ("lib/python3.6/config-3.6m-x86_64-linux-gnu/Makefile", False),
    ("lib/python3.6/os.py", False),
    ("lib/libpython3.6m.so.1.0", False),
    ("bin/python3.6", False),
])
def test_only_needless_parts_of_a_prefix_are_left_out(relative: str, skipped: bool) -> None:
    assert local._skipped("3.6", relative) is skipped


def test_each_column_says_where_its_interpreter_came_from() -> None:
    from repro_matrix.report.markdown import base_images_section
    from repro_matrix.run.columns import describe_base
    from repro_matrix.run.record import base_meta

    local = BaseImage(python="3.6", provider="local", reference="repro-matrix/base:py3.6.15-x",
                      interpreter="python3.6", interpreter_version="3.6.15", suite="bookworm",
                      source="CPython 3.6.15 from pyenv (/p) on debian bookworm",
                      notes="built without _hashlib",
                      passed_over=(("registry", "cannot pull python:3.6-slim (no connection)"),
                                   ("debian", "no Debian suite ships 3.6")))
    line = describe_base(local)
    assert line.startswith("local: repro-matrix/base:py3.6.15-x (CPython 3.6.15 from pyenv")
    assert "noted: built without _hashlib" in line
    assert line.endswith("passed over registry (cannot pull python:3.6-slim (no connection)); "
                         "debian (no Debian suite ships 3.6)")
    missing = base("none", "registry: a; debian: b; local: c")
    assert describe_base(missing) == "unavailable: registry: a; debian: b; local: c"
    meta = {"bases": {"3.6": base_meta(local), "3.5": base_meta(missing)}}
    assert meta["bases"]["3.6"]["passed_over"]["debian"] == "no Debian suite ships 3.6"
    assert base_images_section(CaseMeta.from_json(meta)) == [
        "### Base images", "",
        "- Python 3.5: unavailable (registry: a; debian: b; local: c)",
        "- Python 3.6: local, CPython 3.6.15 from pyenv (/p) on debian bookworm (Python 3.6.15); "
        "passed over registry: cannot pull python:3.6-slim (no connection); debian: no Debian "
        "suite ships 3.6", ""]
    assert base_images_section(CaseMeta.from_json({})) == []


def test_debootstrap_keeps_its_packages_in_the_os_cache_unless_told_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian, "_APT_ARCHIVES", tmp_path / "archives")
    assert debian.deb_cache_dir({}) is None  # no such folder: debootstrap downloads as always
    (tmp_path / "archives").mkdir()
    assert debian.deb_cache_dir({}) == tmp_path / "archives"
    assert debian.deb_cache_dir({debian.DEB_CACHE_ENV: "off"}) is None
    own = tmp_path / "debs"
    assert debian.deb_cache_dir({debian.DEB_CACHE_ENV: str(own)}) == own and own.is_dir()


def test_a_passed_base_check_is_remembered_per_image_and_a_failed_one_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_matrix.containers.interpreters import ProbeVerdict

    checks: list[str] = []
    verdicts = {"sha256:good": ProbeVerdict("", ("built without _hashlib",)),
                "sha256:bad": ProbeVerdict("libfoo.so not found")}

    def check(engine: object, image_id: str, python: str) -> ProbeVerdict:
        checks.append(image_id)
        return verdicts[image_id]

    monkeypatch.setattr(local, "_check", check)
    for _ in range(2):
        good = local._checked(fakes.FakeEngine(), "sha256:good", "3.6", tmp_path)
        bad = local._checked(fakes.FakeEngine(), "sha256:bad", "3.6", tmp_path)
    assert good == verdicts["sha256:good"] and bad == verdicts["sha256:bad"]
    assert checks == ["sha256:good", "sha256:bad", "sha256:bad"]


@pytest.fixture
def debootstrap_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The debootstrap commands run, each succeeding at once (no root, no network)."""
    import subprocess

    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(cpu, "run", fake_run)  # debian runs debootstrap by it
    return calls


def test_with_a_package_cache_debootstrap_fetches_under_a_lock_then_installs_from_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        debootstrap_calls: list[list[str]]) -> None:
    calls = debootstrap_calls
    monkeypatch.setenv(debian.DEB_CACHE_ENV, str(tmp_path / "debs"))
    assert debian._debootstrap("bookworm", ["libssl3"], tmp_path / "root") == ""
    fetch, install = calls
    assert "--download-only" in fetch and fetch[-2:] == ["bookworm", str(tmp_path / "root-fetch")]
    assert "--download-only" not in install and install[-2:] == ["bookworm", str(tmp_path / "root")]
    assert all(f"--cache-dir={tmp_path / 'debs'}" in c for c in calls)
    calls.clear()
    monkeypatch.setenv(debian.DEB_CACHE_ENV, "off")
    assert debian._debootstrap("bookworm", ["libssl3"], tmp_path / "root") == ""
    (only,) = calls
    assert not any(part.startswith("--cache-dir") for part in only)


def test_a_suite_newer_than_debootstrap_gets_the_sid_script_as_its_fourth_argument(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        debootstrap_calls: list[list[str]]) -> None:
    calls = debootstrap_calls
    monkeypatch.setattr(debian, "_DEBOOTSTRAP_SCRIPTS", tmp_path)
    (tmp_path / "sid").write_text("")
    (tmp_path / "bookworm").write_text("")
    monkeypatch.setenv(debian.DEB_CACHE_ENV, "off")
    debian._debootstrap("some-future-suite", ["libc6"], tmp_path / "root")
    debian._debootstrap("bookworm", ["libc6"], tmp_path / "root")
    future, known = calls
    # debootstrap SUITE TARGET [MIRROR [SCRIPT]]: an empty mirror is its default one.
    positional = [part for part in future if not part.startswith("--")][1:]
    assert positional == ["some-future-suite", str(tmp_path / "root"), "", str(tmp_path / "sid")]
    assert [part for part in known if not part.startswith("--")][1:] == [
        "bookworm", str(tmp_path / "root")]


def test_an_interpreters_glibc_scan_is_remembered_until_its_files_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "libpython3.9.so"
    binary.write_bytes(b"\0GLIBC_2.17\0GLIBC_2.28\0")
    scans: list[list[Path]] = []
    real = interpreters.glibc_needed_by

    def counting(paths: list[Path]) -> tuple[int, int]:
        scans.append(list(paths))
        return real(paths)

    monkeypatch.setattr(interpreters, "glibc_needed_by", counting)
    checks = tmp_path / "base-checks"
    assert local._glibc_needed([binary], checks) == (2, 28)
    assert local._glibc_needed([binary], checks) == (2, 28) and len(scans) == 1
    binary.write_bytes(b"\0GLIBC_2.34\0")  # rebuilt: scanned again
    assert local._glibc_needed([binary], checks) == (2, 34) and len(scans) == 2
