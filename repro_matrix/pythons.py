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

# glibc of each Debian suite a root can be bootstrapped from, oldest first: a copied interpreter
# goes onto the oldest suite whose C library is not older than the one it was linked against.
DEBIAN_GLIBC: tuple[tuple[str, tuple[int, int]], ...] = (
    ("bullseye", (2, 31)),
    ("bookworm", (2, 36)),
    ("trixie", (2, 41)),
    ("forky", (2, 41)),
)

# Shared libraries CPython's extension modules link against (_ssl/_hashlib, _ctypes, _sqlite3,
# zlib, pyexpat, _bz2, _lzma, readline, _curses, _uuid, nis/_crypt), as each suite names them.
# Tk and X11 are left out: _tkinter is of no use in a sandbox without a display.
_COMMON_LIBRARIES = ("libsqlite3-0", "libexpat1", "libncursesw6", "libnsl2", "libbz2-1.0",
                     "liblzma5", "zlib1g", "libuuid1", "libbsd0")
DEBIAN_ROOT_LIBRARIES: dict[str, tuple[str, ...]] = {
    "bullseye": ("libssl1.1", "libffi7", "libreadline8", *_COMMON_LIBRARIES),
    "bookworm": ("libssl3", "libffi8", "libreadline8", *_COMMON_LIBRARIES),
    "trixie": ("libssl3t64", "libffi8", "libreadline8t64", *_COMMON_LIBRARIES),
    "forky": ("libssl3t64", "libffi8", "libreadline8t64", *_COMMON_LIBRARIES),
}
