"""The end of a run for CI: which --fail-on conditions the results meet (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro_matrix import store
from repro_matrix.model import CellRecord, Status
from repro_matrix.verdict.derive import CaseResult

FAIL_ON = ("refuted", "reproduced", "changed")


def parse_fail_on(values: Sequence[str]) -> tuple[str, ...]:
    """--fail-on values (repeatable or comma-separated); unknown ones are returned as such for
    the caller to refuse."""
    return tuple(dict.fromkeys(part.strip() for value in values for part in value.split(",")
                               if part.strip()))


def stored_verdicts(results: Path) -> dict[str, Any]:
    """What each case's verdict.json says now (before a run or a re-render rewrites it)."""
    found: dict[str, Any] = {}
    for path in sorted(results.glob("*/verdict.json")):
        try:
            found[path.parent.name] = _comparable(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            found[path.parent.name] = None
    return found


def _comparable(verdict: Any) -> Any:
    """A verdict without what changes with every harness release."""
    if isinstance(verdict, dict):
        return {k: v for k, v in verdict.items() if k != "harness_version"}
    return verdict


def _affected_lines(case_id: str, records: Sequence[CellRecord]) -> list[str]:
    """The decisive "yes" cells in the case's own words: a bug reproduced, or (a compatibility
    case, whose "yes" is a broken pair) pairs that broke."""
    lines = []
    for status, words in ((Status.REPRODUCED, ("cell", "reproduced the bug")),
                          (Status.BROKEN, ("pair", "broke (compatibility)"))):
        count = sum(1 for r in records if r.status is status)
        if count:
            noun, verb = words
            lines.append(f"{case_id}: {count} {noun}{'s' if count != 1 else ''} {verb}")
    return lines


def met(conditions: Sequence[str], cases: Sequence[CaseResult],
        before: Mapping[str, Any]) -> list[str]:
    """One line per condition a case meets: its claim refuted, a cell reproduced, or its
    verdict changed against ``before`` (a case absent before counts as changed)."""
    lines = []
    for case_id, _, records, verdict in cases:
        if "refuted" in conditions and verdict.claim.holds is False:
            lines.append(f"{case_id}: the claim does not hold")
        if "reproduced" in conditions:
            lines += _affected_lines(case_id, records)
        if "changed" in conditions:
            now = _comparable(json.loads(json.dumps(store.verdict_to_json(verdict))))
            if before.get(case_id) != now:
                lines.append(f"{case_id}: the verdict changed since the last results")
    return lines
