"""Frozen dataclasses and the status enum that cross stage boundaries."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version


class Status(str, enum.Enum):
    """What one cell showed; the single vocabulary of every later stage."""

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not_reproduced"
    OTHER_FAILURE = "other_failure"
    # The output has the failure signature but the repro exited 0: the two contradict each
    # other (a forgotten `sys.exit(1)`), so the cell decides nothing either way.
    SIGNATURE_EXIT_0 = "signature_exit_0"
    CANNOT_TEST = "cannot_test"
    CANNOT_INSTALL = "cannot_install"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    # The release's or the repro's requires-python excludes the Python: nothing was resolved,
    # built or run, and the cell decides nothing (kept apart from CANNOT_INSTALL).
    NOT_FOR_PYTHON = "not_for_python"
    # Compatibility mode (outcome.kind: compatibility): the pair works, or was tried and broke
    # (the import or the repro failed with the dependency present at the requested release).
    WORKS = "works"
    BROKEN = "broken"
    # The resolver says the declared requirements exclude the pair: nothing was built; decides
    # nothing, but is an answer of its own (shown apart from CANNOT_INSTALL).
    DECLARED_INCOMPATIBLE = "declared_incompatible"

    @property
    def affected(self) -> bool:
        """The decisive "yes": the bug shows, or the pair is broken."""
        return self in (Status.REPRODUCED, Status.BROKEN)

    @property
    def unaffected(self) -> bool:
        """The decisive "no": the bug does not show, or the pair works."""
        return self in (Status.NOT_REPRODUCED, Status.WORKS)

    @property
    def decisive(self) -> bool:
        """True when the cell says something about the bug (or the pair) itself."""
        return self.affected or self.unaffected


# ---- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a cell's container may use (a case's `limits:`); docker's size syntax."""

    memory: str = "512m"
    pids: int = 256
    tmpfs: str = "64m"


DEFAULT_LIMITS = Limits()  # a cell's limits unless its case sets others


@dataclass(frozen=True)
class VersionSelection:
    """Which releases of the package a case covers."""

    spec: str = ""
    include_prereleases: bool = False
    include_yanked: bool = False


@dataclass(frozen=True)
class OutcomeRule:
    """How a run's raw outcome is read."""

    signatures: tuple[str, ...]
    timeout_s: float = 60.0
    # What the cell's container may use (the case's `limits:`); docker's size syntax.
    memory: str = DEFAULT_LIMITS.memory
    pids: int = DEFAULT_LIMITS.pids
    tmpfs: str = DEFAULT_LIMITS.tmpfs
    # How exit codes read: "default" (git bisect run's convention) or "pytest" (see classify).
    exit_codes: str = "default"
    # What a cell answers: "bug" (does the signature show) or "compatibility" (does the pair
    # work: import check and repro pass; see run/classify).
    kind: str = "bug"

    @property
    def limits(self) -> Limits:
        return Limits(self.memory, self.pids, self.tmpfs)


OSV_ZERO = "0"  # OSV's "introduced: 0": affected from the first release on


def is_claim_version(text: str, allow_zero: bool = False) -> bool:
    """A version a claim may name: PEP 440, or OSV's "0" where ``allow_zero`` (the one rule
    for the matrix file's claims and OSV records alike)."""
    if allow_zero and text == OSV_ZERO:
        return True
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@dataclass(frozen=True)
class ClaimRange:
    """One claimed affected range, as OSV events: introduced (``"0"`` allowed), then at most one
    of fixed (first unaffected) or last_affected (last affected); neither: still affected."""

    introduced: str
    fixed: str | None = None
    last_affected: str | None = None


@dataclass(frozen=True)
class Claim:
    """A statement about the bug that the runs confirm or refute: the short form (one
    ``first_fixed`` and/or ``introduced``) or affected ``ranges`` (from the matrix file or an OSV
    record, whose id and aliases are kept)."""

    first_fixed: str | None = None
    introduced: str | None = None
    source: str = ""
    ranges: tuple[ClaimRange, ...] = ()
    advisory_id: str = ""
    aliases: tuple[str, ...] = ()

    def named_versions(self) -> tuple[str, ...]:
        """Every release the claim names (bisect hints), without OSV's "0"."""
        named = [self.first_fixed, self.introduced]
        for rng in self.ranges:
            named += [rng.introduced, rng.fixed, rng.last_affected]
        return tuple(dict.fromkeys(v for v in named if v and v != OSV_ZERO))


def claim_to_json(claim: Claim) -> dict[str, Any]:
    """The claim as stored in cells.json's meta and verdict.json."""
    data: dict[str, Any] = {"first_fixed": claim.first_fixed, "introduced": claim.introduced,
                            "source": claim.source}
    if claim.ranges:
        data["ranges"] = [{k: v for k, v in asdict(r).items() if v is not None}
                          for r in claim.ranges]
    if claim.advisory_id:
        data["advisory_id"] = claim.advisory_id
        data["aliases"] = list(claim.aliases)
    return data


def claim_from_json(data: Mapping[str, Any]) -> Claim:
    """Read a stored claim; results written before ranges existed carry the short form only."""
    return Claim(
        first_fixed=data.get("first_fixed"),
        introduced=data.get("introduced"),
        source=str(data.get("source") or ""),
        ranges=tuple(ClaimRange(introduced=str(r["introduced"]), fixed=r.get("fixed"),
                                last_affected=r.get("last_affected"))
                     for r in data.get("ranges") or ()),
        advisory_id=str(data.get("advisory_id") or ""),
        aliases=tuple(str(a) for a in data.get("aliases") or ()),
    )


KIND_BUG = "bug"
KIND_COMPATIBILITY = "compatibility"
OUTCOME_KINDS = (KIND_BUG, KIND_COMPATIBILITY)


@dataclass(frozen=True)
class Axis:
    """A second package whose releases form a second axis of the matrix (one pin per cell)."""

    package: str
    versions: VersionSelection = VersionSelection()
    # The module it installs, named in an import failure it causes (default: from the name).
    import_name: str = ""


@dataclass(frozen=True)
class Case:
    """One reproduction: a package, a script, how to read it, and the claim to check."""

    id: str
    package: str
    import_name: str
    versions: VersionSelection
    pythons: tuple[str, ...]
    repro: Path
    outcome: OutcomeRule
    claim: Claim
    description: str = ""
    # Run ``command`` (empty: ``python <repro file>``) with ``env`` in the repro's folder.
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # Installed next to the package in the same era lock: the case's `requirements:` and the
    # repro's PEP 723 `dependencies`, in that order, without duplicates.
    requirements: tuple[str, ...] = ()
    # The repro's PEP 723 `requires-python` ("" when it declares none).
    requires_python: str = ""
    # ``repro`` is a folder (copied whole into the container), not a single script.
    folder: bool = False
    # A dependency whose releases are a second axis: each cell pins it to one of them.
    axis: Axis | None = None
    # Compatibility mode may leave the repro out: the image's import check alone decides.
    has_repro: bool = True
    # Run only the cells a boundary search needs, unless the command line says otherwise
    # (--bisect / --no-bisect): a large grid's default run.
    bisect: bool = False


@dataclass(frozen=True)
class EraPolicy:
    """How far the resolver may move its date cutoff to find an environment that works."""

    max_attempts: int = 5
    step_days: int = 365


def registry_image_problem(text: str) -> str:
    """Why ``text`` is no image reference with {python} where X.Y goes ('' when it is one)."""
    if "{python}" not in text:
        return (f"'{text}' has no {{python}}; write it like "
                "'mirror.example/library/python:{python}-slim'")
    if not re.match(r"^[a-z0-9][A-Za-z0-9._/:-]*$", text.replace("{python}", "3.10")):
        return f"'{text}' is not an image reference with {{python}} in it"
    return ""


@dataclass(frozen=True)
class ProviderSettings:
    """Where base images come from."""

    provider: str = "auto"
    debian_suites: tuple[tuple[str, str], ...] = ()
    # X.Y → an interpreter prefix to copy into a base (the "local" provider), before any found.
    interpreters: tuple[tuple[str, str], ...] = ()
    # Where the "registry" provider pulls from; {python} stands for X.Y.
    registry_image: str = "python:{python}-slim"


@dataclass(frozen=True)
class MatrixConfig:
    """A validated matrix file."""

    path: Path
    cases: tuple[Case, ...]
    providers: ProviderSettings
    era: EraPolicy
    python_release_dates: tuple[tuple[str, str], ...]
    digest: str



@dataclass(frozen=True)
class CaseMeta:
    """A case's run metadata, stored beside its cells in cells.json (schemas/cells.schema.json).

    ``to_json`` writes what a run writes (the optional keys only when set); ``from_json`` reads
    any stored form, a missing or mistyped key as its default, unknown keys kept in ``extra``.
    The run fills ``finished_at``, ``wall_time_s``, ``stages`` and ``bisect`` in the stored
    form as it goes.
    """

    case: str = ""
    package: str = ""
    description: str = ""
    claim: Mapping[str, Any] = field(default_factory=dict)
    matrix_digest: str = ""
    started_at: str = ""
    repro: str = ""  # the repro as the matrix names it, relative to the matrix file's folder
    requirements: tuple[str, ...] = ()
    repro_path: str = ""  # its absolute path: what a rerun by hand mounts
    limits: Limits = DEFAULT_LIMITS
    versions: tuple[str, ...] = ()
    pythons: tuple[str, ...] = ()
    plan_cells: tuple[str, ...] = ()
    engine: str = ""
    release_dates: Mapping[str, str] = field(default_factory=dict)
    bases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    folder: bool = False
    finished_at: str = ""
    wall_time_s: float = 0.0
    # Busy seconds and counts per stage of the run that finished (repro_matrix.stages).
    stages: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    bisect: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The case's outcome kind ("bug" or "compatibility") and its second axis, when it has one:
    # the dependency, its planned releases (oldest first) and their upload dates.
    kind: str = KIND_BUG
    axis_package: str = ""
    axis_versions: tuple[str, ...] = ()
    axis_release_dates: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "case": self.case, "package": self.package, "description": self.description,
            "claim": dict(self.claim), "matrix_digest": self.matrix_digest,
            "started_at": self.started_at, "repro": self.repro,
            "requirements": list(self.requirements), "repro_path": self.repro_path,
            "limits": asdict(self.limits), "versions": list(self.versions),
            "pythons": list(self.pythons), "plan_cells": list(self.plan_cells),
            "engine": self.engine, "release_dates": dict(self.release_dates),
            "bases": {python: dict(base) for python, base in self.bases.items()},
        }
        if self.command:
            data["command"] = list(self.command)
        if self.env:
            data["env"] = dict(self.env)
        if self.folder:
            data["folder"] = True
        if self.finished_at:
            data.update(finished_at=self.finished_at, wall_time_s=self.wall_time_s)
        if self.stages:
            data["stages"] = {name: dict(entry) for name, entry in self.stages.items()}
        if self.bisect:
            data["bisect"] = {python: dict(summary) for python, summary in self.bisect.items()}
        if self.kind != KIND_BUG:
            data["kind"] = self.kind
        if self.axis_package:
            data.update(axis_package=self.axis_package, axis_versions=list(self.axis_versions),
                        axis_release_dates=dict(self.axis_release_dates))
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseMeta:
        def text(key: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else ""

        def texts(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        def mapping(key: str) -> dict[str, Any]:
            value = data.get(key)
            return value if isinstance(value, dict) else {}

        limits = mapping("limits")
        wall = data.get("wall_time_s")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            case=text("case"), package=text("package"), description=text("description"),
            claim=mapping("claim"), matrix_digest=text("matrix_digest"),
            started_at=text("started_at"), repro=text("repro"),
            requirements=texts("requirements"), repro_path=text("repro_path"),
            limits=Limits(**{k: v for k, v in limits.items() if k in ("memory", "pids", "tmpfs")}),
            versions=texts("versions"), pythons=texts("pythons"),
            plan_cells=texts("plan_cells"), engine=text("engine"),
            release_dates=mapping("release_dates"), bases=mapping("bases"),
            command=texts("command"), env=mapping("env"), folder=data.get("folder") is True,
            finished_at=text("finished_at"),
            wall_time_s=float(wall) if isinstance(wall, (int, float)) else 0.0,
            stages=mapping("stages"), bisect=mapping("bisect"),
            kind=text("kind") or KIND_BUG, axis_package=text("axis_package"),
            axis_versions=texts("axis_versions"),
            axis_release_dates=mapping("axis_release_dates"),
            extra={k: v for k, v in data.items() if k not in known},
        )

# ---- index and plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class DistFile:
    """One file of a release on the package index."""

    filename: str
    url: str
    sha256: str
    upload_time: datetime | None
    requires_python: str | None
    yanked: bool


@dataclass(frozen=True)
class Release:
    """One version of a project on the package index."""

    version: str
    upload_time: datetime | None
    yanked: bool
    files: tuple[DistFile, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Cell:
    """One (case, Python, package version[, axis package version]) combination to run."""

    case_id: str
    python: str
    version: str
    # The axis release this cell pins (empty: the case has no axis, and the id is unchanged).
    axis_package: str = ""
    axis_version: str = ""

    @property
    def id(self) -> str:
        base = f"{self.case_id}/py{self.python}/{self.version}"
        return f"{base}/{self.axis_package}=={self.axis_version}" if self.axis_package else base

    @property
    def axis_requirement(self) -> str:
        """The axis pin as a requirement line ('' without an axis)."""
        return f"{self.axis_package}=={self.axis_version}" if self.axis_package else ""


# ---- resolve, build and run ----------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """An exact requirement and the file chosen to satisfy it."""

    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Lock:
    """An exact, era-correct environment for one cell."""

    cutoff: str
    runtime: tuple[Pin, ...]
    build: tuple[Pin, ...]
    # Per-package cutoffs later than ``cutoff`` (name, ISO time): a pinned requirement whose
    # releases all came after the era cutoff (uv's --exclude-newer-package).
    package_cutoffs: tuple[tuple[str, str], ...] = ()

    def requirement_lines(self, pins: tuple[Pin, ...]) -> str:
        return "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in pins)

    def as_text(self) -> str:
        return self.requirement_lines(self.runtime)


@dataclass(frozen=True)
class BaseImage:
    """An image with the requested CPython, or the reason there is none."""

    python: str
    provider: str
    reference: str
    interpreter: str
    source: str
    interpreter_version: str = ""
    image_id: str = ""
    unavailable_reason: str = ""
    suite: str = ""        # the Debian suite under the interpreter, when known
    notes: str = ""        # what the in-image check noticed but let pass ("built without _x")
    # Providers `auto` tried before this one, each with why it was passed over.
    passed_over: tuple[tuple[str, str], ...] = ()

    @property
    def available(self) -> bool:
        return not self.unavailable_reason

    @classmethod
    def unavailable(cls, python: str, provider: str, reason: str) -> BaseImage:
        """No base from ``provider`` for ``python``, and why."""
        return cls(python=python, provider=provider, reference="", interpreter="", source="",
                   unavailable_reason=reason)


@dataclass(frozen=True)
class BuildOutcome:
    """An image built for one lock, or why it could not be built."""

    ok: bool
    image_ref: str
    image_id: str
    log_excerpt: str
    failed_step: str = ""
    interrupted: bool = False


@dataclass(frozen=True)
class RawRun:
    """What the engine saw when a repro ran: nothing interpreted yet."""

    exit_code: int | None
    timed_out: bool
    output: str
    duration_s: float
    oom_killed: bool = False  # docker's State.OOMKilled: the kernel killed it at the memory limit


@dataclass(frozen=True)
class Attempt:
    """One era cutoff the resolver tried for a cell, and what happened."""

    cutoff: str
    result: str
    detail: str = ""


@dataclass(frozen=True)
class CellRecord:
    """The stored, classified result of one cell, with the evidence behind it."""

    cell: Cell
    status: Status
    reason: str
    exit_code: int | None = None
    duration_s: float | None = None
    lock: tuple[str, ...] = ()
    build_lock: tuple[str, ...] = ()
    cutoff: str = ""
    attempts: tuple[Attempt, ...] = ()
    image_id: str = ""
    image_ref: str = ""
    base_provider: str = ""
    base_source: str = ""
    interpreter_version: str = ""
    output_excerpt: str = ""
    finished_at: str = ""
    # Digest of everything the outcome depends on (image, repro, reading rule): equal keys mean
    # a stored record still stands and the cell need not run again.
    input_key: str = ""
    # The lock's per-package cutoffs (Lock.package_cutoffs): pins newer than ``cutoff``.
    package_cutoffs: tuple[tuple[str, str], ...] = ()
