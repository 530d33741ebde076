"""
Tests for C{POST /api/v1/leadership/transfer}
(L{freno.http.rest_leadership}) through the whole site, in memory: a
L{FakeTransferConsensus} whose hand-offs the test ends, tokens, the
replicated audit log, and the answers against C{docs/openapi.json}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.consensus.interface import IConsensusService, NotLeaderError
from freno.consensus.transfer import (
    NO_TARGET,
    TIMED_OUT,
    TRANSFERRED,
    FakeTransferConsensus,
    ILeadershipTransfer,
)
from test.unit import test_http_auth
from test.unit.test_http_auth import DEPLOY, OPS, SRE, TOKENS, ControlService
from test.unit.test_http_openapi import load, validate

URL = "/api/v1/leadership/transfer"


class TransferTests(SynchronousTestCase):
    """
    The transfer route.
    """

    def service(self, tokens=TOKENS, fake=True) -> ControlService:
        if fake:
            self.patch(test_http_auth, "LocalConsensus", FakeTransferConsensus)
        return ControlService(self, tokens)

    def pending(self, s, method="POST", body=None, token=OPS, headers=None):
        """
        Start a request that waits for the hand-off; returns its Deferred.
        """
        import json

        all_headers = dict(headers or {})
        all_headers["Authorization"] = [f"Bearer {token}"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = ["application/json"]
        return s.treq.request(method, "http://freno" + URL, data=data, headers=all_headers)

    def answer(self, d):
        import json

        response = self.successResultOf(d)
        return response.code, json.loads(self.successResultOf(response.content()))

    def schema(self, status):
        doc = load()
        item = doc["paths"][URL]["post"]["responses"][str(status)]
        return doc, item["content"]["application/json"]["schema"]

    def test_fake(self):
        """
        The fake provides both interfaces.
        """
        s = self.service()
        self.assertTrue(verifyObject(ILeadershipTransfer, s.consensus))
        self.assertTrue(verifyObject(IConsensusService, s.consensus))

    def test_transfer_to_the_best(self):
        """
        With no body, the best follower is asked for; the answer waits for
        the hand-off, names the new leader and the audit record, which says
        who asked and why.
        """
        s = self.service()
        d = self.pending(s)
        self.assertNoResult(d)
        self.assertEqual(s.consensus.requests, [None])
        s.consensus.finish(TRANSFERRED, "b:2", 0.042)
        s.treq.flush()
        code, body = self.answer(d)
        self.assertEqual(code, 200)
        self.assertEqual(body["to"], "b:2")
        self.assertEqual(body["from"], "local")
        self.assertEqual(body["seconds"], 0.042)
        validate(*self.schema(200), body)
        records = s.audit()
        self.assertEqual(records[-1].id, body["audit_id"])
        self.assertEqual(records[-1].actor, "token:ops")
        self.assertEqual(records[-1].route, "POST /api/v1/leadership/transfer")

    def test_transfer_to_a_member(self):
        """
        C{to} names the target; the reason is audited.
        """
        s = self.service()
        d = self.pending(s, body={"to": "c:3", "reason": "kernel upgrade"})
        self.assertEqual(s.consensus.requests, ["c:3"])
        s.consensus.finish(TRANSFERRED)
        s.treq.flush()
        code, body = self.answer(d)
        self.assertEqual((code, body["to"]), (200, "c:3"))
        record = s.audit()[-1]
        self.assertEqual(record.reason, "kernel upgrade")
        self.assertEqual(record.params, {"to": "c:3"})

    def test_unknown_member(self):
        """
        An unknown member is a 400 naming C{to}; nothing is recorded.
        """
        s = self.service()
        before = len(s.audit())
        code, body = s.json("POST", URL, {"to": "z:9"}, token=OPS)
        self.assertEqual((code, body["error"]["code"], body["error"]["field"]), (400, "invalid_parameter", "to"))
        self.assertEqual(len(s.audit()), before)
        self.assertEqual(s.consensus.requests, [])
        validate(*self.schema(400), body)

    def test_bad_bodies(self):
        """
        Unknown fields and wrong types are 400s; nothing starts.
        """
        s = self.service()
        for body in ({"target": "b:2"}, {"to": 3}, {"to": ""}, {"reason": 1}):
            code, answer = s.json("POST", URL, body, token=OPS)
            self.assertEqual(code, 400, body)
            validate(*self.schema(400), answer)
        self.assertEqual(s.consensus.requests, [])

    def test_admin_only(self):
        """
        Without a token: 401; with a role other than admin: 403; nothing
        starts.
        """
        s = self.service()
        code, body = s.json("POST", URL, {})
        self.assertEqual(code, 401)
        validate(*self.schema(401), body)
        for token in (DEPLOY, SRE):
            code, body = s.json("POST", URL, {}, token=token)
            self.assertEqual((code, body["error"]["code"]), (403, "forbidden"))
            validate(*self.schema(403), body)
        self.assertEqual(s.consensus.requests, [])

    def test_not_leader(self):
        """
        A follower answers 409 C{not_leader}; nothing is recorded.
        """
        s = self.service()
        s.consensus.set_leader(False)
        before = len(s.audit())
        code, body = s.json("POST", URL, {}, token=OPS)
        self.assertEqual((code, body["error"]["code"]), (409, "not_leader"))
        validate(*self.schema(409), body)
        self.assertEqual(len(s.audit()), before)

    def test_in_progress(self):
        """
        A second transfer while one runs is a 409 C{in_progress}.
        """
        s = self.service()
        d = self.pending(s)
        code, body = s.json("POST", URL, {}, token=OPS)
        self.assertEqual((code, body["error"]["code"]), (409, "in_progress"))
        s.consensus.finish(TRANSFERRED)
        s.treq.flush()
        self.assertEqual(self.answer(d)[0], 200)

    def test_unsupported(self):
        """
        A backend that cannot hand off answers 409 C{unsupported}.
        """
        s = self.service(fake=False)
        code, body = s.json("POST", URL, {}, token=OPS)
        self.assertEqual((code, body["error"]["code"]), (409, "unsupported"))

    def test_impossible(self):
        """
        A hand-off that found no up-to-date follower, or saw no new leader,
        is a 503 with C{Retry-After}, naming the audit record.
        """
        s = self.service()
        for outcome in (NO_TARGET, TIMED_OUT):
            d = self.pending(s)
            s.consensus.finish(outcome)
            s.treq.flush()
            response = self.successResultOf(d)
            self.assertEqual(response.code, 503)
            self.assertEqual(response.headers.getRawHeaders(b"retry-after"), [b"1"])
            import json

            body = json.loads(self.successResultOf(response.content()))
            self.assertEqual(body["error"]["code"], outcome)
            self.assertIn("audit", body["error"]["message"])
            validate(*self.schema(503), body)

    def test_audit_not_committed(self):
        """
        When the audit record cannot be committed, nothing starts: 503.
        """
        s = self.service()
        s.consensus.reject_commands = NotLeaderError("no raft leader")
        code, body = s.json("POST", URL, {}, token=OPS)
        self.assertEqual((code, body["error"]["code"]), (503, "not_leader"))
        self.assertEqual(s.consensus.requests, [])

    def test_other_methods(self):
        """
        GET is a 405 with C{Allow}; an unknown leadership path a 404.
        """
        s = self.service()
        code, headers, _ = s.request("GET", URL)
        self.assertEqual(code, 405)
        self.assertIn(b"POST", headers.getRawHeaders(b"allow")[0])
        code, body = s.json("GET", "/api/v1/leadership/nope")
        self.assertEqual((code, body["error"]["code"]), (404, "not_found"))
