"""Reproducer for Flask issue #2926: ``app.run(port=0)`` must let the OS pick a port.

Affected Flask releases replaced port 0 by the default 5000, so with port 5000
already taken ``app.run(port=0)`` failed with
``OSError: [Errno 98] Address already in use``.

The script occupies 127.0.0.1:5000 itself, runs ``app.run(port=0)`` in a daemon
thread and looks in /proc/net/tcp{,6} for the port the server really listens on.

Exit codes (git-bisect convention):
    0    not reproduced: the OS picked a free port and the app answered on it
    1    reproduced: app.run(port=0) tried to bind an already-used port
    125  cannot test (port 5000 not bindable, no server seen in time, bad GET)
    other (3)  unexpected failure; the traceback is printed
"""
import errno
import os
import socket
import sys
import threading
import time
import traceback

MARKER = "flask-2926-marker"
BUSY_PORT = 5000
TIMEOUT = 10.0
POLL = 0.02


def finish(code, message=None, stream=None):
    if message:
        print(message, file=stream or sys.stdout)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def is_addr_in_use(exc):
    """True if exc, or an exception it was raised while handling, is EADDRINUSE.

    Werkzeug >= 2.1 prints the OSError and calls sys.exit(1) inside its
    ``except OSError`` block, so the OSError is then the SystemExit's context.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def own_socket_inodes():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def listening_ports():
    """Ports other than BUSY_PORT on which this process has a LISTEN socket."""
    ports = set()
    try:
        inodes = own_socket_inodes()
    except OSError:
        return ports
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except (IOError, OSError):
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A" or fields[9] not in inodes:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port != BUSY_PORT:
                ports.add(port)
    return ports


def main():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", BUSY_PORT))
        blocker.listen(5)
    except OSError as e:
        finish(125, "cannot test: could not occupy 127.0.0.1:%d first (%s)"
               % (BUSY_PORT, e), sys.stderr)

    from flask import Flask

    app = Flask(__name__)

    @app.route("/")
    def index():
        return MARKER

    errors = []

    def serve():
        try:
            app.run(port=0)
        except BaseException as e:  # SystemExit too (Werkzeug >= 2.1)
            errors.append((e, traceback.format_exc()))

    server = threading.Thread(target=serve)
    server.daemon = True
    server.start()

    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        alive = server.is_alive()  # read first: errors are recorded before exit
        if errors:
            exc, tb = errors[0]
            sys.stderr.write(tb)
            if is_addr_in_use(exc):
                finish(1, "REPRODUCED: app.run(port=0) tried to bind an "
                          "already-used port")
            finish(3, "FAILURE: app.run(port=0) raised %r" % (exc,))
        ports = listening_ports()
        if ports:
            port = min(ports)
            break
        if not alive:
            finish(125, "cannot test: app.run(port=0) returned without serving",
                   sys.stderr)
        time.sleep(POLL)
    else:
        finish(125, "cannot test: no listening server socket found within "
                    "%.0f s" % TIMEOUT, sys.stderr)

    try:
        from urllib.request import ProxyHandler, build_opener
        opener = build_opener(ProxyHandler({}))
        url = "http://127.0.0.1:%d/" % port
        body = opener.open(url, timeout=10).read().decode("utf-8", "replace")
    except Exception:
        traceback.print_exc()
        finish(125, "cannot test: GET %s failed" % url, sys.stderr)
    if body != MARKER:
        finish(125, "cannot test: GET %s returned %r, expected %r"
               % (url, body[:200], MARKER), sys.stderr)
    finish(0, "NOT REPRODUCED: OS picked port %d, GET / returned the app's "
              "response" % port)


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # never let a stray error exit 1 (= "reproduced")
        traceback.print_exc()
        finish(3, "FAILURE: unexpected error in the main thread", sys.stderr)
