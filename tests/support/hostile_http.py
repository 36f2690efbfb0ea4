"""A hostile HTTP server on loopback for the fault tests: raw sockets, so it can misbehave in ways a
framework would not let it (trickle headers or body, lie about lengths, send bombs, hang up).

Each behaviour is a function writing to the accepted socket; the server runs one thread per
connection and stops when the `with` block ends (open connections are closed).
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

Behaviour = Callable[[socket.socket, bytes], None]
"""(connection, the request head as received) -> writes the answer."""


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class HostileServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: list[socket.socket] = []
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self.sock.close()
        with self._lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while not self._stop.is_set():
                head = read_head(conn)
                if not head:
                    return
                with self._lock:
                    self.requests += 1
                self.behaviour(conn, head)


def answer(body: bytes, status: str = "200 OK", content_type: str = "application/fhir+json") -> Behaviour:
    """A well-behaved answer (keep-alive)."""

    def write(conn: socket.socket, _head: bytes) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        conn.sendall(head.encode() + body)

    return write


def trickle(body: bytes, bytes_per_second: float = 1.0, headers_too: bool = False) -> Behaviour:
    """Send the answer one byte at a time (the whole answer, or the body only)."""

    def write(conn: socket.socket, _head: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        if not headers_too:
            conn.sendall(head.encode())
        for byte in (head.encode() if headers_too else b"") + body:
            conn.sendall(bytes([byte]))
            time.sleep(1 / bytes_per_second)

    return write


def hang_up_mid_body(body: bytes) -> Behaviour:
    """Promise a longer body than is sent, then close: urllib3 raises ProtocolError (IncompleteRead)."""

    def write(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) + 1000}\r\n\r\n".encode() + body)
        conn.shutdown(socket.SHUT_RDWR)
        raise OSError("hung up")

    return write


def endless(chunk: bytes, total: int, pause: float = 0.0) -> Behaviour:
    """`total` bytes of `chunk` repeated, with no Content-Length (read until close)."""

    def write(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n\r\n")
        sent = 0
        while sent < total:
            conn.sendall(chunk)
            sent += len(chunk)
            if pause:
                time.sleep(pause)
        conn.shutdown(socket.SHUT_RDWR)
        raise OSError("done")

    return write


def gzip_bomb(decoded_bytes: int) -> Behaviour:
    """A small gzip body that inflates to `decoded_bytes` of spaces inside a JSON string."""
    payload = gzip.compress(b'{"resourceType":"Bundle","x":"' + b" " * decoded_bytes + b'"}', 9)

    def write(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

    return write
