"""Bisect along a case's axis: synthetic rows and grids, probes counted, compared with what the
full grid says about each row."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from repro_matrix.model import Status
from repro_matrix.run.bisect import bisect_row, row_budget
from repro_matrix.verdict.grid import BROKEN, DECLARED, UNDECIDED, WORKS, analyse_row, axis_state

AXIS = [f"0.{i}" for i in range(37)]
W, B, D, CI = Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE, Status.CANNOT_INSTALL


def row(*parts: tuple[Status, int]) -> dict[str, Status]:
    """A row from (status, how many axis releases) runs, oldest first."""
    statuses = [status for status, count in parts for _ in range(count)]
    assert len(statuses) == len(AXIS)
    return dict(zip(AXIS, statuses))


class Counting:
    """A probe that answers from a full row and remembers what it was asked."""

    def __init__(self, statuses: dict[str, Status]) -> None:
        self.statuses = statuses
        self.asked: list[str] = []

    def __call__(self, version: str) -> str:
        assert version not in self.asked, f"{version} probed twice"
        self.asked.append(version)
        return axis_state(self.statuses[version])


def words(statuses: dict[str, Status], versions: Sequence[str] = AXIS) -> str:
    return analyse_row("3.11", "1.0", statuses, versions, "dep").words


def boundaries(statuses: dict[str, Status]) -> int:
    states = [axis_state(statuses[v]) for v in AXIS if axis_state(statuses[v]) != UNDECIDED]
    return sum(1 for a, b in zip(states, states[1:]) if a != b)


SHAPES = {
    "works then broken": row((W, 9), (B, 28)),
    "declared, works, broken": row((D, 7), (W, 13), (B, 17)),
    "declared then works": row((D, 27), (W, 10)),
    "broken, works, broken": row((B, 4), (W, 20), (B, 13)),
    "declared, broken, works, broken, declared": row((D, 3), (B, 5), (W, 10), (B, 9), (D, 10)),
    "a one-release works range": row((D, 20), (W, 1), (B, 16)),
    "works everywhere": row((W, 37)),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_row_finds_what_the_full_row_shows_in_logarithmic_probes(name: str) -> None:
    statuses = SHAPES[name]
    probe = Counting(statuses)
    found = bisect_row(AXIS, probe)
    probed = {v: statuses[v] for v in probe.asked}
    assert words(probed) == words(statuses)
    assert not found.non_monotonic and not found.note
    log = math.ceil(math.log2(len(AXIS)))
    changes = boundaries(statuses)
    # Two ends and a midpoint (a row whose probes all agree: two levels of midpoints), then a
    # halving search per boundary.
    assert found.runs <= (3 + changes * log if changes else 2 + 3)
    if changes <= 2:
        assert found.runs < len(AXIS) / 2


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_row_like_its_neighbour_costs_its_ends_and_two_probes_per_boundary(name: str) -> None:
    statuses = SHAPES[name]
    first = bisect_row(AXIS, Counting(statuses))
    probe = Counting(statuses)
    again = bisect_row(AXIS, probe, first.boundaries)
    assert again.boundaries == first.boundaries
    # A row whose probes all agree looks between them once more (two levels of midpoints).
    assert again.runs <= 2 + 2 * len(first.boundaries) + (3 if not first.boundaries else 0)
    assert words({v: statuses[v] for v in probe.asked}) == words(statuses)


def test_a_seed_from_a_different_row_still_finds_this_rows_boundaries() -> None:
    previous = bisect_row(AXIS, Counting(row((W, 9), (B, 28))))
    statuses = row((D, 7), (W, 23), (B, 7))
    probe = Counting(statuses)
    found = bisect_row(AXIS, probe, previous.boundaries)
    assert words({v: statuses[v] for v in probe.asked}) == words(statuses)
    assert found.runs <= row_budget(len(AXIS), len(previous.boundaries))


def test_a_row_that_breaks_works_and_breaks_again_is_not_monotonic_and_says_so() -> None:
    statuses = row((W, 10), (B, 10), (W, 17))
    # The neighbouring row's boundaries lead the search into both changes.
    seeds = [("0.9", "0.10"), ("0.19", "0.20")]
    found = bisect_row(AXIS, Counting(statuses), seeds)
    assert found.non_monotonic
    assert "not monotonic" in found.note
    assert not analyse_row("3.11", "1.0", {v: statuses[v] for v in found.states}, AXIS,
                           "dep").monotonic


def test_undecided_cells_inside_a_row_are_stepped_over() -> None:
    statuses = row((D, 7), (W, 6), (CI, 3), (W, 4), (B, 17))
    probe = Counting(statuses)
    found = bisect_row(AXIS, probe)
    assert not found.non_monotonic
    assert ("0.19", "0.20") in found.boundaries  # last works, first broken
    assert ("0.6", "0.7") in found.boundaries  # last declared incompatible, first works


def test_a_row_that_installs_nowhere_costs_three_probes() -> None:
    found = bisect_row(AXIS, Counting(row((CI, 37))))
    assert found.runs == 3
    assert "nothing decided" in found.note
    assert found.boundaries == []


def test_a_grid_bisected_row_by_row_matches_the_full_grid_at_a_fraction_of_the_cells() -> None:
    # Twelve package releases shaped like a dependency that removes an API twice: each row
    # group shares its boundaries with its neighbours, as real grids do.
    grid = ([row((W, 4), (B, 33))] * 3 + [row((W, 20), (B, 17))] * 3
            + [row((D, 8), (W, 12), (B, 17))] * 3 + [row((D, 8), (W, 22), (B, 7))] * 2
            + [row((D, 25), (W, 12))])
    seeds: list[tuple[str, str]] = []
    total = 0
    for statuses in grid:
        probe = Counting(statuses)
        found = bisect_row(AXIS, probe, seeds)
        assert words({v: statuses[v] for v in probe.asked}) == words(statuses)
        seeds = found.boundaries or seeds
        total += found.runs
    full = len(grid) * len(AXIS)
    assert total <= full // 4, f"{total} of {full} cells"


def test_states_read_from_statuses() -> None:
    assert [axis_state(s) for s in (W, B, D, CI, Status.REPRODUCED, Status.NOT_REPRODUCED)] \
        == [WORKS, BROKEN, DECLARED, UNDECIDED, BROKEN, WORKS]
