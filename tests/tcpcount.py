"""A TCP forwarder that counts the bytes a client sends to a server, and those it gets back.

Put between the gateway and its store, it answers "did this request reach the store at
all?", "how many bytes did the store send?" and, when asked to record, "which request heads
went to the store?" without trusting the gateway's own counters.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_REQUEST = re.compile(rb"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n", re.DOTALL)


@dataclass
class Counter:
    url: str
    to_server: int = 0
    from_server: int = 0
    connections: int = 0
    sent: bytearray | None = None  # what clients sent, when the proxy records
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, target, headers) of every request head that went to the server."""
        assert self.sent is not None, "counting_proxy(record=True) keeps what clients sent"
        with self.lock:
            data = bytes(self.sent)
        found = []
        for method, target, head in _REQUEST.findall(data):
            headers = {}
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            found.append((method.decode(), target.decode(), headers))
        return found


def _pipe(src: socket.socket, dst: socket.socket, counter: Counter, upstream: bool) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if upstream:
                counter.to_server += len(data)
                if counter.sent is not None:
                    with counter.lock:
                        counter.sent += data
            else:
                counter.from_server += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def counting_proxy(target_url: str, record: bool = False) -> Iterator[Counter]:
    """Forward 127.0.0.1:<free port> to ``target_url``'s host and port; with ``record``,
    keep every byte clients sent, for :meth:`Counter.requests`."""
    target = urlsplit(target_url)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)  # accept() wakes up to notice stop; close() alone would not
    port = listener.getsockname()[1]
    counter = Counter(f"http://127.0.0.1:{port}", sent=bytearray() if record else None)
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            counter.connections += 1
            sockets.append(client)
            try:
                server = socket.create_connection((target.hostname, target.port))
            except OSError:
                client.close()
                continue
            sockets.append(server)
            threading.Thread(target=_pipe, args=(client, server, counter, True),
                             daemon=True).start()
            threading.Thread(target=_pipe, args=(server, client, counter, False),
                             daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield counter
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
        for s in sockets:
            s.close()
