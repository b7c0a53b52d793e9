"""Compare a run with a baseline (an earlier published results folder): what changed, per case."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repro_matrix import store
from repro_matrix.model import CellRecord
from repro_matrix.report.vocabulary import look


@dataclass(frozen=True)
class Changes:
    """Differences that a scheduled job should alert on, in words."""

    claim: tuple[str, ...]
    flipped: tuple[str, ...]
    new_reproducing: tuple[str, ...]
    undecided: tuple[str, ...] = ()  # decided in the baseline, undecided now
    vanished: tuple[str, ...] = ()  # in the baseline, no record now

    @property
    def alert(self) -> bool:
        return bool(self.lines())

    def lines(self) -> list[str]:
        return [*self.claim, *self.flipped, *self.undecided, *self.vanished,
                *self.new_reproducing]


def compare(case_id: str, claim_now: bool | None, claim_before: bool | None,
            records: Sequence[CellRecord], baseline: Mapping[str, CellRecord],
            answers: tuple[str | None, str | None] = (None, None)) -> Changes:
    """Claim-check changes, decisive cells that flipped or became undecided, cells of the
    baseline with no record now, and cells new since the baseline that reproduce (a new release
    that has the bug again). ``answers`` (now, before) are the verdicts' ``claim_answer``s when
    both have one: they tell "holds where checked" from "cannot be decided", which
    ``claim_holds`` (None for both) does not."""
    claim: tuple[str, ...] = ()
    answer_now, answer_before = answers
    if answer_now and answer_before and answer_now != answer_before:
        claim = (f"{case_id}: the claim check changed from {answer_before} to {answer_now}",)
    elif claim_now != claim_before:
        claim = (f"{case_id}: the claim check changed from {_word(claim_before)} to "
                 f"{_word(claim_now)}",)
    flipped = []
    undecided = []
    new = []
    for record in records:
        before = baseline.get(record.cell.id)
        if before is None:
            if record.status.affected:
                new.append(f"{record.cell.id}: new cell, {look(record.status).words}")
            continue
        change = f"{record.cell.id}: {look(before.status).words} → {look(record.status).words}"
        if before.status.decisive and record.status.decisive and before.status != record.status:
            flipped.append(change)
        elif before.status.decisive and not record.status.decisive:
            undecided.append(f"{change} (no longer decided)")
    present = {record.cell.id for record in records}
    vanished = [f"{cell_id}: vanished (was {look(before.status).words})"
                for cell_id, before in baseline.items() if cell_id not in present]
    return Changes(claim, tuple(flipped), tuple(new), tuple(undecided), tuple(vanished))


def _word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "undecided"}[holds]


def alert_changes(results: Path, baseline: Path) -> list[str]:
    """What changed in ``results`` against ``baseline``, per case, for a scheduled job."""
    lines: list[str] = []
    now_cases = {p.parent.name for p in results.glob("*/cells.json")}
    for path in sorted(baseline.glob("*/cells.json")):
        if path.parent.name not in now_cases:
            lines.append(f"{path.parent.name}: vanished (in the baseline, not in {results})")
    for path in sorted(results.glob("*/cells.json")):
        case_id = path.parent.name
        _, records = store.read_cells(path)
        before_path = store.case_dir(baseline, case_id) / "cells.json"
        if not before_path.exists():
            lines.append(f"{case_id}: not in the baseline")
            continue
        _, before = store.read_cells(before_path)
        now = json.loads((path.parent / "verdict.json").read_text())
        old_verdict = store.case_dir(baseline, case_id) / "verdict.json"
        old = json.loads(old_verdict.read_text()) if old_verdict.exists() else {}
        lines += compare(case_id, now.get("claim_holds"), old.get("claim_holds"), records,
                         {r.cell.id: r for r in before},
                         (now.get("claim_answer"), old.get("claim_answer"))).lines()
    return lines
