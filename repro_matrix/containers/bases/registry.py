"""The registry provider: a python:X.Y image pulled from Docker Hub, a mirror, or the matrix
file's registry_image."""

from __future__ import annotations

from collections.abc import Mapping

from repro_matrix.containers.engine import ContainerEngine
from repro_matrix.errors import UsageError
from repro_matrix.model import BaseImage, ProviderSettings, registry_image_problem

REGISTRY_IMAGE_ENV = "REPRO_MATRIX_REGISTRY_IMAGE"


def registry_reference(python: str, settings: ProviderSettings,
                       environ: Mapping[str, str]) -> str:
    """The image the registry provider pulls: $REPRO_MATRIX_REGISTRY_IMAGE, else the matrix
    file's base_images.registry_image, else python:X.Y-slim (Docker Hub or the engine's
    registry-mirrors)."""
    template = environ.get(REGISTRY_IMAGE_ENV) or settings.registry_image
    problem = registry_image_problem(template)
    if problem and environ.get(REGISTRY_IMAGE_ENV):
        raise UsageError(f"{REGISTRY_IMAGE_ENV}: {problem}")
    return template.replace("{python}", python)


def base(engine: ContainerEngine, python: str, reference: str, pull: bool = True) -> BaseImage:
    image_id = engine.image_id(reference)
    why = f"{reference} not present locally"
    if image_id is None and pull:
        image_id, why = engine.pull(reference)
        why = f"cannot pull {reference} ({why})"
    if image_id is None:
        return BaseImage.unavailable(python, "registry", why)
    return BaseImage(python=python, provider="registry", reference=reference,
                     interpreter=f"python{python}", source=f"registry image {reference}",
                     interpreter_version=engine.image_env(reference).get("PYTHON_VERSION", ""),
                     image_id=image_id)
