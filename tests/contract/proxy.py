"""A minimal reverse proxy for the ROOT_PATH check: serves the upstream under a prefix.

    python proxy.py PREFIX UPSTREAM_PORT PORT_FILE

Listens on a free 127.0.0.1 port (written to PORT_FILE once listening) and forwards
PREFIX/... to http://127.0.0.1:UPSTREAM_PORT/..., as a proxy with `root_path` would.
Anything outside PREFIX is 404 here, so a page that forgets the prefix fails loudly.
"""

import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


class Proxy(BaseHTTPRequestHandler):
    prefix = ""
    upstream_port = 0
    protocol_version = "HTTP/1.1"

    def forward(self):
        if self.path != self.prefix and not self.path.startswith(self.prefix + "/"):
            body = b'{"detail":"Not under the proxy prefix"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        upstream.request(self.command, self.path[len(self.prefix):] or "/", body, headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = forward

    def log_message(self, format, *args):
        sys.stderr.write("proxy: " + format % args + "\n")


def main():
    prefix, upstream_port, port_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    Proxy.prefix = prefix.rstrip("/")
    Proxy.upstream_port = upstream_port
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
