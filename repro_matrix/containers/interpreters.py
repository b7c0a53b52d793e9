"""Find CPython interpreters already on this machine (explicit, pyenv, uv) and what they need."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_matrix import pythons

_PATCHLEVEL = re.compile(rb'#define\s+PY_VERSION\s+"(\d+\.\d+\.\d+)"')
_FINAL_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_UV_FOLDER = re.compile(r"^cpython-(\d+\.\d+\.\d+)-")
_GLIBC = re.compile(rb"GLIBC_2\.(\d+)")


@dataclass(frozen=True)
class Interpreter:
    """A CPython installation prefix on this machine."""

    python: str    # X.Y
    version: str   # X.Y.Z
    prefix: Path
    origin: str    # explicit | pyenv | uv

    @property
    def executable(self) -> Path:
        return self.prefix / "bin" / f"python{self.python}"

    def describe(self) -> str:
        return f"CPython {self.version} from {self.origin} ({self.prefix})"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def standalone_prefix(path: Path) -> Path:
    """A python-build-standalone archive unpacks to python/install/; accept its top too."""
    for candidate in (path, path / "install", path / "python" / "install"):
        if (candidate / "bin").is_dir() and (candidate / "lib").is_dir():
            return candidate
    return path


def prefix_version(prefix: Path, python: str) -> str | None:
    """X.Y.Z of the CPython at ``prefix``, read from its headers (no need to run it), else from
    the folder's name; None when ``prefix`` holds no pythonX.Y."""
    if not (prefix / "bin" / f"python{python}").exists() or not (prefix / "lib").is_dir():
        return None
    for header in sorted(prefix.glob(f"include/python{python}*/patchlevel.h")):
        match = _PATCHLEVEL.search(header.read_bytes())
        if match:
            found = match.group(1).decode()
            return found if found.startswith(f"{python}.") else None
    name = _UV_FOLDER.match(prefix.name)
    version = name.group(1) if name else prefix.name
    return version if _FINAL_VERSION.match(version) and version.startswith(f"{python}.") else None


def pyenv_root(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def uv_python_dir(environ: Mapping[str, str]) -> Path | None:
    """Where uv keeps the interpreters it manages (`uv python dir`), or None without uv."""
    if environ.get("UV_PYTHON_INSTALL_DIR"):
        return Path(environ["UV_PYTHON_INSTALL_DIR"])
    if shutil.which("uv") is None:
        return None
    try:
        proc = subprocess.run(["uv", "python", "dir"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    line = proc.stdout.strip()
    return Path(line) if proc.returncode == 0 and line else None


def candidates(python: str, pyenv: Path | None, uv_dir: Path | None) -> list[Interpreter]:
    """Every pyenv- and uv-managed CPython X.Y, newest patch release first."""
    found: list[Interpreter] = []
    for origin, root in (("pyenv", pyenv / "versions" if pyenv else None), ("uv", uv_dir)):
        if root is None or not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if origin == "pyenv" and not folder.name.startswith(f"{python}."):
                continue
            if origin == "uv" and not folder.name.startswith(f"cpython-{python}."):
                continue
            prefix = standalone_prefix(folder)
            version = prefix_version(prefix, python)
            if version:
                found.append(Interpreter(python, version, prefix, origin))
    return sorted(found, key=lambda i: version_key(i.version), reverse=True)


def find(python: str, explicit: Mapping[str, str], environ: Mapping[str, str],
         uv_dir: Path | None) -> Interpreter | str:
    """The interpreter for ``python`` (an explicit prefix wins, else the newest patch release
    pyenv or uv holds), or why there is none."""
    if python in explicit:
        prefix = standalone_prefix(Path(explicit[python]))
        version = prefix_version(prefix, python)
        if version is None:
            return (f"base_images.interpreters.{python}: {prefix} holds no bin/python{python} "
                    "with a lib/ folder")
        return Interpreter(python, version, prefix, "explicit")
    pyenv = pyenv_root(environ)
    found = candidates(python, pyenv, uv_dir)
    if found:
        return found[0]
    where = f"{pyenv}/versions" + (f", {uv_dir}" if uv_dir else "")
    return (f"no CPython {python} on this machine (looked in {where}; name one under "
            "base_images.interpreters)")


def elf_files(interpreter: Interpreter) -> list[Path]:
    """The interpreter's own binaries: its executable, libpython and extension modules."""
    lib = interpreter.prefix / "lib"
    files = [interpreter.executable.resolve(), *sorted(lib.glob("libpython*.so*"))]
    files += sorted(lib.glob(f"python{interpreter.python}/lib-dynload/*.so"))
    return [f for f in files if f.is_file()]


def glibc_needed_by(paths: Iterable[Path], chunk: int = 1 << 20) -> tuple[int, int]:
    """``glibc_needed`` of files, read a chunk at a time: a libpython of tens of MiB per
    interpreter, for every column at once, would otherwise sit in memory together."""
    def chunks(path: Path) -> Iterator[bytes]:
        tail = b""
        with path.open("rb") as handle:
            while block := handle.read(chunk):
                yield tail + block
                tail = block[-32:]  # a symbol version cut by the chunk's end is whole here

    return glibc_needed(part for path in paths for part in chunks(path))


def glibc_needed(binaries: Iterable[bytes]) -> tuple[int, int]:
    """The newest GLIBC_2.N symbol version any of ``binaries`` asks for (ELF version needs are
    plain strings in .dynstr, so no ELF parser is needed)."""
    minor = max((int(m) for data in binaries for m in _GLIBC.findall(data)), default=0)
    return (2, minor)


def oldest_suite(needed: tuple[int, int],
                 suites: Sequence[tuple[str, tuple[int, int]]] = pythons.DEBIAN_GLIBC,
                 ) -> str | None:
    """The oldest Debian suite whose glibc is at least ``needed``."""
    return next((name for name, glibc in suites if glibc >= needed), None)


def keeps_runpath(executable: bytes, prefix: Path) -> bool:
    """Whether a shared build's executable finds libpython through a RUNPATH/RPATH naming this
    prefix (an interpreter moved after its build names its old prefix and needs
    LD_LIBRARY_PATH instead)."""
    return f"{prefix}/lib".encode() in executable or b"$ORIGIN" in executable


def is_shared_build(interpreter: Interpreter) -> bool:
    return any((interpreter.prefix / "lib").glob("libpython*.so*"))


def parents_to_traverse(prefix: Path) -> list[str]:
    """Folders above ``prefix`` that uid 65534 must be able to enter (e.g. /root)."""
    parents = [p for p in prefix.parents if str(p) != "/"]
    return [str(p) for p in reversed(parents)]


# Modules the issue names, by the extension module that carries each.
REQUIRED_MODULES: dict[str, str] = {
    "ssl": "_ssl", "ctypes": "_ctypes", "sqlite3": "_sqlite3", "zlib": "zlib",
    "_hashlib": "_hashlib", "pyexpat": "pyexpat",
}
# Left out of every root on purpose (Tk needs a display the sandbox never has): not worth a note.
_WITHOUT_DISPLAY = ("_tkinter",)
_LOADER_ERROR = re.compile(r"error while loading shared libraries: ([^:\s]+)")


@dataclass(frozen=True)
class ProbeVerdict:
    """What the in-image check found: a reason the base is unusable, or notes for provenance."""

    problem: str
    notes: tuple[str, ...] = ()


def judge_probe(exit_code: int | None, output: str, python: str) -> ProbeVerdict:
    """Read images/interpreter-probe.py's output. A required module whose file is there but
    misses a shared library (or does not import) makes the base unusable; one the build itself
    left out (no file) is only noted, like every other extension module missing a library."""
    payload = _last_json(output)
    if payload is None:
        loader = _LOADER_ERROR.search(output)
        if loader:
            return ProbeVerdict(f"{loader.group(1)} not found for python{python}")
        last = output.strip().splitlines()[-1] if output.strip() else f"exit code {exit_code}"
        return ProbeVerdict(f"python{python} does not run in the base: {last[:160]}")
    missing_for_interpreter = payload.get("interpreter") or []
    if missing_for_interpreter:
        return ProbeVerdict(f"{', '.join(missing_for_interpreter)} not found for "
                            f"python{python}")
    notes: list[str] = []
    for module, extension in REQUIRED_MODULES.items():
        entry = (payload.get("modules") or {}).get(module) or {}
        libraries = entry.get("missing") or []
        if libraries:
            return ProbeVerdict(f"{', '.join(libraries)} not found for {extension}")
        if entry.get("state") == "absent" and not entry.get("imports"):
            notes.append(f"built without {extension}")
        elif entry.get("error"):
            return ProbeVerdict(f"{module} does not import: {entry['error'][:160]}")
    for extension, libraries in sorted((payload.get("other") or {}).items()):
        if extension not in _WITHOUT_DISPLAY:
            notes.append(f"{extension} unusable ({', '.join(libraries)} not found)")
    return ProbeVerdict("", tuple(notes))


def _last_json(output: str) -> dict[str, Any] | None:
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None
