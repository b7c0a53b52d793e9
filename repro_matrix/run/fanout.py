"""Spread one run over several Docker engines: a shard per engine, each in its own harness
process pointed at that engine (DOCKER_HOST), then one merged result."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from repro_matrix.errors import EngineError, UsageError


def parse_engines(text: str) -> list[str]:
    """Comma-separated endpoints (unix://, tcp://, ssh://) or Docker context names."""
    engines = [part.strip() for part in text.split(",") if part.strip()]
    if not engines:
        raise UsageError("--engines: give one or more endpoints or Docker context names")
    return [endpoint(name) for name in engines]


def endpoint(name: str) -> str:
    """An endpoint URL as it is, or the Docker endpoint of the context called ``name``."""
    if "://" in name:
        return name
    try:
        out = subprocess.run(["docker", "context", "inspect", name, "--format",
                              "{{.Endpoints.docker.Host}}"], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is None or out.returncode != 0 or not out.stdout.strip():
        raise UsageError(f"--engines: '{name}' is neither an endpoint (unix://, tcp://, ssh://) "
                         "nor a Docker context", "see `docker context ls`")
    return out.stdout.strip()


def shard_command(argv: Sequence[str], index: int, count: int, results: Path) -> list[str]:
    """The harness command line for shard ``index``: the user's options minus --engines and
    --results, plus this shard's slice and folder."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--engines", "--results"):
            skip = True
            continue
        if arg.startswith(("--engines=", "--results=")):
            continue
        kept.append(arg)
    return [sys.executable, "-m", "repro_matrix", *kept, "--shard", f"{index}/{count}",
            "--results", str(results)]


def run_on_engines(argv: Sequence[str], engines: Sequence[str], shards_root: Path) -> list[Path]:
    """Run shard i of N against engine i, all at once; returns the shard folders."""
    procs = []
    folders = []
    for index, host in enumerate(engines, start=1):
        folder = shards_root / f"shard-{index}"
        folders.append(folder)
        print(f"shard {index}/{len(engines)} on {host}", file=sys.stderr, flush=True)
        procs.append(subprocess.Popen(shard_command(argv, index, len(engines), folder),
                                      env={**os.environ, "DOCKER_HOST": host}))
    codes = [proc.wait() for proc in procs]
    failed = [f"{i} ({engines[i - 1]}): exit {code}" for i, code in enumerate(codes, 1) if code]
    if failed:
        raise EngineError(f"--engines: shard(s) failed: {'; '.join(failed)}",
                          "their finished cells are kept; run the same command again")
    return folders
