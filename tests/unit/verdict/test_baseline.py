"""Regression alerts: claim changes, flipped cells, new releases that reproduce."""

from __future__ import annotations

from repro_matrix.model import Cell, CellRecord, Status
from repro_matrix.verdict.baseline import compare
from tests.factories import record


def rec(version: str, status: Status) -> CellRecord:
    return record("3.11", version, status, case="c")


def test_nothing_changed_is_quiet() -> None:
    records = [rec("1.0", Status.REPRODUCED), rec("1.1", Status.NOT_REPRODUCED)]
    changes = compare("c", False, False, records, {r.cell.id: r for r in records})
    assert not changes.alert and changes.lines() == []


def test_a_flipped_cell_and_a_claim_change_alert() -> None:
    before = {r.cell.id: r for r in [rec("1.0", Status.REPRODUCED)]}
    changes = compare("c", True, False, [rec("1.0", Status.NOT_REPRODUCED)], before)
    assert changes.alert
    assert changes.claim == ("c: the claim check changed from does not hold to holds",)
    assert changes.flipped == ("c/py3.11/1.0: reproduced → not reproduced",)


def test_a_new_release_that_reproduces_alerts_but_infrastructure_noise_does_not() -> None:
    before = {r.cell.id: r for r in [rec("1.0", Status.NOT_REPRODUCED)]}
    now = [rec("1.0", Status.CANNOT_INSTALL), rec("2.0", Status.REPRODUCED)]
    changes = compare("c", None, None, now, before)
    assert changes.flipped == ()
    assert changes.new_reproducing == ("c/py3.11/2.0: new cell, reproduced",)


def test_claim_answers_tell_apart_what_claim_holds_does_not() -> None:
    records = [rec("1.0", Status.NOT_REPRODUCED)]
    same = {r.cell.id: r for r in records}
    changes = compare("c", None, None, records, same,
                      ("holds where checked", "cannot be decided"))
    assert changes.claim == ("c: the claim check changed from cannot be decided to holds where "
                             "checked",)
    assert not compare("c", None, None, records, same, ("holds where checked",) * 2).alert
    # Results written before claim_answer existed compare on claim_holds alone.
    assert compare("c", True, None, records, same, ("holds", None)).claim


def test_axis_cells_compare_by_their_pair() -> None:
    def pair(dep: str, status: Status) -> CellRecord:
        return CellRecord(Cell("c", "3.11", "2.2", "dep", dep), status, "")

    before = {r.cell.id: r for r in [pair("2.0", Status.WORKS), pair("3.0", Status.WORKS)]}
    now = [pair("2.0", Status.WORKS), pair("3.0", Status.BROKEN), pair("3.1", Status.BROKEN)]
    changes = compare("c", None, None, now, before)
    assert changes.alert
    assert changes.flipped == ("c/py3.11/2.2/dep==3.0: works → broken",)
    assert changes.new_reproducing == ("c/py3.11/2.2/dep==3.1: new cell, broken",)
