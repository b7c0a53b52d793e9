"""report.html in real headless Chromium: the heat map, the verdict, a cell's evidence on click."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from repro_matrix import store
from repro_matrix.model import Attempt, CellRecord, Status
from repro_matrix.report.render import render_results
from repro_matrix.resolve.dists import DistFinder
from tests.factories import ran, record

BROWSERS = ("chromium", "chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
R, N, CI = Status.REPRODUCED, Status.NOT_REPRODUCED, Status.CANNOT_INSTALL
GRID = {"0.9": (N, CI), "1.0": (R, CI), "1.1": (R, R), "1.10": (N, N)}  # (py3.9, py3.11)
CLICKED = "demo/py3.9/1.1"


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("REPRO_MATRIX_REQUIRE_ENGINE"))


@pytest.fixture(scope="module")
def chromium() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        message = "no headless Chromium on PATH (Debian package: chromium)"
        if _required():
            pytest.fail(f"the browser test needs Chromium in CI: {message}")
        pytest.skip(message)
    return found


def _record(python: str, version: str, status: Status) -> CellRecord:
    reason = {R: "exit 1, output has 'BOOM'", N: "exit 0",
              CI: "did not install at any of 2 era cutoff(s) tried"}[status]
    common: dict[str, Any] = dict(base_source=f"debian image for {python}",
                                  interpreter_version=f"{python}.1",
                                  output_excerpt=TRACEBACK if status is R else "")
    if status is CI:
        return record(python, version, status, reason,
                      attempts=(Attempt("2021-01-01T00:00:00Z", "install failed"),), **common)
    return ran(python, version, status, reason, cutoff="2021-01-01T00:00:00Z", lock_digit="7",
               image_id=f"sha256:{'9' * 64}", image_ref=f"repro-matrix/cell:{python}-{version}",
               duration_s=0.4, exit_code={R: 1, N: 0}.get(status), **common)


TRACEBACK = ("Traceback (most recent call last):\n"
             '  File "/opt/venv/lib/python3.9/site-packages/pkg/core.py", line 2, in frob\n'
             "    raise RuntimeError('BOOM <&>')\n"
             "RuntimeError: BOOM <&>\n")


def _wheel(folder: Path, version: str, body: str) -> None:
    with zipfile.ZipFile(folder / f"pkg-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr("pkg/core.py", f"def frob(x):\n{body}\n")
        archive.writestr(f"pkg-{version}.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: pkg\nVersion: {version}\n")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser") / "results"
    records = [_record(python, version, statuses[i]) for version, statuses in GRID.items()
               for i, python in enumerate(("3.9", "3.11"))]
    store.write_cells(folder, "demo", records, {
        "case": "demo", "package": "pkg", "description": "pkg.frob() <crashes>",
        "repro": "cases/demo/repro.py", "finished_at": "2024-01-02T03:04:05Z",
        "claim": {"first_fixed": "1.10", "introduced": None, "source": "changelog"}})
    wheels = folder.parent / "wheelhouse"
    wheels.mkdir()
    for version, body in (("0.9", "    return x"), ("1.0", "    raise RuntimeError('BOOM')"),
                          ("1.1", "    raise RuntimeError('BOOM')"),
                          ("1.10", "    return x if x else None")):
        _wheel(wheels, version, body)
    saved = os.environ.pop("GITHUB_STEP_SUMMARY", None)  # keep CI's job summary clean
    try:
        render_results(folder, find=DistFinder([wheels]))
    finally:
        if saved is not None:
            os.environ["GITHUB_STEP_SUMMARY"] = saved
    return folder


def _run(chromium: str, tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _dom(chromium: str, tmp_path: Path, page: Path, fragment: str = "") -> str:
    return _run(chromium, tmp_path, "--dump-dom", page.as_uri() + fragment)


def test_page_shows_every_cell_and_the_verdict(chromium: str, results: Path,
                                               tmp_path: Path) -> None:
    dom = _dom(chromium, tmp_path, results / "report.html")
    assert dom.count('data-cell="demo/') == len(GRID) * 2
    assert 'class="cell s-reproduced boundary" data-cell="demo/py3.9/1.0"' in dom
    assert "introduced in 1.0, last affected 1.1, first fixed in 1.10." in dom
    assert "Claim check." in dom and "holds" in dom
    assert "pkg.frob() &lt;crashes&gt;" in dom
    assert '<aside class="panel" aria-live="polite"><p class="hint">' in dom  # none open


def test_clicking_a_cell_shows_its_evidence(chromium: str, results: Path,
                                            tmp_path: Path) -> None:
    # The page clicks the cell a #cell=<id> link names: the same handler a mouse click runs.
    dom = _dom(chromium, tmp_path, results / "report.html", "#cell=" + quote(CLICKED, safe=""))
    assert f'data-open-cell="{CLICKED}"' in dom
    panel = dom.split(f'data-open-cell="{CLICKED}"', 1)[1].split("</aside>", 1)[0]
    for shown in ("py3.9 · 1.1", "exit 1, output has 'BOOM'", "<dd>1</dd>",
                  "repro-matrix/cell:3.9-1.1", f"pkg==1.1 --hash=sha256:{'7' * 64}",
                  "RuntimeError: BOOM &lt;&amp;&gt;",
                  'docker run --rm --mount "type=bind,target=/repro/repro.py,readonly,source='
                  '$PWD/cases/demo/repro.py"',
                  "repro-matrix/cell:3.9-1.1 /opt/venv/bin/python /repro/repro.py",
                  "Boundary of an affected range", "last affected"):
        assert shown in panel, shown
    assert f'class="cell s-reproduced boundary selected" data-cell="{CLICKED}"' in dom
    # The panel leads with the error line, before the status and the exit code.
    assert panel.index('class="error">RuntimeError: BOOM &lt;&amp;&gt;') < panel.index("<dt>")


def test_a_boundary_cells_panel_shows_the_diff_across_the_boundary(
        chromium: str, results: Path, tmp_path: Path) -> None:
    fixed = "demo/py3.9/1.10"  # first fixed on 3.9: its panel shows what changed from 1.1
    dom = _dom(chromium, tmp_path, results / "report.html", "#cell=" + quote(fixed, safe=""))
    panel = dom.split(f'data-open-cell="{fixed}"', 1)[1].split("</aside>", 1)[0]
    assert "What changed across this boundary" in panel
    assert "1.1 → 1.10:" in panel
    assert "-    raise RuntimeError('BOOM')" in panel
    assert "+    return x if x else None" in panel
    assert "--- pkg/core.py (1.1)" in panel


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def test_screenshot_is_a_real_picture(chromium: str, results: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,800",
         (results / "report.html").as_uri() + "#cell=" + quote(CLICKED, safe=""))
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 800)
    assert len(set(pixels)) > 50  # not a blank page: text and coloured cells were drawn


def test_matrix_svg_renders(chromium: str, results: Path, tmp_path: Path) -> None:
    shot = tmp_path / "matrix.png"
    _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=500,400",
         (results / "demo" / "matrix.svg").as_uri())
    _, _, pixels = _png_pixels(shot.read_bytes())
    assert len(set(pixels)) > 20
