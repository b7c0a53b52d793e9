"""verdict.derive: claims as OSV ranges checked range by range on synthetic histories."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from repro_matrix.model import Claim, ClaimRange, Status, claim_from_json, claim_to_json
from repro_matrix.verdict.derive import (
    CANNOT_DECIDE,
    CONFIRMED,
    DOES_NOT_HOLD,
    HOLDS,
    HOLDS_WHERE_CHECKED,
    OUTSIDE,
    REFUTED,
    UNDECIDABLE,
    ClaimCheck,
    Observation,
    claimed_affected,
    derive,
)

R, N = Status.REPRODUCED, Status.NOT_REPRODUCED
NO_INSTALL = Status.CANNOT_INSTALL


def history(states: dict[str, Status], pythons: Iterable[str] = ("3.9", "3.11")) \
        -> list[Observation]:
    return [Observation(p, v, s) for p in pythons for v, s in states.items()]


def check(states: dict[str, Status], *ranges: ClaimRange) -> ClaimCheck:
    return derive(history(states), Claim(ranges=ranges)).claim


def outcomes(result: ClaimCheck) -> dict[str, str]:
    return {f"{b.kind} {b.version}": b.outcome for b in result.bounds}


# Two release lines: 2.1.x got the fix in 2.1.3, the 3.0 line brought the bug back until 3.0.2.
TWO_LINES = {"2.1.0": R, "2.1.1": R, "2.1.2": R, "2.1.3": N, "2.2.0": N, "3.0.0": R, "3.0.1": R,
             "3.0.2": N, "3.0.3": N}


def test_two_lines_hold_range_by_range() -> None:
    result = check(TWO_LINES, ClaimRange("0", fixed="2.1.3"),
                   ClaimRange("3.0.0", fixed="3.0.2"))
    assert outcomes(result) == {"introduced 0": OUTSIDE, "fixed 2.1.3": CONFIRMED,
                                "introduced 3.0.0": CONFIRMED, "fixed 3.0.2": CONFIRMED}
    # "0" lies before the window: the rest is confirmed, so the claim holds where checked.
    assert result.answer == HOLDS_WHERE_CHECKED and result.holds is None
    assert all(r.agrees for r in result.releases)
    assert any("introduced 0" in u for u in result.unchecked)


def test_two_lines_claimed_as_one_range_does_not_hold() -> None:
    result = check(TWO_LINES, ClaimRange("0", fixed="2.1.3"))
    assert result.answer == DOES_NOT_HOLD and result.holds is False
    wrong = [r.version for r in result.releases if r.agrees is False]
    assert wrong == ["3.0.0", "3.0.1"]
    assert "py3.9/3.0.0: reproduced" in result.evidence


def test_introduced_zero_inside_the_window_is_a_release_check() -> None:
    # The oldest tested release is unaffected although the claim says "every release from the
    # first": the releases refute it even though the "0" bound itself is not checked.
    result = check({"1.0": N, "1.1": R, "1.2": N}, ClaimRange("0", fixed="1.2"))
    assert outcomes(result)["introduced 0"] == OUTSIDE
    assert result.answer == DOES_NOT_HOLD
    assert result.evidence == ("py3.9/1.0: not_reproduced", "py3.11/1.0: not_reproduced")


def test_last_affected_confirmed_and_refuted() -> None:
    states = {"1.0": N, "1.1": R, "1.2": R, "1.3": N}
    confirmed = check(states, ClaimRange("1.1", last_affected="1.2"))
    assert confirmed.answer == HOLDS and confirmed.holds is True
    assert outcomes(confirmed) == {"introduced 1.1": CONFIRMED, "last_affected 1.2": CONFIRMED}
    refuted = check(states, ClaimRange("1.1", last_affected="1.1"))
    assert outcomes(refuted)["last_affected 1.1"] == REFUTED
    assert refuted.bounds[1].evidence == ("py3.9/1.2: reproduced", "py3.11/1.2: reproduced")


def test_window_narrower_than_the_claim_holds_where_checked() -> None:
    # Claimed [1.0, 5.0); only 2.0 to 2.2 were tested, all affected: neither bound can be reached.
    result = check({"2.0": R, "2.1": R, "2.2": R}, ClaimRange("1.0", fixed="5.0"))
    assert outcomes(result) == {"introduced 1.0": OUTSIDE, "fixed 5.0": OUTSIDE}
    assert result.answer == HOLDS_WHERE_CHECKED
    assert "Not checked" in result.explanation


def test_single_affected_release() -> None:
    states = {"1.0": N, "1.1": R, "1.2": N}
    assert check(states, ClaimRange("1.1", fixed="1.2")).answer == HOLDS
    assert check(states, ClaimRange("1.1", last_affected="1.1")).answer == HOLDS
    too_wide = check(states, ClaimRange("1.1", fixed="1.3"))
    assert too_wide.answer == DOES_NOT_HOLD
    assert [r.version for r in too_wide.releases if r.agrees is False] == ["1.2"]


def test_regression_fixed_again_needs_both_ranges() -> None:
    states = {"1.0": N, "1.1": R, "1.2": N, "1.3": R, "1.4": N}
    verdict = derive(history(states), Claim(ranges=(ClaimRange("1.1", fixed="1.2"),)))
    assert [(r.introduced, r.fixed) for r in verdict.overall.ranges] == [("1.1", "1.2"),
                                                                         ("1.3", "1.4")]
    assert verdict.claim.answer == DOES_NOT_HOLD
    both = check(states, ClaimRange("1.1", fixed="1.2"), ClaimRange("1.3", fixed="1.4"))
    assert both.answer == HOLDS


def test_untestable_releases_next_to_a_bound_make_it_undecidable() -> None:
    result = check({"1.0": R, "1.1": NO_INSTALL, "1.2": N}, ClaimRange("0", fixed="1.2"))
    assert outcomes(result)["fixed 1.2"] == UNDECIDABLE
    assert result.answer == HOLDS_WHERE_CHECKED
    assert any("1.1" in u for u in result.unchecked)


def test_no_decisive_cell_cannot_be_decided() -> None:
    result = check({"1.0": NO_INSTALL, "1.1": NO_INSTALL}, ClaimRange("1.0", fixed="1.1"))
    assert result.answer == CANNOT_DECIDE and result.holds is None


def test_open_range_is_affected_to_the_newest_release() -> None:
    assert claimed_affected((ClaimRange("1.0"),), "9.9")
    assert not claimed_affected((ClaimRange("1.0"),), "0.9")
    assert claimed_affected((ClaimRange("0", fixed="1.0"),), "0.0.1")
    result = check({"0.9": N, "1.0": R, "1.1": R}, ClaimRange("1.0"))
    assert result.answer == HOLDS


def test_short_form_claims_keep_their_check() -> None:
    verdict = derive(history({"1.0": R, "2.0": N}), Claim(first_fixed="2.0"))
    assert verdict.claim.holds is True and verdict.claim.answer_words == HOLDS
    assert verdict.claim.bounds == ()


@pytest.mark.parametrize("claim", [
    Claim(first_fixed="1.0", source="changelog"),
    Claim(ranges=(ClaimRange("0", fixed="1.0"), ClaimRange("2.0", last_affected="2.1"),
                  ClaimRange("3.0")), advisory_id="GHSA-xxxx-xxxx-xxxx",
          aliases=("CVE-2000-0001",), source="OSV record"),
])
def test_claim_round_trips_through_json(claim: Claim) -> None:
    assert claim_from_json(claim_to_json(claim)) == claim


def test_results_stored_before_ranges_existed_still_read() -> None:
    old = {"first_fixed": "1.0.3", "introduced": None, "source": "a fix page"}
    assert claim_from_json(old) == Claim(first_fixed="1.0.3", source="a fix page")
