"""One writer per results folder: an advisory file lock on ``<results>/.lock`` held for a run."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from repro_matrix.errors import UsageError

LOCK_NAME = ".lock"


@contextmanager
def hold(results: Path, command: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the folder's lock while the body runs; another holder is one UsageError naming it.

    The kernel drops a flock when its process dies (even by SIGKILL), so a lock is never
    stale: a file that still names a holder we could lock is a run that ended without
    releasing, and this one goes on.
    """
    path = results / LOCK_NAME
    created = not results.exists()
    try:
        results.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise UsageError(f"{results}: results folder not writable ({exc.strerror or exc})",
                         "fix its permissions or pass another --results folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{results}: another repro-matrix run is writing here "
                             f"({_holder_words(_read(fd))})",
                             "wait for it to finish or pass another --results folder") from None
        earlier = _read(fd)
        if earlier:
            say(f"previous run (pid {earlier.get('pid', '?')}) ended without releasing "
                f"{path}; continuing")
        _write(fd, {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                    "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        try:
            yield
        finally:
            _write(fd, None)  # an empty file: released in order
            if created and [p.name for p in results.iterdir()] == [LOCK_NAME]:
                # Failed before writing anything: leave no trace of a folder we made.
                path.unlink()
                results.rmdir()
    finally:
        os.close(fd)  # closing drops the flock


def _read(fd: int) -> dict[str, object]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    if not data.strip():
        return {}
    try:
        holder = json.loads(data)
    except ValueError:
        return {"pid": "?", "command": data.decode("utf-8", "replace").strip()[:200]}
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, holder: dict[str, object] | None) -> None:
    os.ftruncate(fd, 0)
    if holder is not None:
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)


def _holder_words(holder: dict[str, object]) -> str:
    if not holder:
        return "its details are not written yet"
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started_at', '?')}: {holder.get('command', '?')}")
