"""The only module that talks to Docker: images, builds and sandboxed runs, behind small methods."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import re
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import docker
import docker.errors
import requests.exceptions
from docker.utils import parse_repository_tag

from repro_matrix.containers import sandbox as _sandbox
from repro_matrix.containers.sandbox import MEMORY, PIDS, TMPFS
from repro_matrix.errors import EngineError
from repro_matrix.model import RawRun
from repro_matrix.spec.repro_files import files_digest

LABEL = "org.repro-matrix"
REPRO_DIR = _sandbox.REPRO_DIR
MANAGED = {f"{LABEL}.managed": "1"}
_LOST = "check the engine (docker info), then run the same command again: finished cells are kept"




class ContainerEngine(Protocol):
    """What the harness asks of a container engine: ``Engine`` below, or a test's fake (which
    mypy then checks against the same signatures)."""

    def image_id(self, reference: str) -> str | None: ...

    def tagged(self, repository: str) -> dict[str, str]: ...

    def image_env(self, reference: str) -> dict[str, str]: ...

    def image_labels(self, reference: str) -> dict[str, str]: ...

    def pull(self, reference: str) -> tuple[str | None, str]: ...

    def import_rootfs(self, tarball: Path, reference: str, changes: list[str]) -> str: ...

    def build(self, context: Path, tag: str,
              labels: Mapping[str, str]) -> tuple[str | None, str]: ...

    def commit_run(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                   tag: str, labels: Mapping[str, str],
                   changes: list[str]) -> tuple[str | None, str, int | None]: ...

    def run_collect(self, image: str, command: list[str], into: str,
                    files: Mapping[str, bytes], collect: str,
                    ) -> tuple[dict[str, bytes], str, int | None]: ...

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str], *, memory: str = MEMORY, pids: int = PIDS,
            tmpfs: str = TMPFS, workdir: str = _sandbox.WORKDIR,
            env: Mapping[str, str] | None = None,
            on_output: Callable[[str], None] | None = None) -> RawRun: ...

    def remove_leftovers(self) -> int: ...

    def close(self) -> None: ...


def connect() -> Engine:
    """The engine the environment points at (DOCKER_HOST, or the default socket)."""
    where = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(
            f"no Docker engine answers at {where} ({_short(exc)})",
            "start one (scripts/ensure-docker.sh as root) or point DOCKER_HOST at one",
        ) from None
    return Engine(client)


@contextlib.contextmanager
def _engine_call(what: str) -> Iterator[None]:
    """Turns a lost or failing engine into one EngineError (never a cell outcome)."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(f"engine failed while {what}: {_short(exc)}", _LOST) from None


class _Live:
    """The containers this process is running, so a signal can stop them all at once."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.containers: dict[int, Any] = {}
        self.stopping = threading.Event()

    def add(self, container: Any) -> None:
        with self.mutex:
            self.containers[id(container)] = container
        self.check()  # after adding, so stop_all either sees the container or we see the flag

    def discard(self, container: Any) -> None:
        with self.mutex:
            self.containers.pop(id(container), None)

    def check(self) -> None:
        if self.stopping.is_set():
            raise EngineError("run stopped: the harness is shutting down")


_LIVE = _Live()


def check_stopping() -> None:
    """Raise EngineError once stop_all ran: nothing this process does now is a cell outcome."""
    _LIVE.check()


def stop_all() -> int:
    """Remove every container this process runs and refuse new ones (on SIGINT or SIGTERM).

    A cell whose container is stopped this way raises EngineError: it is never recorded.
    """
    _LIVE.stopping.set()
    with _LIVE.mutex:
        containers = list(_LIVE.containers.values())
    for container in containers:
        with contextlib.suppress(docker.errors.DockerException,
                                 requests.exceptions.RequestException):
            container.remove(force=True, v=True)
    return len(containers)


def pull_failure_reason(message: str) -> str:
    """A short, host-free reason for a failed pull (results are committed and shared)."""
    lowered = message.lower()
    if any(cut in lowered for cut in ("unexpected eof", "connection reset", "broken pipe",
                                      "unexpected end")):
        return "registry connection lost during the pull"
    if "no such host" in lowered or "lookup" in lowered:
        return "registry unreachable (name lookup failed)"
    if "timeout" in lowered or "dial tcp" in lowered or "connection refused" in lowered:
        return "registry unreachable (no connection)"
    if "not found" in lowered or "manifest unknown" in lowered:
        return "no such image in the registry"
    if "no basic auth credentials" in lowered or "authentication required" in lowered:
        return "the registry needs credentials (docker login to it first)"
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
        self._volumes: dict[str, str] = {}  # digest of a cell's files → the volume holding them
        self._volumes_mutex = threading.Lock()

    def image_id(self, reference: str) -> str | None:
        with _engine_call(f"looking up {reference}"):
            try:
                return str(self.client.images.get(reference).id)
            except docker.errors.ImageNotFound:
                return None

    def tagged(self, repository: str) -> dict[str, str]:
        """Every tag of ``repository`` the engine has, with its image id, in one call."""
        with _engine_call(f"listing {repository} images"):
            found = self.client.api.images(name=repository)
        return {tag: str(image["Id"]) for image in found for tag in image.get("RepoTags") or ()}

    def image_env(self, reference: str) -> dict[str, str]:
        with _engine_call(f"inspecting {reference}"):
            attrs = self.client.images.get(reference).attrs
        env = attrs.get("Config", {}).get("Env") or []
        return dict(item.split("=", 1) for item in env if "=" in item)

    def image_labels(self, reference: str) -> dict[str, str]:
        with _engine_call(f"inspecting {reference}"):
            attrs = self.client.images.get(reference).attrs
        return dict(attrs.get("Config", {}).get("Labels") or {})

    def pull(self, reference: str) -> tuple[str | None, str]:
        """Pull from a registry; returns (image id, '') or (None, why it failed).

        The stream is read here because the engine reports a pull that breaks off midway
        (registry gone, connection cut) only as an error entry inside it."""
        repository, tag = parse_repository_tag(reference)
        try:
            for chunk in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
                if isinstance(chunk, dict) and chunk.get("error"):
                    return None, pull_failure_reason(str(chunk["error"]))
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return None, pull_failure_reason(str(exc))
        image_id = self.image_id(reference)
        return (image_id, "") if image_id else (None, "the pull ended without an image")

    def import_rootfs(self, tarball: Path, reference: str, changes: list[str]) -> str:
        """``docker import`` a root filesystem tarball with Dockerfile ``changes``."""
        repository, tag = reference.rsplit(":", 1)
        try:
            with tarball.open("rb") as data:
                self.client.api.import_image_from_data(
                    data, repository=repository, tag=tag, changes=changes)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
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
                _LIVE.check()  # interrupted: abandon the build, record nothing
                if "stream" in chunk:
                    log.append(chunk["stream"])
                if "error" in chunk:
                    log.append(chunk["error"] + "\n")
                    self._still_there(f"building {tag}")  # a dying engine fails builds too
                    return None, "".join(log)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"engine failed while building {tag}: {_short(exc)}",
                              _LOST) from None
        image_id = self.image_id(tag)
        if image_id is None:  # the stream ended with neither an image nor an error
            raise EngineError(f"engine ended the build of {tag} without a result", _LOST)
        return image_id, "".join(log)

    def commit_run(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                   tag: str, labels: Mapping[str, str],
                   changes: list[str]) -> tuple[str | None, str, int | None]:
        """Run ``command`` as root with networking off in a fresh container of ``image``, with
        ``files`` (path under the existing folder ``into`` → bytes) copied in first; when it
        exits 0, commit the container as ``tag`` with ``labels`` and Dockerfile ``changes``. Returns
        (image id or None, the output, the exit code). One container and one commit: a build
        of the same step would also send a context and commit a COPY layer."""
        name = tag.split(":")[-1]
        with self._one_shot(image, command, into, files, f"build {tag}") as (container, output,
                                                                              exit_code):
            if exit_code != 0:
                return None, output, exit_code
            with _engine_call(f"building {name}"):
                repository, _, version = tag.rpartition(":")
                # The container's owner label would pass to the image; an image has no owner.
                container.commit(repository=repository, tag=version, changes=[
                    *changes, *(f"LABEL {key}={json.dumps(value)}" for key, value in
                                {**MANAGED, **labels, **dict.fromkeys(owner_label(), "")}.items())])
        image_id = self.image_id(tag)
        if image_id is None:
            raise EngineError(f"engine committed {tag} but has no such image", _LOST)
        return image_id, output, exit_code

    def run_collect(self, image: str, command: list[str], into: str,
                    files: Mapping[str, bytes], collect: str,
                    ) -> tuple[dict[str, bytes], str, int | None]:
        """Run ``command`` as ``commit_run`` does, but commit nothing: return the files it left
        in the folder ``collect`` (name → bytes; none unless it exited 0), its output and its
        exit code."""
        with self._one_shot(image, command, into, files, f"run {image}") as (container, output,
                                                                              exit_code):
            if exit_code != 0:
                return {}, output, exit_code
            with _engine_call(f"copying {collect} out of a container of {image}"):
                stream, _ = container.get_archive(collect)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                    found = {Path(member.name).name: extracted.read()
                             for member in archive.getmembers() if member.isfile()
                             for extracted in (archive.extractfile(member),) if extracted}
        return found, output, exit_code

    @contextlib.contextmanager
    def _one_shot(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                  what: str) -> Iterator[tuple[Any, str, int]]:
        """A container of ``image`` that ran ``command`` to its end as root, networking off,
        with ``files`` copied into ``into`` first; yields it, its output and its exit code,
        and removes it afterwards."""
        try:
            container = self.client.containers.create(
                image, command=command, detach=True, network_disabled=True,
                labels={**MANAGED, **owner_label()})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"engine failed while creating a container to {what}: "
                              f"{_short(exc)}", _LOST) from None
        try:
            _LIVE.add(container)
            with _engine_call(f"running a container to {what}"):
                container.put_archive(into, _tar(files, mode=0o644))
                container.start()
                exit_code = int(container.wait().get("StatusCode", -1))
                _LIVE.check()  # stop_all killed it: abandon the build, record nothing
                output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            yield container, output, exit_code
        finally:
            self._remove(container)

    def _still_there(self, what: str) -> None:
        with _engine_call(what):
            self.client.ping()

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str], memory: str = MEMORY, pids: int = PIDS,
            tmpfs: str = TMPFS, workdir: str = _sandbox.WORKDIR,
            env: Mapping[str, str] | None = None,
            on_output: Callable[[str], None] | None = None) -> RawRun:
        """Run ``command`` in ``workdir`` of a fresh sandboxed container with ``env`` and
        ``files`` (relative POSIX path → bytes, subfolders allowed) in REPRO_DIR, within
        ``memory``, ``pids`` and a ``tmpfs``-sized /tmp; a cell failure is data, not raised.
        A lost engine or a stopping harness raises EngineError instead: the cell then has no
        outcome, and is never recorded as one. With ``on_output``, the container's output is
        also passed to it live, as it comes (same sandbox, same limit)."""
        volume = self._repro_volume(image, files)
        container = self._create(image, command, labels, memory, pids, tmpfs, workdir, env,
                                 volume=volume)
        name = image.removeprefix("sha256:")[:12]
        follower: threading.Thread | None = None
        try:
            with _engine_call(f"running image {name}"):
                started = time.monotonic()
                container.start()
                if on_output is not None:
                    follower = threading.Thread(target=_follow, args=(container, on_output),
                                                name="follow-output", daemon=True)
                    follower.start()
                exit_code, timed_out = self._wait(container, timeout_s)
                duration = time.monotonic() - started
                if follower is not None:
                    follower.join(timeout=10)  # the stream ends when the container does
                _LIVE.check()  # stop_all removed it: a kill, not the repro's outcome
                container.reload()
                state = container.attrs.get("State") or {}
                oom_killed = bool(state.get("OOMKilled"))
                if (not timed_out and not oom_killed and (exit_code or 0) > 128
                        and self._killed_through_engine(container, state)):
                    # A daemon that stops or restarts kills its containers before it stops
                    # answering (so does `docker kill`): not the repro's outcome.
                    raise EngineError(f"a running cell (image {name}) was killed through the "
                                      "engine (daemon stopping or restarting, or docker kill)",
                                      _LOST)
                output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        finally:
            self._remove(container)
        return RawRun(exit_code=exit_code, timed_out=timed_out, output=output,
                      duration_s=duration, oom_killed=oom_killed)

    def exec_seconds(self, image: str, command: list[str], files: Mapping[str, bytes]) -> float:
        """Wall time of ``command`` exec'd in an already running sandboxed container: the
        repro's own process time without the container start (a benchmark's floor)."""
        container = self._create(image, [_sandbox.VENV_PYTHON, "-c",
                                         "import time; time.sleep(600)"], {},
                                 volume=self._repro_volume(image, files))
        try:
            with _engine_call(f"running {image}"):
                container.start()
                started = time.monotonic()
                container.exec_run(command, user="65534:65534")
                return time.monotonic() - started
        finally:
            self._remove(container)

    def _create(self, image: str, command: list[str], labels: Mapping[str, str],
                memory: str = MEMORY, pids: int = PIDS, tmpfs: str = TMPFS,
                workdir: str = _sandbox.WORKDIR, env: Mapping[str, str] | None = None,
                *, volume: str) -> Any:
        _LIVE.check()
        # The repro's files come in ``volume`` (``_repro_volume``), read-only; the rest of the
        # sandbox is sandbox.py's table.
        mount = docker.types.Mount(target=REPRO_DIR, source=volume, type="volume",
                                   read_only=True)
        try:
            container = self.client.containers.create(
                image, command=command, detach=True,
                labels={**MANAGED, **owner_label(), **labels},
                environment=dict(env) if env else None,
                mounts=[mount],
                # The harness only ever kills; a stopping daemon need not wait 10 s per cell.
                stop_signal="SIGKILL",
                **_sandbox.create_options(memory, pids, tmpfs, workdir),
            )
        except docker.errors.APIError as exc:
            raise EngineError(f"engine refused to create a container from {image}: "
                              f"{_short(exc)}") from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"engine failed while creating a container from {image}: "
                              f"{_short(exc)}", _LOST) from None
        try:
            _LIVE.add(container)
        except EngineError:
            self._remove(container)
            raise
        return container

    def _repro_volume(self, image: str, files: Mapping[str, bytes]) -> str:
        """A volume holding ``files``, filled once per process and content, that every cell
        running them mounts read-only: a copy into each cell's container costs the engine a
        helper process and a mount per cell."""
        key = files_digest(files)
        _LIVE.check()
        with self._volumes_mutex:
            if key in self._volumes:
                return self._volumes[key]
            volume = f"repro-matrix-files-{key[:12]}-{os.getpid()}"
            with _engine_call("filling the volume with the repro's files"):
                self.client.volumes.create(volume, labels={**MANAGED, **owner_label()})
                # Filled through a container that never starts: put_archive needs one.
                filler = self.client.containers.create(
                    image, command=["true"], network_disabled=True,
                    labels={**MANAGED, **owner_label()},
                    mounts=[docker.types.Mount(target=REPRO_DIR, source=volume, type="volume")])
                try:
                    filler.put_archive(REPRO_DIR, _tar(files))
                finally:
                    self._remove(filler)
            self._volumes[key] = volume
            return volume

    def close(self) -> None:
        """Remove the volumes this process filled (its containers are gone by now)."""
        with self._volumes_mutex:
            volumes, self._volumes = list(self._volumes.values()), {}
        for volume in volumes:
            with contextlib.suppress(docker.errors.DockerException,
                                     requests.exceptions.RequestException):
                self.client.volumes.get(volume).remove(force=True)

    def _killed_through_engine(self, container: Any, state: Mapping[str, Any]) -> bool:
        """Whether the engine sent ``container`` a signal while it ran (the harness itself only
        does on a timeout); bounded by the engine's own clock, so the query never waits."""
        since = _unix_time(str(state.get("StartedAt", "")))
        until = _unix_time(str(self.client.info().get("SystemTime", "")))
        if since is None or until is None:
            return False
        events = self.client.events(since=str(int(since) - 1), until=f"{until:.6f}",
                                    filters={"container": container.id, "event": "kill"},
                                    decode=True)
        return any(True for _ in events)

    def _wait(self, container: Any, timeout_s: float) -> tuple[int | None, bool]:
        """(exit code, False), or (None, True) after killing it at ``timeout_s``."""
        started = time.monotonic()
        try:
            status = container.wait(timeout=timeout_s)
            return int(status.get("StatusCode", -1)), False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError,
                socket.timeout) as exc:
            # docker-py reports the read timeout as either; a connection that broke before the
            # limit is the engine going away (stopped, restarted, crashed), not a slow repro.
            if time.monotonic() - started < timeout_s:
                raise EngineError(f"lost the engine while a cell ran: {_short(exc)}",
                                  _LOST) from None
        try:
            container.kill()  # SIGKILL to its PID 1 ends every process of its PID namespace
        except docker.errors.APIError:
            # It exited between the limit and the kill: its own status stands.
            status = container.wait(timeout=30)
            return int(status.get("StatusCode", -1)), False
        return None, True

    def _remove(self, container: Any) -> None:
        _LIVE.discard(container)
        # Already gone, or the engine is (the next start removes leftovers by owner label).
        with contextlib.suppress(docker.errors.DockerException,
                                 requests.exceptions.RequestException):
            container.remove(force=True, v=True)

    def harness_images(self) -> list[ImageInfo]:
        """Every image carrying the harness's label, intermediate build layers included."""
        with _engine_call("listing images"):
            found = self.client.images.list(all=True, filters={"label": f"{LABEL}.managed=1"})
            dangling = {image.id for image in self.client.images.list(
                filters={"label": f"{LABEL}.managed=1", "dangling": True})}
        return [ImageInfo(id=image.id, tags=tuple(image.tags),
                          labels=dict(image.labels or {}),
                          size=int(image.attrs.get("Size") or 0),
                          parent=str(image.attrs.get("Parent") or ""),
                          dangling=image.id in dangling) for image in found]

    def remove_image(self, image: ImageInfo) -> bool:
        """Remove ``image`` (each of its tags) unless a container or a child image still uses
        it (False then); never forced."""
        for name in image.tags or (image.id,):
            try:
                self.client.images.remove(name, force=False, noprune=False)
            except docker.errors.ImageNotFound:
                continue  # gone meanwhile (removed with a child, or by its owner)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # conflict: in use
                    return False
                raise EngineError(f"engine refused to remove image {name}: {_short(exc)}",
                                  ) from None
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise EngineError(f"engine failed while removing image {name}: {_short(exc)}",
                                  _LOST) from None
        return True

    def remove_leftovers(self) -> int:
        """Remove containers left by harness processes on this host that are gone.

        Containers of a harness still running (another matrix, a test run) are left alone.
        """
        with _engine_call("listing leftover containers"):
            # ignore_removed: a neighbour (another run, CI) may remove its own meanwhile.
            found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.owner"},
                                                ignore_removed=True)
        removed = 0
        for container in found:
            if _owner_gone(container.labels.get(f"{LABEL}.owner", "")):
                self._remove(container)
                removed += 1
        with _engine_call("listing leftover volumes"):
            volumes = self.client.volumes.list(filters={"label": f"{LABEL}.owner"})
        for volume in volumes:
            if _owner_gone((volume.attrs.get("Labels") or {}).get(f"{LABEL}.owner", "")):
                with contextlib.suppress(docker.errors.DockerException,
                                         requests.exceptions.RequestException):
                    volume.remove(force=True)
        return removed


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _unix_time(text: str) -> float | None:
    """Seconds since the epoch of the engine's RFC 3339 timestamps (nanoseconds, any zone); its
    events API takes only Unix times."""
    match = _RFC3339.match(text)
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    moment = datetime.fromisoformat(match.group(1) + zone)
    return moment.timestamp() + float(match.group(2) or 0)


@dataclass(frozen=True)
class ImageInfo:
    """One of the harness's images as the engine lists it."""

    id: str
    tags: tuple[str, ...]
    labels: dict[str, str]
    size: int  # with its parent layers
    parent: str  # the image it was built on ("" when imported or not known)
    dangling: bool  # untagged and no image built on it: a failed or superseded build's layer


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


def _follow(container: Any, on_output: Callable[[str], None]) -> None:
    """Pass a running container's output to ``on_output`` as it arrives; the stored output is
    read again after the exit, so a broken stream only loses the live view."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
            on_output(decoder.decode(chunk))
    on_output(decoder.decode(b"", final=True))


def _tar(files: Mapping[str, bytes], mode: int = 0o755) -> bytes:
    """A tar of ``files``; the folders on their paths come first. Entries belong to root and
    the cell runs as uid 65534, so the repro is read-only inside the container."""
    buffer = io.BytesIO()
    folders = sorted({"/".join(name.split("/")[:depth]) for name in files
                      for depth in range(1, name.count("/") + 1)})
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = int(time.time())
            archive.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()

