"""Build tools read from the real index pages (tool_pin) equal the ones uv resolved for every
committed cell: same version, same file, for each tool of each stored build lock."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from repro_matrix import store
from repro_matrix.resolve.index import IndexClient
from repro_matrix.resolve.lock import target_tags, tool_pin
from repro_matrix.spec import config

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_tool_pins_from_the_index_equal_the_committed_build_locks(tmp_path: Path) -> None:
    release_days = dict(config.load(REPO / "matrix.yaml").python_release_dates)
    index = IndexClient(tmp_path)
    compared, differ = 0, []
    for path in sorted((REPO / "results").glob("*/cells.json")):
        for record in store.read_cells(path)[1]:
            if not record.build_lock:
                continue
            python = record.cell.python
            day = date.fromisoformat(release_days[python]) + timedelta(days=1)
            cutoff = max(record.cutoff, f"{day.isoformat()}T00:00:00Z")  # as the run loop does
            for line in record.build_lock:
                name, rest = line.split("==", 1)
                version, digest = rest.split(" --hash=sha256:")
                pin = tool_pin(name, index.releases(name), python, cutoff, target_tags(python))
                compared += 1
                if pin is None or (pin.version, pin.sha256) != (version, digest):
                    differ.append(f"{record.cell.id}: {line.split(' ')[0]}, index gives {pin}")
    assert compared > 100  # the committed results hold hundreds of build locks
    assert differ == []
