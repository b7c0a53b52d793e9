"""boundary: the diff narrowed to the functions on the reproduced stack, between two tiny
synthetic releases (wheels and an sdist made here), the changelog between them, and the links;
computed once, stored in boundaries.json, kept when the files are gone."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from repro_matrix import store
from repro_matrix.model import CellRecord, Claim, Status
from repro_matrix.report.render import render_results
from repro_matrix.resolve.dists import DistFinder
from repro_matrix.verdict import boundary
from repro_matrix.verdict.derive import Observation, Verdict, derive
from tests import factories

R, N, CI = Status.REPRODUCED, Status.NOT_REPRODUCED, Status.CANNOT_INSTALL

CORE = '''"""A tiny package."""


def helper(x):
    return x * 2


class Server:
    def serve(self, port=None):
        """Serve on ``port``.

        The docstring changes in every release; that is not the change.
        """
        chosen = {choice}
        return bind(chosen)

    def unrelated(self):
        return "{unrelated}"


def bind(port):
    raise OSError("in use: %s" % port)
'''
BUGGY = CORE.format(choice="int(port or 5000)", unrelated="old")
FIXED = CORE.format(choice="5000 if port is None else int(port)",
                    unrelated="new").replace("The docstring changes", "Docs change")
CHANGES = """Changes
=======

Version 1.1
-----------

-   ``Server.serve`` accepts port 0 and lets the OS pick a port. :issue:`77`
-   Faster startup.

Version 1.0.1
-------------

-   Unrelated packaging fix.

Version 1.0
-----------

-   First release with ``serve``.
"""
TRACEBACK = """Traceback (most recent call last):
  File "/repro/repro.py", line 3, in <module>
    Server().serve(port=0)
  File "/opt/venv/lib/python3.9/site-packages/pkg/core.py", line 14, in serve
    return bind(chosen)
  File "/opt/venv/lib/python3.9/site-packages/pkg/core.py", line 22, in bind
    raise OSError("in use: %s" % port)
  File "/opt/venv/lib/python3.9/site-packages/otherpkg/util.py", line 5, in wrap
    pass
OSError: in use: 5000
"""


def _metadata(version: str) -> str:
    return (f"Metadata-Version: 2.1\nName: pkg\nVersion: {version}\n"
            "Home-page: https://pkg.example/\n"
            "Project-URL: Changelog, https://pkg.example/changes\n"
            "Project-URL: Source, https://code.example/pkg\n")


def make_wheel(folder: Path, version: str, core: str) -> Path:
    path = folder / f"pkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/core.py", core)
        archive.writestr(f"pkg-{version}.dist-info/METADATA", _metadata(version))
    return path


def make_sdist(folder: Path, version: str, core: str) -> Path:
    path = folder / f"pkg-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, text in ((f"pkg-{version}/src/pkg/core.py", core),
                           (f"pkg-{version}/CHANGES.rst", CHANGES),
                           (f"pkg-{version}/PKG-INFO", _metadata(version))):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def releases(tmp_path: Path) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    make_wheel(folder, "1.0", BUGGY)
    make_wheel(folder, "1.0.1", BUGGY)
    make_wheel(folder, "1.1", FIXED)
    make_sdist(folder, "1.1", FIXED)
    return folder


def record(python: str, version: str, status: Status) -> CellRecord:
    return factories.record(python, version, status, "r",
                      output_excerpt=TRACEBACK if status is R else "")


GRID = {"0.9": (N, CI), "1.0": (R, CI), "1.0.1": (R, R), "1.1": (N, N)}  # py3.9, py3.11
RECORDS = [record(python, version, statuses[i]) for version, statuses in GRID.items()
           for i, python in enumerate(("3.9", "3.11"))]
META: dict[str, Any] = {"package": "pkg", "description": "serve(port=0) binds 5000 (#77)",
                        "claim": {"first_fixed": "1.1"}}


def verdict() -> Verdict:
    return derive([Observation(r.cell.python, r.cell.version, r.status) for r in RECORDS],
                  Claim(first_fixed="1.1"))


def test_pairs_are_each_boundary_once_and_the_narrowest() -> None:
    pairs = boundary.boundary_pairs(RECORDS, verdict())
    # py3.11 sees 1.0.1 as its first affected release only because 1.0 could not install there:
    # (0.9 → 1.0.1) spans (0.9 → 1.0) and is dropped.
    assert pairs == [boundary.Pair("introduced", "0.9", "1.0", "demo/py3.9/1.0"),
                     boundary.Pair("fixed", "1.0.1", "1.1", "demo/py3.9/1.0.1")]


def test_site_frames_are_installed_files_only() -> None:
    assert [(f.path, f.function) for f in boundary.site_frames(TRACEBACK)] == [
        ("pkg/core.py", "serve"), ("pkg/core.py", "bind"), ("otherpkg/util.py", "wrap")]


def test_diff_is_narrowed_to_the_functions_on_the_stack(releases: Path) -> None:
    find = DistFinder([releases])
    (_, fixed) = boundary.explain_case(META, RECORDS, verdict(), find, [])
    assert (fixed.kind, fixed.before, fixed.after) == ("fixed", "1.0.1", "1.1")
    changed = {f.function: f.diff for f in fixed.functions}
    assert set(changed) == {"Server.serve", "bind"}  # otherpkg is not the package's own file
    assert changed["bind"] == ""  # on the stack, unchanged
    serve = changed["Server.serve"]
    assert "-        chosen = int(port or 5000)\n" in serve
    assert "+        chosen = 5000 if port is None else int(port)\n" in serve
    assert serve.startswith("--- pkg/core.py (1.0.1)\n+++ pkg/core.py (1.1)\n")
    # neither the function off the stack nor the docstring is in the diff
    assert "unrelated" not in serve and '"old"' not in serve and "docstring" not in serve
    assert fixed.links == (("Home page", "https://pkg.example/"),
                           ("Changelog", "https://pkg.example/changes"),
                           ("Source", "https://code.example/pkg"))


def test_changelog_entries_between_the_two_releases_from_the_sdist(releases: Path) -> None:
    (_, fixed) = boundary.explain_case(META, RECORDS, verdict(), DistFinder([releases]),
                                       [])
    assert fixed.changelog_file == "CHANGES.rst"
    assert [version for version, _ in fixed.changelog] == ["1.1"]  # after 1.0.1, up to 1.1
    assert fixed.related_entries[0].endswith(":issue:`77`")  # the case's issue, then words
    assert "pkg-1.1.tar.gz" in fixed.files


def test_introducing_boundary_against_a_release_without_the_function(releases: Path) -> None:
    make_wheel(releases, "0.9", '"""No serve yet."""\n')
    introduced, _ = boundary.explain_case(META, RECORDS, verdict(),
                                          DistFinder([releases]), [])
    serve = next(f for f in introduced.functions if f.function == "Server.serve")
    assert serve.diff.startswith("--- pkg/core.py (0.9)\n+++ pkg/core.py (1.0)\n")
    assert "+        chosen = int(port or 5000)\n" in serve.diff
    assert not introduced.changelog_file  # wheels ship no changelog and no 1.0 sdist is here


def test_missing_files_are_said_and_a_stored_explanation_is_kept(releases: Path) -> None:
    computed = boundary.explain_case(META, RECORDS, verdict(), DistFinder([releases]),
                                     [])
    nothing = boundary.explain_case(META, RECORDS, verdict(), DistFinder([]), [])
    assert all("no distribution of pkg" in e.missing for e in nothing)
    stored = boundary.from_json(json.loads(json.dumps(boundary.to_json(computed))))
    assert boundary.explain_case(META, RECORDS, verdict(), DistFinder([]),
                                 stored) == computed
    assert boundary.explain_case(META, RECORDS, verdict(), None, stored) == computed


def test_render_stores_boundaries_and_rerender_without_files_keeps_them(
        tmp_path: Path, releases: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    results = tmp_path / "results"
    store.write_cells(results, "demo", RECORDS, META)
    render_results(results, find=DistFinder([releases]))
    saved = (results / "demo" / "boundaries.json").read_text()
    first = (results / "report.md").read_text()
    assert "+        chosen = 5000 if port is None else int(port)" in first
    render_results(results)  # no files at hand: what was stored stands
    assert (results / "demo" / "boundaries.json").read_text() == saved
    assert (results / "report.md").read_text() == first
    assert "chosen = 5000 if port is None" in (results / "report.html").read_text()


def test_a_python2_only_file_falls_back_to_indentation() -> None:
    text = "def serve(port):\n    print 'x'\n    return port or 5000\n\ndef other():\n    pass\n"
    found = boundary.locate(text, "serve", 3)
    assert found is not None and (found[1].first, found[1].last) == (1, 4)


def test_changelog_sections_read_rst_and_markdown_headings() -> None:
    markdown = "# Changelog\n\n## v2.0 (2024)\n\n- b\n\n## 1.9\n\n- a\n"
    assert [v for v, _ in boundary.changelog_sections(markdown)] == ["2.0", "1.9"]
    assert [v for v, _ in boundary.entries_between(CHANGES, "1.0", "1.1")] == ["1.1", "1.0.1"]
    assert boundary.bullet_entries(dict(boundary.changelog_sections(CHANGES))["1.1"]) == [
        "-   ``Server.serve`` accepts port 0 and lets the OS pick a port. :issue:`77`",
        "-   Faster startup."]


def test_stored_boundaries_match_their_schema(tmp_path: Path, releases: Path) -> None:
    from importlib import resources

    import jsonschema

    text = resources.files("repro_matrix").joinpath("schemas", "boundaries.schema.json")
    computed = boundary.explain_case(META, RECORDS, verdict(), DistFinder([releases]),
                                     [])
    missing = boundary.explain_case(META, RECORDS, verdict(), None, [])
    for explained in (computed, missing):
        payload = json.loads(json.dumps(boundary.to_json(explained)))
        jsonschema.validate(payload, json.loads(text.read_text()))


def test_a_damaged_archive_is_said_not_raised(releases: Path) -> None:
    (releases / "pkg-1.1-py3-none-any.whl").write_bytes(b"not a zip")
    (_, fixed) = boundary.explain_case(META, RECORDS, verdict(), DistFinder([releases]),
                                       [])
    assert "unreadable" in fixed.missing
