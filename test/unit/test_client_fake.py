"""
The in-memory fakes of L{freno.client.fake} are verified against the seam
they stand in for (L{freno.client.http.Transport}), and answer as freno's
contract says in the cases the client's tests rely on.
"""

from __future__ import annotations

import inspect
import json

from twisted.trial.unittest import SynchronousTestCase

from freno.client.answers import GO_NOT_FOUND
from freno.client.fake import FakeFreno, FakeGroupState, FakeTransport
from freno.client.http import HTTPTransport, Transport, TransportError


class TransportConformanceTests(SynchronousTestCase):
    """
    L{FakeTransport} and L{HTTPTransport} provide L{Transport} with the
    same method signatures.
    """

    def test_provides(self):
        """
        Both are L{Transport}s whose methods take the protocol's parameters.
        """
        for implementation in (FakeTransport(), HTTPTransport()):
            self.assertIsInstance(implementation, Transport)
            for name in ("request", "close"):
                expected = list(inspect.signature(getattr(Transport, name)).parameters)
                actual = list(inspect.signature(getattr(type(implementation), name)).parameters)
                self.assertEqual(actual, expected, (type(implementation).__name__, name))

    def test_dead_nodes(self):
        """
        An unknown base URL is refused; a node marked down fails as told.
        """
        transport = FakeTransport()
        self.assertRaises(TransportError, transport.request, "http://x", "GET", "/", {}, None, 1)
        transport.nodes["http://y"] = FakeFreno("y", FakeGroupState(lambda: 0.0))
        transport.down["http://y"] = "timed out after 1s"
        error = self.assertRaises(TransportError, transport.request, "http://y", "GET", "/", {}, None, 1)
        self.assertEqual(str(error), "timed out after 1s")


class FakeFrenoTests(SynchronousTestCase):
    """
    L{FakeFreno} speaks the contract where the client's tests need it.
    """

    def setUp(self):
        self.state = FakeGroupState(lambda: 1000.0)
        self.state.leader = "a"
        self.state.clusters["main"] = (0.5, 1.0)
        self.old = FakeFreno("a", self.state, headers=False, rest=False)
        self.follower = FakeFreno("b", self.state, headers=False, rest=False)

    def test_old_check(self):
        """
        freno's CheckResult body and status; HEAD without a body; a
        follower's 500 C{not leader}; Go's 404 for unknown paths and for
        the newer routes.
        """
        answer = self.old.handle("GET", "/check/app/mysql/main", {}, None)
        self.assertEqual(json.loads(answer.body), {"StatusCode": 200, "Value": 0.5, "Threshold": 1.0, "Message": ""})
        self.assertFalse([h for h in answer.headers if h.startswith("x-freno")])
        self.assertEqual(self.old.handle("HEAD", "/check/app/mysql/main", {}, None).body, b"")
        answer = self.follower.handle("GET", "/check/app/mysql/main", {}, None)
        self.assertEqual((answer.status, json.loads(answer.body)["Message"]), (500, "not leader"))
        for path in ("/nope", "/api/v1/status", "/explain/app/mysql/main"):
            self.assertEqual(self.old.handle("GET", path, {}, None).body, GO_NOT_FOUND)

    def test_check_statuses(self):
        """
        429 above the threshold, 417 for a throttled app, 404 for an unknown
        cluster.
        """
        self.state.clusters["hot"] = (2.0, 1.0)
        self.state.throttles["bad"] = (None, 1.0)
        statuses = [self.old.handle("GET", path, {}, None).status
                    for path in ("/check/app/mysql/hot", "/check/bad/mysql/main", "/check/app/mysql/nope")]
        self.assertEqual(statuses, [429, 417, 404])

    def test_generic_answers(self):
        """
        freno's control routes answer the generic OK.
        """
        answer = self.old.handle("GET", "/throttle-app/app/ttl/5", {}, None)
        self.assertEqual(json.loads(answer.body), {"StatusCode": 200, "Message": "OK"})
        self.assertEqual(self.state.throttles["app"], (1300.0, 1.0))
