"""Serving the emulator over a real socket: HTTP/1.1 with keep-alive and chunked streams."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Protocol

import httpx

from ._base import ApiError, Reply, reply_bytes

__all__ = ["EmulatorServer", "Responder", "serve_forever"]


class Responder(Protocol):
    """What the server needs of an emulator (``Emulator`` sits above this module)."""

    latency: float
    stream_delay: float

    def respond(self, request: httpx.Request) -> Reply: ...


_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30  # an idle keep-alive connection ends after this many seconds

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(parts)

    def _serve(self) -> None:
        emulator = self.server.emulator
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS]
        request = httpx.Request(
            self.command, f"http://{host}{self.path}", headers=headers, content=self._body()
        )
        if emulator.latency:
            time.sleep(emulator.latency)
        try:
            reply = emulator.respond(request)
        except Exception as exc:  # an emulator bug: answer 500 and show it on stderr
            traceback.print_exc()
            reply = ApiError(500, "unknown", f"Emulator error: {exc!r}").reply()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.feed is None:
            data = reply_bytes(reply)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in reply.feed.iter_frames():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        except (httpx.RemoteProtocolError, OSError):
            # A cut (or a client that left): drop the connection without the closing chunk.
            self.close_connection = True
            return
        finally:
            reply.feed.close()
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log.write(f"{self.address_string()} {format % args}\n")
            self.server.log.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # socketserver's 5 would refuse a burst of connections

    def __init__(
        self, address: tuple[str, int], emulator: Responder, log: IO[str] | None = None
    ) -> None:
        self.emulator = emulator
        self.log = log
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that left is normal
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"


class EmulatorServer:
    """An emulator served in a background thread; ``url`` is its base URL (with ``/v1``).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        emulator: Responder,
        host: str = "127.0.0.1",
        port: int = 0,
        log: IO[str] | None = None,
    ) -> None:
        self.emulator = emulator
        self._httpd = _Server((host, port), emulator, log)
        self.url = self._httpd.url
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving and drop open connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.drop_connections()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.url}>"


def serve_forever(
    emulator: Responder, host: str, port: int, log: IO[str] | None, announce: IO[str] | None
) -> None:
    """Serve in this thread until interrupted (Ctrl+C); prints the URL first."""
    httpd = _Server((host, port), emulator, log)
    if announce is not None:
        print(f"Dify emulator serving {httpd.url}", file=announce)
        print("Keys: app-<anything> for apps, dataset-<anything> for knowledge.", file=announce)
        print("Press Ctrl+C to stop.", file=announce, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.drop_connections()
        httpd.server_close()
