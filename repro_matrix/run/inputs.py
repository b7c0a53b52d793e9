"""What a cell runs (command, working directory) and what its outcome depends on (input key)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement

from repro_matrix import __version__
from repro_matrix.containers import sandbox
from repro_matrix.model import KIND_BUG, Case, Cell
from repro_matrix.run.classify import guess_module
from repro_matrix.spec import repro_files


def cell_input_key(image_id: str, case: Case, files: Mapping[str, bytes]) -> str:
    """A cell's input key: ``run_input_key``, and the case's own limits when it sets any."""
    key = run_input_key(image_id, case, files)
    rule = case.outcome
    limits = sandbox.name(rule.memory, rule.pids, rule.tmpfs)
    if limits != sandbox.NAME:  # a case's own limits are part of what decides it
        key = hashlib.sha256(f"{key}\0{limits}".encode()).hexdigest()[:32]
    return key


def run_input_key(image_id: str, case: Case, files: Mapping[str, bytes]) -> str:
    """What a cell's outcome depends on once its image exists."""
    digest = hashlib.sha256()
    if not case.has_repro:  # compatibility mode without a repro: the image alone decides
        repro_digest, repro_name = "", ""
    else:
        repro_digest = (repro_files.files_digest(files) if case.folder
                        else hashlib.sha256(files[case.repro.name]).hexdigest())
        repro_name = case.repro.name
    parts = [__version__, sandbox.NAME, image_id, repro_digest, repro_name,
             json.dumps(case.outcome.signatures), str(case.outcome.timeout_s)]
    if case.folder or case.command or case.env or case.outcome.exit_codes != "default":
        # Only a case that sets these adds them, so a plain script's cells keep their keys.
        parts.append(json.dumps({"folder": case.folder, "command": case.command,
                                 "env": case.env, "exit_codes": case.outcome.exit_codes}))
    if case.outcome.kind != KIND_BUG:  # the same run reads differently in another mode
        parts.append(f"kind={case.outcome.kind}")
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:32]


def repro_command(case: Case) -> tuple[list[str], str]:
    """The command a cell runs and its working directory. A plain script runs as it always
    has; a case's own `command:` runs in the repro folder, its `python` being the venv's."""
    if not case.command:
        return [sandbox.VENV_PYTHON, f"{sandbox.REPRO_DIR}/{case.repro.name}"], sandbox.WORKDIR
    first, *rest = case.command
    return ([sandbox.VENV_PYTHON if first in ("python", "python3") else first, *rest],
            sandbox.REPRO_DIR)


def read_repros(cases: Sequence[Case]) -> dict[str, dict[str, bytes]]:
    """Every case's repro files, each compiled on the host first: a syntax error stops the run
    (UsageError, exit 2) before anything is built."""
    found: dict[str, dict[str, bytes]] = {}
    for case in cases:
        if not case.has_repro:
            found[case.id] = {}
            continue
        files = repro_files.read_files(case.repro, case.folder)
        repro_files.check_syntax(case, files)
        found[case.id] = files
    return found


def cell_pins(case: Case, cell: Cell) -> list[str]:
    """The exact pins a cell installs whatever its era cutoff: its axis release and the case's
    ``==`` requirements."""
    pins = [cell.axis_requirement] if cell.axis_package else []
    return pins + [r for r in case.requirements if exact_pin(r)]


def exact_pin(requirement: str) -> str:
    """The project an exact (``==``) requirement pins, or ''."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return ""
    exact = [s for s in parsed.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return parsed.name if exact else ""


def pinned_modules(case: Case, cell: Cell) -> list[str]:
    """The modules the cell's pins install, as an import failure would name them."""
    modules = []
    if cell.axis_package:
        modules.append(case.axis.import_name if case.axis and case.axis.import_name
                       else guess_module(cell.axis_package))
    modules += [guess_module(name) for name in map(exact_pin, case.requirements) if name]
    return modules
