"""verdict.grid: each row's boundary along the axis in words and fields, and the verdict per
Python, from synthetic rows of a made-up package "app" and dependency "lib"."""

from __future__ import annotations

import pytest

from repro_matrix.model import Status
from repro_matrix.verdict.grid import AxisObservation, analyse_row, derive_grid

W, B, D, CI = (Status.WORKS, Status.BROKEN, Status.DECLARED_INCOMPATIBLE,
               Status.CANNOT_INSTALL)
COLUMNS = ("0.9", "1.0", "1.1", "2.0", "2.1", "3.0")
ROWS = {"1.0": "WWBBBB", "1.1": "WWBBBB", "1.2": "WWWWBB", "2.0": "DDWWBB", "2.1": "DDDWWW",
        "2.2": "DDDWWI"}
LETTERS = {"W": W, "B": B, "D": D, "I": CI}


def observations(rows: dict[str, str], python: str = "3.11") -> list[AxisObservation]:
    return [AxisObservation(python, version, axis_version, LETTERS[letter])
            for version, letters in rows.items()
            for axis_version, letter in zip(COLUMNS, letters) if letter != "."]


def row_words(letters: str, columns: tuple[str, ...] = COLUMNS) -> str:
    statuses = {v: LETTERS[x] for v, x in zip(columns, letters) if x != "."}
    return analyse_row("3.11", "1.0", statuses, columns, "lib").words


# ---- the boundary of one row, in words ------------------------------------------------------


@pytest.mark.parametrize(("letters", "expected"), [
    ("WWBBBB", "works with lib >=0.9,<1.1; first lib that breaks: 1.1"),
    ("DDWWBB", "works with lib >=1.1,<2.1; first lib that breaks: 2.1; declared incompatible "
               "below 1.1"),
    ("BWWWBB", "works with lib >=1.0,<2.1; first lib that breaks: 2.1; broken below 1.0"),
    ("DDDWWW", "works with lib >=2.0; no lib release up to 3.0 breaks it; declared "
               "incompatible below 2.0"),
    ("WWWWDD", "works with lib >=0.9,<2.1; declared incompatible from 2.1"),
    ("DDWWWI", "works with lib >=1.1,<=2.1; no lib release up to 2.1 breaks it; declared "
               "incompatible below 1.1; not decided: 3.0 (cannot install)"),
    ("BBBBBB", "broken with every decided lib release (0.9–3.0)"),
    ("DDBBBB", "works with no lib release: declared incompatible 0.9–1.0, broken 1.1–3.0"),
    ("IIIIII", "nothing decided: 0.9–3.0 (cannot install)"),
    ("WBWWBB", "not monotonic along lib (run the full grid for this row): works 0.9, broken "
               "1.0, works 1.1–2.0, broken 2.1–3.0"),
])
def test_each_row_shape_reads_as_its_boundary(letters: str, expected: str) -> None:
    assert row_words(letters) == expected


def test_cells_a_bisection_did_not_run_belong_to_the_run_around_them() -> None:
    # Only the ends and the two sides of each change ran: the words are those of the full row.
    assert row_words("W..WBB") == row_words("WWWWBB")
    assert row_words("D.DW.W") == row_words("DDDWWW")


def test_the_verdict_per_python_names_neighbouring_rows_together() -> None:
    found = derive_grid(observations(ROWS) + observations(ROWS, "3.12"), "app", "lib")
    assert found.headline() == (
        "Every Python agrees. Python 3.11 and 3.12: the first lib that breaks app is 1.1 for "
        "1.0–1.1, 2.1 for 1.2–2.0; no lib release up to 3.0 breaks app 2.1; no lib release up "
        "to 2.1 breaks app 2.2.")
    differing = observations(ROWS) + observations({v: "WWWWWW" for v in ROWS}, "3.12")
    split = derive_grid(differing, "app", "lib")
    assert split.headline().startswith("Python 3.11: the first lib")
    assert "Python 3.12: no lib release up to 3.0 breaks app 1.0–2.2." in split.headline()


def test_the_grid_derives_from_observations_alone() -> None:
    found = derive_grid(observations({"1.0": "DWWBBB"}), "app", "lib")
    assert found.axis_versions == COLUMNS
    assert found.per_python[0].rows[0].first_broken_above == "2.0"


def test_a_row_reads_the_same_in_its_fields() -> None:
    found = derive_grid(observations({"2.0": "DDWWBB"}), "app", "lib", (), COLUMNS)
    (row,) = found.per_python[0].rows
    assert [(s.state, s.first, s.last, s.cells) for s in row.segments] == [
        ("declared_incompatible", "0.9", "1.0", 2), ("works", "1.1", "2.0", 2),
        ("broken", "2.1", "3.0", 2)]
    assert (row.works[0].spec, row.first_broken_above, row.declared_incompatible_below,
            row.declared_incompatible_from, row.monotonic) == (">=1.1,<2.1", "2.1", "1.1", None,
                                                              True)
    assert row.short == "works >=1.1,<2.1; breaks from 2.1"
