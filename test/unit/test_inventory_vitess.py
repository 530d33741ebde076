"""
Tests for L{freno.inventory.vitess} in memory: URL building, the tablets
parser (freno's C{TestParseTablets} cases), garbage JSON, and the source
through StubTreq.
"""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import VitessSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import IInventorySource, InventoryError
from freno.inventory.vitess import VitessSource, parse_tablets, tablets_url
from test.vtctld_standin import TABLETS, VtctldResource

class URLTests(SynchronousTestCase):
    """
    L{tablets_url}.
    """

    def test_url(self):
        """
        C{/api} is appended once, trailing slashes dropped, cells joined with C{%2C}.
        """
        self.assertEqual(tablets_url("http://v:15000", "ks", "0"), "http://v:15000/api/keyspace/ks/tablets/0")
        self.assertEqual(tablets_url("http://v:15000/api/", "ks", "-80"), "http://v:15000/api/keyspace/ks/tablets/-80")
        self.assertEqual(
            tablets_url("http://v", "ks", "0", (" a", "b ", "")), "http://v/api/keyspace/ks/tablets/0?cells=a%2Cb"
        )
        self.assertEqual(tablets_url("http://v", "ks", "0", ("", " ")), "http://v/api/keyspace/ks/tablets/0")


class ParseTests(SynchronousTestCase):
    """
    L{parse_tablets}.
    """

    def test_success(self):
        """
        Only serveable REPLICA tablets are kept.
        """
        hosts = parse_tablets(json.dumps(TABLETS).encode())
        self.assertEqual(hosts, [HostKey("replica1", 3306), HostKey("replica2", 3306)])

    def test_cells(self):
        """
        A cell list keeps tablets of those cells; blank cells mean no filter.
        """
        body = json.dumps(TABLETS).encode()
        self.assertEqual(parse_tablets(body, ["cell2"]), [HostKey("replica2", 3306)])
        self.assertEqual(len(parse_tablets(body, ["", ""])), 2)

    def test_malformed(self):
        """
        Bodies that are not an array of objects, or kept tablets without a usable host, fail.
        """
        for body in (b"", b"{", b"{}", b"null", b"[1]", b"\xff\xfe", b'[{"type": 2, "mysql_port": 3306}]',
                     b'[{"type": 2, "mysql_hostname": "h", "mysql_port": "x"}]',
                     b'[{"type": 2, "mysql_hostname": "h", "mysql_port": 3306, "stats": 5}]',
                     b"[" * 100000):
            self.assertRaises(InventoryError, parse_tablets, body)

    def test_bool_type_is_not_replica(self):
        """
        C{true} is not the integer 2 (nor 1).
        """
        self.assertEqual(parse_tablets(b'[{"type": true, "mysql_hostname": "h", "mysql_port": 1}]'), [])

    @settings(max_examples=300, deadline=None)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=6),
            lambda children: st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "mysql_hostname", "mysql_port", "stats", "alias", "cell", "realtime", "last_error"]),
                children,
                max_size=5,
            ),
            max_leaves=20,
        ),
        st.lists(st.sampled_from(["cell1", "", "x"]), max_size=2),
    )
    def test_garbage_json(self, value, cells):
        """
        Any JSON value gives host keys or L{InventoryError}, nothing else.
        """
        try:
            hosts = parse_tablets(json.dumps(value).encode(), cells)
        except InventoryError:
            return
        self.assertTrue(all(isinstance(h, HostKey) for h in hosts))

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_garbage_bytes(self, body):
        """
        Arbitrary bytes give host keys or L{InventoryError}.
        """
        try:
            parse_tablets(body)
        except InventoryError:
            pass




class SourceTests(SynchronousTestCase):
    """
    L{VitessSource} against the stand-in, in memory.
    """

    def setUp(self):
        self.clock = Clock()
        self.resource = VtctldResource()
        self.client = StubTreq(self.resource)

    def source(self, keyspace="test", cells=(), timeout_secs=0):
        settings = VitessSettings(api="http://vtctld:15000", keyspace=keyspace, shard="00", cells=cells,
                                  timeout_secs=timeout_secs)
        return VitessSource(settings, self.clock, self.client)

    def test_interface(self):
        """
        L{VitessSource} provides L{IInventorySource}.
        """
        verifyObject(IInventorySource, self.source())

    def test_success(self):
        """
        The serveable REPLICA tablets are the hosts.
        """
        hosts = self.successResultOf(self.source().hosts())
        self.assertEqual(hosts, [HostKey("replica1", 3306), HostKey("replica2", 3306)])
        self.assertEqual(self.resource.uris, ["/api/keyspace/test/tablets/00"])

    def test_with_cell(self):
        """
        Cells go to vtctld as C{?cells=}.
        """
        hosts = self.successResultOf(self.source(cells=("cell2",)).hosts())
        self.assertEqual(hosts, [HostKey("replica2", 3306)])
        self.assertEqual(self.resource.uris, ["/api/keyspace/test/tablets/00?cells=cell2"])

    def test_not_found(self):
        """
        A 404 fails with the status line.
        """
        f = self.failureResultOf(self.source(keyspace="nope").hosts(), InventoryError)
        self.assertIn("404 Not Found", str(f.value))

    def test_timeout_default_and_configured(self):
        """
        TimeoutSecs bounds the request; 0 means 5 s.
        """
        d = self.source(keyspace="slow").hosts()
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertIn("timed out", str(self.failureResultOf(d, InventoryError).value))
        d = self.source(keyspace="slow", timeout_secs=1).hosts()
        self.clock.advance(1)
        self.failureResultOf(d, InventoryError)

    def test_not_configured(self):
        """
        No API or keyspace fails.
        """
        self.failureResultOf(self.source(keyspace="").hosts(), InventoryError)
