"""The sandbox a cell runs in, in one table: the engine's container options and the same
restrictions as `docker run` flags for the report's rerun commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USER = "65534:65534"
WORKDIR = "/tmp"
REPRO_DIR = "/repro"  # where a cell's repro files are placed in its container
VENV = "/opt/venv"  # the cell's virtual environment (images/cell.Dockerfile.j2)
VENV_PYTHON = f"{VENV}/bin/python"  # the interpreter a cell's repro runs with


@dataclass(frozen=True)
class Limits:
    """What a cell's container may use (a case's `limits:`); docker's size syntax."""

    memory: str = "512m"
    pids: int = 256
    tmpfs: str = "64m"


DEFAULT_LIMITS = Limits()  # a cell's limits unless its case sets others
# The defaults one by one, for keyword defaults.
MEMORY, PIDS, TMPFS = DEFAULT_LIMITS.memory, DEFAULT_LIMITS.pids, DEFAULT_LIMITS.tmpfs


def _table(memory: str, pids: int, tmpfs: str,
           workdir: str) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(docker SDK create() keyword, its value, the equivalent `docker run` flags)."""
    return [
        ("network_disabled", True, ("--network", "none")),
        ("working_dir", workdir, ("--workdir", workdir)),
        # Read-only root; the repro arrives in its own volume and may write only to /tmp.
        ("read_only", True, ("--read-only",)),
        ("tmpfs", {"/tmp": f"rw,size={tmpfs}"}, ("--tmpfs", f"/tmp:rw,size={tmpfs}")),
        ("cap_drop", ["ALL"], ("--cap-drop", "ALL")),
        ("security_opt", ["no-new-privileges"], ("--security-opt", "no-new-privileges")),
        # No swap beyond the memory limit: a hog meets the OOM killer, not the disk.
        ("mem_limit", memory, ("--memory", memory)),
        ("memswap_limit", memory, ("--memory-swap", memory)),
        ("pids_limit", pids, ("--pids-limit", str(pids))),
        ("user", USER, ("--user", USER)),
    ]


def create_options(memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS,
                   workdir: str = WORKDIR) -> dict[str, Any]:
    """Keyword arguments for the SDK's ``containers.create``."""
    return {name: value for name, value, _ in _table(memory, pids, tmpfs, workdir)}


def run_flags(memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS,
              workdir: str = WORKDIR) -> list[str]:
    """The same sandbox as ``docker run`` flags."""
    return [flag for _, _, flags in _table(memory, pids, tmpfs, workdir) for flag in flags]
