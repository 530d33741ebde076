"""
Tests for L{freno.inventory.refresh.Inventory}: the refresh loop keeps the
last good host list through glitches, counts and logs them, refreshes on
demand and tells observers about changes. All on a L{Clock} with
L{FakeInventorySource}s.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.inventory.fake import FakeInventorySource
from freno.inventory.interfaces import IInventory, InventoryError
from freno.inventory.refresh import Inventory
from freno.metrics.catalogue import INVENTORY_GLITCHES as GLITCHES
from freno.metrics.catalogue import INVENTORY_HOSTS as HOSTS
from freno.metrics.catalogue import INVENTORY_REFRESHES as REFRESHES
from freno.metrics.registry import Registry

A, B, C = HostKey("a", 3306), HostKey("b", 3306), HostKey("c", 3306)


class InventoryTests(SynchronousTestCase):
    """
    L{Inventory}.
    """

    def setUp(self):
        self.clock = Clock()
        self.stats = Registry()
        self.events = []
        self.one = FakeInventorySource([A, B])
        self.two = FakeInventorySource([C])
        clusters = {"one": ClusterSettings(name="one"), "two": ClusterSettings(name="two")}
        self.inventory = Inventory(self.clock, clusters, {"one": self.one, "two": self.two}, self.stats, 10.0)
        self.inventory.log = Logger(observer=self.events.append)
        self.changes = []
        self.inventory.add_observer(lambda name, hosts: self.changes.append((name, hosts)))

    def count(self, metric, cluster):
        return self.stats.value(metric, (cluster,)) or 0

    def warnings(self):
        return [e for e in self.events if e.get("error") is not None]

    def test_interface(self):
        """
        L{Inventory} provides L{IInventory}.
        """
        verifyObject(IInventory, self.inventory)

    def test_unknown_before_start(self):
        """
        A cluster that never loaded has no hosts (C{None}).
        """
        self.assertIsNone(self.inventory.hosts("one"))
        self.assertIsNone(self.inventory.hosts("nope"))

    def test_start_refreshes_now_and_periodically(self):
        """
        L{Inventory.start} loads every cluster at once, then every interval.
        """
        self.inventory.start()
        self.assertEqual(self.inventory.hosts("one"), (A, B))
        self.assertEqual(self.inventory.hosts("two"), (C,))
        self.assertEqual((self.one.calls, self.two.calls), (1, 1))
        self.clock.advance(10)
        self.assertEqual((self.one.calls, self.two.calls), (2, 2))
        self.assertEqual(self.count(REFRESHES, "one"), 2)
        self.assertEqual(self.stats.value(HOSTS, ("one",)), 2)
        self.successResultOf(self.inventory.stop())
        self.clock.advance(30)
        self.assertEqual(self.one.calls, 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_glitches_keep_last_good(self):
        """
        An error, an empty list and garbage each keep the last good list,
        are counted and logged with cluster and error.
        """
        self.inventory.start()
        self.one.fail_with(InventoryError("HAProxy CSV parsing error: only got partial file"))
        self.one.answer([])
        self.one.answer(["not", "hosts"])
        self.one.fail_with(RuntimeError("unexpected"))
        for _ in range(4):
            self.clock.advance(10)
            self.assertEqual(self.inventory.hosts("one"), (A, B))
        self.assertEqual(self.count(GLITCHES, "one"), 4)
        self.assertEqual(self.count(GLITCHES, "two"), 0)
        self.assertEqual(self.count(REFRESHES, "one"), 1)
        errors = [e["error"] for e in self.warnings()]
        self.assertIn("HAProxy CSV parsing error: only got partial file", errors[0])
        self.assertIn("no hosts", errors[1])
        self.assertIn("not a list of hosts", errors[2])
        self.assertIn("RuntimeError: unexpected", errors[3])
        self.assertEqual({e["cluster"] for e in self.warnings()}, {"one"})
        self.assertEqual(self.changes, [("one", (A, B)), ("two", (C,))])

    def test_glitch_before_first_load(self):
        """
        A failure on the first refresh leaves the cluster unknown; the next success loads it.
        """
        self.one.fail_with(InventoryError("down"))
        self.inventory.start()
        self.assertIsNone(self.inventory.hosts("one"))
        self.assertEqual(self.inventory.hosts("two"), (C,))
        self.clock.advance(10)
        self.assertEqual(self.inventory.hosts("one"), (A, B))

    def test_smaller_list_accepted(self):
        """
        A successful smaller list (a server put in maintenance) replaces the old one.
        """
        self.inventory.start()
        self.one.set_hosts([B])
        self.clock.advance(10)
        self.assertEqual(self.inventory.hosts("one"), (B,))
        self.assertEqual(self.changes[-1], ("one", (B,)))

    def test_observers_only_on_change(self):
        """
        Observers hear about changes only; order and duplicates do not count as change.
        """
        self.inventory.start()
        self.one.set_hosts([B, A, A])
        self.clock.advance(10)
        self.assertEqual(self.changes, [("one", (A, B)), ("two", (C,))])

    def test_observer_error_isolated(self):
        """
        An observer that raises is logged; other observers still hear.
        """
        def bad(name, hosts):
            raise ValueError("observer bug")

        seen = []
        self.inventory.add_observer(bad)
        self.inventory.add_observer(lambda name, hosts: seen.append(name))
        self.inventory.start()
        self.assertEqual(sorted(seen), ["one", "two"])
        failures = [e["log_failure"] for e in self.events if "log_failure" in e]
        self.assertEqual([f.type for f in failures], [ValueError, ValueError])

    def test_refresh_on_demand(self):
        """
        L{Inventory.refresh} loads every cluster without waiting for the tick.
        """
        d = self.inventory.refresh()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.inventory.hosts("one"), (A, B))

    def test_slow_source_times_out_others_unaffected(self):
        """
        A source that never answers does not hold up the others, and
        counts as a glitch after the timeout.
        """
        self.inventory.start()
        self.one.hold()
        self.two.set_hosts([A, C])
        self.clock.advance(10)
        self.assertEqual(self.inventory.hosts("two"), (A, C))
        self.assertEqual(self.inventory.hosts("one"), (A, B))
        self.clock.advance(10)
        self.assertTrue(self.one.held[0].called)
        self.assertEqual(self.count(GLITCHES, "one"), 1)
        self.assertIn("no answer within 10s", self.warnings()[0]["error"])
        self.assertEqual(self.inventory.hosts("one"), (A, B))

    def test_refresh_joins_in_flight(self):
        """
        A refresh on demand while a cluster's refresh is in flight joins it
        instead of calling the source again.
        """
        self.one.hold()
        first = self.inventory.refresh()
        second = self.inventory.refresh()
        self.assertEqual(self.one.calls, 1)
        self.assertEqual(self.two.calls, 2)
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.one.held[0].callback([C])
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(self.inventory.hosts("one"), (C,))

    def test_stop_waits_for_in_flight(self):
        """
        L{Inventory.stop} fires after the refresh in flight finishes.
        """
        self.one.hold()
        self.inventory.start()
        d = self.inventory.stop()
        self.assertNoResult(d)
        self.one.held[0].callback([A])
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restart_refreshes_at_once(self):
        """
        start, stop and start again (leadership lost and regained) refreshes
        at once each time, and joins a refresh still in flight.
        """
        self.inventory.start()
        self.one.hold()
        self.clock.advance(10)
        stopped = self.inventory.stop()
        self.inventory.start()
        self.assertEqual(self.one.calls, 2)
        self.assertEqual(self.two.calls, 3)
        self.one.held[0].callback([C])
        self.successResultOf(stopped)
        self.assertEqual(self.inventory.hosts("one"), (C,))
        self.clock.advance(10)
        self.assertEqual(self.one.calls, 3)
        self.successResultOf(self.inventory.stop())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_without_start(self):
        """
        Stopping an inventory that never started fires at once.
        """
        self.successResultOf(self.inventory.stop())

    def test_mismatched_sources(self):
        """
        Every cluster needs a source and every source a cluster.
        """
        self.assertRaises(ValueError, Inventory, self.clock, {"x": ClusterSettings(name="x")}, {}, self.stats)

    def test_refresh_never_fails(self):
        """
        Even a source whose C{hosts} raises synchronously does not fail L{Inventory.refresh}.
        """
        def boom():
            raise KeyError("sync")

        self.one.hosts = boom
        self.assertIsNone(self.successResultOf(self.inventory.refresh()))
        self.assertEqual(self.count(GLITCHES, "one"), 1)
        self.assertIsInstance(self.inventory.refresh(), Deferred)
