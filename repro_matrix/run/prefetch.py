"""Locks resolved, and their files fetched, ahead of the cells that need them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from repro_matrix.model import Case, Cell, Lock
from repro_matrix.resolve.lock import ResolveFailure, Resolver
from repro_matrix.run import timing

LockKey = tuple[str, str, str, str, tuple[str, ...]]


def lock_key(case: Case, cell: Cell, cutoff: str, tools_floor: str) -> LockKey:
    """What a cell's lock for one era cutoff depends on: requirement, Python, both cutoffs and
    the repro's own requirements (then the cell's axis pin, when the case has an axis)."""
    extra = (*case.requirements, cell.axis_requirement) if cell.axis_package else \
        tuple(case.requirements)
    return (f"{case.package}=={cell.version}", cell.python, cutoff, max(cutoff, tools_floor),
            extra)


class LockPrefetch:
    """Locks resolved, and their files fetched, before their cells ask for them.

    Resolution and downloads wait on the network and builds on the CPU: run ahead in their own
    threads, they overlap. A lock asked for that was not started ahead is made on the spot."""

    WORKERS = 3

    def __init__(self, resolver: Resolver, clock: timing.StageClock) -> None:
        self.resolver = resolver
        self.clock = clock
        self._mutex = threading.Lock()
        self._futures: dict[LockKey, Future[Lock | ResolveFailure]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(self, keys: Sequence[LockKey]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.WORKERS,
                                        thread_name_prefix="resolve-ahead")
        with self._mutex:
            for key in keys:
                if key not in self._futures:
                    self._futures[key] = self._pool.submit(self._fetch, key)

    def get(self, key: LockKey) -> Lock | ResolveFailure:
        with self._mutex:
            future = self._futures.pop(key, None)
        if future is None or future.cancel():
            # Never started ahead, or still queued behind others (cells start in the order
            # their bases become ready, not the queue's): made on the spot, not waited for.
            return self._fetch(key)
        if future.done():
            return future.result()
        with self.clock.stage("wait"):
            return future.result()

    def stop(self) -> None:
        """Drop what no cell asked for; wait for the resolutions already running."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._mutex:
            self._futures.clear()

    def _fetch(self, key: LockKey) -> Lock | ResolveFailure:
        requirement, python, cutoff, tools_cutoff, extra = key
        with self.clock.stage("resolve"):
            lock = self.resolver.lock(requirement, python, cutoff, tools_cutoff, extra=extra)
        if not isinstance(lock, ResolveFailure):
            with self.clock.stage("download"):
                self.resolver.ensure_files(lock)
        return lock
