"""
The client library and C{freno-cli} on the control plane's REST API
(C{docs/api.md}): a raft group of three real C{twistd freno} processes with
C{ControlTokens}, probing a MariaDB sandbox (one primary, constant metric
0.5 against a threshold of 1).

Skipped when this checkout has no REST API (C{freno.http.rest}).

[slow, real processes: about half a minute] One group serves the class.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from freno.client import FrenoClient
from freno.client.result import FrenoAPIError
from freno.sandbox.processes import wait_for
from test.support import SharedGroupMixin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPS = "ops-client-0123456789abcdef"
DEPLOY = "deploy-client-0123456789abcdef"
TOKENS = {"ops": {"Token": OPS, "Role": "admin"}, "deploy": {"Token": DEPLOY, "Role": "throttle"}}


class ClientControlProcessTests(SharedGroupMixin, SynchronousTestCase):
    """
    [slow, real processes] The client with tokens against a group with
    C{ControlTokens}.
    """

    sandbox_kwargs = {"replicas": 0}

    def group_store(self) -> dict:
        return {
            "User": self.sandbox.user,
            "Password": self.sandbox.password,
            "MetricQuery": "select 0.5",
            "ThrottleThreshold": 1.0,
            "Clusters": {"main": {"StaticHostsSettings": {"Hosts": [self.sandbox.primary.hostport]}}},
        }

    def group_extra_config(self) -> dict:
        return {"ControlTokens": TOKENS}

    def setUp(self) -> None:
        try:
            import freno.http.rest  # noqa: F401
        except ImportError:
            raise SkipTest("this checkout has no REST API (freno.http.rest)") from None
        super().setUp()
        self.urls = [node.url for node in self.group.nodes]
        self.ops = FrenoClient(self.urls, token=OPS)
        self.addCleanup(self.ops.close)
        wait_for(lambda: self.ops.check("setup", "main").allowed, 30, what="/check 200 from the group")

    def cli(self, *argv: str, token: str = "") -> Tuple[int, str, str]:
        env = dict(os.environ, PYTHONPATH=ROOT, FRENO_URL=",".join(self.urls), FRENO_TOKEN=token)
        done = subprocess.run([sys.executable, "-m", "freno.client.cli", *argv],
                              capture_output=True, timeout=60, env=env)
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    def test_rest_cycle(self) -> None:
        """
        With a token, mutations go through the REST API: the answer carries
        the entry and its audit id; the check answers 417 at once; listings
        show actor and reason; removing twice says nothing was left; the
        audit log holds every step in order.
        """
        now = time.time()
        result = self.ops.throttle("rest-app", ttl="30m", reason="client test")
        self.assertEqual(result.via, "rest")
        self.assertIsInstance(result.audit_id, int)
        throttle = result.body["throttle"]
        self.assertEqual((throttle["key"], throttle["actor"], throttle["reason"]), ("rest-app", "token:ops", "client test"))
        self.assertLess(abs(throttle["expires_at_unix"] - (now + 1800)), 60)
        self.assertEqual(self.ops.check("rest-app", "main").status, 417)
        [listed] = [t for t in self.ops.throttles() if t.key == "rest-app"]
        self.assertEqual((listed.actor, listed.reason, listed.audit_id), ("token:ops", "client test", result.audit_id))
        self.assertTrue(self.ops.unthrottle("rest-app", reason="done").removed)
        self.assertFalse(self.ops.unthrottle("rest-app").removed)
        self.assertTrue(self.ops.check("rest-app", "main").allowed)
        skipped = self.ops.skip("db-rest", ttl="90s", reason="maintenance")
        self.assertTrue(self.ops.recover("db-rest").removed)
        page = self.ops.audit(since=result.audit_id - 1)
        routes = [(r["route"], r["reason"]) for r in page["records"]]
        # The second removal removed nothing but is committed and audited (D6).
        self.assertEqual(routes[:5], [
            ("POST /api/v1/throttles", "client test"),
            ("DELETE /api/v1/throttles/rest-app", "done"),
            ("DELETE /api/v1/throttles/rest-app", None),
            ("POST /api/v1/skips", "maintenance"),
            ("DELETE /api/v1/skips/db-rest", None),
        ])
        self.assertEqual(page["records"][3]["id"], skipped.audit_id)

    def test_refusals(self) -> None:
        """
        A token whose role may not skip gets 403 naming the role; no token or
        a wrong one on the REST API gets 401; nothing changes.
        """
        deploy = FrenoClient(self.urls, token=DEPLOY)
        self.addCleanup(deploy.close)
        error = self.assertRaises(FrenoAPIError, deploy.skip, "db-x")
        self.assertEqual((error.status, error.code), (403, "forbidden"))
        self.assertIn("operator", str(error))
        for client in (FrenoClient(self.urls, api="rest"), FrenoClient(self.urls, token="wrong-token-0123456789")):
            self.addCleanup(client.close)
            error = self.assertRaises(FrenoAPIError, client.throttle, "nope")
            self.assertEqual((error.status, error.code), (401, "unauthenticated"))
        plain = FrenoClient(self.urls)
        self.addCleanup(plain.close)
        error = self.assertRaises(FrenoAPIError, plain.throttle, "nope")
        self.assertEqual(error.status, 401)  # freno's route, no token
        self.assertNotIn("nope", [t.key for t in self.ops.throttles()])
        self.assertNotIn("db-x", [s.host for s in self.ops.skips()])

    def test_cli(self) -> None:
        """
        C{freno-cli} takes the token from C{$FRENO_TOKEN}; refusals exit 2;
        status comes from C{/api/v1/status}.
        """
        code, out, err = self.cli("throttle", "cli-rest", "--ttl", "10m", "--reason", "cli", token=OPS)
        self.assertEqual(code, 0, err)
        self.assertIn("REST API", out)
        self.assertEqual(self.cli("check", "cli-rest", "main")[0], 1)
        code, out, _ = self.cli("list", token=OPS)
        self.assertIn("token:ops", out)
        code, _, err = self.cli("skip", "db1", token=DEPLOY)
        self.assertEqual(code, 2)
        self.assertIn("403", err)
        self.assertEqual(self.cli("unthrottle", "cli-rest", token=OPS)[0], 0)
        code, out, _ = self.cli("audit", "--json")
        self.assertIn("POST /api/v1/throttles", [r["route"] for r in json.loads(out)["records"]])
        code, out, err = self.cli("status", "--json")
        status = json.loads(out)
        self.assertEqual((code, status["source"], status["is_leader"], len(status["members"])), (0, "api", True, 3))
        self.assertEqual(status["clusters"][0]["threshold"], 1.0)
