# -*- test-case-name: test.unit.test_raft_peers,test.integration.test_raft_membership -*-
"""
L{MemberTransport}: the TCP transport of a freno raft node (pysyncobj's
C{TCPTransport}, with acknowledgements held until synced as
L{freno.consensus.raft.transport.DurableTCPTransport} does), plus:

Learners (docs/decisions.md, D72)
=================================

A node joining a group runs as a pysyncobj I{read-only} node (no vote, no
listening socket): it dials every member and the leader replicates the log
(or a snapshot) to it. pysyncobj's read-only nodes announce themselves as
C{"readonly"} and get anonymous ids; ours announce C{"learner
<host:port>"} (L{LEARNER_PREFIX}), and a member names the read-only node
after it, so that the leader can tell how far the learner is (its match
index) before it adds it as a voter. Everything else about them is
pysyncobj's. The announcement travels after the password handshake, like
every message: a peer without C{RaftPassword} cannot become a learner.

Resolution (docs/decisions.md, D73)
===================================

A member's address is asked of the node's L{IRaftResolver
<freno.consensus.raft.resolver.IRaftResolver>} (C{syncObj.resolver})
before every dial instead of pysyncobj's process-wide cache, and a dial that
fails or a connection that drops tells the resolver, so a member whose name
now points elsewhere is found at the next attempt.

Private hooks (pysyncobj 0.3.17): C{TCPTransport._connectIfNecessarySingle},
C{_onDisconnected}, C{_sendSelfAddress}, C{_onIncomingMessageReceived},
C{_connections}, C{_lastConnectAttempt}, C{_readonlyNodes},
C{_unknownConnections}, C{_selfIsReadonlyNode}.
"""

from __future__ import annotations

import functools
from typing import Optional

from pysyncobj.monotonic import monotonic
from pysyncobj.node import Node
from pysyncobj.tcp_connection import CONNECTION_STATE
from pysyncobj.transport import TCPTransport

from freno.consensus.raft.transport import HoldUntilSynced

#: How a learner announces itself (followed by its C{host:port}).
LEARNER_PREFIX = "learner "


def learner_id(address: str) -> str:
    """
    The id a member gives the read-only node of learner C{address}.
    """
    return LEARNER_PREFIX + address


class PeerHooks:
    """
    Mixin for a pysyncobj C{TCPTransport} (listed before it): learner
    announcements and resolution through C{syncObj.resolver}.
    """

    def __init__(self, syncObj, selfNode, otherNodes) -> None:
        self._resolver = getattr(syncObj, "resolver", None)
        self._learner_name: Optional[str] = getattr(syncObj, "learner_name", None)
        super().__init__(syncObj, selfNode, otherNodes)

    # -- resolution ----------------------------------------------------------

    def _connectIfNecessarySingle(self, node) -> bool:
        if self._resolver is None:
            return super()._connectIfNecessarySingle(node)
        connection = self._connections.get(node)
        if connection is not None and connection.state != CONNECTION_STATE.DISCONNECTED:
            return True
        if not self._shouldConnect(node):
            return False
        last = self._lastConnectAttempt.get(node)
        if last is not None and monotonic() - last < self._syncObj.conf.connectionRetryTime:
            return False
        address = self._resolver.address_of(node.host)
        if address is None:
            return False
        self._lastConnectAttempt[node] = monotonic()
        try:
            started = self._connections[node].connect(address, node.port)
        except OSError:
            started = False
        if not started:
            self._resolver.connection_failed(node.host)
        return started

    def _onDisconnected(self, conn) -> None:
        if self._resolver is not None:
            node = self._connToNode(conn)
            if node is not None and node in self._nodes:
                self._resolver.connection_failed(node.host)
        super()._onDisconnected(conn)

    # -- learners ------------------------------------------------------------

    def _sendSelfAddress(self, conn) -> None:
        if self._selfIsReadonlyNode and self._learner_name:
            conn.send(learner_id(self._learner_name))
        else:
            super()._sendSelfAddress(conn)

    def _onIncomingMessageReceived(self, conn, message) -> None:
        handshaken = not self._syncObj.encryptor or conn.sendRandKey
        if handshaken and isinstance(message, str) and message.startswith(LEARNER_PREFIX):
            node = Node(message)
            previous = self._connections.pop(node, None)
            if previous is not None and previous is not conn:
                previous.setOnDisconnectedCallback(None)
                previous.disconnect()
            self._readonlyNodes.add(node)
            self._unknownConnections.discard(conn)
            self._connections[node] = conn
            conn.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
            self._onReadonlyNodeConnected(node)
            return
        super()._onIncomingMessageReceived(conn, message)


class MemberTransport(HoldUntilSynced, PeerHooks, TCPTransport):
    """
    The transport of a node of a group: acknowledgements held until synced,
    learners named, members resolved through the node's resolver.
    """
