"""CPU seconds of the calling thread and of the subprocesses it ran, for the stage clock."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_LOCAL = threading.local()


def thread_seconds() -> float:
    """CPU seconds this thread has used (user and system)."""
    return time.thread_time()


def children_seconds() -> float:
    """CPU seconds of the subprocesses this thread ran through ``run`` (their own waited-for
    children included). Per thread: the process-wide RUSAGE_CHILDREN mixes every thread's."""
    return float(getattr(_LOCAL, "children", 0.0))


class _Measured(subprocess.Popen[str]):
    """A Popen that reaps its child with wait4, keeping the child's resource usage."""

    cpu_s = 0.0

    # Popen reaps through _try_wait in every CPython this project supports; were it renamed,
    # the override is never called and the child's CPU reads 0 (the run itself is unchanged).
    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:  # reaped elsewhere: as Popen itself answers
            return self.pid, 0
        if pid == self.pid:
            self.cpu_s = usage.ru_utime + usage.ru_stime
        return pid, status


def run(command: Sequence[str], *, input: str | None = None, timeout: float | None = None,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
        check: bool = False) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True, ...)``, adding the child's CPU
    seconds to this thread's ``children_seconds``."""
    with _Measured(list(command), stdin=subprocess.PIPE if input is not None else None,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   env=dict(env) if env is not None else None, cwd=cwd) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except BaseException:  # a timeout or Ctrl-C: the child goes too, as in subprocess.run
            proc.kill()
            proc.wait()
            _LOCAL.children = children_seconds() + proc.cpu_s
            raise
    _LOCAL.children = children_seconds() + proc.cpu_s
    code = proc.returncode
    if check and code:
        raise subprocess.CalledProcessError(code, list(command), stdout, stderr)
    return subprocess.CompletedProcess(list(command), code, stdout, stderr)
