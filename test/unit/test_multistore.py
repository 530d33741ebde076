"""
Tests for multi-store checks (C{/check/<app>/mysql/<c1>,<c2>};
docs/decisions.md, D61): the worst store's answer and its name, on every
route, comma edge cases (cluster names with commas, empty and repeated
parts, too many stores), counting per store, and the ratio dice.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.metrics.expvar import variables
from freno.throttle.checker import MAX_STORES, SEVERITY, InvalidCheck
from test.unit.answer_harness import START, Node, cluster, host

DB1, DB2, DB3, DB4 = host("db1"), host("db2"), host("db3"), host("db4")


def make_node(testcase, **kw):
    """
    Clusters C{ok} (200), C{high} (429), C{err} (500, a host error), and
    C{a,b} (a name with a comma, 200) plus C{a} (429) and C{b} (200).
    """
    node = Node(
        testcase,
        [cluster("ok"), cluster("high"), cluster("err"), cluster("a,b"), cluster("a"), cluster("b")],
        {"ok": [DB1], "high": [DB2], "err": [DB3], "a,b": [DB1], "a": [DB2], "b": [DB1]},
        {DB1: 0.2, DB2: 5.0},
        **kw,
    )
    node.source.set_error(DB3, "replication not running")
    node.settle()
    return node


class WorstTests(SynchronousTestCase):
    """
    The worst answer wins, and names its store.
    """

    def setUp(self):
        self.node = make_node(self)

    def answer(self, stores, route="check", method="HEAD"):
        code, headers = self.node.headers(method, f"/{route}/app/mysql/{stores}")
        return code, headers.get("x-freno-store"), headers.get("x-freno-reason")

    def test_order(self):
        """
        500 > 429 > 417 > 404 > 200, whatever the order given.
        """
        self.node.consensus.throttle_app("app/b", None, 1.0)
        cases = {
            "ok,high": (429, "high"),
            "high,ok": (429, "high"),
            "ok,err,high": (500, "err"),
            "ok,nosuch": (404, "nosuch"),
            "nosuch,ok,high": (429, "high"),
            "b,ok": (417, "b"),
            "ok,nosuch,b": (417, "b"),
            "ok,high,b": (429, "high"),
        }
        for stores, (code, store) in cases.items():
            self.assertEqual(self.answer(stores)[:2], (code, store), stores)

    def test_first_worst_named(self):
        """
        Of equally bad stores the first given is named; its reason too.
        """
        self.assertEqual(self.answer("a,high"), (429, "a", "lag 5.0 on db2:3306 > 1.0"))
        self.assertEqual(self.answer("high,a")[1], "high")

    def test_body_is_the_worst(self):
        """
        GET's body is the deciding store's freno JSON.
        """
        _, body = self.node.request("GET", "/check/app/mysql/ok,high,b")
        self.assertEqual(body, b'{"StatusCode":429,"Value":5,"Threshold":1,"Message":"Threshold exceeded"}\n')

    def test_every_route(self):
        """
        All four routes take several stores; if-exists turns a 404 worst into
        200, check-read's threshold applies to each store.
        """
        self.assertEqual(self.answer("ok,nosuch", "check-if-exists")[0], 200)
        self.assertEqual(self.answer("ok,high", "check-if-exists")[0], 429)
        self.assertEqual(self.answer("ok,b/10", "check-read")[0], 200)
        self.assertEqual(self.answer("ok,high/10", "check-read")[0], 200)
        self.assertEqual(self.answer("ok,b/0.1", "check-read")[:2], (429, "ok"))
        self.assertEqual(self.answer("ok,nosuch/1", "check-read-if-exists")[0], 200)

    def test_not_leader(self):
        """
        A follower answers not leader once.
        """
        self.node.consensus.set_leader(False)
        code, headers = self.node.headers("GET", "/check/app/mysql/ok,high")
        self.assertEqual((code, headers["x-freno-reason"]), (500, "not leader"))
        self.assertNotIn("x-freno-store", headers)

    @settings(max_examples=100)
    @given(st.lists(st.sampled_from(["ok", "high", "err", "nosuch", "b"]), min_size=1, max_size=6))
    def test_worst_of_any(self, stores):
        """
        For any list (of names that cannot join into C{a,b}), the answer is
        the worst single-store answer, and the first store that gave it is
        named.
        """
        single = {s: self.node.status(f"/check/app/mysql/{s}") for s in set(stores)}
        worst = max(single.values(), key=SEVERITY.__getitem__)
        code, store, _ = self.answer(",".join(stores))
        self.assertEqual(code, worst)
        self.assertEqual(store, next(s for s in stores if single[s] == worst))


class CommaTests(SynchronousTestCase):
    """
    Names with commas, empty parts, repeats, bounds.
    """

    def setUp(self):
        self.node = make_node(self)
        self.throttler = self.node.throttler

    def test_configured_name_with_comma(self):
        """
        A configured name with a comma is one store, alone or in a list (the
        longest configured name first).
        """
        stores_of = self.throttler.stores_of
        self.assertEqual(stores_of("a,b"), ("a,b",))
        self.assertEqual(stores_of("ok,a,b"), ("ok", "a,b"))
        self.assertEqual(stores_of("a,b,a"), ("a,b", "a"))
        self.assertEqual(stores_of("b,a"), ("b", "a"))
        self.assertEqual(self.node.status("/check/app/mysql/a,b"), 200)
        self.assertEqual(self.node.status("/check/app/mysql/a"), 429)
        self.assertEqual(self.node.status("/check/app/mysql/a%2Cb"), 200)

    def test_empty_and_repeated_parts(self):
        """
        An empty part is an (unknown) empty store name; repeats count once.
        """
        stores_of = self.throttler.stores_of
        self.assertEqual(stores_of("ok,"), ("ok", ""))
        self.assertEqual(stores_of(",,"), ("",))
        self.assertEqual(stores_of("ok,high,ok,high"), ("ok", "high"))
        self.assertEqual(self.node.status("/check/app/mysql/ok,"), 404)
        self.assertEqual(self.node.status("/check-if-exists/app/mysql/ok,"), 200)
        before = variables(self.node.stats).counters["check.app.mysql.ok.total"]
        self.node.status("/check/app/mysql/ok,ok,ok")
        self.assertEqual(variables(self.node.stats).counters["check.app.mysql.ok.total"], before + 1)

    def test_too_many(self):
        """
        More than L{MAX_STORES} distinct stores: 400 naming C{storeName}, and
        nothing counted; exactly that many is fine.
        """
        names = [f"s{i}" for i in range(MAX_STORES + 1)]
        response, body = self.node.request("GET", "/check/app/mysql/" + ",".join(names))
        self.assertEqual(response.code, 400)
        self.assertEqual(body, b'{"StatusCode":400,"Message":"storeName: at most 64 stores in one check"}\n')
        self.assertEqual(self.node.request("HEAD", "/check/app/mysql/" + ",".join(names))[0].code, 400)
        self.assertEqual(variables(self.node.stats).counters.get("check.any.total"), None)
        self.assertEqual(self.node.status("/check/app/mysql/" + ",".join(names[:-1])), 404)
        self.assertRaises(InvalidCheck, self.throttler.stores_of, "," * 10000)
        self.assertEqual(self.throttler.stores_of(",".join(["ok"] * 200)), ("ok",))

    @given(st.lists(st.text(alphabet="ab,x", max_size=4), max_size=8))
    def test_stores_of(self, parts):
        """
        Every part is a store or inside a configured name; no repeats; a
        result of one store is the name itself.
        """
        name = ",".join(parts)
        stores = self.throttler.stores_of(name)
        self.assertEqual(len(stores), len(set(stores)))
        self.assertTrue(stores)
        for store in stores:
            self.assertTrue("," not in store or store in self.node.clusters, store)
        if "," not in name or name in self.node.clusters:
            self.assertEqual(stores, (name,))


class CountingTests(SynchronousTestCase):
    """
    Counters, recent apps and dice per request.
    """

    def test_counted_per_store(self):
        """
        Each store is counted with its own status; the request is recorded
        once in recent apps.
        """
        node = make_node(self)
        node.status("/check/app/mysql/ok,high,nosuch")
        counters = variables(node.stats).counters
        self.assertEqual(
            (counters["check.app.mysql.ok.total"], counters["check.app.mysql.high.error"],
             counters["check.app.mysql.other.error"], counters["check.any.total"]),
            (1, 1, 1, 3),
        )
        self.assertNotIn("check.app.mysql.ok.error", counters)
        self.assertEqual(len(node.throttler.recent_apps), 1)

    def test_app_dice_once_per_request(self):
        """
        An app-wide ratio throttle rolls once per request, however many
        stores; a store-scoped one rolls for its store.
        """
        node = make_node(self)
        rolls = []
        dice = iter(itertools.cycle([0.9, 0.1]))

        def roll():
            value = next(dice)
            rolls.append(value)
            return value

        node.throttler._random = roll
        node.consensus.throttle_app("app", START + 600, 0.5)
        self.assertEqual(node.status("/check/app/mysql/ok,b"), 200)
        self.assertEqual(rolls, [0.9])
        self.assertEqual(node.status("/check/app/mysql/ok,b"), 417)
        self.assertEqual(rolls, [0.9, 0.1])
        node.consensus.throttle_app("app/b", START + 600, 0.5)
        self.assertEqual(node.status("/check/app/mysql/ok,b"), 417)
        self.assertEqual(rolls, [0.9, 0.1, 0.9, 0.1])

    def test_low_priority_per_store(self):
        """
        A normal client's 429 on one store denies low priority on that store
        only.
        """
        node = make_node(self)
        self.assertEqual(node.status("/check/app/mysql/ok,high"), 429)
        code, headers = node.headers("HEAD", "/check/lp/mysql/ok,high?p=low")
        self.assertEqual((code, headers["x-freno-store"]), (417, "high"))
        self.assertEqual(node.status("/check/lp/mysql/ok,b?p=low"), 200)
