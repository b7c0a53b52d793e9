"""Two local Docker engines split one run (--engines): a shard each, one merged result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro_matrix.containers import engine
from tests.integration.daemons import DAEMON2_HOST, SecondDaemon

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def test_two_engines_split_one_run(tmp_path: Path, docker_engine: engine.Engine,
                                   second_daemon: SecondDaemon) -> None:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = source["cases"][0]
    case["repro"] = str(REPO / case["repro"])
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"cases": [case], "base_images": {"provider": "debian"}}))
    first = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "repro_matrix", "run", "--matrix", str(matrix), "--python", "3.11",
         "--versions", "1.0.4,1.1.0", "--results", str(results), "-q",
         "--engines", f"{first},{DAEMON2_HOST}"],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((results / "flask-2926" / "cells.json").read_text())
    assert sorted(c["cell"]["version"] for c in merged["cells"]) == ["1.0.4", "1.1.0"]
    assert all(c["status"] in ("reproduced", "not_reproduced") for c in merged["cells"])
    engines = {json.loads(p.read_text())["engine"]
               for p in (results / ".shards").glob("shard-*/flask-2926/cells.json")}
    assert engines == {first, DAEMON2_HOST}
    assert (results / "report.md").exists()
