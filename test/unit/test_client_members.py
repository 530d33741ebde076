"""
C{freno-cli members} and L{FrenoClient}'s membership methods against the
real C{/api/v1/members} routes over L{FakeMembership} nodes, in memory.
"""

from __future__ import annotations

import io
import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.client.answers import Response
from freno.client.cli import main
from freno.client.http import TransportError
from freno.consensus.membership import FakeMembership
from freno.http.auth import Authenticator
from freno.http.rest_members import MembersAPI, MembersResource
from test.unit.test_http_auth import OPS, TOKENS

LEADER, FOLLOWER = "http://n1:8087", "http://n2:8087"


class SiteTransport:
    """
    A client transport delivering to in-memory sites by base URL.
    """

    def __init__(self, testcase, sites) -> None:
        self.testcase = testcase
        self.sites = sites
        self.sent = []

    def request(self, base_url, method, target, headers, body, timeout):
        self.sent.append((base_url, method, target, timeout))
        treq = self.sites.get(base_url)
        if treq is None:
            raise TransportError("connection refused")
        d = treq.request(method, base_url + target, data=body, headers={k: [v] for k, v in headers.items()})
        response = self.testcase.successResultOf(d)
        content = self.testcase.successResultOf(response.content())
        names = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
        return Response(response.code, names, content)

    def close(self) -> None:
        pass


class MembersCLITests(SynchronousTestCase):
    """
    C{freno-cli members list|add|remove}.
    """

    def setUp(self):
        self.leader = FakeMembership("n1:10008")
        self.follower = FakeMembership("n2:10008")
        self.follower.leader = "n1:10008"

        def site(fake):
            return StubTreq(MembersResource(MembersAPI(clock=Clock(), membership=fake, authenticator=Authenticator(TOKENS))))

        self.transport = SiteTransport(self, {LEADER: site(self.leader), FOLLOWER: site(self.follower)})
        self.environ = {"FRENO_URL": f"{FOLLOWER},{LEADER}", "FRENO_TOKEN": OPS}

    def cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), self.environ, out, err, self.transport)
        return code, out.getvalue(), err.getvalue()

    def test_list(self):
        """
        A table of members and learners; C{--json} prints the answer.
        """
        self.follower.learners.add("n4:10008")
        code, out, _ = self.cli("members", "list")
        self.assertEqual(code, 0)
        self.assertIn("n2:10008 (this node)", out)
        self.assertIn("learner", out)
        code, out, _ = self.cli("members", "list", "--json")
        self.assertEqual([m["address"] for m in json.loads(out)["members"]], ["n1:10008", "n2:10008", "n3:10008"])

    def test_add_goes_to_the_leader(self):
        """
        A change skips the follower that answers 409 not_leader and is made
        by the leader, with a long enough timeout for the catch-up wait; the
        percent-encoded address of a removal reaches the route whole.
        """
        self.leader.learners.add("n4:10008")
        code, out, err = self.cli("members", "add", "n4:10008", "--reason", "grow")
        self.assertEqual(code, 0, err)
        self.assertIn("added n4:10008 (audit #1)", out)
        self.assertIn("n4:10008", self.leader.members)
        self.assertEqual([s[0] for s in self.transport.sent], [FOLLOWER, LEADER])
        self.assertEqual(self.transport.sent[-1][3], 15.0)
        code, out, err = self.cli("members", "remove", "n3:10008", "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["removed"], "n3:10008")
        self.assertNotIn("n3:10008", self.leader.members)
        self.assertEqual(self.leader.audit.records[-1].route, "DELETE /api/v1/members/n3:10008")

    def test_refusals(self):
        """
        A refusal exits 2 with the server's reason; a missing address is a
        usage error; nothing changes.
        """
        code, _, err = self.cli("members", "add", "n4:10008")
        self.assertEqual(code, 2)
        self.assertIn("no learner n4:10008", err)
        code, _, err = self.cli("members", "remove")
        self.assertEqual(code, 2)
        self.assertIn("host:port", err)
        code, _, err = self.cli("members", "grow", "x:1")
        self.assertEqual(code, 2)
        self.environ["FRENO_TOKEN"] = ""
        code, _, err = self.cli("members", "remove", "n3:10008")
        self.assertEqual(code, 2)
        self.assertIn("401", err)
        self.assertEqual(len(self.leader.members), 3)

    def test_no_leader(self):
        """
        When no node is the leader, the change fails naming each answer.
        """
        self.leader.leader = "n3:10008"
        code, _, err = self.cli("members", "remove", "n2:10008")
        self.assertEqual(code, 2)
        self.assertIn("not_leader", err)
