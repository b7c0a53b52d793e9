"""A real image registry of the tests' own (Debian's docker-registry, Distribution 2.8) and a
loopback proxy in front of it that can cut blob downloads midway."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BINARY = "docker-registry"
# Any bcrypt hash will do: the test only needs the registry to ask for credentials.
_BCRYPT_OF_A_THROWAWAY_PASSWORD = "$2a$12$ngwuKlLbBcBgGbZ7zHX75.qrfGOM7jpJdwSaGPrcHfR1ZOs0/gPIS"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Registry:
    """``docker-registry serve`` on a free loopback port with its own config and storage;
    ``auth=True`` makes it demand credentials (htpasswd; nobody here logs in)."""

    def __init__(self, folder: Path, auth: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        auth_section = ""
        if auth:
            (folder / "htpasswd").write_text(f"tests:{_BCRYPT_OF_A_THROWAWAY_PASSWORD}\n")
            auth_section = ("auth:\n  htpasswd:\n    realm: repro-matrix-tests\n"
                            f"    path: {folder / 'htpasswd'}\n")
        (folder / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n"
            + auth_section)

    def start(self) -> None:
        if shutil.which(REGISTRY_BINARY) is None:
            raise RuntimeError("docker-registry is not installed (apt-get install "
                               "docker-registry)")
        with (self.folder / "registry.log").open("ab") as log:
            self.proc = subprocess.Popen([REGISTRY_BINARY, "serve",
                                          str(self.folder / "config.yml")],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer on {self.address}; see "
                                   f"{self.folder / 'registry.log'}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2)
        except urllib.error.HTTPError:
            return True  # 401 from a registry demanding credentials is an answer too
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None


class CuttingProxy:
    """Forwards a loopback port to ``target``; a blob download (the image's layers) is cut after
    ``cut_after`` bytes of its answer, as when the registry goes away in the middle of a pull."""

    def __init__(self, target: str, cut_after: int = 256 << 10) -> None:
        self.target_host, port = target.rsplit(":", 1)
        self.target_port = int(port)
        self.cut_after = cut_after
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.cuts = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(_hang_up, client)
            upstream = socket.create_connection((self.target_host, self.target_port))
            stack.callback(_hang_up, upstream)
            # Requests on a kept-alive connection: counting starts at the first blob request.
            blob = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, blob),
                             daemon=True).start()
            sent = 0
            with contextlib.suppress(OSError):  # the engine may hang up first
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    if blob.is_set():
                        if sent + len(data) > self.cut_after:
                            client.sendall(data[:max(0, self.cut_after - sent)])
                            self.cuts += 1
                            return  # closes both sides in the middle of the layer
                        sent += len(data)
                    client.sendall(data)

    @staticmethod
    def _requests(source: socket.socket, sink: socket.socket, blob: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    return
                if b"/blobs/sha256:" in data and b"GET " in data:
                    blob.set()
                sink.sendall(data)

    def close(self) -> None:
        self.closed.set()
        self.server.close()


def _hang_up(sock: socket.socket) -> None:
    """shutdown, not just close: another thread blocked reading it would keep it open."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
