"""Atomic file writes: readers see the old file or the new one, never a part (imports nothing of
ours, so every stage can write files without depending on the results' model)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

# Turns the OSError of a refused write into the error the caller reports (results: one
# UsageError naming the file); without one the OSError itself goes on.
OnError = Callable[[Path, OSError], Exception]


def write_atomic(path: Path, text: str, on_error: OnError | None = None) -> None:
    """``path`` replaced by ``text`` (UTF-8) at once; a refused write leaves no temporary."""
    with atomic_file(path, on_error) as handle:
        handle.write(text.encode("utf-8"))


@contextlib.contextmanager
def atomic_file(path: Path, on_error: OnError | None = None) -> Iterator[IO[bytes]]:
    """A binary handle whose bytes replace ``path`` when the block ends; an exception in the
    block leaves ``path`` as it was and no temporary behind (the one home of atomic writes:
    results, and the cache's locks, index pages, downloads and build failures)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        if on_error is None:
            raise
        raise on_error(path, exc) from None
    try:
        # mkstemp creates 0600 whatever the umask; results are meant to be read by others
        # (a report written under sudo must open for the user), so follow the umask.
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and on_error is not None:
            raise on_error(path, exc) from None
        raise


def current_umask() -> int:
    """The process umask, read without changing it where /proc tells (threads write results)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
