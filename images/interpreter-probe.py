# Run by repro-matrix inside a new base image, as the sandbox's user: does the interpreter work,
# and does every extension module find its shared libraries? Prints one JSON line.
# Written for every CPython from 3.6 on (no f-strings with '=', no capture_output).
import glob
import json
import os
import platform
import subprocess
import sys
import sysconfig

REQUIRED = {"ssl": "_ssl", "ctypes": "_ctypes", "sqlite3": "_sqlite3", "zlib": "zlib",
            "_hashlib": "_hashlib", "pyexpat": "pyexpat"}


def missing(path):
    proc = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    return sorted({line.split("=>")[0].strip() for line in proc.stdout.splitlines()
                   if "not found" in line})


dynload = os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")
files = {os.path.basename(p).split(".")[0]: p for p in glob.glob(os.path.join(dynload, "*.so"))}
report = {"version": platform.python_version(), "modules": {}, "other": {}}
interpreter = missing(os.path.realpath(sys.executable))
libdir = sysconfig.get_config_var("LIBDIR") or ""
for library in glob.glob(os.path.join(libdir, "libpython*.so*")):
    interpreter += missing(library)
report["interpreter"] = sorted(set(interpreter))
for module, extension in REQUIRED.items():
    entry = {}
    if extension in sys.builtin_module_names:
        entry["state"] = "builtin"
    elif extension not in files:
        entry["state"] = "absent"
    else:
        entry["state"] = "file"
        entry["missing"] = missing(files[extension])
    try:
        __import__(module)
        entry["imports"] = True
    except Exception as exc:  # any failure to import is what this probe reports
        entry["imports"] = False
        entry["error"] = "{}: {}".format(type(exc).__name__, exc)
    report["modules"][module] = entry
for extension, path in sorted(files.items()):
    if extension not in REQUIRED.values():
        libraries = missing(path)
        if libraries:
            report["other"][extension] = libraries
print(json.dumps(report, sort_keys=True))
