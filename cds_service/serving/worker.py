"""A gthread worker that reads each request whole in its event loop before a thread gets it.

Plain gthread hands a connection to a thread as soon as its first byte arrives; a client sending
one byte a second then holds that thread for as long as it likes, and eight such clients make the
service unanswerable (`/healthz` included). Here the worker's event loop (non-blocking, one per
process) collects the request head and its body (Content-Length, or chunked up to the closing
chunk) first, and only a complete request, or one that is plainly too large or badly framed (the
app then answers 413 / 400 at once), takes a thread. A request not complete within
`CDS_REQUEST_READ_SECONDS` is dropped; waiting costs a socket, never a thread.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

MAX_HEAD_BYTES = 64 * 1024
READ_SECONDS = float(os.environ.get("CDS_REQUEST_READ_SECONDS", "30"))
MAX_BODY_BYTES = int(os.environ.get("CDS_MAX_BODY_BYTES", str(10 * 1024 * 1024)))


def _chunked_done(body: bytes | bytearray) -> bool | None:
    """True: the closing chunk (and trailers) arrived; False: more to come; None: bad framing."""
    pos = 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return None if len(body) - pos > 1024 else False
        size_text = bytes(body[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return None
        if size < 0:
            return None
        if size == 0:  # then either an empty line, or trailer fields and an empty line
            rest = bytes(body[line_end + 2 :])
            return rest.startswith(b"\r\n") or b"\r\n\r\n" in rest
        pos = line_end + 2 + size + 2
        if pos > len(body):
            return False


def request_ready(buffer: bytearray, max_body: int = MAX_BODY_BYTES) -> bool:
    """Whether a thread should take the request now: complete, or hopeless enough that the app's
    answer (413, 400) does not need the rest."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return len(buffer) > MAX_HEAD_BYTES
    fields: dict[bytes, bytes] = {}
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if fields.get(b"expect") == b"100-continue":
        return True  # the client waits for gunicorn's 100 Continue before it sends the body
    body = buffer[head_end + 4 :]
    if len(body) > max_body + MAX_HEAD_BYTES:
        return True
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        return _chunked_done(body) is not False
    length = fields.get(b"content-length", b"0")
    if not length.isdigit():
        return True  # gunicorn answers 400
    return int(length) > max_body or len(body) >= int(length)


class ReadAheadConn(TConn):  # type: ignore[misc]
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read_ahead = bytearray()
        self.read_deadline = 0.0


class ReadAheadWorker(ThreadWorker):  # type: ignore[misc]
    def init_process(self) -> None:
        self.reading: deque[ReadAheadConn] = deque()
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError:
            return  # another worker took it, or the client went away
        self.nr_conns += 1
        self._read_ahead(ReadAheadConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: ReadAheadConn, client: socket.socket) -> None:
        """A kept-alive connection's next request: read ahead the same way."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_ahead(conn)

    def _read_ahead(self, conn: ReadAheadConn) -> None:
        conn.sock.setblocking(False)
        conn.read_deadline = time.monotonic() + READ_SECONDS
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: ReadAheadConn, client: socket.socket) -> None:
        try:
            data = client.recv(256 * 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.read_ahead += data
        if request_ready(conn.read_ahead):
            self.poller.unregister(client)
            self.reading.remove(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _drop(self, conn: ReadAheadConn) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].read_deadline <= now:
            self._drop(self.reading[0])
        if not self.alive:  # stopping: connections that sent nothing yet do not hold the shutdown
            for conn in [c for c in self.reading if not c.read_ahead]:
                self._drop(conn)

    def handle(self, conn: ReadAheadConn) -> Any:
        if conn.read_ahead:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(conn.read_ahead))
            conn.read_ahead = bytearray()
        return super().handle(conn)
