"""Claiming the control socket: a live daemon is named and left alone, even one whose
queue of connections is full."""

import socket
from pathlib import Path

import pytest

from player.control.unix_socket import claim_socket
from player.errors import ControlError


def test_a_listener_with_a_full_backlog_is_a_daemon_serving(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    waiting: list[socket.socket] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(0)
        try:
            while True:  # until the kernel queues no more (Linux: backlog + 1)
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.setblocking(False)
                waiting.append(client)
                client.connect(str(path))
        except BlockingIOError:
            pass
        with pytest.raises(ControlError, match="already serving"):
            claim_socket(path)
        assert path.is_socket()
    for client in waiting:
        client.close()


def test_a_socket_nobody_listens_on_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    claim_socket(path)
    assert not path.exists()
