"""Compare a run with a baseline (an earlier published results folder): what changed, purely."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from repro_matrix.model import CellRecord, Status


@dataclass(frozen=True)
class Changes:
    """Differences that a scheduled job should alert on, in words."""

    claim: tuple[str, ...]
    flipped: tuple[str, ...]
    new_reproducing: tuple[str, ...]

    @property
    def alert(self) -> bool:
        return bool(self.claim or self.flipped or self.new_reproducing)

    def lines(self) -> list[str]:
        return [*self.claim, *self.flipped, *self.new_reproducing]


def compare(case_id: str, claim_now: bool | None, claim_before: bool | None,
            records: Sequence[CellRecord], baseline: Mapping[str, CellRecord]) -> Changes:
    """Claim-check changes, decisive cells that flipped, and cells new since the baseline that
    reproduce (a new release that has the bug again)."""
    claim: tuple[str, ...] = ()
    if claim_now != claim_before:
        claim = (f"{case_id}: the claim check changed from {_word(claim_before)} to "
                 f"{_word(claim_now)}",)
    flipped = []
    new = []
    for record in records:
        before = baseline.get(record.cell.id)
        if before is None:
            if record.status is Status.REPRODUCED:
                new.append(f"{record.cell.id}: new cell, reproduced")
            continue
        if before.status.decisive and record.status.decisive and before.status != record.status:
            flipped.append(f"{record.cell.id}: {before.status.value} → {record.status.value}")
    return Changes(claim, tuple(flipped), tuple(new))


def _word(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "undecided"}[holds]
