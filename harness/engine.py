"""The only module that talks to Docker: images, builds and sandboxed runs, behind small methods."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import tarfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from harness.errors import EngineError
from harness.model import RawRun

LABEL = "org.repro-matrix"
REPRO_DIR = "/repro"  # where a cell's repro files are placed in its container
# Names the sandbox a run gets; part of a cell's input key, so changing it reruns cells.
SANDBOX = "ro-root,tmpfs-64m,no-net,cap-drop-all,no-new-privs,uid-65534,mem-512m,pids-256"
MANAGED = {f"{LABEL}.managed": "1"}


def connect() -> Engine:
    """The engine the environment points at (DOCKER_HOST, or the default socket)."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(
            f"no Docker engine answers ({_short(exc)})",
            "start one (scripts/ensure-docker.sh as root) or point DOCKER_HOST at one",
        ) from None
    return Engine(client)


def pull_failure_reason(message: str) -> str:
    """A short, host-free reason for a failed pull (results are committed and shared)."""
    lowered = message.lower()
    if "no such host" in lowered or "lookup" in lowered:
        return "registry unreachable (name lookup failed)"
    if "timeout" in lowered or "dial tcp" in lowered or "connection refused" in lowered:
        return "registry unreachable (no connection)"
    if "not found" in lowered or "manifest unknown" in lowered:
        return "no such image in the registry"
    if "unauthorized" in lowered or "denied" in lowered:
        return "the registry refused access"
    first_line = message.strip().splitlines()[0] if message.strip() else "no detail"
    return "pull failed: " + re.sub(r"\S+://\S+|\b[\w-]+(\.[\w-]+)+(:\d+)?\b", "<host>",
                                    first_line)[:120]


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


class Engine:
    """Thin, typed wrapper over docker-py with the harness's labels and sandbox defaults."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def image_id(self, reference: str) -> str | None:
        try:
            return str(self.client.images.get(reference).id)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(f"engine error looking up {reference}: {_short(exc)}") from None

    def image_env(self, reference: str) -> dict[str, str]:
        attrs = self.client.images.get(reference).attrs
        env = attrs.get("Config", {}).get("Env") or []
        return dict(item.split("=", 1) for item in env if "=" in item)

    def image_labels(self, reference: str) -> dict[str, str]:
        attrs = self.client.images.get(reference).attrs
        return dict(attrs.get("Config", {}).get("Labels") or {})

    def pull(self, reference: str) -> tuple[str | None, str]:
        """Pull from a registry; returns (image id, '') or (None, why it failed)."""
        try:
            image = self.client.images.pull(reference)
            return str(image.id), ""
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return None, pull_failure_reason(str(exc))

    def import_rootfs(self, tarball: Path, reference: str, changes: list[str]) -> str:
        """``docker import`` a root filesystem tarball with Dockerfile ``changes``."""
        repository, tag = reference.rsplit(":", 1)
        try:
            with tarball.open("rb") as data:
                self.client.api.import_image_from_data(
                    data, repository=repository, tag=tag, changes=changes)
        except docker.errors.APIError as exc:
            raise EngineError(f"engine refused to import {reference}: {_short(exc)}") from None
        image_id = self.image_id(reference)
        if image_id is None:
            raise EngineError(f"import of {reference} left no image")
        return image_id

    def build(self, context: Path, tag: str, labels: Mapping[str, str]) -> tuple[str | None, str]:
        """Build ``context`` with networking off; returns (image id, log) or (None, log)."""
        log: list[str] = []
        try:
            for chunk in self.client.api.build(path=str(context), tag=tag, rm=True,
                                               forcerm=True, network_mode="none",
                                               labels={**MANAGED, **labels}, decode=True):
                if "stream" in chunk:
                    log.append(chunk["stream"])
                if "error" in chunk:
                    log.append(chunk["error"] + "\n")
                    return None, "".join(log)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise EngineError(f"engine failed while building {tag}: {_short(exc)}") from None
        image_id = self.image_id(tag)
        return image_id, "".join(log)

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str]) -> RawRun:
        """Run ``command`` in a fresh sandboxed container with ``files`` (name → bytes) in
        REPRO_DIR; a cell failure is data, not raised."""
        container = self._create(image, command, labels)
        try:
            container.put_archive(REPRO_DIR, _tar(files))
            started = time.monotonic()
            container.start()
            exit_code, timed_out = self._wait(container, timeout_s)
            duration = time.monotonic() - started
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except (docker.errors.APIError, requests.exceptions.ConnectionError) as exc:
            raise EngineError(f"engine failed while running {image}: {_short(exc)}") from None
        finally:
            self._remove(container)
        return RawRun(exit_code=exit_code, timed_out=timed_out, output=output,
                      duration_s=duration)

    def exec_seconds(self, image: str, command: list[str], files: Mapping[str, bytes]) -> float:
        """Wall time of ``command`` exec'd in an already running sandboxed container: the
        repro's own process time without the container start (a benchmark's floor)."""
        container = self._create(image, ["/opt/venv/bin/python", "-c",
                                         "import time; time.sleep(600)"], {})
        try:
            container.put_archive(REPRO_DIR, _tar(files))
            container.start()
            started = time.monotonic()
            container.exec_run(command, user="65534:65534")
            return time.monotonic() - started
        finally:
            self._remove(container)

    def _create(self, image: str, command: list[str], labels: Mapping[str, str]) -> Any:
        try:
            return self.client.containers.create(
                image, command=command, detach=True, network_disabled=True,
                labels={**MANAGED, **owner_label(), **labels}, working_dir="/tmp",
                # Read-only root; the repro arrives in its own anonymous volume (writable
                # before start, so put_archive works) and may write only to a small /tmp.
                read_only=True, tmpfs={"/tmp": "rw,size=64m"},
                mounts=[docker.types.Mount(target=REPRO_DIR, source=None, type="volume")],
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
                mem_limit="512m", pids_limit=256, user="65534:65534",
            )
        except docker.errors.APIError as exc:
            raise EngineError(f"engine refused to create a container from {image}: "
                              f"{_short(exc)}") from None

    def _wait(self, container: Any, timeout_s: float) -> tuple[int | None, bool]:
        try:
            status = container.wait(timeout=timeout_s)
            return int(status.get("StatusCode", -1)), False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError,
                socket.timeout):
            container.kill()
            return None, True

    def _remove(self, container: Any) -> None:
        # Already gone, or the engine will reap it; leftovers carry our label.
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True, v=True)

    def remove_leftovers(self) -> int:
        """Remove containers left by harness processes on this host that are gone.

        Containers of a harness still running (another matrix, a test run) are left alone.
        """
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner"})
        removed = 0
        for container in found:
            if _owner_gone(container.labels.get(f"{LABEL}.owner", "")):
                self._remove(container)
                removed += 1
        return removed


def owner_label() -> dict[str, str]:
    """Marks a container as this process's, so a later run can tell a leftover from a neighbour."""
    return {f"{LABEL}.owner": f"{socket.gethostname()}:{os.getpid()}"}


def _owner_gone(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's run (a remote engine shared by several hosts)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _tar(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def iter_lines(text: str) -> Iterator[str]:
    yield from text.splitlines()
