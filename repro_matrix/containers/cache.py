"""The cache and the harness's images: sizes by kind, cleaning, and removing images no stored
record references."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from repro_matrix import store
from repro_matrix.containers import engine
from repro_matrix.containers.engine import LABEL, ImageInfo
from repro_matrix.errors import EngineError, UsageError
from repro_matrix.resolve.index import TTL_ENV, cache_ttl

# Folder of each file kind under the cache; "images" live in the Docker engine.
FOLDERS = {"index": "index", "locks": "locks", "wheelhouse": "wheelhouse",
           "wheels": "sdist-wheels", "failures": "build-failures", "rootfs": "rootfs",
           "checks": "base-checks"}
KINDS = (*FOLDERS, "images")
_WHAT = {"index": "package index pages", "locks": "resolved locks",
         "wheelhouse": "downloaded distributions",
         "wheels": "wheels built from sdists, per tools image",
         "failures": "remembered build failures",
         "rootfs": "base image bootstrap work", "checks": "passed checks of local base images"}


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``; 0, 0 when absent."""
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                size += (Path(root) / name).lstat().st_size
                files += 1
            except OSError:
                continue  # removed meanwhile
    return files, size


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def image_group(image: ImageInfo) -> str:
    """cell (a cell's image), base (a base image), dangling (a failed or superseded build's
    last layer) or layer (an intermediate build layer)."""
    if not image.tags:
        return "dangling" if image.dangling else "layer"
    return image.labels.get(f"{LABEL}.kind", "base")


def own_sizes(images: Sequence[ImageInfo]) -> dict[str, int]:
    """What each image adds on top of its parent: summed, the disk the images take (the engine
    reports sizes with every parent layer included)."""
    size_of = {image.id: image.size for image in images}
    return {image.id: max(image.size - size_of.get(image.parent, 0), 0) for image in images}


def attributed_groups(images: Sequence[ImageInfo]) -> dict[str, list[ImageInfo]]:
    """Images by group, each cell, base or dangling image with the untagged build layers only it
    stands on (removing it frees them); layers several images share stay "layer"."""
    by_id = {image.id: image for image in images}
    children = Counter(image.parent for image in images if image.parent)
    group_of = {image.id: image_group(image) for image in images
                if image_group(image) != "layer"}
    for image in images:
        group = group_of.get(image.id)
        parent = by_id.get(image.parent)
        while (group is not None and parent is not None and not parent.tags
               and children[parent.id] == 1 and parent.id not in group_of):
            group_of[parent.id] = group
            parent = by_id.get(parent.parent)
    groups: dict[str, list[ImageInfo]] = {}
    for image in images:
        groups.setdefault(group_of.get(image.id, "layer"), []).append(image)
    return groups


def image_lines(images: Sequence[ImageInfo]) -> list[str]:
    own = own_sizes(images)
    lines = []
    for group, members in sorted(attributed_groups(images).items()):
        heads = [image for image in members if image_group(image) == group]
        count = (f"{len(members):6d} shared build layers" if group == "layer"
                 else f"{len(heads):6d} images")
        lines.append(f"  images {group:<9} {count} {human(sum(own[i.id] for i in members)):>10}")
    lines.append(f"  images total     {len(images):6d} layers {human(sum(own.values())):>10} "
                 f"(label {LABEL}.managed=1)")
    return lines


def show(cache_dir: Path, kinds: Sequence[str]) -> list[str]:
    lines = [f"cache: {cache_dir}"]
    for kind in kinds:
        if kind == "images":
            try:
                lines += image_lines(engine.connect().harness_images())
            except EngineError as exc:
                lines.append(f"  images: not listed ({exc.one_line()})")
            continue
        files, size = folder_size(cache_dir / FOLDERS[kind])
        note = (f"; kept {cache_ttl():.0f} s (${TTL_ENV})" if kind == "index" else "")
        lines.append(f"  {kind:<16} {files:6d} files  {human(size):>10}  {_WHAT[kind]}{note}")
    return lines


def referenced_images(results: Iterable[Path]) -> set[str]:
    """Image ids and tags that stored records name; a folder without records is refused (it
    would make every image look unreferenced)."""
    names: set[str] = set()
    for folder in results:
        paths = sorted(folder.glob("*/cells.json"))
        if not paths:
            raise UsageError(f"--results {folder}: no cells.json there, so no record could "
                             "keep its images", "pass the results folders whose images to keep")
        for path in paths:
            for record in store.read_cells(path)[1]:
                names.update(n for n in (record.image_id, record.image_ref) if n)
    return names


def removable(images: Sequence[ImageInfo], referenced: set[str],
              case_ids: Sequence[str]) -> list[ImageInfo]:
    """Cell images no record references (of ``case_ids`` when given), then dangling build
    layers (only unscoped: a layer does not say which case built it). Base images stay."""
    cells = [image for image in images if image_group(image) == "cell"
             and image.id not in referenced and not referenced.intersection(image.tags)
             and (not case_ids or image.labels.get(f"{LABEL}.case") in case_ids)]
    layers = [] if case_ids else [image for image in images
                                  if image.dangling and image.id not in referenced]
    return cells + layers


def clean(cache_dir: Path, kinds: Sequence[str], results: Sequence[Path],
          case_ids: Sequence[str]) -> list[str]:
    lines = []
    if case_ids and set(kinds) != {"images"}:
        raise UsageError("--case scopes only images", "add --kind images")
    for kind in kinds:
        if kind == "images":
            lines += _clean_images(results, case_ids)
            continue
        folder = cache_dir / FOLDERS[kind]
        files, size = folder_size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        lines.append(f"  {kind:<16} removed {files} files, {human(size)}")
    return lines


def _clean_images(results: Sequence[Path], case_ids: Sequence[str]) -> list[str]:
    referenced = referenced_images(results)
    eng = engine.connect()
    before = eng.harness_images()
    targets = removable(before, referenced, case_ids)
    removed = [image for image in targets if eng.remove_image(image)]
    after = eng.harness_images()
    cells = sum(1 for image in removed if image_group(image) == "cell")
    scope = f" of case {', '.join(case_ids)}" if case_ids else ""
    return [f"  images           removed {cells} unreferenced cell images{scope} and "
            f"{len(removed) - cells} dangling build layers; {len(targets) - len(removed)} in "
            f"use kept; harness images {human(sum(own_sizes(before).values()))} → "
            f"{human(sum(own_sizes(after).values()))}"]


def default_cache_dir() -> Path:
    """REPRO_MATRIX_CACHE, else $XDG_CACHE_HOME/repro-matrix, else ~/.cache/repro-matrix."""
    if os.environ.get("REPRO_MATRIX_CACHE"):
        return Path(os.environ["REPRO_MATRIX_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "repro-matrix"
