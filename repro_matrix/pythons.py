"""Facts about CPython feature releases: when each came out and which Debian suite ships it."""

from __future__ import annotations

import re

# First release (X.Y.0) of each CPython feature version: the "era" of an interpreter.
RELEASE_DATES: dict[str, str] = {
    "3.6": "2016-12-23",
    "3.7": "2018-06-27",
    "3.8": "2019-10-14",
    "3.9": "2020-10-05",
    "3.10": "2021-10-04",
    "3.11": "2022-10-24",
    "3.12": "2023-10-02",
    "3.13": "2024-10-07",
    "3.14": "2025-10-07",
}

# Debian suites whose archive carries a pythonX.Y package, for the "debian" base-image provider.
DEBIAN_SUITES: dict[str, str] = {
    "3.9": "bullseye",
    "3.11": "bookworm",
    "3.13": "trixie",
    "3.14": "forky",
}

_FEATURE_VERSION = re.compile(r"^3\.(\d{1,2})$")


def is_feature_version(text: str) -> bool:
    """True for 'X.Y' spellings of a CPython 3 feature version."""
    return bool(_FEATURE_VERSION.match(text))


def sort_key(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split("."))
