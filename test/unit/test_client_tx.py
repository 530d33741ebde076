"""
L{TxFrenoClient} on C{StubTreq} and C{task.Clock}: fake nodes behind a
resource that routes by C{Host}; a hung node is one that never answers.
Deferreds are asserted synchronously.
"""

from __future__ import annotations

import random

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from freno.client.fake import FakeFreno, FakeGroupState
from freno.client.result import FrenoAPIError, NotAllowed
from freno.client.tx import TxFrenoClient

A, B = "http://a:1", "http://b:2"


class GroupResource(Resource):
    """
    Hands each request to the fake node named by its C{Host}; hosts in
    C{hung} never answer.
    """

    isLeaf = True

    def __init__(self, nodes):
        super().__init__()
        self.nodes = nodes
        self.hung = set()
        self.pending = []

    def render(self, request):
        host = request.getHeader("host")
        if host in self.hung:
            self.pending.append(request)
            return NOT_DONE_YET
        node = self.nodes[host]
        answer = node.handle(request.method.decode(), request.uri.decode(),
                             {k.decode(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()},
                             request.content.read() or None)
        request.setResponseCode(answer.status)
        for name, value in answer.headers.items():
            request.setHeader(name, value)
        return answer.body


class TxTests(SynchronousTestCase):
    """
    The Twisted flavour shares the blocking client's behaviour.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.state = FakeGroupState(self.clock.seconds)
        self.state.leader = "a"
        self.state.clusters["main"] = (0.5, 1.0)
        self.resource = GroupResource({"a:1": FakeFreno("a", self.state), "b:2": FakeFreno("b", self.state)})
        self.treq = StubTreq(self.resource)
        self.client = TxFrenoClient([A, B], self.treq, self.clock, timeout=2, rng=random.Random(1))

    def test_check(self):
        """
        A check fires with the result read from status and headers.
        """
        result = self.successResultOf(self.client.check("app", "main"))
        self.assertEqual((result.allowed, result.value, result.data_age_ms, result.node), (True, 0.5, 40, A))

    def test_hung_node_times_out(self):
        """
        A node that never answers times out on the clock and the next node
        answers.
        """
        self.resource.hung.add("a:1")
        self.state.leader = "b"
        d = self.client.check("app", "main")
        self.assertNoResult(d)
        self.clock.advance(1.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        self.assertEqual(self.successResultOf(d).node, B)

    def test_wait(self):
        """
        C{wait_until_allowed} waits on the clock until the lag is gone.
        """
        self.state.clusters["main"] = (3.0, 1.0)
        d = self.client.wait_until_allowed("app", "main", max_wait=60, poll=1, cap=4)
        self.assertNoResult(d)
        self.clock.advance(5)
        self.assertNoResult(d)
        self.state.clusters["main"] = (0.1, 1.0)
        self.clock.advance(5)
        self.assertTrue(self.successResultOf(d).allowed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wait_deadline(self):
        """
        At its deadline C{wait_until_allowed} fails with L{NotAllowed}.
        """
        self.state.clusters["main"] = (3.0, 1.0)
        d = self.client.wait_until_allowed("app", "main", max_wait=10)
        self.clock.pump([1] * 11)
        self.failureResultOf(d, NotAllowed)

    def test_control(self):
        """
        Mutations and listings, on freno's routes without a token.
        """
        self.successResultOf(self.client.throttle("app", ttl="1h"))
        [throttle] = self.successResultOf(self.client.throttles())
        self.assertEqual(throttle.key, "app")
        self.assertEqual(self.successResultOf(self.client.check("app", "main")).status, 417)
        self.successResultOf(self.client.unthrottle("app"))
        self.successResultOf(self.client.skip("db1"))
        self.assertEqual([s.host for s in self.successResultOf(self.client.skips())], ["db1"])
        self.successResultOf(self.client.recover("db1"))
        self.assertEqual(self.successResultOf(self.client.skips()), [])

    def test_rest_refused(self):
        """
        A refusal fails the Deferred with L{FrenoAPIError}.
        """
        self.state.tokens = {"good": "ops"}
        client = TxFrenoClient([A], self.treq, self.clock, token="bad")
        failure = self.failureResultOf(client.throttle("app"), FrenoAPIError)
        self.assertEqual(failure.value.status, 401)

    def test_status_and_explain(self):
        """
        Status and explain come from the leader.
        """
        self.state.leader = "b"
        self.assertEqual(self.successResultOf(self.client.status())["node"], "b")
        self.assertEqual(self.successResultOf(self.client.explain("app", "main"))["node"], "b")

    def test_bad_input(self):
        """
        Bad input raises at once.
        """
        self.assertRaises(ValueError, self.client.check, "", "main")
        self.assertRaises(ValueError, TxFrenoClient, [A], self.treq, self.clock, timeout=-1)
