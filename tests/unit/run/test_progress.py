"""Progress output: plain lines off a terminal, a redrawn status line on one."""

from __future__ import annotations

import io

import pytest

from repro_matrix.model import Status
from repro_matrix.run.progress import Progress, choose_mode
from tests.factories import record


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_mode_prints_one_line_per_cell_with_counts() -> None:
    out = io.StringIO()
    progress = Progress(out, "lines")
    progress.total = 2
    progress.cell_finished(record("3.11", "1.0", Status.REPRODUCED, duration_s=0.5))
    progress.cell_finished(record("3.11", "1.1", Status.NOT_REPRODUCED, duration_s=0.5))
    lines = out.getvalue().splitlines()
    assert lines == ["[   1/2] demo/py3.11/1.0: reproduced (0.5 s)",
                     "[   2/2] demo/py3.11/1.1: not reproduced (0.5 s)"]
    assert "\x1b" not in out.getvalue()


def test_live_mode_keeps_quiet_cells_on_the_status_line() -> None:
    out = FakeTty()
    progress = Progress(out, "live")
    progress.total = 3
    progress.cell_started("demo/py3.11/1.0")
    progress.cell_finished(record("3.11", "1.0", Status.NOT_REPRODUCED, duration_s=0.5))
    progress.cell_finished(record("3.11", "1.1", Status.REPRODUCED, duration_s=0.5))
    progress.close()
    text = out.getvalue()
    assert "demo/py3.11/1.1: reproduced" in text
    assert "demo/py3.11/1.0: not reproduced" not in text
    assert "2/3 cells" in progress.status_line() and "left" in progress.status_line()
    assert text.endswith("\r\x1b[K")


def test_mode_follows_the_output_and_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert choose_mode(io.StringIO(), quiet=False, verbose=False) == "lines"
    assert choose_mode(FakeTty(), quiet=False, verbose=False) == "live"
    assert choose_mode(FakeTty(), quiet=False, verbose=True) == "lines"
    assert choose_mode(FakeTty(), quiet=True, verbose=False) == "quiet"


def test_quiet_mode_prints_nothing() -> None:
    out = io.StringIO()
    progress = Progress(out, "quiet")
    progress.say("hello")
    progress.cell_finished(record("3.11", "1.0", Status.REPRODUCED, duration_s=0.5))
    assert out.getvalue() == ""
