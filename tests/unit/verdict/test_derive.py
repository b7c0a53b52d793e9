"""verdict.derive: ranges, branch notes and claim checks from synthetic observations."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from repro_matrix.model import Claim, Status
from repro_matrix.verdict.derive import AffectedRange, Observation, derive

R, N = Status.REPRODUCED, Status.NOT_REPRODUCED
NO_INSTALL, OTHER = Status.CANNOT_INSTALL, Status.OTHER_FAILURE


def history(states: dict[str, Status], pythons: Iterable[str] = ("3.9", "3.11")) \
        -> list[Observation]:
    return [Observation(p, v, s) for p in pythons for v, s in states.items()]


SIMPLE = history({"1.0": N, "1.1": R, "1.2": R, "2.0": N, "2.1": N})
# 0.9.x maintenance releases were uploaded after 1.0.x and are unaffected; 1.0.x is affected and
# never got the fix, which came only in 1.1.0.
BRANCHED = history({"1.0.0": R, "1.0.1": R, "0.9.0": N, "1.0.2": R, "0.9.1": N, "1.1.0": N})


def test_simple_history_gives_one_range() -> None:
    verdict = derive(SIMPLE, Claim())
    assert verdict.overall.ranges == (AffectedRange("1.1", "1.2", "2.0", False),)
    assert (verdict.overall.introduced, verdict.overall.first_fixed) == ("1.1", "2.0")
    assert [s.name for s in verdict.per_python] == ["Python 3.9", "Python 3.11"]
    assert verdict.overall.decisive == 5


def test_affected_from_the_first_tested_release_is_flagged() -> None:
    (rng,) = derive(history({"1.0": R, "2.0": N}), Claim()).overall.ranges
    assert rng == AffectedRange("1.0", "1.0", "2.0", True)


def test_still_affected_at_the_newest_release_has_no_fix() -> None:
    verdict = derive(history({"1.0": N, "2.0": R}), Claim())
    assert verdict.overall.ranges == (AffectedRange("2.0", "2.0", None, False),)
    assert verdict.overall.first_fixed is None


def test_branch_that_never_got_the_fix_is_noted() -> None:
    overall = derive(BRANCHED, Claim()).overall
    assert overall.ranges == (AffectedRange("1.0.0", "1.0.2", "1.1.0", False),)
    (note,) = overall.branches
    assert (note.series, note.last_release, note.fixed_in_series) == ("1.0", "1.0.2", None)
    assert "never got the fix" in note.sentence()


def test_branch_fixed_within_its_series_is_noted() -> None:
    (note,) = derive(history({"1.0.0": R, "1.0.1": N, "1.1.0": N}), Claim()).overall.branches
    assert note.fixed_in_series == "1.0.1"
    assert note.sentence() == "1.0.x: fixed within the branch in 1.0.1"


def test_claim_confirmed_when_first_unaffected_after_affected() -> None:
    check = derive(SIMPLE, Claim(first_fixed="2.0", introduced="1.1")).claim
    assert check.holds is True
    assert "py3.9/1.2: reproduced" in check.evidence
    assert "py3.11/2.0: not_reproduced" in check.evidence


def test_claim_on_non_monotonic_history_is_confirmed_at_the_real_fix() -> None:
    assert derive(BRANCHED, Claim(first_fixed="1.1.0")).claim.holds is True
    assert derive(BRANCHED, Claim(first_fixed="1.0.2")).claim.holds is False


def test_claim_refuted_when_claimed_version_is_affected() -> None:
    check = derive(SIMPLE, Claim(first_fixed="1.2")).claim
    assert check.holds is False
    assert "refuted, 1.2 is affected" in check.explanation


def test_claim_refuted_when_release_before_is_already_unaffected() -> None:
    check = derive(SIMPLE, Claim(first_fixed="2.1")).claim
    assert check.holds is False
    assert "(2.0) is already unaffected" in check.explanation


def test_claim_refuted_when_a_later_version_regresses() -> None:
    check = derive(history({"1.0": R, "1.1": N, "1.2": N, "1.3": R}),
                   Claim(first_fixed="1.1")).claim
    assert check.holds is False
    assert "1.3 (later) is affected again" in check.explanation


def test_claim_undecided_without_a_decisive_cell_for_the_version() -> None:
    observations = history({"1.0": R, "1.5": NO_INSTALL, "2.0": N})
    assert derive(observations, Claim(first_fixed="1.5")).claim.holds is None
    assert derive(observations, Claim(first_fixed="1.7")).claim.holds is None


def test_claim_undecided_when_nothing_earlier_was_tested() -> None:
    assert derive(history({"1.0": R, "2.0": N}), Claim(introduced="1.0")).claim.holds is None


def test_no_claim_cannot_hold() -> None:
    check = derive(SIMPLE, Claim()).claim
    assert (check.holds, check.evidence) == (None, ())


def test_one_refuted_boundary_refutes_the_claim() -> None:
    assert derive(SIMPLE, Claim(first_fixed="2.0", introduced="1.0")).claim.holds is False


def test_changing_only_the_claim_changes_the_check_not_the_scopes() -> None:
    confirmed = derive(SIMPLE, Claim(first_fixed="2.0"))
    refuted = derive(SIMPLE, Claim(first_fixed="1.2"))
    assert confirmed.claim != refuted.claim
    assert confirmed.overall == refuted.overall
    assert confirmed.per_python == refuted.per_python
    assert confirmed.differs_by_python == refuted.differs_by_python


def test_undetermined_versions_are_skipped_when_finding_ranges() -> None:
    observations = history({"1.0": N, "1.1": NO_INSTALL, "1.2": R, "1.3": OTHER, "1.4": R,
                            "1.5": NO_INSTALL, "2.0": N})
    verdict = derive(observations, Claim(first_fixed="2.0"))
    assert verdict.overall.ranges == (
        AffectedRange("1.2", "1.4", "2.0", False, ("1.1",), ("1.5",)),)
    assert verdict.overall.undetermined == ("1.1", "1.3", "1.5")
    assert verdict.overall.decisive == 4
    assert verdict.claim.holds is True


def test_differs_by_python_lists_conflicting_versions() -> None:
    observations = [
        Observation("3.9", "1.0", R), Observation("3.11", "1.0", N),
        Observation("3.9", "1.1", R), Observation("3.11", "1.1", R),
        Observation("3.9", "1.2", N), Observation("3.11", "1.2", NO_INSTALL),
    ]
    verdict = derive(observations, Claim())
    assert verdict.differs_by_python == ("1.0",)
    py39, py311 = verdict.per_python
    assert py39.introduced == "1.0"
    assert py311.introduced == "1.1"
    assert verdict.overall.introduced == "1.0"


def test_per_python_scopes_are_in_numeric_order() -> None:
    verdict = derive(history({"1.0": R}, pythons=("3.10", "3.9", "3.12")), Claim())
    assert [s.name for s in verdict.per_python] == ["Python 3.9", "Python 3.10", "Python 3.12"]


def test_not_for_this_python_decides_nothing() -> None:
    """A release whose requires-python excludes a Python is neither affected nor fixed there:
    the verdict is the one the other cells give, and the claim check never cites it."""
    excluded = Status.NOT_FOR_PYTHON
    observations = [*history({"1.0": N, "1.1": R, "2.0": N}, ("3.9",)),
                    *history({"1.0": excluded, "1.1": excluded, "2.0": N}, ("3.11",))]
    verdict = derive(observations, Claim(first_fixed="1.1"))
    assert (verdict.overall.introduced, verdict.overall.first_fixed) == ("1.1", "2.0")
    assert verdict.per_python[1].decisive == 1 and not verdict.per_python[1].ranges
    assert verdict.claim.holds is False
    assert all("3.11" not in cell for cell in verdict.claim.evidence)


@pytest.mark.parametrize("claim", [Claim(first_fixed="9.0"), Claim(introduced="0.1")])
def test_a_short_form_bound_outside_the_tested_window_is_not_checked(claim: Claim) -> None:
    observations = [Observation("3.9", "1.0", Status.REPRODUCED),
                    Observation("3.9", "2.0", Status.NOT_REPRODUCED)]
    check = derive(observations, claim).claim
    assert check.holds is None
    assert "outside the tested window (1.0–2.0), not checked" in check.explanation
