"""
Tests for L{freno.http.auth} and for the tokens, roles and
C{AllowGetMutations} on freno's GET mutation routes (L{freno.http.api}),
in memory through the whole site.
"""

from __future__ import annotations

import json

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from freno.config.model import ClusterSettings, Config, ControlToken, MySQLStoreSettings
from freno.consensus.local import LocalConsensus
from freno.http import auth, control
from freno.http.auth import Authenticator, Forbidden, Unauthenticated, bearer_token
from freno.http.site import build_site
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.registry import Registry

START = 1_700_000_000.0
OPS = "ops-token-0123456789abcdef"
DEPLOY = "deploy-token-0123456789abcdef"
SRE = "sre-token-0123456789abcdef"
AUDITOR = "auditor-token-0123456789abcdef"
TOKENS = (
    ControlToken("ops", OPS, "admin"),
    ControlToken("deploy", DEPLOY, "throttle"),
    ControlToken("sre", SRE, "operator"),
    ControlToken("auditor", AUDITOR, "audit"),
)


class ControlService:
    """
    A whole site over a L{LocalConsensus} with one cluster C{main}
    (threshold 1, value 0.5), configurable control settings, and the
    structured audit log captured in L{events}.
    """

    def __init__(self, testcase, tokens=(), allow_get=True, restrict=False, audit_log_size=10_000):
        self.testcase = testcase
        self.clock = Clock()
        self.clock.advance(START)
        clusters = {"main": ClusterSettings(name="main", throttle_threshold=1.0)}
        self.config = Config(
            mysql=MySQLStoreSettings(clusters=clusters),
            control_tokens=tuple(tokens),
            allow_get_mutations=allow_get,
            restrict_audit_log=restrict,
        )
        self.metrics = AggregatedMetrics(self.clock, {"main": 1.0}, 5.0)
        self.metrics.set("main", ClusterMetric(0.5, None, START))
        self.consensus = LocalConsensus(self.clock, audit_log_size=audit_log_size)
        self.site = build_site(
            clock=self.clock,
            config=self.config,
            consensus=self.consensus,
            metrics=self.metrics,
            registry=Registry(),
            hostname="node1",
            random=lambda: 0.5,
            hosts=lambda name: 3,
        )
        self.treq = StubTreq(self.site.resource)
        self.events = []
        testcase.patch(control, "AUDIT_LOG", Logger(namespace="freno.audit", observer=self.events.append))

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        """
        One request; C{(status, headers, body bytes)}.
        """
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = [f"Bearer {token}"]
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", ["application/json"])
        d = self.treq.request(method, "http://freno" + path, data=data, headers=all_headers)
        response = self.testcase.successResultOf(d)
        content = self.testcase.successResultOf(response.content())
        return response.code, response.headers, content

    def json(self, method, path, body=None, token=None, **kwargs):
        """
        One request; C{(status, parsed JSON body)}.
        """
        code, _, content = self.request(method, path, body, token, **kwargs)
        return code, json.loads(content) if content else None

    def audit(self):
        """
        The replicated audit log's records.
        """
        return list(self.consensus.state.audit.records)

    def snapshot(self):
        """
        The replicated state, for "nothing changed" checks.
        """
        return json.dumps(self.consensus.state.snapshot(), sort_keys=True)


#: Every freno GET mutation route: path, permission it needs.
FRENO_MUTATIONS = [
    ("/throttle-app/a", "throttle"),
    ("/throttle-app/a/ratio/0.5", "throttle"),
    ("/throttle-app/a/ttl/30", "throttle"),
    ("/throttle-app/a/ttl/30/ratio/0.5", "throttle"),
    ("/throttle-app/a?store_name=main", "throttle"),
    ("/unthrottle-app/a", "throttle"),
    ("/skip-host/h1", "skip"),
    ("/skip-host/h1/ttl/30", "skip"),
    ("/recover-host/h1", "skip"),
]


class AuthenticatorTests(SynchronousTestCase):
    """
    L{Authenticator}: constant-time matching, callers, permissions.
    """

    def test_constant_time(self):
        """
        A presented token is compared with C{hmac.compare_digest} against
        every configured token's digest, equal-length digests, whether it
        matches the first, the last or none.
        """
        calls = []
        real = auth.hmac.compare_digest

        def counting(a, b):
            calls.append((len(a), len(b)))
            return real(a, b)

        self.patch(auth.hmac, "compare_digest", counting)
        authenticator = Authenticator(TOKENS)
        for presented, expected in ((OPS, "ops"), (AUDITOR, "auditor"), ("nope", None), ("", None)):
            del calls[:]
            token = authenticator.match(presented)
            self.assertEqual(token.name if token else None, expected)
            self.assertEqual(calls, [(32, 32)] * len(TOKENS))

    def test_bearer(self):
        """
        Only C{Authorization: Bearer <token>} carries a token.
        """
        for header, expected in (
            (b"Bearer abc", "abc"),
            (b"bearer   abc  ", "abc"),
            (b"Basic abc", None),
            (b"Bearer ", None),
            (b"abc", None),
        ):
            request = DummyRequest(b"/")
            request.requestHeaders.setRawHeaders(b"authorization", [header])
            self.assertEqual(bearer_token(request), expected, header)
        self.assertIsNone(bearer_token(DummyRequest(b"/")))

    def test_require(self):
        """
        Missing and unknown tokens are 401, a role lacking the permission
        403 naming the role needed; roles are cumulative; audit is separate.
        """
        authenticator = Authenticator(TOKENS)

        def request(token=None):
            r = DummyRequest(b"/")
            if token is not None:
                r.requestHeaders.setRawHeaders(b"authorization", [b"Bearer " + token.encode()])
            return r

        self.assertRaises(Unauthenticated, authenticator.require, request(), "throttle")
        self.assertRaises(Unauthenticated, authenticator.require, request("wrong"), "throttle")
        self.assertEqual(authenticator.require(request(DEPLOY), "throttle").actor, "token:deploy")
        e = self.assertRaises(Forbidden, authenticator.require, request(DEPLOY), "skip")
        self.assertIn("needs role operator or admin", e.message)
        self.assertEqual(e.actor, "token:deploy")
        self.assertEqual(authenticator.require(request(SRE), "policy").role, "operator")
        self.assertRaises(Forbidden, authenticator.require, request(SRE), "admin")
        self.assertRaises(Forbidden, authenticator.require, request(SRE), "audit")
        self.assertEqual(authenticator.require(request(AUDITOR), "audit").token, "auditor")
        self.assertRaises(Forbidden, authenticator.require, request(AUDITOR), "throttle")
        for permission in ("throttle", "skip", "policy", "admin", "audit"):
            authenticator.require(request(OPS), permission)

    def test_without_tokens(self):
        """
        Without tokens everything is allowed and the actor is the remote
        address, with its X-Forwarded-For.
        """
        authenticator = Authenticator()
        self.assertFalse(authenticator.enabled)
        r = DummyRequest(b"/")
        self.assertEqual(authenticator.identify(r).actor, "remote:unknown")
        r.client = IPv4Address("TCP", "192.168.1.1", 4321)
        r.requestHeaders.setRawHeaders(b"x-forwarded-for", [b"10.1.2.3, 10.0.0.1"])
        r.requestHeaders.setRawHeaders(b"authorization", [b"Bearer anything"])
        caller = authenticator.require(r, "admin")
        self.assertEqual(caller.actor, "remote:192.168.1.1 (X-Forwarded-For: 10.1.2.3, 10.0.0.1)")
        r.requestHeaders.setRawHeaders(b"x-forwarded-for", [b"x" * 500])
        self.assertLess(len(authenticator.identify(r).actor), 260)


class FrenoRouteAuthTests(SynchronousTestCase):
    """
    freno's GET mutation routes with C{ControlTokens} configured.
    """

    def setUp(self):
        self.s = ControlService(self, TOKENS)

    def test_without_token_nothing_changes(self):
        """
        Every mutation route, GET and HEAD, without a token or with an
        unknown one: 401 with a JSON body (GET) and C{WWW-Authenticate};
        nothing changes, nothing is replicated, the refusal is logged.
        """
        self.s.consensus.state.skipped["h1"] = START + 600
        self.s.consensus.state.apps["a"] = self.s.consensus.state.apps.get("a") or _throttle()
        before = self.s.snapshot()
        for path, _ in FRENO_MUTATIONS:
            for token in (None, "wrong-token-0123456789"):
                code, headers, body = self.s.request("GET", path, token=token)
                self.assertEqual(code, 401, path)
                self.assertEqual(headers.getRawHeaders("www-authenticate"), ['Bearer realm="freno"'])
                parsed = json.loads(body)
                self.assertEqual(parsed["StatusCode"], 401)
                self.assertEqual(parsed["error"]["code"], "unauthenticated")
                code, _, body = self.s.request("HEAD", path, token=token)
                self.assertEqual((code, body), (401, b""))
        self.assertEqual(self.s.snapshot(), before)
        self.assertEqual(self.s.audit(), [])
        refused = [e for e in self.s.events if e.get("status") == 401]
        self.assertEqual(len(refused), 4 * len(FRENO_MUTATIONS))
        self.assertTrue(all(e["actor"].startswith("remote:") for e in refused))

    def test_wrong_role(self):
        """
        A throttle-role token may throttle but not skip or recover: 403,
        naming the role needed; nothing changes.
        """
        before = self.s.snapshot()
        for path in ("/skip-host/h1", "/skip-host/h1/ttl/5", "/recover-host/h1"):
            code, body = self.s.json("GET", path, token=DEPLOY)
            self.assertEqual(code, 403)
            self.assertEqual(body["error"]["code"], "forbidden")
            self.assertIn("operator or admin", body["error"]["message"])
            self.assertEqual(self.s.request("HEAD", path, token=AUDITOR)[0], 403)
        self.assertEqual(self.s.snapshot(), before)

    def test_with_token(self):
        """
        With a token allowing it, every mutation route works on GET and
        HEAD, and each command is audited with the token's name.
        """
        for path, permission in FRENO_MUTATIONS:
            token = DEPLOY if permission == "throttle" else SRE
            code, body = self.s.json("GET", path + ("&" if "?" in path else "?") + "reason=r1", token=token)
            self.assertEqual((code, body), (200, {"StatusCode": 200, "Message": "OK"}), path)
        actors = {r.actor for r in self.s.audit()}
        self.assertEqual(actors, {"token:deploy", "token:sre"})
        routes = [r.route for r in self.s.audit()]
        self.assertIn("GET /throttle-app/a/ttl/30/ratio/0.5", routes)
        self.assertEqual({r.reason for r in self.s.audit()}, {"r1"})
        self.assertEqual(self.s.request("HEAD", "/throttle-app/z", token=OPS)[:1], (200,))
        self.assertIn("z", self.s.consensus.throttled_apps())

    def test_reads_and_checks_stay_open(self):
        """
        Read-only routes and every check route need no token.
        """
        for path in (
            "/throttled-apps", "/skipped-hosts", "/lb-check", "/help", "/check/a/mysql/main",
            "/check-read/a/mysql/main/2", "/api/v1/throttles", "/api/v1/status", "/api/v1/audit",
        ):
            self.assertEqual(self.s.request("GET", path)[0], 200, path)

    def test_token_never_logged(self):
        """
        No log event, accepted or refused, carries a token.
        """
        self.s.request("GET", "/throttle-app/a", token=OPS)
        self.s.request("GET", "/skip-host/h", token=DEPLOY)
        self.s.request("GET", "/skip-host/h", token="wrong-token-0123456789")
        self.assertGreater(len(self.s.events), 2)
        text = repr(self.s.events)
        for token in (OPS, DEPLOY, "wrong-token-0123456789"):
            self.assertNotIn(token, text)

    def test_unknown_key_still_commits(self):
        """
        Unthrottling or recovering something this node does not know still
        commits the command (D6: another node may have it) and so is
        audited, as an unthrottle and a recover that changed nothing here.
        """
        self.assertEqual(self.s.json("GET", "/unthrottle-app/nobody", token=OPS)[0], 200)
        self.assertEqual(self.s.json("GET", "/recover-host/nowhere", token=OPS)[0], 200)
        self.assertEqual(
            [r.route for r in self.s.audit()], ["GET /unthrottle-app/nobody", "GET /recover-host/nowhere"]
        )

    def test_bad_reason(self):
        """
        A reason longer than 1024 characters is a 400; nothing changes.
        """
        code, body = self.s.json("GET", "/throttle-app/a?reason=" + "x" * 1025, token=OPS)
        self.assertEqual(code, 400)
        self.assertIn("reason", body["Message"])
        self.assertEqual(self.s.audit(), [])


def _throttle():
    from freno.consensus.state import AppThrottle

    return AppThrottle(None, 1.0)


class GetMutationsDisabledTests(SynchronousTestCase):
    """
    C{"AllowGetMutations": false}.
    """

    def test_405_naming_the_rest_route(self):
        """
        Every freno mutation route answers 405, even with a valid token,
        naming the REST route to use; nothing changes; reads still work.
        """
        s = ControlService(self, TOKENS, allow_get=False)
        before = s.snapshot()
        for path, _ in FRENO_MUTATIONS:
            code, headers, body = s.request("GET", path, token=OPS)
            self.assertEqual(code, 405, path)
            self.assertIn("/api/v1/", json.loads(body)["error"]["message"])
            self.assertEqual(s.request("HEAD", path, token=OPS)[0], 405)
        self.assertIn(
            "POST /api/v1/throttles", s.json("GET", "/throttle-app/a")[1]["Message"]
        )
        self.assertIn("DELETE /api/v1/skips/{host}", s.json("GET", "/recover-host/h")[1]["Message"])
        self.assertEqual(s.snapshot(), before)
        self.assertEqual(s.request("GET", "/throttled-apps")[0], 200)
        code, body = s.json("POST", "/api/v1/throttles", {"app": "a"}, token=OPS)
        self.assertEqual(code, 200)

    def test_without_tokens(self):
        """
        It applies without tokens too.
        """
        s = ControlService(self, allow_get=False)
        self.assertEqual(s.request("GET", "/throttle-app/a")[0], 405)
        self.assertEqual(s.json("POST", "/api/v1/throttles", {"app": "a"})[0], 200)


class NoTokensTests(SynchronousTestCase):
    """
    Without C{ControlTokens} (the default) nothing needs a token, and the
    actor is the remote address.
    """

    def test_open(self):
        """
        freno's routes work as freno's; the audit log names the caller's
        address and its X-Forwarded-For.
        """
        s = ControlService(self)
        code, _, _ = s.request("GET", "/throttle-app/a", headers={"X-Forwarded-For": ["10.9.8.7"]})
        self.assertEqual(code, 200)
        self.assertEqual(s.audit()[0].actor, "remote:127.0.0.1 (X-Forwarded-For: 10.9.8.7)")
        committed = [e for e in s.events if e.get("audit_id") == 1]
        self.assertEqual(len(committed), 1)
        self.assertEqual(committed[0]["outcome"], "applied")
        self.assertEqual(committed[0]["route"], "GET /throttle-app/a")
