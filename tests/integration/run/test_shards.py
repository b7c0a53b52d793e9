"""Three shards run separately and merged give the same results as one unsharded run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from repro_matrix.containers import engine
from repro_matrix.report.render import render_results
from repro_matrix.run.loop import MatrixRun, RunOptions
from repro_matrix.run.shard import ShardSpec, merge_results
from repro_matrix.spec import config, plan
from repro_matrix.verdict.baseline import alert_changes

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
SELECTION = plan.Selection(pythons=("3.9", "3.11"), versions="0.12.5,1.0.4,1.1.0")


def _matrix(folder: Path) -> Path:
    source = yaml.safe_load((REPO / "matrix.yaml").read_text())
    case = source["cases"][0]
    case["repro"] = str(REPO / case["repro"])
    path = folder / "matrix.yaml"
    path.write_text(yaml.safe_dump({"cases": [case]}))
    return path


def _outcomes(results: Path) -> tuple[dict[str, tuple[str, str]], dict[str, object]]:
    cells = json.loads((results / "flask-2926" / "cells.json").read_text())["cells"]
    verdict = json.loads((results / "flask-2926" / "verdict.json").read_text())
    return ({c["cell"]["id"]: (c["status"], c["image_id"]) for c in cells},
            {k: verdict[k] for k in ("observed", "claim_holds", "claim_evidence")})


def test_three_merged_shards_equal_one_unsharded_run(
        tmp_path: Path, docker_engine: engine.Engine, cache_dir: Path) -> None:
    matrix = config.load(_matrix(tmp_path))
    full = tmp_path / "full"
    MatrixRun(matrix, RunOptions(full, cache_dir, jobs=2)).run(SELECTION)
    shard_dirs = []
    for index in (1, 2, 3):
        out = tmp_path / f"shard-{index}"
        MatrixRun(matrix, RunOptions(out, cache_dir, jobs=2, cost_from=full)).run(
            SELECTION, shard=ShardSpec(index, 3))
        shard_dirs.append(out)
    sizes = [len(json.loads((d / "flask-2926" / "cells.json").read_text())["cells"])
             for d in shard_dirs]
    assert sum(sizes) == 6 and all(sizes)
    merged = tmp_path / "merged"
    merge_results(shard_dirs, merged)
    render_results(merged)
    assert _outcomes(merged) == _outcomes(full)
    assert alert_changes(merged, full) == []
