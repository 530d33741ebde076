"""
Tests for L{freno.consensus.raft.service.RaftConsensusService}'s construction:
the configurations it refuses and accepts, without starting raft.
"""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import Config
from freno.consensus.interface import (
    IConsensusService,
    NotLeaderError,
)
from freno.consensus.raft import RaftConsensusService, RaftStartError
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

FUTURE = 4102444800.0  # 2100-01-01


class ConstructionTests(SynchronousTestCase):
    """
    The service refuses configurations that cannot work, with clear errors,
    and behaves sanely before it starts.
    """

    def config(self, **kwargs):
        fields = dict(
            raft_bind="127.0.0.1:10008",
            raft_nodes=("127.0.0.1:10008", "127.0.0.1:10009", "127.0.0.1:10010"),
            raft_data_dir=self.mktemp(),
            raft_password="pw",
        )
        fields.update(kwargs)
        return Config(**fields)

    def test_provides_interface(self):
        """
        It provides L{IConsensusService}.
        """
        self.assertTrue(verifyObject(IConsensusService, RaftConsensusService(reactor, self.config())))

    def test_multi_node_requires_password(self):
        """
        A multi-node group without a password is refused: anyone reaching the
        port could run code on every node.
        """
        e = self.assertRaises(
            ValueError, RaftConsensusService, reactor, self.config(raft_password="")
        )
        self.assertIn("RaftPassword", str(e))

    def test_single_node_needs_no_password(self):
        """
        Single-node mode opens no port, so it needs no password.
        """
        service = RaftConsensusService(reactor, self.config(raft_nodes=(), raft_password=""))
        self.assertTrue(service.single_node)

    def test_only_self_is_single_node(self):
        """
        C{RaftNodes} listing only this member is single-node mode.
        """
        service = RaftConsensusService(
            reactor, self.config(raft_nodes=("127.0.0.1:10008",), raft_password="")
        )
        self.assertTrue(service.single_node)

    def test_bind_must_be_a_member(self):
        """
        C{RaftBind} must be one of C{RaftNodes}, exactly.
        """
        e = self.assertRaises(
            ValueError, RaftConsensusService, reactor, self.config(raft_bind="localhost:10008")
        )
        self.assertIn("RaftBind", str(e))

    def test_data_dir_required(self):
        """
        Raft without a data directory is refused.
        """
        e = self.assertRaises(
            ValueError, RaftConsensusService, reactor, self.config(raft_data_dir="")
        )
        self.assertIn("RaftDataDir", str(e))

    def test_before_start(self):
        """
        Before it starts, the node is shut down, leaderless, unhealthy, and
        commands fail at once with L{NotLeaderError}.
        """
        service = RaftConsensusService(reactor, self.config())
        self.assertEqual(service.state_description(), "Shutdown")
        self.assertFalse(service.is_leader())
        self.assertFalse(service.is_healthy())
        self.assertEqual(service.leader(), "")
        self.failureResultOf(service.throttle_app("a", None, None), NotLeaderError)
        self.assertEqual(service.status().ServiceID, "127.0.0.1:10008")

    def test_force_leadership(self):
        """
        C{force_leadership} makes L{is_leader} true, but C{State} stays raft's
        truth and commands still need raft (B19).
        """
        stats = Registry()
        service = RaftConsensusService(reactor, self.config(), force_leadership=True, registry=stats)
        self.assertTrue(service.is_leader())
        self.assertTrue(service.status().IsLeader)
        self.assertEqual(service.state_description(), "Shutdown")
        self.failureResultOf(service.skip_host("h", FUTURE), NotLeaderError)
        self.assertEqual(variables(stats).gauges["consensus.is_leader"], 1)
        self.assertEqual(variables(stats).gauges["raft.is_leader"], 0)

    def test_busy_port(self):
        """
        A raft port already in use fails start-up with L{RaftStartError} and
        leaves nothing registered.
        """
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            address = "127.0.0.1:%d" % busy.getsockname()[1]
            service = RaftConsensusService(
                reactor,
                self.config(raft_bind=address, raft_nodes=(address, "127.0.0.1:1")),
            )
            readers = set(reactor.getReaders())
            e = self.assertRaises(RaftStartError, service.startService)
        self.assertIn(address, str(e))
        self.assertFalse(service.running)
        self.assertEqual(set(reactor.getReaders()), readers)


