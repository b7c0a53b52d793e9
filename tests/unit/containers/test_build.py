"""build: the rendered cell Dockerfile (golden), its content address, the failed step."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    from tomllib import loads as tomli_loads
else:  # pragma: no cover
    from tomli import loads as tomli_loads

from repro_matrix.containers.build import (
    IMPORT_FAILED,
    TEMPLATE,
    UV_IN_IMAGE,
    Builder,
    failed_step,
    image_tag,
    killed,
    no_cache_dir,
    render_dockerfile,
    render_install,
    template_source,
    uv_can_install,
    without_commands,
)
from repro_matrix.model import BaseImage, Lock, Pin
from tests import fakes

BASE = BaseImage(python="3.9", provider="registry", reference="python:3.9-slim",
                 interpreter="python3.9", source="registry image python:3.9-slim",
                 interpreter_version="3.9.18", image_id="sha256:" + "0" * 64)
LOCK = Lock(
    cutoff="2021-01-02T00:00:00Z",
    runtime=(Pin("dep", "2.0", "dep-2.0.tar.gz", "b" * 64),
             Pin("pkg", "1.0", "pkg-1.0-py3-none-any.whl", "a" * 64)),
    build=(Pin("pip", "20.2.4", "pip-20.2.4-py2.py3-none-any.whl", "c" * 64),
           Pin("setuptools", "50.3.2", "setuptools-50.3.2-py3-none-any.whl", "d" * 64)),
)

WHEELS = replace(LOCK, runtime=(Pin("dep", "2.0", "dep-2.0-py3-none-any.whl", "b" * 64),
                                 Pin("pkg", "1.0", "pkg-1.0-py3-none-any.whl", "a" * 64)))

def render() -> str:
    return render_dockerfile(BASE, LOCK)


def script() -> str:
    return render_install(LOCK, "pkg", "demo/py3.9/1.0")


def test_rendered_tools_dockerfile_and_install_script_match_golden(
        golden: Callable[[str, str], None]) -> None:
    golden("cell.Dockerfile", render())
    golden("cell-install.sh", script())
    assert "demo/py3.9/1.0" not in render()  # one tools image for every cell of those tools


def test_image_tag_is_a_content_address() -> None:
    dockerfile = render()
    tag = image_tag(dockerfile, LOCK, BASE)
    assert re.fullmatch(r"repro-matrix/cell:[0-9a-f]{20}", tag)
    assert image_tag(dockerfile, LOCK, BASE) == tag
    assert image_tag(dockerfile, replace(LOCK, runtime=LOCK.runtime[1:]), BASE) != tag
    assert image_tag(dockerfile, LOCK, replace(BASE, image_id="sha256:" + "1" * 64)) != tag
    assert image_tag(dockerfile + "\n", LOCK, BASE) != tag


def classic_failure(command: str, output: str = "") -> str:
    """What the classic builder logs when a RUN step exits 1."""
    return (f"Step 7/9 : RUN {command}\n ---> Running in 0123456789ab\n{output}"
            f"The command '/bin/sh -c {command}' returned a non-zero code: 1\n")


def run_commands(dockerfile: str) -> list[str]:
    """The RUN commands of a Dockerfile, line continuations joined as the builder shows them."""
    joined = dockerfile.replace("\\\n", "")
    return [line[len("RUN "):] for line in joined.splitlines() if line.startswith("RUN ")]


IMPORT_LOG = classic_failure(
    '/opt/venv/bin/python -c "import pkg"',
    "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\n"
    "ModuleNotFoundError: No module named 'pkg'\n")
# pip's legacy setup.py output quotes `-c 'import ...` too; only the failing command counts.
INSTALL_LOG = classic_failure(
    "python3.9 -m venv --without-pip /opt/venv  && /opt/venv/bin/python -m pip install "
    "--no-index --find-links /tmp/wheelhouse --require-hashes -r /tmp/requirements.txt",
    "    ERROR: Command errored out with exit status 1:\n     command: /opt/venv/bin/python -c "
    "'import sys, setuptools, tokenize; sys.argv[0] = '\"'\"'/tmp/pip-req/setup.py'\"'\"''\n"
    "ERROR: Could not build wheels for dep\n")


@pytest.mark.parametrize(("log", "step"), [
    (IMPORT_LOG, "import"),
    (INSTALL_LOG, "install"),
    ("\x1b[31m" + IMPORT_LOG + "\x1b[0m", "import"),
    ("COPY failed: file not found in build context\n", "install"),
    ("", "install"),
])
def test_failed_step_tells_import_from_install(log: str, step: str) -> None:
    assert failed_step(log) == step


def test_failed_step_tells_a_failed_import_check_from_a_failed_install() -> None:
    (tools,) = run_commands(render())
    assert failed_step(classic_failure(tools)) == "install"
    pip_failed = "ERROR: Could not install packages due to an OSError\n"
    assert failed_step(pip_failed) == "install"
    no_import = ("Successfully installed pkg-1.0\nTraceback (most recent call last):\n"
                 "ModuleNotFoundError: No module named 'pkg'\n" + IMPORT_FAILED + "\n")
    assert failed_step(no_import) == "import"
    assert failed_step("\x1b[31m" + no_import + "\x1b[0m") == "import"
    assert f'echo "{IMPORT_FAILED}"' in script()  # the script prints it on a line of its own


def test_a_step_killed_by_a_signal_is_not_a_verdict_on_the_lock() -> None:
    log = "The command '/bin/sh -c pip install -r r.txt' returned a non-zero code: 137\n"
    assert killed(log)
    assert not killed(log.replace("137", "1"))
    assert not killed("")


def test_repro_requirements_change_the_lock_not_the_dockerfile(
        golden: Callable[[str, str], None]) -> None:
    """Cases without extra requirements keep their byte-identical Dockerfile (and so their
    cached images); extra requirements only add pins to the lock's requirements.txt."""
    extra = Pin("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", "e" * 64)
    with_extra = replace(LOCK, runtime=(*LOCK.runtime, extra))
    dockerfile = render_dockerfile(BASE, with_extra)
    golden("cell.Dockerfile", dockerfile)
    golden("cell-install.sh", render_install(with_extra, "pkg", "demo/py3.9/1.0"))
    assert image_tag(dockerfile, with_extra, BASE) != image_tag(dockerfile, LOCK, BASE)


class FakeEngine(fakes.FakeEngine):
    """Builds tools images; a cell's install fails its import check until ``fixed``; keeps
    the labels of every image but the tools images it made."""

    def __init__(self) -> None:
        self.builds: list[Mapping[str, str]] = []
        self.fixed = False
        self.wheels_build = False  # whether the lock's sdists build as wheels
        self.wheel_builds: list[set[str]] = []  # the sdists of each wheel build
        self.wheel_scripts: list[str] = []

    def run_collect(self, image: str, command: list[str], into: str,
                    files: Mapping[str, bytes], collect: str,
                    ) -> tuple[dict[str, bytes], str, int | None]:
        sdists = {name.split("/")[1] for name in files if not name.endswith(".txt")}
        self.wheel_builds.append(sdists)
        self.wheel_scripts.append(command[2])
        assert image == "sha256:" + "f" * 64 and collect == "/tmp/built"
        assert "pip wheel" in command[2] and "--require-hashes" in command[2]
        if not self.wheels_build:
            return {}, "error: invalid command 'bdist_wheel'", 1
        return {f"{name.split('-')[0]}-{name.split('-')[1].removesuffix('.tar.gz')}"
                f"-py3-none-any.whl": b"built " + name.encode() for name in sdists}, "", 0

    def build(self, context: Path, tag: str,
              labels: Mapping[str, str]) -> tuple[str | None, str]:
        if labels["org.repro-matrix.kind"] != "tools":
            self.builds.append(labels)
        return "sha256:" + "f" * 64, ""

    def commit_run(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                   tag: str, labels: Mapping[str, str],
                   changes: list[str]) -> tuple[str | None, str, int | None]:
        self.builds.append(labels)
        self.installed = dict(files)
        assert image == "sha256:" + "f" * 64 and command[:2] == ["/bin/sh", "-c"]
        assert set(files) == {f"wheelhouse/{pin.filename}" for pin in LOCK.runtime} | {
            "wheelhouse/requirements.txt"} or all(f.startswith("wheelhouse/") for f in files)
        if self.fixed:
            return "sha256:" + "e" * 64, "", 0
        return None, f"Traceback (most recent call last):\n{IMPORT_FAILED}\n", 1


def _builder(tmp_path: Path, engine: FakeEngine, retry: bool, uv: bool = False) -> Builder:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    for pin in (*LOCK.runtime, *LOCK.build, *WHEELS.runtime):
        (wheelhouse / pin.filename).write_bytes(b"x")
    return Builder(engine, wheelhouse, tmp_path / "cache", retry_failures=retry,
                   use_uv=uv)


def test_a_remembered_build_failure_is_retried_with_rerun_and_forgotten_once_built(
        tmp_path: Path) -> None:
    engine = FakeEngine()
    first = _builder(tmp_path, engine, retry=False).build(BASE, LOCK, "pkg", "demo/py3.9/1.0")
    assert not first.ok and first.failed_step == "import"
    again = _builder(tmp_path, engine, retry=False).build(BASE, LOCK, "pkg", "demo/py3.9/1.0")
    assert again == first and len(engine.builds) == 1  # remembered: not built again
    assert engine.builds[0] == {"org.repro-matrix.kind": "cell", "org.repro-matrix.case": "demo",
                                "org.repro-matrix.cell": "demo/py3.9/1.0"}
    engine.fixed = True
    retried = _builder(tmp_path, engine, retry=True)
    assert retried.remembered_failures() == 1
    assert retried.build(BASE, LOCK, "pkg", "demo/py3.9/1.0").ok and len(engine.builds) == 2
    assert retried.remembered_failures() == 0


def test_old_pips_get_the_no_cache_value_they_understand() -> None:
    assert no_cache_dir("9.0.1") == "0"
    assert no_cache_dir("18.1") == "0"
    assert no_cache_dir("19.0") == "1"
    assert no_cache_dir("20.2.4") == "1"  # the Dockerfile of every newer-pip cell is unchanged
    old = replace(LOCK, build=(Pin("pip", "9.0.1", "pip-9.0.1-py2.py3-none-any.whl", "c" * 64),))
    assert "PIP_NO_CACHE_DIR=0 " in render_dockerfile(BASE, old)
    # pip 9 knows no such option.
    assert "--no-build-isolation" not in render_install(old, "pkg", "demo/py3.6/1.0")
    assert "--no-deps --no-build-isolation -r" in script()


def test_template_ships_as_package_data_mapped_from_the_top_level_images_folder() -> None:
    repo = Path(__file__).resolve().parents[3]
    setuptools = tomli_loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["repro_matrix.images"] == "images"
    assert "repro_matrix.images" in setuptools["packages"]
    assert "*.j2" in setuptools["package-data"]["repro_matrix.images"]
    assert (repo / "images" / TEMPLATE).read_text() == template_source()


def test_every_sub_package_on_disk_is_listed_for_the_wheel() -> None:
    repo = Path(__file__).resolve().parents[3]
    listed = set(tomli_loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = {".".join(init.parent.relative_to(repo).parts)
               for init in (repo / "repro_matrix").rglob("__init__.py")}
    assert on_disk | {"repro_matrix.images"} == listed


class ListingEngine(FakeEngine):
    """Has images: ``listed`` answers the one listing, ``later`` only a lookup by tag."""

    def __init__(self, listed: dict[str, str], later: dict[str, str]) -> None:
        super().__init__()
        self.listed, self.later = listed, later
        self.lookups: list[str] = []

    def tagged(self, repository: str) -> dict[str, str]:
        return dict(self.listed)

    def image_id(self, reference: str) -> str | None:
        self.lookups.append(reference)
        return self.later.get(reference)


def test_present_images_come_from_one_listing_and_new_ones_from_a_lookup(
        tmp_path: Path) -> None:
    tag = image_tag(render_dockerfile(BASE, WHEELS)
                    + render_install(WHEELS, "pkg", "demo/py3.9/1.0"), WHEELS, BASE)
    engine = ListingEngine({tag: "sha256:listed"}, {})
    builder = _builder(tmp_path, engine, retry=False)
    builder.list_present()
    assert builder.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0").image_id == "sha256:listed"
    assert engine.lookups == [] and engine.builds == []
    # Built by another run after the listing: a lookup finds it, nothing is built.
    engine = ListingEngine({}, {tag: "sha256:since"})
    builder = _builder(tmp_path, engine, retry=False)
    builder.list_present()
    assert builder.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0").image_id == "sha256:since"
    assert engine.lookups == [tag] and engine.builds == []



def test_a_rerun_asks_the_engine_nothing_for_a_remembered_failure_or_its_own_builds(
        tmp_path: Path) -> None:
    engine = ListingEngine({}, {})
    first = _builder(tmp_path, engine, retry=False)
    first.list_present()
    assert not first.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0").ok
    tag = image_tag(render_dockerfile(BASE, WHEELS)
                    + render_install(WHEELS, "pkg", "demo/py3.9/1.0"), WHEELS, BASE)
    assert engine.lookups[0] == tag  # not listed: asked
    engine.lookups.clear()
    rerun = _builder(tmp_path, engine, retry=False)
    rerun.list_present()
    assert not rerun.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0").ok
    assert engine.lookups == [] and len(engine.builds) == 1  # remembered, nothing asked
    engine.fixed = True
    retried = _builder(tmp_path, engine, retry=True)
    retried.list_present()
    built = retried.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0")
    engine.lookups.clear()
    # The same image asked for again in the same run: this run's own build, not a lookup.
    assert retried.build(BASE, WHEELS, "pkg", "demo/py3.9/1.0") == replace(built, log_excerpt="")
    assert engine.lookups == [] and len(engine.builds) == 2


def test_uv_installs_wheel_locks_from_python_3_8_and_pip_the_rest() -> None:
    assert uv_can_install("3.9", WHEELS) and uv_can_install("3.8", WHEELS)
    assert not uv_can_install("3.7", WHEELS)
    assert not uv_can_install("3.12", LOCK)  # an sdist: built by the era's pip and setuptools


def test_rendered_dockerfile_with_uv_matches_golden(golden: Callable[[str, str], None]) -> None:
    dockerfile = render_dockerfile(BASE, WHEELS, uv=UV_IN_IMAGE)
    install = render_install(WHEELS, "pkg", "demo/py3.9/1.0", uv=UV_IN_IMAGE)
    golden("cell-uv.Dockerfile", dockerfile)
    golden("cell-uv-install.sh", install)
    (tools,) = run_commands(dockerfile)
    assert tools.count(UV_IN_IMAGE) == install.count(UV_IN_IMAGE) == 1
    assert "--require-hashes --no-deps" in install and "--offline" in install


def test_a_wheel_lock_builds_on_the_base_with_uv_added_once(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.fixed = True
    builder = _builder(tmp_path, engine, retry=False, uv=True)
    if builder.uv is None:
        pytest.skip("no uv binary here")
    for pin in WHEELS.runtime:
        (tmp_path / "wheelhouse" / pin.filename).write_bytes(b"x")
    for version in ("1.0", "1.1"):
        assert builder.build(BASE, WHEELS, "pkg", f"demo/py3.9/{version}").ok
    kinds = [labels["org.repro-matrix.kind"] for labels in engine.builds]
    assert kinds.count("installer") == 1 and kinds.count("cell") == 2


def test_an_sdist_is_built_as_a_wheel_once_per_tools_image_and_cells_install_the_wheel(
        tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.fixed = engine.wheels_build = True
    builder = _builder(tmp_path, engine, retry=False, uv=True)
    first = builder.build(BASE, LOCK, "pkg", "demo/py3.9/1.0")
    assert first.ok and engine.wheel_builds == [{"dep-2.0.tar.gz"}]
    installed = engine.installed
    wheel = b"built dep-2.0.tar.gz"
    assert installed["wheelhouse/dep-2.0-py3-none-any.whl"] == wheel
    assert "wheelhouse/dep-2.0.tar.gz" not in installed
    requirements = installed["wheelhouse/requirements.txt"].decode()
    assert f"dep==2.0 --hash=sha256:{hashlib.sha256(wheel).hexdigest()}" in requirements
    # Another cell of the same tools and sdist, in a later run: the wheel comes from the cache.
    again = _builder(tmp_path, engine, retry=False, uv=True)
    assert again.build(BASE, LOCK, "pkg", "demo/py3.9/1.1").ok
    assert len(engine.wheel_builds) == 1 and engine.installed == installed
    if builder.uv is not None:  # every file a wheel now: uv installs them on 3.9
        assert "installer" in [labels["org.repro-matrix.kind"] for labels in engine.builds]
    # The image is named by the lock as resolved (the sdist), not by the wheel's bytes.
    assert first.image_ref != _builder(tmp_path, engine, retry=False).build(
        BASE, LOCK, "pkg", "demo/py3.9/1.0").image_ref  # (without uv: another recipe)


def test_an_sdist_that_does_not_build_as_a_wheel_is_installed_by_the_cells_pip(
        tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.fixed = True
    builder = _builder(tmp_path, engine, retry=False, uv=True)
    outcome = builder.build(BASE, LOCK, "pkg", "demo/py3.9/1.0")
    assert outcome.ok and engine.wheel_builds == [{"dep-2.0.tar.gz"}]
    assert "wheelhouse/dep-2.0.tar.gz" in engine.installed  # the recipe before wheels
    assert outcome.image_ref == image_tag(render() + script(), LOCK, BASE)
    # The failure is remembered: the next cell of these tools does not try again.
    assert _builder(tmp_path, engine, retry=False).build(BASE, LOCK, "pkg", "demo/py3.9/1.1").ok
    assert len(engine.wheel_builds) == 1


def test_the_wheel_build_script_matches_golden(golden: Callable[[str, str], None],
                                               tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.fixed = engine.wheels_build = True
    assert _builder(tmp_path, engine, retry=False).build(BASE, LOCK, "pkg", "demo/py3.9/1.0").ok
    (wheels,) = engine.wheel_scripts
    golden("sdist-wheels.sh", wheels)
    assert "--no-build-isolation" in wheels  # the era's setuptools in the tools image builds

def test_an_excerpt_keeps_the_error_not_the_long_command_of_the_failed_step() -> None:
    (tools,) = run_commands(render())
    error = "ERROR: Could not find a version that satisfies the requirement pip"
    log = classic_failure(tools, f"{error}\n")
    short = without_commands(log)
    assert error in short[-500:] and "pip install" not in short.splitlines()[-1]
    assert short.endswith("The command of the step returned a non-zero code: 1\n")
    assert failed_step(log) == "install"  # told from the whole log, command and all


