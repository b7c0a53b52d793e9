"""report.claim: the range-by-range section of report.md and the OSV blocks beside each other."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema

from repro_matrix.advisories import write as osv
from repro_matrix.model import CellRecord, Claim, ClaimRange, Status
from repro_matrix.report import markdown
from repro_matrix.report.claim import observed_affected, published_affected
from repro_matrix.verdict.derive import Observation, Verdict, derive
from tests.factories import record

R, N = Status.REPRODUCED, Status.NOT_REPRODUCED
STATES = {"1.0": N, "1.1": R, "1.2": N, "1.3": R, "1.4": N}
META: dict[str, Any] = {"case": "demo", "package": "pkg", "description": "demo",
                        "finished_at": "2024-01-02T03:04:05Z"}


def verdict_for(claim: Claim) -> tuple[list[CellRecord], Verdict]:
    records = [record("3.9", v, s, "why") for v, s in STATES.items()]
    return records, derive([Observation("3.9", v, s) for v, s in STATES.items()], claim)


def osv_schema() -> dict[str, Any]:
    text = resources.files("repro_matrix").joinpath("schemas", "osv.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


WRONG = Claim(ranges=(ClaimRange("0", fixed="1.2"),), advisory_id="GHSA-aaaa-bbbb-cccc",
              aliases=("CVE-2099-1",), source="OSV record GHSA-aaaa-bbbb-cccc (CVE-2099-1)")


def test_a_claim_that_does_not_hold_shows_both_affected_blocks() -> None:
    records, verdict = verdict_for(WRONG)
    text = markdown.render_case("demo", META, records, verdict)
    assert "### Claim, range by range" in text
    assert "| claimed | [first release, 1.2) |" in text
    assert "| observed (all Pythons) | [1.1, 1.2) ∪ [1.3, 1.4) |" in text
    assert "The published OSV `affected` block beside the one the cells support" in text
    # The deciding cells link to their evidence in report.html.
    assert "[`py3.9/1.0: not reproduced`](report.html#cell=demo/py3.9/1.0)" in text
    assert 'The claim "affected [first release, 1.2)" (OSV record' in text
    assert "❌ does not hold" in text


def test_observed_and_published_blocks_are_valid_osv() -> None:
    _, verdict = verdict_for(WRONG)
    for block in (observed_affected("pkg", verdict.overall),
                  published_affected("pkg", WRONG.ranges)):
        record = {"schema_version": "1.6.0", "id": "x_REPRO-MATRIX-demo",
                  "modified": "2024-01-02T03:04:05Z", "affected": [block]}
        jsonschema.validate(record, osv_schema())
    observed = observed_affected("pkg", verdict.overall)
    assert [r["events"] for r in observed["ranges"]] == [
        [{"introduced": "1.1"}, {"fixed": "1.2"}], [{"introduced": "1.3"}, {"fixed": "1.4"}]]


def test_holds_where_checked_is_said_so() -> None:
    claim = Claim(ranges=(ClaimRange("1.1", fixed="1.2"), ClaimRange("1.3", fixed="9.0")))
    records, verdict = verdict_for(claim)
    assert verdict.claim.answer == "does not hold"  # 1.4 is claimed affected but is not
    narrow = Claim(ranges=(ClaimRange("1.1", fixed="1.2"), ClaimRange("1.3", fixed="1.4"),
                           ClaimRange("9.0", fixed="9.1")))
    records, verdict = verdict_for(narrow)
    text = markdown.render_case("demo", META, records, verdict)
    assert "☑️ holds where checked" in text
    assert "introduced 9.0 | ⬜ outside the tested window" in text
    exported = osv.to_osv("demo", META, records, verdict)
    assert exported["database_specific"]["claim_answer"] == "holds where checked"
    jsonschema.validate(exported, osv_schema())


def test_short_form_claims_render_no_range_section() -> None:
    records, verdict = verdict_for(Claim(first_fixed="1.2"))
    assert "range by range" not in markdown.render_case("demo", META, records, verdict)
