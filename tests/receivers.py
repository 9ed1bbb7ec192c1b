"""Real alert receivers on 127.0.0.1 for tests: an HTTP server in a thread and an aiosmtpd server,
each able to refuse the first N deliveries (a receiver that fails, then recovers)."""
from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """A real HTTP receiver; answers `fail_first` requests with 503, then 200."""

    def __init__(self, port: int | None = None, fail_first: int = 0):
        self.received: list[tuple[dict, dict]] = []  # accepted (headers, body)
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.refused < fail_first:
                    outer.refused += 1
                    self.send_response(503)
                else:
                    outer.received.append((dict(self.headers), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A real SMTP receiver (aiosmtpd); answers `fail_first` messages with 451, then accepts."""

    def __init__(self, port: int, fail_first: int = 0):
        from aiosmtpd.controller import Controller

        self.messages, self.refused = [], 0
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if outer.refused < fail_first:
                    outer.refused += 1
                    return "451 Requested action aborted: try again later"
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    def close(self):
        self.controller.stop()
