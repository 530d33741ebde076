# -*- test-case-name: test.unit.test_http_listen,test.integration.test_node_edges -*-
"""
The HTTP listening socket's backlog (C{ListenBacklog}).

C{listenTCP} and C{TCP4ServerEndpoint} default to a backlog of 50. Clients
that open a new connection for every check (freno's pt-archiver plugin,
C{curl} in shell loops, HAProxy closing server connections) overflow such a
queue under load: the kernel drops the SYN and the client retransmits it
after 1 s, then 2 s. With 200 such clients against one node, 0.3-1.4 % of
requests took 1-3 s where the original freno's slowest took 0.12-0.34 s.

L{listen_backlog} picks the backlog: C{ListenBacklog} when it is set
(above 0), else the kernel's C{net.core.somaxconn} (which caps whatever a
program asks for anyway), and never less than L{MIN_DEFAULT_BACKLOG} when
chosen automatically.
"""

from __future__ import annotations

from typing import Optional

#: Where Linux publishes C{net.core.somaxconn}.
SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"
#: The automatic backlog is at least this.
MIN_DEFAULT_BACKLOG = 1024


def read_somaxconn(path: str = SOMAXCONN_PATH) -> Optional[int]:
    """
    The kernel's C{somaxconn}, or C{None} when it cannot be read (not Linux,
    no C{/proc}, not a positive number).
    """
    try:
        with open(path, "rb") as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return value if value > 0 else None


def listen_backlog(configured: int, somaxconn_path: str = SOMAXCONN_PATH) -> int:
    """
    The backlog to listen with.

    @param configured: C{ListenBacklog} (0: automatic).
    @param somaxconn_path: where to read C{somaxconn} (tests).
    @return: C{configured} if above 0, else C{max(somaxconn, 1024)} (1,024
        when C{somaxconn} cannot be read).
    """
    if configured > 0:
        return configured
    somaxconn = read_somaxconn(somaxconn_path) or 0
    return max(somaxconn, MIN_DEFAULT_BACKLOG)
