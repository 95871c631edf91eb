"""Loopback ports: the local platform's members, the devhost and the tests each pick free ones."""

from __future__ import annotations

import socket
from contextlib import closing


def free_ports(count: int, avoid: set[int] | None = None) -> list[int]:
    """Ports free on loopback now, distinct from each other and from `avoid`."""
    chosen: list[int] = []
    avoid = set(avoid or ())
    while len(chosen) < count:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid and port not in chosen and port < 60000:
            chosen.append(port)
    return chosen


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0
