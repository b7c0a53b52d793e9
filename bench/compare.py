"""Cold runs of one selection by two checkouts of the harness, alternately, as ratios.

Each run starts from nothing (every harness image removed, an empty --cache-dir and uv cache),
so a change meant to cut cold work is measured against its parent in one sitting:
    python bench/compare.py --before /tmp/old-checkout --rounds 1 --case flask-2926 \\
        --python 3.8 --python 3.9 --out /tmp/compare.json
It removes every harness image from the engine: use an engine nobody else uses (DOCKER_HOST).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import bench, figures  # noqa: E402


def cold(options: argparse.Namespace, checkout: Path, results: Path) -> dict[str, Any]:
    """One cold run of the selection by the harness in ``checkout``."""
    bench._drop_harness_images()
    with tempfile.TemporaryDirectory(dir=options.work, prefix="cold-cache-") as cache:
        args, env = bench._cold_env(Path(cache))
        run = bench.harness_run(options, results, "--replace", *args, env=env, checkout=checkout)
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "rss_mib": run.rss_mib,
            "stages": bench.stages_of(results),
            "statuses": {r.cell.id: r.status.value for r in bench.records_of(results)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    parser.add_argument("--matrix", type=Path, default=REPO / "matrix.yaml")
    parser.add_argument("--cgroup-parent", default="docker")
    parser.add_argument("--engine-pid", type=int)
    parser.add_argument("--case", action="append", default=[])
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("--versions", default="")
    options = parser.parse_args()
    options.selection = [*(a for c in options.case for a in ("--case", c)),
                         *(a for p in options.python for a in ("--python", p)),
                         *(("--versions", options.versions) if options.versions else ())]
    options.work = options.work.resolve()
    options.work.mkdir(parents=True, exist_ok=True)
    options.repeats = options.rounds
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    started = bench.provenance(options)
    for _ in range(options.rounds):  # alternately, so a busier moment hits both
        runs["before"].append(cold(options, options.before.resolve(),
                                   options.work / "compare-before"))
        runs["after"].append(cold(options, REPO, options.work / "compare-after"))
    before = {"wall_s": figures.spread([r["wall_s"] for r in runs["before"]])}
    after = {"wall_s": figures.spread([r["wall_s"] for r in runs["after"]])}
    changed = figures.status_changes(runs["before"][-1]["statuses"],
                                     runs["after"][-1]["statuses"])
    summary = {"provenance": started, "before_checkout": str(options.before),
               "ratio_after_to_before": figures.ratio(after, before),
               "statuses_changed": changed, "runs": runs}
    options.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    for side in ("before", "after"):
        for run in runs[side]:
            print(side, f"{run['wall_s']:.1f} s", {k: round(v, 1) if v else v
                                                   for k, v in run["cpu_s"].items()})
            for stage, entry in run["stages"].items():
                print(f"   {stage:9} busy {entry['s']:7.1f}  n {entry['n']:4}  cpu "
                      f"{entry.get('cpu', 0):6.1f}  sub {entry.get('sub', 0):6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
