"""A clinic's alerting system on a loopback port: verifies every webhook with the Standard Webhooks
reference library and notes when each verified alert arrived, per path and patient.

One server holds any number of paths, each an endpoint of its own with its own secret; a path may
answer only after a delay (a slow receiver). Every request is served by a thread of its own, so a
path that sleeps holds no other path up."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

DEFAULT_PATH = "/alerts"


class _Server(ThreadingHTTPServer):
    # The worker opens a connection per send (no keep-alive), a dozen at once for one alert: with
    # socketserver's backlog of 5 the kernel drops the rest of the SYNs, each retried a second later.
    request_queue_size = 128
    daemon_threads = True


@dataclass
class Route:
    secret: str | None = None  # known once the endpoint is registered: until then, refused
    delay: float = 0.0  # seconds to wait before answering, after verifying


class Receiver:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {DEFAULT_PATH: Route()}
        self.lock = threading.Lock()
        # (path, patient id) -> time.perf_counter() of the first verified webhook
        self.verified_at: dict[tuple[str, str], float] = {}
        self.refused = 0
        self.requests: Counter[str] = Counter()  # path -> requests received, verified or not
        # Set when stopping: slow paths answer at once, so no send waits out their delay.
        self.released = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path.partition("?")[0]
                route = receiver.routes.get(path)
                with receiver.lock:
                    receiver.requests[path] += 1
                status = 204
                try:
                    if route is None or route.secret is None:
                        raise ValueError("no such path, or no secret yet")
                    Webhook(route.secret).verify(body, headers)
                    arrived = time.perf_counter()
                    patient_id = json.loads(body)["data"]["patient_id"]
                    with receiver.lock:
                        receiver.verified_at.setdefault((path, patient_id), arrived)
                except Exception:
                    status = 400
                    with receiver.lock:
                        receiver.refused += 1
                if route is not None and route.delay:
                    receiver.released.wait(route.delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="receiver").start()
        return self

    def add_path(self, path: str, delay: float = 0.0) -> str:
        """A new endpoint on this server (its secret is set once registered); returns its URL."""
        self.routes[path] = Route(delay=delay)
        return self.url_of(path)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url_of(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def url(self) -> str:
        return self.url_of(DEFAULT_PATH)

    @property
    def secret(self) -> str | None:
        return self.routes[DEFAULT_PATH].secret

    @secret.setter
    def secret(self, value: str | None) -> None:
        self.routes[DEFAULT_PATH].secret = value

    def arrival(self, patient_id: str, path: str = DEFAULT_PATH) -> float | None:
        with self.lock:
            return self.verified_at.get((path, patient_id))

    def arrivals(self, patient_id: str, paths: list[str]) -> list[float] | None:
        """When the patient's alert arrived at each of `paths`; None until it arrived at all of them."""
        with self.lock:
            found = [self.verified_at.get((path, patient_id)) for path in paths]
        return None if any(at is None for at in found) else [at for at in found if at is not None]

    def release(self) -> None:
        """Slow paths answer now (before the API stops, so its worker's sends end at once)."""
        self.released.set()

    def stop(self) -> None:
        self.release()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
