"""
Tests for L{freno.http.rest_members}: C{/api/v1/members} over
L{FakeMembership}, in memory (StubTreq).
"""

from __future__ import annotations

import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.interface import CommitTimeoutError
from freno.consensus.membership import FakeMembership
from freno.http import control
from freno.http.auth import Authenticator
from freno.http.rest_members import MembersAPI, MembersResource, member_routes
from test.unit.test_http_auth import DEPLOY, OPS, SRE, START, TOKENS, ControlService


class Members:
    """
    The members routes over a L{FakeMembership} led by C{n1:10008}.
    """

    def __init__(self, testcase, tokens=TOKENS, membership=None) -> None:
        self.testcase = testcase
        self.clock = Clock()
        self.clock.advance(START)
        self.fake = FakeMembership() if membership is None else membership
        api = MembersAPI(clock=self.clock, membership=self.fake, authenticator=Authenticator(tokens))
        self.treq = StubTreq(MembersResource(api))
        self.events = []
        testcase.patch(control, "AUDIT_LOG", Logger(namespace="freno.audit", observer=self.events.append))

    def json(self, method, path, body=None, token=None):
        headers = {}
        data = None
        if token is not None:
            headers["Authorization"] = [f"Bearer {token}"]
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = ["application/json"]
        d = self.treq.request(method, "http://freno" + path, data=data, headers=headers)
        response = self.testcase.successResultOf(d)
        content = self.testcase.successResultOf(response.content())
        return response.code, json.loads(content) if content else None


class MembersRouteTests(SynchronousTestCase):
    """
    Listing, adding and removing members.
    """

    def setUp(self):
        self.s = Members(self)

    def test_list(self):
        """
        The members (with this node and the leader marked), learners, the
        change in progress and the bootstrap list; readable without a
        token.
        """
        self.s.fake.learners.add("n4:10008")
        status, body = self.s.json("GET", "/api/v1/members")
        self.assertEqual(status, 200)
        self.assertEqual([m["address"] for m in body["members"]], ["n1:10008", "n2:10008", "n3:10008"])
        self.assertEqual(body["members"][0], {
            "address": "n1:10008", "voter": True, "self": True, "leader": True,
            "reachable": True, "match_index": None,
        })
        self.assertEqual(body["learners"][0]["address"], "n4:10008")
        self.assertFalse(body["learners"][0]["voter"])
        self.assertIsNone(body["pending"])
        self.assertFalse(body["self_learner"])

    def test_add(self):
        """
        An admin adds a learner; the answer names the members after the
        commit and the audit record, which holds the address and reason.
        """
        self.s.fake.learners.add("n4:10008")
        status, body = self.s.json("POST", "/api/v1/members", {"address": "n4:10008", "reason": "grow"}, OPS)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["added"], "n4:10008")
        self.assertIn("n4:10008", body["members"])
        record = self.s.fake.audit.records[0]
        self.assertEqual(body["audit_id"], record.id)
        self.assertEqual(
            (record.actor, record.route, dict(record.params), record.reason),
            ("token:ops", "POST /api/v1/members", {"address": "n4:10008"}, "grow"),
        )
        self.assertEqual(self.s.events[-1]["audit_id"], record.id)

    def test_remove(self):
        """
        An admin removes a member.
        """
        status, body = self.s.json("DELETE", "/api/v1/members/n3:10008?reason=dead", token=OPS)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["removed"], "n3:10008")
        self.assertNotIn("n3:10008", body["members"])
        self.assertEqual(self.s.fake.audit.records[0].reason, "dead")

    def test_admin_only(self):
        """
        Without a token: 401; with a lesser role: 403 naming admin; nothing
        changes.
        """
        self.s.fake.learners.add("n4:10008")
        status, body = self.s.json("POST", "/api/v1/members", {"address": "n4:10008"})
        self.assertEqual((status, body["error"]["code"]), (401, "unauthenticated"))
        for token in (DEPLOY, SRE):
            status, body = self.s.json("DELETE", "/api/v1/members/n3:10008", token=token)
            self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
            self.assertIn("admin", body["error"]["message"])
        self.assertEqual(len(self.s.fake.members), 3)

    def test_no_tokens(self):
        """
        Without C{ControlTokens} nothing needs a token (freno's model).
        """
        s = Members(self, tokens=())
        self.assertEqual(s.json("DELETE", "/api/v1/members/n3:10008")[0], 200)

    def test_bad_input(self):
        """
        Bad bodies and addresses: 400 naming the field; nothing changes.
        """
        for body in ({}, {"address": ""}, {"address": 5}, {"address": "no-port"},
                     {"address": "h:99999"}, {"address": "h:1", "extra": 1}, b"not json", [1]):
            status, answer = self.s.json("POST", "/api/v1/members", body, OPS)
            self.assertEqual(status, 400, (body, answer))
            self.assertEqual(answer["error"]["code"], "invalid_parameter")
        status, answer = self.s.json("DELETE", "/api/v1/members/no-port", token=OPS)
        self.assertEqual((status, answer["error"]["field"]), (400, "address"))
        self.assertEqual(len(self.s.fake.members), 3)
        self.assertEqual(len(self.s.fake.audit), 0)

    def test_conflicts(self):
        """
        Refusals are 409 (404 for a removal of a non-member) with a stable
        code; a follower names the leader.
        """
        cases = [
            ("POST", "/api/v1/members", {"address": "n4:10008"}, 409, "learner_not_ready"),
            ("POST", "/api/v1/members", {"address": "n2:10008"}, 409, "already_member"),
            ("DELETE", "/api/v1/members/n1:10008", None, 409, "is_leader"),
            ("DELETE", "/api/v1/members/n9:10008", None, 404, "not_member"),
        ]
        for method, path, body, status, code in cases:
            answer = self.s.json(method, path, body, OPS)
            self.assertEqual((answer[0], answer[1]["error"]["code"]), (status, code), path)
        self.s.fake.pending = "add n5:10008"
        status, body = self.s.json("DELETE", "/api/v1/members/n2:10008", token=OPS)
        self.assertEqual((status, body["error"]["code"]), (409, "change_in_progress"))
        self.s.fake.pending = None
        self.s.fake.leader = "n2:10008"
        status, body = self.s.json("DELETE", "/api/v1/members/n3:10008", token=OPS)
        self.assertEqual((status, body["error"]["code"], body["error"]["leader"]), (409, "not_leader", "n2:10008"))
        self.assertEqual(len(self.s.fake.members), 3)

    def test_commit_timeout(self):
        """
        A change whose commit timed out is a 503 C{commit_timeout} with
        C{Retry-After}.
        """
        self.s.fake.fail_with = CommitTimeoutError("not committed within 5s")
        status, body = self.s.json("DELETE", "/api/v1/members/n3:10008", token=OPS)
        self.assertEqual((status, body["error"]["code"]), (503, "commit_timeout"))

    def test_unsupported_backend(self):
        """
        On a backend without membership changes (here the site over a
        local consensus) every route answers 409 C{unsupported}.
        """
        s = ControlService(self)
        for method, path in (("GET", "/api/v1/members"), ("DELETE", "/api/v1/members/a:1")):
            status, body = s.json(method, path, token=OPS)
            self.assertEqual((status, body["error"]["code"]), (409, "unsupported"))
        self.assertEqual(s.json("GET", "/api/v1/status")[0], 200)

    def test_routes(self):
        """
        The routes, as the OpenAPI document lists them.
        """
        self.assertEqual(
            list(member_routes()),
            [("DELETE", "/api/v1/members/{address}"), ("GET", "/api/v1/members"), ("POST", "/api/v1/members")],
        )
