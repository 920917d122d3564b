"""The one s3rver launcher (benchmark and tests) survives losing its port before the bind.

It picks a free port, then s3rver binds it: a parallel test worker can take the port in
between. The race is made certain here by handing the launcher a port that is already
listening, whatever the timing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import servers


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 that another listener holds (and would answer on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_before_the_bind_is_retried_on_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken: int
) -> None:
    picks = iter([taken, taken])
    real = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(picks, None) or real())
    service = servers.start_s3rver(tmp_path / "data", tmp_path / "logs")
    try:
        assert service.port != taken
        assert servers._listens(service.proc.pid, service.port)  # s3rver's own socket
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 ")
    finally:
        service.stop()
    lost = sorted((tmp_path / "logs").glob(f"s3rver-{taken}.log"))
    assert lost and "EADDRINUSE" in lost[0].read_text()  # it did meet the taken port


def test_a_port_lost_every_time_is_a_clear_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, taken: int
) -> None:
    monkeypatch.setattr(servers, "free_port", lambda: taken)
    with pytest.raises(RuntimeError, match="EADDRINUSE"):
        servers.start_s3rver(tmp_path / "data", tmp_path / "logs", attempts=2)
