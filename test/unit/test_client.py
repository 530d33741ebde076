"""
L{FrenoClient} against in-memory fake nodes (L{freno.client.fake}) playing
an older freno (status and GET body only) and a newer one (headers, REST
API, C{/explain}); and that C{freno.client} needs only the standard library.
"""

from __future__ import annotations

import ast
import os
import random
import sys

from twisted.trial.unittest import SynchronousTestCase

import freno.client
from freno.client import FrenoClient
from freno.client.fake import FakeFreno, FakeGroupState, FakeTransport
from freno.client.result import (
    ERROR,
    THROTTLED,
    FrenoAPIError,
    FrenoUnavailable,
    NotAllowed,
    RouteNotServed,
)

A, B, C = "http://a:1", "http://b:2", "http://c:3"
PACKAGE = os.path.dirname(os.path.abspath(freno.client.__file__))


class Now:
    """
    A clock for the fake group, the client's clocks and its sleep.
    """

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class Group:
    """
    Three fake nodes (A leads) and a client on all of them.
    """

    def __init__(self, new: bool = True, token=None, **client_args) -> None:
        self.now = Now()
        self.state = FakeGroupState(self.now)
        self.state.leader = "a"
        self.state.clusters["main"] = (0.25, 1.0)
        self.nodes = {url: FakeFreno(url[7], self.state, headers=new, rest=new) for url in (A, B, C)}
        self.transport = FakeTransport(self.nodes)
        self.client = FrenoClient(
            [A, B, C], token=token, transport=self.transport, clock=self.now, wall=self.now,
            sleep=self.now.sleep, rng=random.Random(3), **client_args
        )


class CheckTests(SynchronousTestCase):
    """
    Checks against both kinds of server.
    """

    def test_old_server(self):
        """
        An older freno: value, threshold and reason from the body; no age.
        """
        g = Group(new=False)
        result = g.client.check("app", "main")
        self.assertEqual((result.allowed, result.value, result.threshold, result.reason), (True, 0.25, 1.0, "OK"))
        self.assertIsNone(result.data_age_ms)
        g.state.clusters["main"] = (3.0, 1.0)
        result = g.client.check("app", "main")
        self.assertEqual((result.kind, result.status, result.reason), (THROTTLED, 429, "Threshold exceeded"))

    def test_new_server(self):
        """
        A newer freno: reason, data age, store and Retry-After from headers.
        """
        g = Group()
        g.state.clusters["main"] = (3.0, 1.0)
        result = g.client.check("app", "main")
        self.assertEqual((result.reason, result.data_age_ms, result.retry_after, result.store),
                         ("lag 3 on main > 1", 40, 1.5, "main"))
        self.assertEqual(result.leader, {"node": "a", "leader": True, "term": 1})

    def test_statuses(self):
        """
        417 for a throttled app is throttled; an unknown cluster (404) and a
        probe error (500) are errors; none is allowed.
        """
        g = Group()
        g.state.throttles["app"] = (None, 1.0)
        self.assertEqual(g.client.check("app", "main").status, 417)
        g.state.throttles.clear()
        self.assertEqual(g.client.check("app", "nope").kind, ERROR)
        g.state.clusters["main"] = "dial tcp 127.0.0.1:1: connection refused"
        result = g.client.check("app", "main")
        self.assertEqual((result.status, result.kind, result.reason),
                         (500, ERROR, "dial tcp 127.0.0.1:1: connection refused"))

    def test_read_check_and_low_priority(self):
        """
        C{threshold} asks C{/check-read}; C{low_priority} adds C{?p=low}.
        """
        g = Group()
        self.assertEqual(g.client.check("app", "main", threshold=0.1).status, 429)
        g.client.check("app", "main", low_priority=True)
        self.assertEqual(g.transport.sent[-1][2], "/check/app/mysql/main?p=low")

    def test_multi_store(self):
        """
        Several clusters: the first that refuses decides.
        """
        g = Group()
        g.state.clusters["other"] = (5.0, 1.0)
        result = g.client.check("app", ["main", "other"])
        self.assertEqual((result.status, result.store), (429, "other"))

    def test_leader_change(self):
        """
        After a leader change the client finds the new leader and sticks to it.
        """
        g = Group()
        self.assertEqual(g.client.check("app", "main").node, A)
        g.state.leader = "c"
        self.assertEqual(g.client.check("app", "main").node, C)
        before = len(g.transport.sent)
        g.client.check("app", "main")
        self.assertEqual([s[0] for s in g.transport.sent[before:]], [C])

    def test_timeout_passed(self):
        """
        Every request carries the client's timeout.
        """
        g = Group(timeout=0.75)
        g.client.check("app", "main")
        self.assertEqual({s[3] for s in g.transport.sent}, {0.75})
        self.assertRaises(ValueError, FrenoClient, A, timeout=0)

    def test_wait_failover(self):
        """
        C{wait_until_allowed} rides through the leader dying and a new one
        being elected, and returns the new leader's 200.
        """
        g = Group()
        g.state.clusters["main"] = (3.0, 1.0)
        calls = []

        def world(url, method, target):
            calls.append(url)
            if len(calls) == 4:  # the leader dies, nobody leads for a while
                g.transport.down[A] = "connection refused"
                g.state.leader = None
            if len(calls) == 12:  # B is elected and the lag is gone
                g.state.leader = "b"
                g.state.clusters["main"] = (0.1, 1.0)

        g.transport.on_request = world
        result = g.client.wait_until_allowed("app", "main", max_wait=120, poll=0.5, cap=2)
        self.assertEqual((result.allowed, result.node), (True, B))

    def test_wait_deadline(self):
        """
        C{wait_until_allowed} raises L{NotAllowed} at its deadline.
        """
        g = Group()
        g.state.clusters["main"] = (3.0, 1.0)
        start = g.now()
        error = self.assertRaises(NotAllowed, g.client.wait_until_allowed, "app", "main", max_wait=20)
        self.assertEqual(error.result.status, 429)
        self.assertLessEqual(g.now() - start, 20.0001)

    def test_fail_open(self):
        """
        With every node down the client fails closed, and open only after
        C{fail_open_after}.
        """
        g = Group(fail_open_after=60)
        for url in (A, B, C):
            g.transport.down[url] = "timed out after 2s"
        self.assertFalse(g.client.check("app", "main").allowed)
        g.now.t += 61
        result = g.client.check("app", "main")
        self.assertTrue(result.allowed and result.failed_open)

    def test_close(self):
        """
        L{FrenoClient.close} and the context manager close the transport.
        """
        g = Group()
        with g.client:
            pass
        self.assertEqual(g.transport.closed, 1)


class ControlTests(SynchronousTestCase):
    """
    Mutations and listings through freno's routes and the REST API.
    """

    def test_freno_routes(self):
        """
        Without a token: freno's GET routes, whose effects the listings show.
        """
        g = Group(new=False)
        result = g.client.throttle("app", ttl="30m", ratio=0.5, reason="test", store="main")
        self.assertEqual((result.via, result.body), ("freno", {"StatusCode": 200, "Message": "OK"}))
        self.assertEqual(g.transport.sent[-1][2], "/throttle-app/app/ttl/30/ratio/0.5?store_name=main&reason=test")
        [throttle] = g.client.throttles()
        self.assertEqual((throttle.key, throttle.store, throttle.ratio), ("app/main", "main", 0.5))
        self.assertLess(abs(throttle.expires_at_unix - (g.now() + 1800)), 0.001)
        g.client.skip("db1")
        self.assertEqual([s.host for s in g.client.skips()], ["db1"])
        g.client.recover("db1")
        g.client.unthrottle("app", store="main")
        self.assertEqual((g.client.throttles(), g.client.skips()), ([], []))

    def test_rest(self):
        """
        With a token: the REST API, the token sent, audit ids returned.
        """
        g = Group(token="s3cret")
        g.state.tokens = {"s3cret": "ops"}
        result = g.client.throttle("app", ttl="90s", reason="INC-1")
        self.assertEqual((result.via, result.audit_id), ("rest", 1))
        self.assertEqual(result.body["throttle"]["key"], "app")
        self.assertEqual(g.nodes[A].requests[-1][2]["Authorization"], "Bearer s3cret")
        self.assertEqual([t.key for t in g.client.throttles()], ["app"])
        self.assertEqual(g.client.unthrottle("app").removed, True)
        self.assertEqual(g.client.unthrottle("app").removed, False)
        self.assertEqual(g.client.audit()["records"][0]["actor"], "token:ops")
        # Both removals are committed and audited; the second removed nothing.
        self.assertEqual(
            [r["route"] for r in g.client.audit(since=1)["records"]],
            ["DELETE /api/v1/throttles/app", "DELETE /api/v1/throttles/app"],
        )
        self.assertEqual(g.client.audit(since=3)["records"], [])

    def test_refused(self):
        """
        A wrong token is a L{FrenoAPIError} with the server's code; nothing
        changed.
        """
        g = Group(token="wrong")
        g.state.tokens = {"right": "ops"}
        error = self.assertRaises(FrenoAPIError, g.client.throttle, "app")
        self.assertEqual((error.status, error.code), (401, "unauthenticated"))
        self.assertEqual(g.state.throttles, {})

    def test_rest_not_served(self):
        """
        The REST API asked of an older freno is L{RouteNotServed}.
        """
        g = Group(new=False, token="t")
        self.assertRaises(RouteNotServed, g.client.throttle, "app")
        self.assertRaises(RouteNotServed, g.client.explain, "app", "main")
        self.assertRaises(RouteNotServed, g.client.audit)

    def test_unavailable(self):
        """
        With every node down a mutation raises L{FrenoUnavailable}.
        """
        g = Group()
        for url in (A, B, C):
            g.transport.down[url] = "connection refused"
        error = self.assertRaises(FrenoUnavailable, g.client.throttle, "app")
        self.assertIn("connection refused", str(error))

    def test_bad_input(self):
        """
        Bad input is refused before anything is sent.
        """
        g = Group()
        for call in [lambda: g.client.throttle("a/b"), lambda: g.client.throttle("a", ttl="soon"),
                     lambda: g.client.skip(""), lambda: g.client.audit(since=-1),
                     lambda: g.client.check("", "main")]:
            self.assertRaises(ValueError, call)
        self.assertEqual(g.transport.sent, [])


class ViewTests(SynchronousTestCase):
    """
    L{FrenoClient.status} and L{FrenoClient.explain}.
    """

    def test_status_rest(self):
        """
        The leader's C{/api/v1/status}.
        """
        g = Group()
        g.state.leader = "b"
        status = g.client.status()
        self.assertEqual((status["node"], status["is_leader"], status["source"]), ("b", True, "api"))
        self.assertEqual(status["clusters"][0]["threshold"], 1.0)

    def test_status_old_server(self):
        """
        An older freno: the same shape from C{/consensus/status} and the
        leader's C{/aggregated-metrics}; unreachable nodes are marked so.
        """
        g = Group(new=False)
        g.state.clusters["broken"] = "dial tcp: refused"
        g.transport.down[C] = "connection refused"
        status = g.client.status()
        self.assertEqual(status["source"], "freno routes")
        self.assertEqual((status["node"], status["leader"], status["is_leader"]), ("a", "a", True))
        self.assertEqual([(m["id"], m["leader"], m["reachable"]) for m in status["members"]],
                         [("a", True, True), ("b", False, True), (C, None, False)])
        self.assertEqual(status["clusters"], [
            {"name": "broken", "value": None, "threshold": None, "age_ms": None,
             "error": "dial tcp: refused", "hosts": None},
            {"name": "main", "value": 0.25, "threshold": None, "age_ms": None, "error": None, "hosts": None},
        ])

    def test_explain(self):
        """
        The leader's explanation.
        """
        g = Group()
        g.state.leader = "c"
        explain = g.client.explain("app", "main")
        self.assertEqual((explain["node"], explain["decision"]["status"]), ("c", 200))


class StandardLibraryTests(SynchronousTestCase):
    """
    C{freno.client} imports only the standard library (and itself), except
    L{freno.client.tx}.
    """

    def test_imports(self):
        """
        Every import in the package but C{tx.py} names a standard library
        module or C{freno.client}; C{freno/__init__.py} imports nothing.
        """
        allowed = set(sys.stdlib_module_names) | {"__future__"}
        checked = 0
        for name in sorted(os.listdir(PACKAGE)) + ["../__init__.py"]:
            if not name.endswith(".py") or name == "tx.py":
                continue
            with open(os.path.join(PACKAGE, name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    modules = [node.module or ""]
                else:
                    continue
                for module in modules:
                    checked += 1
                    self.assertTrue(
                        module.split(".")[0] in allowed or module == "freno.client"
                        or module.startswith("freno.client."),
                        f"{name} imports {module}",
                    )
        self.assertGreater(checked, 30)
