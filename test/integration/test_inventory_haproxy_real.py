"""
Integration (slow, ~10 s): L{HAProxySource} and L{Inventory} against a real
HAProxy (Debian's C{haproxy}) started by the test, and against a twisted.web
stats endpoint that flips to 500, garbage and header-only answers.

HAProxy gets a stats page (CSV at C{/;csv;norefresh}), an admin socket and a
backend C{mysql_ro} of three servers on loopback: two health-checked against
TCP ports this test listens on, one without checks. Putting a server in
maintenance through the admin socket removes it from the inventory; a stats
endpoint that fails or returns garbage keeps the last inventory.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site
from treq.client import HTTPClient

from freno.config.model import ClusterSettings, HAProxySettings
from freno.hosts import HostKey
from freno.inventory.factory import make_source
from freno.inventory.haproxy import CSVFetcher, HAProxySource
from freno.inventory.refresh import Inventory
from freno.metrics.catalogue import INVENTORY_GLITCHES
from freno.sandbox.processes import free_port, spawn, stop_process, tail
from freno.metrics.registry import Registry
from test.skips import binary_or_skip

CONFIG = """\
global
    stats socket {socket} mode 600 level admin
    pidfile {pidfile}

defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    default-server inter 100ms fastinter 100ms downinter 100ms rise 1 fall 1

frontend stats
    mode http
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /
    stats refresh 0

listen mysql_ro
    bind 127.0.0.1:{front_port}
    server replica1 127.0.0.1:{port1} check
    server replica2 127.0.0.1:{port2} check
    server replica3 127.0.0.1:{port3}
"""

ALL = (HostKey("replica1", 3306), HostKey("replica2", 3306), HostKey("replica3", 3306))


class FlippingStats(Resource):
    """
    A stats endpoint whose answer the test flips: C{mode} is C{"ok"} (serve
    C{csv}), C{"500"}, C{"garbage"}, C{"header"} (header only, as during an
    HAProxy reload) or C{"truncated"} (a row cut short).
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.mode, self.csv = "ok", b""

    def render_GET(self, request):
        if self.mode == "500":
            request.setResponseCode(500)
            return self.csv
        if self.mode == "garbage":
            return b"\x00\xff<html>oops</html>\n,,,\n"
        if self.mode == "header":
            return self.csv.split(b"\n", 1)[0] + b"\n"
        if self.mode == "truncated":
            lines = [line for line in self.csv.split(b"\n") if line.startswith(b"mysql_ro,replica")]
            return self.csv.split(b"\n", 1)[0] + b"\n" + lines[0][:12] + b"\n"
        return self.csv


class RealHAProxyTests(TestCase):
    """
    A real HAProxy as the inventory source. Slow: starts a process.
    """

    timeout = 60

    def setUp(self):
        haproxy = binary_or_skip("haproxy")
        self.dir = tempfile.mkdtemp(prefix="freno-haproxy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        listeners = [reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1") for _ in range(2)]
        for listener in listeners:
            self.addCleanup(listener.stopListening)
        self.socket_path = os.path.join(self.dir, "admin.sock")
        self.stats_port = free_port()
        config = CONFIG.format(
            socket=self.socket_path,
            pidfile=os.path.join(self.dir, "haproxy.pid"),
            stats_port=self.stats_port,
            front_port=free_port(),
            port1=listeners[0].getHost().port,
            port2=listeners[1].getHost().port,
            port3=free_port(),
        )
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.process = spawn([haproxy, "-db", "-f", path], self.log_path)
        self.addCleanup(stop_process, self.process)

        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        self.client = HTTPClient(Agent(reactor, pool=pool))
        self.stats = Registry()
        self.address = f"http://127.0.0.1:{self.stats_port}"

    def inventory(self, source):
        cluster = ClusterSettings(name="ro", haproxy=HAProxySettings(pool_name="mysql_ro"))
        inventory = Inventory(reactor, {"ro": cluster}, {"ro": source}, self.stats, interval=0.2, timeout=2.0)
        changes = []
        inventory.add_observer(lambda name, hosts: changes.append(hosts))
        return inventory, changes

    def source(self, *addresses):
        fetcher = CSVFetcher(reactor, self.client, timeout=2.0, cache_seconds=0.0)
        return HAProxySource(addresses, "mysql_ro", 3306, fetcher)

    def admin(self, command: str) -> str:
        """
        Send one command to HAProxy's admin socket (blocking, short).
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.socket_path)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return b"".join(chunks).decode()
                chunks.append(chunk)

    @defer.inlineCallbacks
    def poll(self, inventory, predicate, what, timeout=10.0):
        """
        Refresh C{inventory} until C{predicate(hosts)} holds, or fail after C{timeout} seconds.
        """
        deadline = reactor.seconds() + timeout
        while True:
            if self.process.poll() is not None:
                self.fail(f"haproxy exited: {tail(self.log_path)}")
            yield inventory.refresh()
            hosts = inventory.hosts("ro")
            if predicate(hosts):
                return hosts
            if reactor.seconds() > deadline:
                self.fail(f"timed out waiting for {what}; hosts={hosts}; log: {tail(self.log_path)}")
            yield task.deferLater(reactor, 0.1, lambda: None)

    def glitches(self):
        return self.stats.value(INVENTORY_GLITCHES, ("ro",)) or 0

    @defer.inlineCallbacks
    def test_maintenance_leaves_and_returns(self):
        """
        Every server is listed; one put in MAINT through the admin socket
        leaves the cluster, and comes back when enabled.
        """
        inventory, changes = self.inventory(self.source(self.address))
        yield self.poll(inventory, lambda h: h == ALL, "all three servers UP")
        self.admin("disable server mysql_ro/replica2")
        yield self.poll(inventory, lambda h: h == (ALL[0], ALL[2]), "replica2 to leave")
        self.admin("enable server mysql_ro/replica2")
        yield self.poll(inventory, lambda h: h == ALL, "replica2 to return")
        self.assertEqual(changes[-2:], [(ALL[0], ALL[2]), ALL])

    @defer.inlineCallbacks
    def test_failing_stats_keep_last_inventory(self):
        """
        With a second stats address that answers 500, garbage, a header only
        or a truncated row, and then with HAProxy itself stopped, every
        refresh is a glitch and the last inventory stays.
        """
        flipping = FlippingStats()
        port = reactor.listenTCP(0, Site(flipping), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        flip_address = f"http://127.0.0.1:{port.getHost().port}/"

        warm = self.inventory(self.source(self.address))[0]
        yield self.poll(warm, lambda h: h == ALL, "all three servers UP")
        response = yield self.client.get(self.address + "/;csv;norefresh")
        flipping.csv = yield response.content()

        inventory, changes = self.inventory(self.source(self.address, flip_address))
        yield inventory.refresh()
        self.assertEqual(inventory.hosts("ro"), ALL)
        for mode in ("500", "garbage", "header", "truncated"):
            flipping.mode = mode
            before = self.glitches()
            yield inventory.refresh()
            self.assertEqual(inventory.hosts("ro"), ALL, mode)
            self.assertEqual(self.glitches(), before + 1, mode)

        flipping.mode = "ok"
        stop_process(self.process)
        before = self.glitches()
        yield inventory.refresh()
        self.assertEqual(inventory.hosts("ro"), ALL)
        self.assertEqual(self.glitches(), before + 1)
        self.assertEqual(changes, [ALL])

    @defer.inlineCallbacks
    def test_factory_source_with_loop(self):
        """
        The source L{make_source} builds from settings, run by the periodic
        loop, lists the servers.
        """
        cluster = ClusterSettings(
            name="ro", port=3306,
            haproxy=HAProxySettings(addresses=f"127.0.0.1:{self.stats_port}", pool_name="mysql_ro"),
        )
        source = make_source(cluster, reactor=reactor, http_client=self.client)
        inventory = Inventory(reactor, {"ro": cluster}, {"ro": source}, self.stats, interval=0.1, timeout=2.0)
        inventory.start()
        self.addCleanup(inventory.stop)
        deadline = reactor.seconds() + 10
        while inventory.hosts("ro") != ALL:
            self.assertLess(reactor.seconds(), deadline, f"hosts={inventory.hosts('ro')}")
            yield task.deferLater(reactor, 0.1, lambda: None)
