"""A second Docker daemon of the tests' own (own socket, data and exec roots)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker

DAEMON2_SOCKET = "/tmp/rm-dockerd2.sock"
DAEMON2_HOST = f"unix://{DAEMON2_SOCKET}"
DAEMON2_PIDFILE = Path("/tmp/rm-docker2.pid")
DAEMON2_LOG = Path("/tmp/rm-dockerd2.log")
DAEMON2_CONTAINERD_PIDFILE = Path("/tmp/rm-docker2-exec/containerd/containerd.pid")
DAEMON2_ARGS = ["--host", DAEMON2_HOST, "--data-root", "/tmp/rm-docker2", "--exec-root",
                "/tmp/rm-docker2-exec", "--pidfile", str(DAEMON2_PIDFILE), "--bridge", "none",
                "--iptables=false"]
BASE = "repro-matrix/base:py3.11-debian-bookworm"  # loaded into the second daemon


class SecondDaemon:
    """A dockerd of our own (own socket, data and exec roots), so the test may kill it.

    ``name`` other than the default gives another daemon beside it (own paths throughout);
    ``extra_args`` go to its command line (e.g. --registry-mirror)."""

    def __init__(self, name: str = "docker2", extra_args: Sequence[str] = ()) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if name == "docker2":
            self.socket, self.pidfile, self.log = DAEMON2_SOCKET, DAEMON2_PIDFILE, DAEMON2_LOG
            self.containerd_pidfile, self.args = DAEMON2_CONTAINERD_PIDFILE, list(DAEMON2_ARGS)
        else:
            self.socket = f"/tmp/rm-{name}d.sock"
            self.pidfile, self.log = Path(f"/tmp/rm-{name}.pid"), Path(f"/tmp/rm-{name}d.log")
            self.containerd_pidfile = Path(f"/tmp/rm-{name}-exec/containerd/containerd.pid")
            self.args = ["--host", f"unix://{self.socket}", "--data-root", f"/tmp/rm-{name}",
                         "--exec-root", f"/tmp/rm-{name}-exec", "--pidfile", str(self.pidfile),
                         "--bridge", "none", "--iptables=false"]
        self.data_root = self.args[self.args.index("--data-root") + 1]
        self.args += list(extra_args)
        self.host = f"unix://{self.socket}"

    def client(self) -> Any:
        return docker.DockerClient(base_url=self.host, timeout=60)

    def answers(self) -> bool:
        try:
            self.client().ping()
        except Exception:
            return False
        return True

    def start(self) -> None:
        self._stop_stale()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["dockerd", *self.args], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer on {self.socket}; see "
                                   f"{self.log}")
            time.sleep(0.25)

    def signal(self, signum: int, limit_s: float = 60) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)
        self.proc.wait(timeout=limit_s)
        self.proc = None
        # Its containerd dies with it, but not at once, and may stay a zombie where PID 1 does
        # not reap: a restart that finds its pidfile thinks it runs and waits for it in vain.
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.containerd_pidfile.read_text().strip())
            for _ in range(120):
                if not _alive(pid):
                    self.containerd_pidfile.unlink()
                    break
                time.sleep(0.25)

    def _stop_stale(self) -> None:
        """A daemon of an earlier, interrupted test run, and the pidfiles it left: ours only if
        the pidfile's process is a dockerd on our data root (a stale pidfile's number may
        belong to anything now)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if _alive(pid) and cmdline[0].endswith(b"dockerd") and \
                    self.data_root.encode() in cmdline:
                os.kill(pid, signal.SIGTERM)
                for _ in range(240):
                    if not _alive(pid):
                        break
                    time.sleep(0.25)
        for pidfile in (self.pidfile, self.containerd_pidfile):
            with contextlib.suppress(OSError, ValueError):
                if not _alive(int(pidfile.read_text().strip())):
                    pidfile.unlink()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.signal(signal.SIGTERM)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state != "Z"
