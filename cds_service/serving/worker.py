"""A gthread worker that reads each request whole in its event loop before a thread gets it.

Plain gthread hands a connection to a thread as soon as its first byte arrives; a client sending
one byte a second then holds that thread for as long as it likes, and eight such clients make the
service unanswerable (`/healthz` included). Here the worker's event loop (non-blocking, one per
process) collects the request head and its body (Content-Length, or chunked up to the closing
chunk) first, and only a complete request, or one that is plainly too large or badly framed (the
app then answers 413 / 400 at once), takes a thread. A request not complete within
`CDS_REQUEST_READ_SECONDS` is dropped; waiting costs a socket, never a thread.

Workers also share out the connections: EHRs keep connections open, and Linux wakes the same
waiting worker first, so one worker ended up holding most of them (26 of 32 measured) while the
other idled, doubling latency for the crowded worker's clients. Each worker publishes its open
connection count in a small shared-memory table (a slot per live worker, handed out by the master);
a worker accepts only while it holds no more connections than the least loaded live worker, and
one holding two or more above it ends kept-alive connections after their answer (`Connection:
close`) until the share is even again.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import selectors
import socket
import struct
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

MAX_HEAD_BYTES = 64 * 1024
READ_SECONDS = float(os.environ.get("CDS_REQUEST_READ_SECONDS", "30"))
MAX_BODY_BYTES = int(os.environ.get("CDS_MAX_BODY_BYTES", str(10 * 1024 * 1024)))


MAX_WORKERS = 64
# How soon a worker that stopped accepting to leave new connections to a less loaded one looks at
# the table again. The counts it decided on may be stale by then: two workers that each just took
# connections can both see the other one as less loaded, and gthread's event loop would otherwise
# sleep a whole second before deciding again, with nobody accepting (measured: new connections
# waited 1-3 s while a second worker started under load).
BALANCE_RECHECK_SECONDS = 0.02
_FREE = -1
_SLOT = struct.Struct("q")
_TABLE = struct.Struct(f"{MAX_WORKERS}q")
# Anonymous shared memory made in the master (which imports the worker class before forking), so
# every worker sees the same table. -1: no live worker in that slot.
_connections = mmap.mmap(-1, _SLOT.size * MAX_WORKERS)
_connections.write(_SLOT.pack(_FREE) * MAX_WORKERS)


def _publish(slot: int, count: int) -> None:
    _SLOT.pack_into(_connections, slot * _SLOT.size, count)


def _published() -> tuple[int, ...]:
    return _TABLE.unpack_from(_connections)  # one C call: read before every wait of the event loop


def assign_slot(server: Any, worker: Any) -> None:
    """Master, before a fork: the lowest slot no live worker holds (gunicorn's pre_fork hook). It
    stays free until the worker's event loop runs and publishes its count: nobody waits for a
    worker that is still starting."""
    taken = {getattr(w, "cds_slot", None) for w in server.WORKERS.values()}
    worker.cds_slot = next((i for i in range(MAX_WORKERS) if i not in taken), None)
    if worker.cds_slot is not None:
        _publish(worker.cds_slot, _FREE)


def release_slot(worker: Any) -> None:
    """Master, after a worker exited (gunicorn's child_exit hook): its connections are gone."""
    slot = getattr(worker, "cds_slot", None)
    if slot is not None:
        _publish(slot, _FREE)


def _fewest_elsewhere(published: Sequence[int], slot: int) -> int | None:
    """The connection count of the least loaded other live worker (None: no other)."""
    return min((c for i, c in enumerate(published) if c != _FREE and i != slot), default=None)


def may_accept(mine: int, published: Sequence[int], slot: int) -> bool:
    """Accept while no other live worker holds fewer connections than this one."""
    fewest = _fewest_elsewhere(published, slot)
    return fewest is None or mine <= fewest


def over_share(mine: int, published: Sequence[int], slot: int) -> bool:
    """Hold two or more connections more than the least loaded other live worker: let one go."""
    fewest = _fewest_elsewhere(published, slot)
    return fewest is not None and mine > fewest + 1


def _chunked_done(body: bytes | bytearray, pos: int = 0) -> bool | None:
    """True: the closing chunk (and trailers) arrived; False: more to come; None: bad framing.
    The chunks start at `pos` (the request's body, read in place: no copy of it per read)."""
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
    # Asked after every read: the body is measured in place, never copied (a copy per read made a
    # 10 MB body cost 40 copies of itself on its way in).
    body_start = head_end + 4
    received = len(buffer) - body_start
    if received > max_body + MAX_HEAD_BYTES:
        return True
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        return _chunked_done(buffer, body_start) is not False
    length = fields.get(b"content-length", b"0")
    if not length.isdigit():
        return True  # gunicorn answers 400
    return int(length) > max_body or received >= int(length)


class ReadAheadUnreader(SocketUnreader):  # type: ignore[misc]
    """The parser's source once a request was read ahead: what the worker read is handed out as if
    it were still arriving (8 kB per read for the head, at most `PIECE` for a body), then the socket
    again. Handed over whole, it sat in gunicorn's buffer, which its parser and body reader copy
    whole on every read: 10 MB of body cost about 100 ms of copying before the app saw it."""

    PIECE = 1024 * 1024

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.pending = memoryview(b"")

    def chunk(self, size_hint: int | None = None) -> bytes:
        if not self.pending:
            return bytes(super().chunk(size_hint))
        size = max(self.mxchunk, min(size_hint or 0, self.PIECE))
        piece, self.pending = self.pending[:size], self.pending[size:]
        return bytes(piece)

    def settle(self) -> None:
        """What is still pending goes behind gunicorn's buffer, where the worker looks for a
        pipelined next request (it would otherwise wait on the socket for bytes already here)."""
        if self.pending:
            self.buf.seek(0, os.SEEK_END)
            self.buf.write(self.pending)
            self.pending = memoryview(b"")

    def take_buffered(self) -> bytes:
        self.settle()
        return bytes(super().take_buffered())


class ReadAheadConn(TConn):  # type: ignore[misc]
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read_ahead = bytearray()
        self.read_deadline = 0.0


class ReadAheadWorker(ThreadWorker):  # type: ignore[misc]
    cds_slot: int | None = None

    def init_process(self) -> None:
        self.reading: deque[ReadAheadConn] = deque()
        super().init_process()

    @property
    def worker_connections(self) -> int:
        """gthread's event loop reads this before every wait to decide whether to poll the
        listener: here it is also where the connection count is published and shared out."""
        limit = self._connection_limit
        slot = self.cds_slot
        if slot is None or not self.alive:
            return limit
        _publish(slot, self.nr_conns)
        return limit if may_accept(self.nr_conns, _published(), slot) else self.nr_conns

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._connection_limit = value

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """gthread's wait, shortened while this worker holds back for the balance's sake (not at
        its connection limit): it looks at the shared counts again in `BALANCE_RECHECK_SECONDS`."""
        if self.alive and not self._accepting and self.nr_conns < self._connection_limit:
            timeout = min(timeout, BALANCE_RECHECK_SECONDS)
        super().wait_for_and_dispatch_events(timeout)

    @property
    def max_keepalived(self) -> int:
        """gthread reads this before each response and answers `Connection: close` at 0. Accepting
        evenly is not enough: a worker that starts late (a restart after a crash, one more worker
        by SIGTTIN) finds every kept-alive connection held by the others, and under steady traffic
        they are never closed. So a worker over its share closes connections after their answer,
        announced, until the clients' new connections have gone to the least loaded worker."""
        limit = self._keepalive_limit
        slot = self.cds_slot
        if slot is None or not self.alive or not over_share(self.nr_conns, _published(), slot):
            return limit
        return 0

    @max_keepalived.setter
    def max_keepalived(self, value: int) -> None:
        self._keepalive_limit = value

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Stopping: no longer a worker the others should leave new connections to."""
        if self.cds_slot is not None:
            _publish(self.cds_slot, _FREE)
        super().handle_exit(sig, frame)

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
        """Read what is there now (a kept-alive connection is here because it turned readable, a
        new one often has its request already): most requests take a thread at once, without
        another turn of the event loop, which under load waits for the GIL behind busy threads."""
        conn.sock.setblocking(False)
        conn.read_deadline = time.monotonic() + READ_SECONDS
        self.reading.append(conn)
        if self._receive(conn):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: ReadAheadConn, client: socket.socket) -> None:
        self._receive(conn)

    def _receive(self, conn: ReadAheadConn) -> bool:
        """One read of a connection being read ahead; False once it left the reading state (its
        request went to a thread, or it was closed and dropped) and the poller."""
        try:
            data = conn.sock.recv(256 * 1024)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return False
        conn.read_ahead += data
        if not request_ready(conn.read_ahead):
            return True
        self._unwatch(conn)
        self.reading.remove(conn)
        conn.data_ready = True
        self.enqueue_req(conn)
        return False

    def _unwatch(self, conn: ReadAheadConn) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):  # not registered (read at once)
            self.poller.unregister(conn.sock)

    def _drop(self, conn: ReadAheadConn) -> None:
        self._unwatch(conn)
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
        if not conn.read_ahead:
            return super().handle(conn)
        conn.sock.setblocking(True)
        conn.init()
        unreader = conn.parser.unreader
        if not isinstance(unreader, ReadAheadUnreader):  # a connection's first request
            replacement = ReadAheadUnreader(conn.sock)
            replacement.buf = unreader.buf
            unreader = conn.parser.unreader = replacement
        # Behind anything gunicorn holds already, as it arrived; read in place, not copied.
        unreader.pending, conn.read_ahead = memoryview(conn.read_ahead), bytearray()
        try:
            return super().handle(conn)
        finally:
            unreader.settle()
