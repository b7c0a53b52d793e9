"""Base images with a given CPython: from a registry, a Debian suite, or an interpreter already
on this machine copied onto a Debian root (a module per provider); `auto` chooses among them.

A Python version no provider can supply becomes an unavailable BaseImage carrying the reasons.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from repro_matrix.containers.bases import debian, local, registry
from repro_matrix.containers.engine import ContainerEngine
from repro_matrix.model import BaseImage, ProviderSettings

# `auto` takes, per Python, the first provider in this order that has a base: first among
# images already present (no network, and what an earlier run used), then by pulling or
# building. A registry image is what users of Docker Hub or a mirror expect and costs one pull;
# a Debian suite's own python is built by the distribution for exactly that root, with every
# library from the same archive; an interpreter copied from this machine comes last, because
# it depends on how it was built here (the in-image check guards that).
ORDER = ("registry", "debian", "local")


def prepare(engine: ContainerEngine, python: str, settings: ProviderSettings,
            work_dir: Path, provider: str | None = None,
            environ: Mapping[str, str] | None = None) -> BaseImage:
    """A usable base image for ``python``, or an unavailable one with every provider's reason."""
    environ = os.environ if environ is None else environ
    chosen = provider or settings.provider
    suites = dict(settings.debian_suites)
    reference = registry.registry_reference(python, settings, environ)
    sources: dict[str, Callable[[bool], BaseImage]] = {
        "registry": lambda build: registry.base(engine, python, reference, pull=build),
        "debian": lambda build: debian.base(engine, python, suites.get(python), work_dir, build),
        "local": lambda build: local.base(engine, python, settings, work_dir, build, environ),
    }
    if chosen != "auto":
        return sources[chosen](True)
    attempts = [(name, partial(sources[name], False)) for name in ORDER]
    attempts += [(name, partial(sources[name], True)) for name in ORDER]
    return choose(python, attempts)


def choose(python: str, attempts: Sequence[tuple[str, Callable[[], BaseImage]]]) -> BaseImage:
    """The first available base of ``attempts`` (tried lazily, in order), carrying why each
    provider before it was passed over (a provider's latest reason); else an unavailable base
    naming every provider's reason."""
    reasons: dict[str, str] = {}
    for name, attempt in attempts:
        found = attempt()
        if found.available:
            passed = tuple((other, why) for other, why in reasons.items() if other != name)
            return replace(found, passed_over=passed)
        reasons.pop(name, None)  # keep insertion order = the order providers were last tried
        reasons[name] = found.unavailable_reason
    return BaseImage(python=python, provider="none", reference="", interpreter="", source="",
                     unavailable_reason="; ".join(f"{n}: {why}" for n, why in reasons.items()),
                     passed_over=tuple(reasons.items()))



