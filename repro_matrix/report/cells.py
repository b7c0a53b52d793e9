"""What the markdown and HTML reports both say about a case's cells: folded columns, causes,
boundaries, rerun commands, and the facts of the run."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.version import Version

from repro_matrix import pythons as py
from repro_matrix.containers import sandbox
from repro_matrix.model import CaseMeta, CellRecord, Status
from repro_matrix.report.vocabulary import (
    look,
    ordered_pythons,
    ordered_versions,
    plain,
    plural,
    pythons_words,
    run_words,
)
from repro_matrix.verdict import causes
from repro_matrix.verdict.derive import Verdict

REPRO_PLACEHOLDER = "path/to/repro.py"


def folded_pythons(records: Sequence[CellRecord]) -> list[str]:
    """Pythons whose every cell is unavailable: a column that says nothing, folded away."""
    return [p for p in ordered_pythons(records)
            if all(r.status is Status.UNAVAILABLE for r in records if r.cell.python == p)]


def folded_note(records: Sequence[CellRecord]) -> str:
    folded = folded_pythons(records)
    if not folded:
        return ""
    return (f"Not shown: {pythons_words(folded)}, unavailable for every release "
            "(see Coverage).")


def cause_lines(records: Sequence[CellRecord]) -> list[str]:
    """The grouped causes as plain lines (the terminal)."""
    tested = ordered_versions(records)
    return [f"{plural(len(g.records), 'cell')} {look(g.status).words} "
            f"({causes.where(g, tested)}): {plain(g.cause)}" for g in causes.groups(records)]


@dataclass(frozen=True)
class Boundary:
    """A cell at an edge of an affected range for its Python, and which edges it marks."""

    record: CellRecord
    roles: tuple[str, ...]


def boundary_cells(records: Sequence[CellRecord], verdict: Verdict) -> list[Boundary]:
    """The cells at each per-Python range's introduced / last affected / fixed version."""
    by_key = {(r.cell.python, r.cell.version): r for r in records}
    roles: dict[tuple[str, str], list[str]] = {}
    for scope in verdict.per_python:
        python = scope.name.removeprefix("Python ")
        for rng in scope.ranges:
            edges = [("introduced", rng.introduced), ("last affected", rng.last_affected)]
            if rng.fixed:
                edges.append(("fixed", rng.fixed))
            for role, version in edges:
                found = roles.setdefault((python, version), [])
                if role not in found:
                    found.append(role)
    keys = sorted((k for k in roles if k in by_key),
                  key=lambda k: (py.sort_key(k[0]), Version(k[1])))
    return [Boundary(by_key[k], tuple(roles[k])) for k in keys]


def repro_mount(meta: CaseMeta) -> tuple[str, str, bool]:
    """(host path of the repro, file name inside the container, known) from cells.json.

    Runs record the absolute path ("repro_path"); older results only the path relative to the
    matrix file, which then needs running from its folder (``$PWD``).
    """
    repro = meta.repro_path or meta.repro
    if not repro.strip():
        return f"$PWD/{REPRO_PLACEHOLDER}", PurePosixPath(REPRO_PLACEHOLDER).name, False
    path = PurePosixPath(repro.strip())
    source = _double_quoted(str(path))
    return (source if path.is_absolute() else f"$PWD/{source}"), path.name, True


def _double_quoted(text: str) -> str:
    """Escape text for use inside a shell double-quoted string."""
    return "".join(f"\\{ch}" if ch in '\\"$`' else ch for ch in text)


def rerun_command(record: CellRecord, meta: CaseMeta) -> str | None:
    """The docker command that reruns a cell's repro in its image, in the sandbox the harness
    used; None when no image was built. A bind mount (``--mount``) fails loudly when the repro
    is not there, where ``-v`` would create an empty directory in its place."""
    if not record.image_ref:
        return None
    source, name, _ = repro_mount(meta)
    target = f"{sandbox.REPRO_DIR}/{name}"
    env = "".join(f" -e {shlex.quote(f'{k}={v}')}" for k, v in meta.env.items())
    limits = meta.limits
    if meta.command:  # the case's own command, run in /repro
        target = sandbox.REPRO_DIR if meta.folder else target
        words = [sandbox.VENV_PYTHON if i == 0 and w in ("python", "python3") else w
                 for i, w in enumerate(meta.command)]
        flags = sandbox.run_flags(limits.memory, limits.pids, limits.tmpfs,
                                  workdir=sandbox.REPRO_DIR)
        return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
                f"{shlex.quote(record.image_ref)} {shlex.join(words)}")
    flags = sandbox.run_flags(limits.memory, limits.pids, limits.tmpfs)
    return (f'docker run --rm --mount "{_mount(target, source)}" {shlex.join(flags)}{env} '
            f"{shlex.quote(record.image_ref)} {sandbox.VENV_PYTHON} {shlex.quote(target)}")


def _mount(target: str, source: str) -> str:
    """A read-only bind mount for inside double quotes (``source`` is already escaped)."""
    return _double_quoted(f"type=bind,target={target},readonly,source=") + source


def facts_line(meta: CaseMeta, records: Sequence[CellRecord]) -> str:
    """What was planned and when it ran."""
    versions = len({r.cell.version for r in records})
    pythons = len({r.cell.python for r in records})
    if meta.bisect:  # a bisection runs a few cells per Python, not a full matrix
        planned = len(meta.versions) or versions
        return (f"Package `{meta.package}`, bisect over {plural(planned, 'release')} "
                f"× {plural(pythons, 'Python')}: {plural(len(records), 'cell')} run; "
                f"{run_words(meta, records)}.")
    grid = versions * pythons
    if len(records) < grid:  # a slice: say so, never a product that does not add up
        return (f"Package `{meta.package}`, {plural(versions, 'release')} × "
                f"{plural(pythons, 'Python')}: {len(records)} of the {grid} cells run, the "
                f"other {grid - len(records)} not run; {run_words(meta, records)}.")
    return (f"Package `{meta.package}`, {plural(versions, 'release')} × "
            f"{plural(pythons, 'Python')} = {plural(len(records), 'cell')}; "
            f"{run_words(meta, records)}.")
