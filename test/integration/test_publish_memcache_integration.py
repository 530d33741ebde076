"""
Integration tests for L{freno.publish.memcache} against real memcached
processes (Debian's C{memcached}) on free loopback ports.

Slow-ish (about 10 s): real processes, real reactor; every wait is a poll
with a deadline and every memcached is stopped by pid.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from typing import Callable, List, Optional

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.catalogue import MEMCACHE_ERRORS, MEMCACHE_WRITES
from freno.publish.memcache import MemcachePublisher
from freno.metrics.registry import Registry
from freno.sandbox.processes import free_port
from test.skips import binary_or_skip
from test.support import poll_on_reactor

VALUE_RE = re.compile(rb"^(\d{13}):(-?\d+\.\d{6})$")


def raw_get(port: int, key: str, timeout: float = 1.0) -> Optional[bytes]:
    """
    C{get key} over a plain socket: the value, C{None} when the key is
    absent, or raises L{OSError} when memcached cannot be reached.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"get " + key.encode() + b"\r\n")
        data = b""
        while not (data.endswith(b"END\r\n") or data.endswith(b"ERROR\r\n")):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if data.startswith(b"VALUE "):
        header, rest = data.split(b"\r\n", 1)
        _, _, flags, length = header.split()
        assert flags == b"0", header
        return rest[: int(length)]
    assert data == b"END\r\n", data
    return None


class Memcached:
    """
    One C{memcached} child process on 127.0.0.1:C{port}.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 5.0) -> None:
        args = [binary_or_skip("memcached"),
                "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"memcached exited: {self.process.stderr.read()!r}")
            try:
                raw_get(self.port, "ping", 0.2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


def get_or_down(port: int, key: str) -> object:
    """
    L{raw_get}, with C{"down"} for an unreachable server.
    """
    try:
        return raw_get(port, key, 0.5)
    except OSError:
        return "down"


class RealMemcachedTests(TestCase):
    """
    [slow, real processes] The publisher against two real memcached servers.
    """

    timeout = 60

    def setUp(self) -> None:
        binary_or_skip("memcached")
        self.servers: List[Memcached] = []
        for _ in range(2):
            server = Memcached(free_port())
            self.addCleanup(server.stop)
            server.start()
            self.servers.append(server)
        self.stats = Registry()
        self.metrics = AggregatedMetrics(reactor, {"main": 1.0}, max_age=30.0)
        self.publisher = MemcachePublisher(
            reactor,
            [f"127.0.0.1:{s.port}" for s in self.servers],
            "fr",
            self.metrics,
            self.stats,
            reactor,
            retry_initial=0.1,
            retry_max=0.5,
        )

    def set(self, value: float, error: Optional[str] = None) -> None:
        self.metrics.set("main", ClusterMetric(value, error, reactor.seconds()))

    def value_on(self, server: Memcached, expected: bytes) -> Callable[[], bool]:
        def check() -> bool:
            got = get_or_down(server.port, "fr/mysql/main")
            if not isinstance(got, bytes):
                return False
            match = VALUE_RE.match(got)
            assert match is not None, got
            return match.group(2) == expected

        return check

    @inlineCallbacks
    def test_publish_outage_and_recovery(self):
        """
        Values reach every server in freno's format; errors delete the key;
        a server that goes away delays nothing (the other keeps getting
        values) and gets the current value back once restarted on the same
        port; keys expire within the 2 s expiry once publishing stops.
        """
        self.publisher.startService()
        self.addCleanup(self.publisher.stopService)
        first, second = self.servers

        self.set(0.5)
        for server in self.servers:
            yield poll_on_reactor(self.value_on(server, b"0.500000"), 5, "0.5 on each server")
        millis = int(VALUE_RE.match(raw_get(first.port, "fr/mysql/main")).group(1))
        self.assertLess(abs(millis - time.time() * 1000), 5000)

        self.set(0.0, error="No hosts found")
        for server in self.servers:
            yield poll_on_reactor(
                lambda: get_or_down(server.port, "fr/mysql/main") is None, 5, "deletion"
            )

        # The first server goes away; writes continue to the second.
        first.stop()
        for i in range(1, 6):
            self.set(i / 10.0)
            yield deferLater(reactor, 0.1, lambda: None)
        yield poll_on_reactor(self.value_on(second, b"0.500000"), 5, "0.5 on the live server")
        first_label = (f"127.0.0.1:{first.port}",)
        yield poll_on_reactor(
            lambda: (self.stats.value(MEMCACHE_ERRORS, first_label) or 0) > 0,
            5,
            "errors counted for the dead server",
        )

        # Back on the same port: it gets the current value without a change.
        self.set(0.75)
        first.start()
        yield poll_on_reactor(self.value_on(first, b"0.750000"), 10, "0.75 after the restart")
        self.assertGreater(self.stats.value(MEMCACHE_WRITES, first_label), 2)
        self.assertEqual(
            self.stats.value(MEMCACHE_ERRORS, (f"127.0.0.1:{second.port}",)),
            None,
        )

        # The refresh keeps the key alive well past its expiry...
        yield deferLater(reactor, 2.5, lambda: None)
        self.assertTrue(self.value_on(second, b"0.750000")())
        # ...and once publishing stops the key expires within 2 s (+1 s of
        # memcached's clock granularity).
        yield self.publisher.stopService()
        yield poll_on_reactor(
            lambda: get_or_down(second.port, "fr/mysql/main") is None, 3.5, "expiry"
        )
