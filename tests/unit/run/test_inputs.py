"""run.inputs: what a cell runs (command, working directory) and what its input key covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from repro_matrix import __version__
from repro_matrix.containers import engine, sandbox
from repro_matrix.model import Case, Claim, OutcomeRule, Status, VersionSelection
from repro_matrix.run import columns, inputs
from tests.factories import record

IMAGE = "sha256:" + "a" * 64
SCRIPT = Case(id="demo", package="pkg", import_name="pkg", versions=VersionSelection(),
              pythons=("3.11",), repro=Path("/cases/demo/repro.py"),
              outcome=OutcomeRule(("BOOM",)), claim=Claim())
FOLDER = replace(SCRIPT, repro=Path("/cases/demo/tests"), folder=True,
                 command=("python", "-m", "pytest", "test_bug.py"),
                 outcome=replace(SCRIPT.outcome, exit_codes="pytest"))
FILES = {"test_bug.py": b"def test_bug():\n    assert False, 'BOOM'\n", "data/in.txt": b"1"}


def test_a_plain_script_keeps_the_input_key_it_always_had() -> None:
    repro = b"raise SystemExit(0)\n"
    before = hashlib.sha256()  # the formula of stored records, before commands existed
    for part in (__version__, sandbox.NAME, IMAGE, hashlib.sha256(repro).hexdigest(),
                 "repro.py", json.dumps(["BOOM"]), "60.0"):
        before.update(part.encode() + b"\0")
    assert inputs.run_input_key(IMAGE, SCRIPT, {"repro.py": repro}) == before.hexdigest()[:32]


def test_command_env_and_folder_content_are_in_the_input_key() -> None:
    key = inputs.run_input_key(IMAGE, FOLDER, FILES)
    assert inputs.run_input_key(IMAGE, FOLDER, dict(FILES)) == key
    changed = [
        inputs.run_input_key(IMAGE, FOLDER, {**FILES, "data/in.txt": b"2"}),
        inputs.run_input_key(IMAGE, FOLDER, {**FILES, "conftest.py": b""}),
        inputs.run_input_key(IMAGE, replace(FOLDER, command=("python", "-m", "pytest")),
                               FILES),
        inputs.run_input_key(IMAGE, replace(FOLDER, env=(("X", "1"),)), FILES),
        inputs.run_input_key(IMAGE, replace(FOLDER, outcome=SCRIPT.outcome), FILES),
    ]
    assert key not in changed and len(set(changed)) == len(changed)
    script = {"repro.py": b"pass\n"}
    assert inputs.run_input_key(IMAGE, replace(SCRIPT, env=(("X", "1"),)), script) != \
        inputs.run_input_key(IMAGE, SCRIPT, script)


def test_commands_run_the_venv_python_in_the_repro_folder() -> None:
    assert inputs.repro_command(SCRIPT) == (["/opt/venv/bin/python", "/repro/repro.py"],
                                              "/tmp")
    assert inputs.repro_command(FOLDER) == (
        ["/opt/venv/bin/python", "-m", "pytest", "test_bug.py"], engine.REPRO_DIR)
    shell = replace(FOLDER, command=("sh", "-c", "python x.py"))
    assert inputs.repro_command(shell) == (["sh", "-c", "python x.py"], engine.REPRO_DIR)




def test_a_column_failing_one_way_is_said_once() -> None:
    missing = "Traceback:\nModuleNotFoundError: No module named 'attrs'\n"
    records = [record("3.9", "1.0", Status.OTHER_FAILURE, output_excerpt=missing),
               record("3.9", "2.0", Status.OTHER_FAILURE, output_excerpt=missing),
               record("3.11", "1.0", Status.OTHER_FAILURE, output_excerpt=missing),
               record("3.11", "2.0", Status.NOT_REPRODUCED, output_excerpt="")]
    assert columns.column_failures(SCRIPT, records) == [
        "demo py3.9: every cell (2): ModuleNotFoundError: No module named 'attrs' — check the "
        "repro's dependencies (`requirements:` or its PEP 723 block)"]
    not_importable = [replace(r, status=Status.CANNOT_INSTALL) for r in records[:2]]
    assert columns.column_failures(SCRIPT, not_importable)[0].endswith(
        "— check the case's `import:`")
