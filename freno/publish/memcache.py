# -*- test-case-name: test.unit.test_publish_memcache -*-
"""
L{MemcachePublisher}: the leader's aggregated metrics, written to memcached.

As in freno (C{MemcacheServers}, C{MemcachePath}), every cluster's aggregated
value goes to I{every} configured memcached under the key
C{<MemcachePath>/mysql/<cluster>} with the value C{<epoch-millis>:<value>}
(the value formatted C{%.6f}, the time that of the write), flags 0; a cluster
whose metric is an error (including a stale one) has its key deleted instead.
Clients such as gh-ost's C{--throttle-query} read these keys instead of
asking freno over HTTP.

When:
  - whenever a cluster's value changes (L{AggregatedMetrics} tells its
    observers on every C{set}); an unchanged value is not rewritten;
  - and every C{refresh_interval} (0.5 s) for every cluster, changed or not,
    so that the key never expires while this node publishes.

Expiry (docs/decisions.md, D46): freno writes every 25 ms with a 1 s expiry.
We write on change and at least twice a second, and memcached counts expiry
in whole seconds on its own one-second clock, so an item set with expiry 1
can vanish anywhere between 0 and 1 s later. An expiry of 1 s would
therefore leave gaps between writes; we use C{expiry=2} (the item lives at
least 1 s and at most 2 s, so with writes every 0.5 s it never lapses while
the leader publishes, and disappears within 2 s after it stops). Readers
that care about age have the epoch-millis prefix.

Only the leader has metrics (L{AggregatedMetrics} is cleared on losing
leadership), so the publisher simply follows L{AggregatedMetrics}: a
follower writes nothing, and a deposed leader's keys expire by themselves
(it deletes nothing, which could clobber the new leader's writes).

A memcached that is down or slow never delays anything else: writes are
fire-and-forget; each command has a timeout (C{command_timeout}; a timeout
drops the connection); at most one write per key is in flight to a given
server, and a newer value for that key replaces the one waiting behind it;
while a server is disconnected nothing is queued for it, and as soon as it
reconnects it gets every cluster's current value. Connections are
re-established by a L{ClientService} with exponential backoff
(C{retry_initial} doubling up to C{retry_max}, no jitter: there is a single
writer, so there is no herd to spread).

Counted in the metrics registry (labeled by the server as configured, C{host:port}):
C{freno_memcache_writes_total{server}} for every command sent (set or
delete), C{freno_memcache_errors_total{server}} for every command that
failed or timed out and every failed connection attempt.

L{freno.tap} builds it when C{MemcacheServers} is set. It uses Twisted's own L{twisted.protocols.memcache.MemCacheProtocol} over
TCP endpoints built on the injected reactor.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from twisted.application.internet import ClientService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IReactorTCP, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.memcache import MemCacheProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.hosts import HostKey
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics import catalogue
from freno.metrics.registry import Registry

#: memcached's port when a server is given without one.
DEFAULT_MEMCACHE_PORT = 11211

#: memcached's limit on key length.
MAX_KEY_LENGTH = 250


#: A write: C{(b"set", value)} or C{(b"delete", b"")}.
Write = Tuple[bytes, bytes]


class InvalidMemcacheKeyError(ValueError):
    """
    A key memcached would refuse: longer than 250 bytes, or containing
    whitespace or control characters.

    @ivar key: the offending key.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid memcache key {key!r}: {reason}")
        self.key = key


def check_key(key: str) -> bytes:
    """
    Encode C{key} for memcached, or explain why it cannot be one.

    @raise InvalidMemcacheKeyError: empty, too long, or with whitespace or
        control characters.
    """
    encoded = key.encode("utf-8")
    if not encoded:
        raise InvalidMemcacheKeyError(key, "empty")
    if len(encoded) > MAX_KEY_LENGTH:
        raise InvalidMemcacheKeyError(key, f"longer than {MAX_KEY_LENGTH} bytes")
    if any(b <= 32 or b == 127 for b in encoded):
        raise InvalidMemcacheKeyError(key, "contains whitespace or control characters")
    return encoded


def metric_key(path: str, cluster: str) -> str:
    """
    The key of C{cluster}'s metric: C{<path>/mysql/<cluster>}.
    """
    return f"{path}/mysql/{cluster}"


def format_value(epoch_millis: int, value: float) -> bytes:
    """
    The stored value, freno's C{<epoch-millis>:<value %.6f>}.
    """
    return b"%d:%.6f" % (epoch_millis, value)


class _LinkProtocol(MemCacheProtocol):
    """
    Twisted's memcache client, telling its L{_ServerLink} when the
    connection is made and when it is lost or timed out (before the
    outstanding commands are failed, so that nothing more is sent on it).
    """

    link: Optional["_ServerLink"] = None

    def connectionMade(self) -> None:
        """
        Offer this connection to the link.
        """
        MemCacheProtocol.connectionMade(self)
        if self.link is not None:
            self.link.connected(self)

    def timeoutConnection(self) -> None:
        """
        An answer is overdue: detach, then let Twisted fail the commands and
        drop the connection.
        """
        if self.link is not None:
            self.link.lost(self, "timed out")
        MemCacheProtocol.timeoutConnection(self)

    def connectionLost(self, reason: Failure) -> None:
        """
        Detach from the link, cancel the response timeout (Twisted's
        protocol leaves it pending), then fail whatever was outstanding.
        """
        self.setTimeout(None)
        if self.link is not None:
            self.link.lost(self, reason.getErrorMessage())
        MemCacheProtocol.connectionLost(self, reason)


class _LinkFactory(Factory):
    """
    Builds L{_LinkProtocol}s whose command timeout runs on the link's clock.
    """

    noisy = False

    def __init__(self, link: "_ServerLink") -> None:
        self._link = link

    def buildProtocol(self, addr) -> _LinkProtocol:
        proto = _LinkProtocol(timeOut=self._link.command_timeout)
        proto.link = self._link
        # TimeoutMixin would otherwise reach for the global reactor.
        proto.callLater = self._link.clock.callLater
        proto.factory = self
        return proto


@implementer(IStreamClientEndpoint)
class _ObservedEndpoint:
    """
    An endpoint that tells its link about failed connection attempts (to
    count and log them); L{ClientService} does the retrying.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, link: "_ServerLink") -> None:
        self._endpoint = endpoint
        self._link = link

    def __repr__(self) -> str:
        return f"<memcached {self._link.server}>"

    def connect(self, factory) -> Deferred:
        """
        Connect, reporting a failure to the link before passing it on.
        """
        d = self._endpoint.connect(factory)

        def failed(failure: Failure) -> Failure:
            self._link.connect_failed(failure)
            return failure

        return d.addErrback(failed)


class _ServerLink:
    """
    One memcached server: its connection, the key writes in flight to it and
    the newest write waiting behind each.

    @ivar server: the server as configured (C{host:port}), the metric label.
    """

    log = Logger()

    def __init__(
        self,
        server: HostKey,
        reactor: IReactorTCP,
        clock: IReactorTime,
        registry: Registry,
        expiry: int,
        command_timeout: float,
        connect_timeout: float,
        retry_policy: Callable[[int], float],
        on_connected: Callable[["_ServerLink"], None],
    ) -> None:
        self.server = str(server)
        self.clock = clock
        self.command_timeout = command_timeout
        self._writes = registry.counter(catalogue.MEMCACHE_WRITES)
        self._errors = registry.counter(catalogue.MEMCACHE_ERRORS)
        self._labels = (self.server,)
        self._expiry = expiry
        self._on_connected = on_connected
        self._proto: Optional[_LinkProtocol] = None
        self._pending: Dict[bytes, Write] = {}
        self._inflight: Set[bytes] = set()
        self._failing = False
        self.stopping = False
        endpoint = TCP4ClientEndpoint(
            reactor, server.hostname, server.port, timeout=connect_timeout
        )
        self.service = ClientService(
            _ObservedEndpoint(endpoint, self),
            _LinkFactory(self),
            retryPolicy=retry_policy,
            clock=clock,
        )

    @property
    def is_connected(self) -> bool:
        """
        Whether a connection is up now.
        """
        return self._proto is not None

    def connected(self, proto: _LinkProtocol) -> None:
        """
        A connection is up: send on it from now on, starting with every
        cluster's current value.
        """
        self._proto = proto
        if self._failing:
            self.log.info("memcached {server} is reachable again", server=self.server)
        self._failing = False
        self._on_connected(self)

    def connect_failed(self, failure: Failure) -> None:
        """
        Count a failed connection attempt; log the first of a series.
        """
        self._errors.inc(self._labels)
        emit = self.log.debug if self._failing else self.log.warn
        emit(
            "cannot connect to memcached {server}: {error}",
            server=self.server,
            error=failure.getErrorMessage(),
        )
        self._failing = True

    def lost(self, proto: _LinkProtocol, why: str) -> None:
        """
        The connection C{proto} is gone (or going): forget it and what
        waited on it.
        """
        if self._proto is proto:
            self._proto = None
            self._pending.clear()
            if self.stopping:
                return
            self.log.warn(
                "lost connection to memcached {server}: {error}", server=self.server, error=why
            )
            self._failing = True

    def submit(self, key: bytes, write: Write) -> None:
        """
        Send C{write} for C{key} now, or after the write in flight for that
        key; dropped while disconnected (the server gets current values on
        reconnecting).
        """
        if self._proto is None:
            return
        if key in self._inflight:
            self._pending[key] = write
            return
        self._send(self._proto, key, write)

    def _send(self, proto: _LinkProtocol, key: bytes, write: Write) -> None:
        command, value = write
        self._inflight.add(key)
        self._writes.inc(self._labels)
        if command == b"set":
            d = proto.set(key, value, 0, self._expiry)
        else:
            d = proto.delete(key)
        d.addErrback(self._failed, key, command)
        d.addBoth(self._done, proto, key)

    def _failed(self, failure: Failure, key: bytes, command: bytes) -> None:
        self._errors.inc(self._labels)
        self.log.debug(
            "memcache {command} {key} on {server} failed: {error}",
            command=command.decode(),
            key=key.decode("utf-8", "replace"),
            server=self.server,
            error=failure.getErrorMessage(),
        )

    def _done(self, result: object, proto: _LinkProtocol, key: bytes) -> None:
        self._inflight.discard(key)
        if self._proto is proto:
            write = self._pending.pop(key, None)
            if write is not None:
                self._send(proto, key, write)


class MemcachePublisher(MultiService):
    """
    Writes every cluster's aggregated metric to every memcached (see the
    module docstring for the format, timing and failure behaviour).

    @param reactor: connects to the servers (C{IReactorTCP}).
    @param servers: C{host[:port]} of each memcached (port 11211 by default).
    @param path: C{MemcachePath}, the key prefix.
    @param metrics: the aggregated metrics to follow.
    @param registry: where the write and error counters go.
    @param clock: timestamps, the refresh loop, timeouts and retries.
    @param expiry: item expiry, whole seconds (2; see the module docstring).
    @param refresh_interval: seconds between rewrites of unchanged values.
    @param command_timeout: seconds a command may wait for its answer.
    @param connect_timeout: seconds a connection attempt may take.
    @param retry_initial: first reconnection delay, seconds (then doubling).
    @param retry_max: the longest reconnection delay, seconds.

    @raise freno.hosts.InvalidHostError: a server is not C{host[:port]}.
    @raise InvalidMemcacheKeyError: C{path} cannot start a memcache key.
    @raise ValueError: a non-positive expiry or interval.
    """

    log = Logger()

    def __init__(
        self,
        reactor: IReactorTCP,
        servers: Sequence[str],
        path: str,
        metrics: AggregatedMetrics,
        registry: Registry,
        clock: IReactorTime,
        expiry: int = 2,
        refresh_interval: float = 0.5,
        command_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
    ) -> None:
        super().__init__()
        if isinstance(servers, str):
            raise ValueError("servers must be a sequence of host:port strings, not a string")
        hosts = [HostKey.parse(s, DEFAULT_MEMCACHE_PORT) for s in servers]
        check_key(metric_key(path, "x"))
        if int(expiry) != expiry or expiry < 1:
            raise ValueError(f"memcache expiry must be a whole number of seconds >= 1, not {expiry!r}")
        for name, value in (
            ("refresh_interval", refresh_interval),
            ("command_timeout", command_timeout),
            ("connect_timeout", connect_timeout),
            ("retry_initial", retry_initial),
            ("retry_max", retry_max),
        ):
            if not value > 0:
                raise ValueError(f"memcache {name} must be positive, not {value!r}")
        self.path = path
        self.servers = tuple(str(h) for h in hosts)
        self._metrics = metrics
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._last: Dict[str, Write] = {}
        self._bad_keys: Set[str] = set()
        def base(attempt: int) -> float:
            return min(retry_initial * 2.0 ** (attempt - 1), retry_max)

        self.links: List[_ServerLink] = []
        for host in hosts:
            link = _ServerLink(
                host, reactor, clock, registry, int(expiry), command_timeout,
                connect_timeout, base, self._republish,
            )
            link.service.setServiceParent(self)
            self.links.append(link)
        self._loop = LoopingCall(self._refresh)
        self._loop.clock = clock
        self._loop_done: Optional[Deferred] = None
        metrics.add_observer(self._metric_changed)

    def startService(self) -> None:
        """
        Connect to every server and start the refresh loop.
        """
        for link in self.links:
            link.stopping = False
        super().startService()
        self._loop_done = self._loop.start(self._refresh_interval, now=False)

    def stopService(self) -> Deferred:
        """
        Stop the refresh loop and close every connection.
        """
        if self._loop.running:
            self._loop.stop()
        self._last.clear()
        for link in self.links:
            link.stopping = True
        return super().stopService()

    def _write_for(self, metric: ClusterMetric) -> Write:
        if metric.error is not None:
            return (b"delete", b"")
        return (b"set", b"%.6f" % (metric.value,))

    def _key(self, cluster: str) -> Optional[bytes]:
        try:
            return check_key(metric_key(self.path, cluster))
        except InvalidMemcacheKeyError as e:
            if cluster not in self._bad_keys:
                self._bad_keys.add(cluster)
                self.log.error(
                    "not publishing {cluster} to memcache: {error}",
                    cluster=cluster,
                    error=str(e),
                )
            return None

    def _stamped(self, write: Write) -> Write:
        command, value = write
        if command != b"set":
            return write
        millis = int(self._clock.seconds() * 1000)
        return (command, b"%d:%s" % (millis, value))

    def _publish(self, cluster: str, write: Write, links: Sequence[_ServerLink]) -> None:
        key = self._key(cluster)
        if key is None:
            return
        self._last[cluster] = write
        stamped = self._stamped(write)
        for link in links:
            link.submit(key, stamped)

    def _metric_changed(self, cluster: str, metric: ClusterMetric) -> None:
        """
        L{AggregatedMetrics} observer: publish a changed value at once.
        """
        if not self.running:
            return
        write = self._write_for(metric)
        if self._last.get(cluster) == write:
            return
        self._publish(cluster, write, self.links)

    def _current(self) -> List[Tuple[str, Write]]:
        return [(c, self._write_for(m)) for c, m in self._metrics.items()]

    def _refresh(self) -> None:
        """
        Rewrite every cluster's current value to every server (freshness
        applied: a stale value is deleted).
        """
        current = self._current()
        self._last = {}
        for cluster, write in current:
            try:
                self._publish(cluster, write, self.links)
            except Exception:
                self.log.failure("publishing {cluster} to memcache", cluster=cluster)

    def _republish(self, link: _ServerLink) -> None:
        """
        A server (re)connected: give it every cluster's current value.
        """
        if not self.running:
            return
        for cluster, write in self._current():
            self._publish(cluster, write, [link])
