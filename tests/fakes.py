"""Fakes of the harness's outside world for unit tests: a container engine that mypy checks
against the harness's ContainerEngine protocol."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from repro_matrix.containers import sandbox
from repro_matrix.containers.engine import ContainerEngine
from repro_matrix.model import RawRun


class FakeEngine:
    """An engine with no images that builds nothing and runs nothing: each test's fake
    overrides what its test drives, and any other call fails the test."""

    def image_id(self, reference: str) -> str | None:
        return None

    def tagged(self, repository: str) -> dict[str, str]:
        return {}

    def image_env(self, reference: str) -> dict[str, str]:
        raise AssertionError(f"unexpected: image_env({reference!r})")

    def image_labels(self, reference: str) -> dict[str, str]:
        raise AssertionError(f"unexpected: image_labels({reference!r})")

    def pull(self, reference: str) -> tuple[str | None, str]:
        raise AssertionError(f"unexpected: pull({reference!r})")

    def import_rootfs(self, tarball: Path, reference: str, changes: list[str]) -> str:
        raise AssertionError(f"unexpected: import_rootfs({reference!r})")

    def build(self, context: Path, tag: str,
              labels: Mapping[str, str]) -> tuple[str | None, str]:
        raise AssertionError(f"unexpected: build({tag!r})")

    def commit_run(self, image: str, command: list[str], into: str, files: Mapping[str, bytes],
                   tag: str, labels: Mapping[str, str],
                   changes: list[str]) -> tuple[str | None, str, int | None]:
        raise AssertionError(f"unexpected: commit_run({tag!r})")

    def run_collect(self, image: str, command: list[str], into: str,
                    files: Mapping[str, bytes], collect: str,
                    ) -> tuple[dict[str, bytes], str, int | None]:
        raise AssertionError(f"unexpected: run_collect({image!r})")

    def run(self, image: str, command: list[str], files: Mapping[str, bytes], timeout_s: float,
            labels: Mapping[str, str], *, memory: str = sandbox.MEMORY,
            pids: int = sandbox.PIDS, tmpfs: str = sandbox.TMPFS,
            workdir: str = sandbox.WORKDIR, env: Mapping[str, str] | None = None,
            on_output: Callable[[str], None] | None = None) -> RawRun:
        raise AssertionError(f"unexpected: run({image!r})")

    def remove_leftovers(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _is_a_container_engine(engine: FakeEngine) -> ContainerEngine:
    return engine  # mypy: the fake (and so every subclass) has the protocol's signatures
