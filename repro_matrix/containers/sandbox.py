"""The sandbox a cell runs in, in one table: the engine's container options, the same
restrictions as `docker run` flags for the report's rerun commands, and the sandbox's name in
every cell's input key."""

from __future__ import annotations

from typing import Any, NamedTuple

from repro_matrix.model import DEFAULT_LIMITS

USER = "65534:65534"
WORKDIR = "/tmp"
REPRO_DIR = "/repro"  # where a cell's repro files are placed in its container
VENV = "/opt/venv"  # the cell's virtual environment (images/cell.Dockerfile.j2)
VENV_PYTHON = f"{VENV}/bin/python"  # the interpreter a cell's repro runs with


# The defaults one by one, for keyword defaults.
MEMORY, PIDS, TMPFS = DEFAULT_LIMITS.memory, DEFAULT_LIMITS.pids, DEFAULT_LIMITS.tmpfs


class Row(NamedTuple):
    """One restriction: the docker SDK create() keyword, its value, the equivalent `docker run`
    flags, and its word in the sandbox's name ('' for a row that is not a restriction)."""

    keyword: str
    value: Any
    flags: tuple[str, ...]
    word: str


def _table(memory: str, pids: int, tmpfs: str, workdir: str) -> list[Row]:
    return [
        Row("network_disabled", True, ("--network", "none"), "no-net"),
        # Where the repro starts, not a restriction (a case's command is in its input key).
        Row("working_dir", workdir, ("--workdir", workdir), ""),
        # Read-only root; the repro arrives in its own volume and may write only to /tmp.
        Row("read_only", True, ("--read-only",), "ro-root"),
        Row("tmpfs", {"/tmp": f"rw,size={tmpfs}"}, ("--tmpfs", f"/tmp:rw,size={tmpfs}"),
            f"tmpfs-{tmpfs}"),
        Row("cap_drop", ["ALL"], ("--cap-drop", "ALL"), "cap-drop-all"),
        Row("security_opt", ["no-new-privileges"], ("--security-opt", "no-new-privileges"),
            "no-new-privs"),
        # No swap beyond the memory limit: a hog meets the OOM killer, not the disk.
        Row("mem_limit", memory, ("--memory", memory), f"mem-{memory}"),
        Row("memswap_limit", memory, ("--memory-swap", memory), ""),  # named by mem-
        Row("pids_limit", pids, ("--pids-limit", str(pids)), f"pids-{pids}"),
        Row("user", USER, ("--user", USER), f"uid-{USER.split(':')[0]}"),
    ]


# The order of the words in the name, fixed: the name is part of every cell's input key, so a
# new order would rerun every stored cell; a new restriction's word goes at the end.
NAME_ORDER = ("read_only", "tmpfs", "network_disabled", "cap_drop", "security_opt", "user",
              "mem_limit", "pids_limit")


def create_options(memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS,
                   workdir: str = WORKDIR) -> dict[str, Any]:
    """Keyword arguments for the SDK's ``containers.create``."""
    return {row.keyword: row.value for row in _table(memory, pids, tmpfs, workdir)}


def run_flags(memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS,
              workdir: str = WORKDIR) -> list[str]:
    """The same sandbox as ``docker run`` flags."""
    return [flag for row in _table(memory, pids, tmpfs, workdir) for flag in row.flags]


def name(memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS) -> str:
    """Names the sandbox a run gets, from the same table; part of a cell's input key, so
    changing a restriction reruns cells."""
    words = {row.keyword: row.word for row in _table(memory, pids, tmpfs, WORKDIR) if row.word}
    return ",".join(words[keyword] for keyword in NAME_ORDER)


NAME = name()  # the default sandbox's name
