"""advisories.read, spec.config and spec.scaffold: OSV records and claim.ranges become claims; new
--from-osv scaffolds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_matrix import cli
from repro_matrix.advisories import read as advisory
from repro_matrix.errors import UsageError
from repro_matrix.model import Claim, ClaimRange, Release
from repro_matrix.spec import config, scaffold

# A synthetic record in the shape the advisory databases publish (package and versions made up).
RECORD: dict[str, Any] = {
    "schema_version": "1.4.0",
    "id": "GHSA-aaaa-bbbb-cccc",
    "modified": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2099-0001"],
    "summary": "demo: \"quoted\" summary",
    "affected": [
        {"package": {"ecosystem": "PyPI", "name": "My_Pkg"},
         "ranges": [
             {"type": "GIT", "repo": "https://example.org/x.git",
              "events": [{"introduced": "0"}, {"fixed": "abc123"}]},
             {"type": "ECOSYSTEM",
              "events": [{"introduced": "0"}, {"fixed": "1.2.3"}, {"introduced": "2.0"},
                         {"last_affected": "2.0.2"}, {"introduced": "3.0"}]}]},
        {"package": {"ecosystem": "npm", "name": "my-pkg"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "9.9.9"}]}]},
    ],
}


def write_record(folder: Path, record: dict[str, Any] = RECORD, name: str = "rec.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_record_ranges_for_the_normalized_pypi_name() -> None:
    claim = advisory.claim_from_record(RECORD, "my-pkg", "rec.json")
    assert claim.ranges == (ClaimRange("0", fixed="1.2.3"),
                            ClaimRange("2.0", last_affected="2.0.2"), ClaimRange("3.0"))
    assert claim.advisory_id == "GHSA-aaaa-bbbb-cccc" and claim.aliases == ("CVE-2099-0001",)
    assert claim.source == "OSV record GHSA-aaaa-bbbb-cccc (CVE-2099-0001)"
    assert claim.named_versions() == ("1.2.3", "2.0", "2.0.2", "3.0")


@pytest.mark.parametrize(("change", "expected"), [
    ({"affected": []}, "no PyPI ECOSYSTEM range for package 'my-pkg'"),
    ({"affected": [{"package": {"ecosystem": "PyPI", "name": "my-pkg"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}]},
     "fixed with no introduced before it"),
    ({"affected": [{"package": {"ecosystem": "PyPI", "name": "my-pkg"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "soon"}]}]}]},
     "'soon' is not a PEP 440 version"),
])
def test_bad_records_name_the_file(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(UsageError) as info:
        advisory.claim_from_record({**RECORD, **change}, "my-pkg", "rec.json")
    assert info.value.message.startswith("rec.json: ") and expected in info.value.message


def test_unreadable_records(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such OSV record"):
        advisory.read_record(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(UsageError, match="line 1: not JSON"):
        advisory.read_record(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UsageError, match="not an OSV record"):
        advisory.read_record(tmp_path / "list.json")


RELEASES = [f"1.{minor}.{patch}" for minor in range(4) for patch in range(4)] + ["2.0", "2.1"]


def test_window_keeps_a_margin_around_the_bounds() -> None:
    win = scaffold.window([ClaimRange("1.1.0", fixed="1.1.2")], RELEASES, margin=2)
    assert win.versions == ("1.0.2", "1.0.3", "1.1.0", "1.1.1", "1.1.2", "1.1.3", "1.2.0")
    assert win.spec == ">=1.0.2,<=1.2.0" and win.outside == ()


def test_window_is_bounded_and_keeps_the_newest_bounds() -> None:
    win = scaffold.window([ClaimRange("0", fixed="1.0.1"), ClaimRange("1.3.0", fixed="2.0")],
                          RELEASES, margin=1, most=5)
    assert win.versions == ("1.2.3", "1.3.0", "1.3.1", "1.3.2", "1.3.3", "2.0", "2.1")[-5:]
    assert win.outside == ("0", "1.0.1", "1.3.0")
    wider = scaffold.window([ClaimRange("0", fixed="1.0.1"), ClaimRange("1.3.0", fixed="2.0")],
                            RELEASES, margin=1, most=7)
    assert wider.versions[0] == "1.2.3" and wider.outside == ("0", "1.0.1")


def test_config_reads_ranges_and_osv(tmp_path: Path) -> None:
    (tmp_path / "repro.py").write_text("")
    write_record(tmp_path)
    case = {"id": "demo", "package": "my.pkg", "repro": "repro.py",
            "outcome": {"signature": "boom"}}
    data = {"cases": [{**case, "claim": {"ranges": [{"introduced": "0", "fixed": "1.0"},
                                                    {"introduced": "2.0",
                                                     "last_affected": "2.1"}]}},
                      {**case, "id": "rec", "claim": {"osv": "rec.json"}}]}
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(data))
    by_ranges, by_record = config.load(path).cases
    assert by_ranges.claim == Claim(ranges=(ClaimRange("0", fixed="1.0"),
                                            ClaimRange("2.0", last_affected="2.1")))
    assert by_record.claim.advisory_id == "GHSA-aaaa-bbbb-cccc"
    assert len(by_record.claim.ranges) == 3


@pytest.mark.parametrize(("claim", "expected"), [
    ({"ranges": [{"fixed": "1.0"}]}, "claim.ranges[0].introduced: missing"),
    ({"ranges": [{"introduced": "1.0", "fixed": "2.0", "last_affected": "1.5"}]},
     "claim.ranges[0].last_affected: a range has fixed or last_affected, not both"),
    ({"ranges": [{"introduced": "0", "fixed": "soon"}]}, "claim.ranges[0].fixed: 'soon' is not"),
    ({"ranges": []}, "claim.ranges: expected a non-empty list"),
    ({"ranges": [{"introduced": "1.0"}], "first_fixed": "1.1"},
     "claim.first_fixed: give the claim either as ranges or as first_fixed, not both"),
    ({"osv": "absent.json"}, "claim.osv: "),
    ({"osv": "rec.json", "ranges": [{"introduced": "1.0"}]}, "claim.osv: give the claim"),
])
def test_claim_mistakes_name_the_key(tmp_path: Path, claim: dict[str, Any],
                                     expected: str) -> None:
    (tmp_path / "repro.py").write_text("")
    write_record(tmp_path)
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": [{
        "id": "demo", "package": "my-pkg", "repro": "repro.py",
        "outcome": {"signature": "boom"}, "claim": claim}]}))
    with pytest.raises(UsageError) as info:
        config.load(path)
    assert expected in info.value.message


def test_ranges_outside_the_tested_versions_are_no_input_error(tmp_path: Path) -> None:
    (tmp_path / "repro.py").write_text("")
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": [{
        "id": "demo", "package": "my-pkg", "repro": "repro.py", "versions": {"spec": ">=1.0"},
        "outcome": {"signature": "boom"},
        "claim": {"ranges": [{"introduced": "0", "fixed": "9.0"}]}}]}))
    releases = [Release(v, None, False) for v in ("0.5", "1.0", "1.1")]
    config.check_against_index(config.load(path), lambda _: releases)


MATRIX = """# a comment
cases:
  - id: old
    package: x
    repro: old.py
    outcome: {signature: boom}

# about the base images
base_images:
  provider: auto
"""


def test_new_from_osv_scaffolds_a_case_that_loads(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "old.py").write_text("")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    record = write_record(tmp_path / "..", copy.deepcopy(RECORD), "GHSA-record.json")
    written = scaffold.scaffold_from_osv(record, "demo-adv", matrix, RELEASES, pythons=("3.11",))
    text = matrix.read_text()
    assert text.startswith("# a comment\ncases:\n  - id: old")
    assert text.index("id: demo-adv") < text.index("# about the base images")
    loaded = config.load(matrix)
    case = loaded.cases[1]
    assert case.package == "My_Pkg" and case.pythons == ("3.11",)
    assert case.claim.advisory_id == "GHSA-aaaa-bbbb-cccc"
    assert "(reported as not checked): 0, 3.0" in text
    assert written[0] == tmp_path / "cases" / "demo-adv" / "GHSA-aaaa-bbbb-cccc.json"
    with pytest.raises(UsageError, match="already"):
        scaffold.scaffold_from_osv(record, "demo-adv", matrix, RELEASES)


def test_new_needs_a_package_when_the_record_names_several() -> None:
    record = copy.deepcopy(RECORD)
    record["affected"].append({"package": {"ecosystem": "PyPI", "name": "other"}})
    with pytest.raises(UsageError, match="names 2 PyPI packages") as info:
        advisory.choose_package(record, None, "rec.json")
    assert info.value.hint == "choose one with --package"
    assert advisory.choose_package(record, "other", "rec.json") == "other"


def test_new_cli_rejects_a_bad_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = write_record(tmp_path)
    assert cli.main(["new", "Bad Id", "--from-osv", str(record)]) == 2
    assert "not a case id" in capsys.readouterr().err


def test_new_cli_reads_the_window_from_the_index(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from repro_matrix.resolve.index import IndexClient

    listed = [Release(v, None, False) for v in RELEASES] + [Release("1.3.4", None, True),
                                                             Release("2.2rc1", None, False)]
    monkeypatch.setattr(IndexClient, "releases", lambda self, project: listed)
    record = write_record(tmp_path)
    matrix = tmp_path / "matrix.yaml"
    assert cli.main(["new", "demo", "--from-osv", str(record), "--matrix", str(matrix),
                     "--python", "3.13"]) == 0
    case = config.load(matrix).cases[0]
    # The newest bound (3.0, open-ended) is past every final release: the window ends with
    # the newest final one, never a yanked or pre-release.
    assert case.versions.spec.endswith("<=2.1") and case.pythons == ("3.13",)
    err = capsys.readouterr().err
    assert "next: write the repro" in err
    # No wheel listed: the import is the project name, and `new` says so.
    assert case.import_name == "my_pkg" and "import: my_pkg (the project name: no wheel" in err
