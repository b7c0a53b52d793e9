"""urllib3: a Cookie header must not follow a redirect to another origin (CVE-2023-43804).

Two local servers: the first redirects to the second (another port, so another origin); the
second answers with the Cookie header it received. Exit 1 when the cookie arrived there.
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import urllib3

SECRET = "session=secret-value"


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("Cookie") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type) -> HTTPServer:
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


target = serve(Echo)


class Redirect(Echo):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", f"http://127.0.0.1:{target.server_port}/landing")
        self.send_header("Content-Length", "0")
        self.end_headers()


origin = serve(Redirect)
print(f"urllib3 {urllib3.__version__}")
response = urllib3.PoolManager().request(
    "GET", f"http://127.0.0.1:{origin.server_port}/", headers={"Cookie": SECRET})
received = response.data.decode()
print(f"status {response.status}; Cookie received by the other origin: {received!r}")
if response.status != 200:
    print("the redirect was not followed: cannot tell")
    sys.exit(125)
if SECRET in received:
    print("BUG: Cookie header forwarded on a redirect to another origin")
    sys.exit(1)
print("Cookie header stripped on a redirect to another origin")
