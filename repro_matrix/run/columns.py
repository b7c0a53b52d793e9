"""Per-Python columns: each one's base image as it becomes ready, and the run's lines about
whole columns (which base each Python got; a column whose every cell failed the same way)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future

from repro_matrix import pythons
from repro_matrix.model import BaseImage, Case, CellRecord, Status
from repro_matrix.run.classify import common_failure


class ColumnBases(Mapping[str, BaseImage]):
    """Each Python's base image as it becomes ready; looking one up waits for it."""

    # Bases prepared at once: bootstraps mostly wait on the network, and the local interpreters
    # wait for their shared Debian root; one at a time, the last column would start late.
    AT_ONCE = 9

    def __init__(self, futures: Mapping[str, Future[BaseImage]]) -> None:
        self._futures = dict(futures)

    def __getitem__(self, python: str) -> BaseImage:
        return self._futures[python].result()

    def __iter__(self) -> Iterator[str]:
        return iter(self._futures)

    def __len__(self) -> int:
        return len(self._futures)

    def when_done(self, python: str, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with ``python`` once preparing its base has ended, however."""
        self._futures[python].add_done_callback(lambda _: callback(python))

    def when_ready(self, python: str, callback: Callable[[BaseImage], None]) -> None:
        """Call ``callback`` with ``python``'s base once it is prepared (now, if it is)."""
        def done(future: Future[BaseImage]) -> None:
            if not future.cancelled() and future.exception() is None:
                callback(future.result())

        self._futures[python].add_done_callback(done)


def column_failures(case: Case, records: Sequence[CellRecord]) -> list[str]:
    """One line per Python column whose every cell failed the same way, with the error line
    and what to check (the repro and its requirements, or the case's `import:`)."""
    lines = []
    for python in sorted({r.cell.python for r in records}, key=pythons.sort_key):
        column = [r for r in records if r.cell.python == python]
        error = common_failure((r.status, r.output_excerpt) for r in column)
        if not error:
            continue
        if all(r.status is Status.CANNOT_INSTALL for r in column):
            hint = "check the case's `import:`"  # the image's own import check failed
        elif error.startswith(("ModuleNotFoundError", "ImportError")):
            hint = "check the repro's dependencies (`requirements:` or its PEP 723 block)"
        else:
            hint = "check the repro"
        lines.append(f"{case.id} py{python}: every cell ({len(column)}): {error} — {hint}")
    return lines


def describe_base(image: BaseImage) -> str:
    """One line per column: which provider was taken, and why the others were passed over."""
    if image.available:
        line = (f"{image.provider}: {image.reference} ({image.source}, Python "
                f"{image.interpreter_version or '?'})")
        if image.notes:
            line += f"; noted: {image.notes}"
        if image.passed_over:
            line += "; passed over " + "; ".join(f"{name} ({why})"
                                                 for name, why in image.passed_over)
        return line
    return f"unavailable: {image.unavailable_reason}"
