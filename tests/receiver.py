"""A real webhook receiver on a loopback port, which verifies every request with the Standard
Webhooks reference library, the way a clinic's alerting system would."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]
    # When it arrived (time.perf_counter(), before the answer), and the sender's port: which process
    # sent it, as each send opens a connection of its own.
    arrived_at: float = 0.0
    peer_port: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class _Server(ThreadingHTTPServer):
    # The worker opens a connection per send: the standard 5 waiting connections drop some of a burst.
    request_queue_size = 128


@dataclass
class Receiver:
    """`script` answers requests in order (status codes, or callables that may sleep), then `default`.
    `host` is the loopback address it listens on; with `tls` (a server context) it speaks https."""

    secrets: list[str] = field(default_factory=list)
    script: list[int | Callable[[], int]] = field(default_factory=list)
    default: int | Callable[[], int] = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                arrived = time.perf_counter()
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = []
                for secret in list(receiver.secrets):
                    try:
                        Webhook(secret).verify(body, headers)
                        verified.append(secret)
                    except Exception:  # noqa: S112 - an unverified request is recorded as such
                        continue
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            headers.get("webhook-id", ""),
                            headers,
                            body,
                            verified,
                            arrived,
                            self.client_address[1],
                        )
                    )
                    step = receiver.script.pop(0) if receiver.script else receiver.default
                status = step() if callable(step) else step
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(f"status {status}".encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((self.host, port), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            # The handshake happens on accept; a failed one is dropped by the server loop (an OSError).
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        # A short poll, so stop() returns at once.
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/alerts"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}")


async def received_at_least(receiver: Receiver, count: int, within: float = 10.0) -> list[Received]:
    """The async twin of wait_for, for tests running on the event loop."""
    import asyncio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with receiver.lock:
            if len(receiver.received) >= count:
                return list(receiver.received)
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} requests, got {len(receiver.received)}")
