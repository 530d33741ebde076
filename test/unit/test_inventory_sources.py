"""
Tests for L{freno.inventory.static} and L{freno.inventory.factory}.
"""

from __future__ import annotations

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from zope.interface.verify import verifyObject

from freno.config.model import (
    ClusterSettings,
    HAProxySettings,
    ProxySQLSettings,
    StaticHostsSettings,
    VitessSettings,
)
from freno.hosts import HostKey
from freno.inventory.factory import haproxy_addresses, make_source
from freno.inventory.haproxy import HAProxyAddressError, HAProxySource
from freno.inventory.interfaces import IInventorySource, InventoryError
from freno.inventory.proxysql import ProxySQLSource
from freno.inventory.static import StaticSource
from freno.inventory.vitess import VitessSource


class StaticTests(SynchronousTestCase):
    """
    L{StaticSource}.
    """

    def test_interface(self):
        """
        It provides L{IInventorySource}.
        """
        verifyObject(IInventorySource, StaticSource(("a",), 3306))

    def test_hosts(self):
        """
        Entries without a port get the cluster port.
        """
        hosts = self.successResultOf(StaticSource(("a", "b:3307", " c "), 3310).hosts())
        self.assertEqual(hosts, [HostKey("a", 3310), HostKey("b", 3307), HostKey("c", 3310)])

    def test_bad_entries(self):
        """
        A bad entry or no entries fail with L{InventoryError}.
        """
        for entries in ((), ("a:",), ("a:abcd",), (":1",), ("a", "b:0")):
            self.failureResultOf(StaticSource(entries, 3306).hosts(), InventoryError)


class FactoryTests(SynchronousTestCase):
    """
    L{make_source} picks the source by C{inventory_kind}.
    """

    def make(self, **kw):
        return make_source(ClusterSettings(name="c", port=3307, **kw), reactor=Clock(),
                           http_client=StubTreq(Resource()), threadpool=object())

    def test_static(self):
        """
        Static settings give a L{StaticSource} with the cluster port.
        """
        source = self.make(static_hosts=StaticHostsSettings(hosts=("a",)))
        self.assertIsInstance(source, StaticSource)
        self.assertEqual(self.successResultOf(source.hosts()), [HostKey("a", 3307)])

    def test_none(self):
        """
        No source configured fails each refresh with a clear error.
        """
        f = self.failureResultOf(self.make().hosts(), InventoryError)
        self.assertIn("no hosts definition", str(f.value))

    def test_haproxy(self):
        """
        HAProxy wins over others; resolved addresses are used, else computed.
        """
        source = self.make(haproxy=HAProxySettings(pool_name="p", resolved_addresses=("http://x:1",)),
                           static_hosts=StaticHostsSettings(hosts=("a",)))
        self.assertIsInstance(source, HAProxySource)
        self.assertEqual((source.addresses, source.port), (("http://x:1",), 3307))
        self.assertEqual(haproxy_addresses(HAProxySettings(addresses="h:2, k")), ("http://h:2", "http://k:80"))
        self.assertRaises(HAProxyAddressError, haproxy_addresses, HAProxySettings(addresses="h:"))

    def test_proxysql_and_vitess(self):
        """
        ProxySQL and Vitess settings give their sources; ProxySQL needs a thread pool.
        """
        self.assertIsInstance(self.make(proxysql=ProxySQLSettings(addresses=("a:6032",))), ProxySQLSource)
        self.assertIsInstance(self.make(vitess=VitessSettings(api="http://v", keyspace="k")), VitessSource)
        self.assertRaises(ValueError, make_source, ClusterSettings(name="c", proxysql=ProxySQLSettings()),
                          reactor=Clock(), http_client=None)
