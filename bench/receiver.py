"""A clinic's alerting system on a loopback port: verifies every webhook with the Standard Webhooks
reference library and notes when each verified alert arrived, per patient."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


class Receiver:
    def __init__(self) -> None:
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.verified_at: dict[str, float] = {}  # patient id -> time.perf_counter() of verification
        self.refused = 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = 204
                try:
                    if receiver.secret is None:
                        raise ValueError("no secret yet")
                    Webhook(receiver.secret).verify(body, headers)
                    arrived = time.perf_counter()
                    patient_id = json.loads(body)["data"]["patient_id"]
                    with receiver.lock:
                        receiver.verified_at.setdefault(patient_id, arrived)
                except Exception:
                    status = 400
                    with receiver.lock:
                        receiver.refused += 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="receiver").start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def arrival(self, patient_id: str) -> float | None:
        with self.lock:
            return self.verified_at.get(patient_id)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
