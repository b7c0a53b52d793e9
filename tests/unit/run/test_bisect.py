"""Bisect search against synthetic histories, compared with what a full scan would say."""

from __future__ import annotations

import math

import pytest

from repro_matrix.run.bisect import bisect_versions
from repro_matrix.verdict.derive import AFFECTED, UNAFFECTED, UNDETERMINED

VERSIONS = [f"1.{i}" for i in range(40)]


def history(affected: range, untestable: tuple[int, ...] = ()) -> dict[str, str]:
    return {v: UNDETERMINED if i in untestable else AFFECTED if i in affected else UNAFFECTED
            for i, v in enumerate(VERSIONS)}


def full_scan(states: dict[str, str]) -> tuple[str | None, str | None]:
    decisive = [v for v in VERSIONS if states[v] != UNDETERMINED]
    affected = [v for v in decisive if states[v] == AFFECTED]
    if not affected:
        return None, None
    after = [v for v in decisive[decisive.index(affected[-1]) + 1:]]
    return affected[0], after[0] if after else None


def budget(boundaries: int, untestable_ends: tuple[int, ...] = ()) -> int:
    """The documented budget, plus the logarithmic probes that cross an untestable run of the
    given length at an end of the history."""
    crossing = sum(2 * math.ceil(math.log2(length + 1)) for length in untestable_ends)
    return boundaries * (math.ceil(math.log2(len(VERSIONS))) + 3) + crossing


@pytest.mark.parametrize(("affected", "hints"), [
    (range(10, 15), ()), (range(0, 7), ()), (range(30, 40), ()), (range(3, 37), ()),
    # A one-release interval is found by the claim's hint, not by luck.
    (range(20, 21), ("1.21",)), (range(33, 34), ("1.34",)),
])
def test_bisect_agrees_with_a_full_scan_within_budget(affected: range,
                                                      hints: tuple[str, ...]) -> None:
    states = history(affected)
    result = bisect_versions(VERSIONS, states.__getitem__, hints)
    assert (result.introduced, result.fixed) == full_scan(states)
    assert not result.non_monotonic
    assert result.runs <= budget(2)


def test_without_a_hint_a_one_release_interval_is_not_guessed() -> None:
    states = history(range(11, 12))
    result = bisect_versions(VERSIONS, states.__getitem__)
    assert (result.introduced, result.fixed) in ((None, None), ("1.11", "1.12"))
    if result.introduced is None:
        assert "run the full matrix" in result.note
    assert result.runs <= budget(2)


def test_untestable_releases_are_stepped_over() -> None:
    states = history(range(10, 15), untestable=(9, 15, 16))
    result = bisect_versions(VERSIONS, states.__getitem__)
    assert (result.introduced, result.fixed) == full_scan(states)


def test_two_affected_intervals_are_reported_not_bisected() -> None:
    states = history(range(5, 8))
    states.update({v: AFFECTED for v in VERSIONS[20:32]})
    result = bisect_versions(VERSIONS, states.__getitem__)
    if not result.non_monotonic:
        # A search may miss the second interval entirely only if no probe landed in it;
        # then its answer must at least be a real boundary of the history.
        assert states[result.introduced or ""] == AFFECTED
    else:
        assert "not" in result.note


def test_no_affected_release_is_said_so_within_the_budget() -> None:
    result = bisect_versions(VERSIONS, history(range(0)).__getitem__)
    assert result.introduced is None and "full matrix" in result.note
    assert result.note.startswith("nothing to find: ")  # not "agrees": nothing was there
    assert "decided nothing" not in result.note
    assert result.runs <= budget(2)


def test_a_column_that_decides_only_late_releases_has_nothing_to_find() -> None:
    # An interpreter too new for most of the history, every release it runs after the fix.
    states = history(range(0), untestable=tuple(range(0, 30)))
    result = bisect_versions(VERSIONS, states.__getitem__)
    assert (result.introduced, result.fixed) == (None, None)
    assert result.note.startswith("nothing to find: ")
    assert f"releases before {VERSIONS[30]} decided nothing on this Python" in result.note


def test_mostly_untestable_releases_make_it_give_up_not_scan() -> None:
    states = history(range(30, 32), untestable=tuple(range(0, 28)))
    result = bisect_versions(VERSIONS, states.__getitem__)
    assert result.runs <= budget(2, untestable_ends=(28,))


@pytest.mark.parametrize(("affected", "untestable"), [
    # An interpreter newer than most of the history: a long leading run cannot be tested.
    (range(0), tuple(range(0, 30))),
    (range(32, 35), tuple(range(0, 30))),
    # And an old interpreter: the newest releases no longer support it.
    (range(5, 9), tuple(range(25, 40))),
])
def test_long_untestable_runs_are_galloped_over_within_budget(affected: range,
                                                              untestable: tuple[int, ...]) -> None:
    states = history(affected, untestable)
    result = bisect_versions(VERSIONS, states.__getitem__)
    assert result.runs <= budget(2, untestable_ends=(len(untestable),))
    assert "gave up" not in result.note
    assert (result.introduced, result.fixed) == full_scan(states)
