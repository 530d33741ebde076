# -*- test-case-name: test.unit.test_raft_resolver -*-
"""
How a raft member finds the IP address of a member named by host name
(C{freno-0.freno:10008}), and finds it again when it changes.

pysyncobj resolves a member's name through one process-wide cache
(C{pysyncobj.dns_resolver.globalDnsResolver}) that keeps an answer for
C{dnsCacheTime} (600 s by default) whatever happens to the connections, and
it resolves with a blocking C{getaddrinfo} on the tick. A rescheduled pod
gets a new IP under the same name: its peers would dial the old IP for up to
ten minutes. Here (docs/decisions.md, D73):

    - L{IRaftResolver} is the seam: L{peers <freno.consensus.raft.peers>}'
      transport asks it for an address (C{address_of}, which never blocks)
      and tells it when a connection to a name failed or was lost
      (C{connection_failed}).
    - L{CachingResolver} keeps the last address of every name. A failed
      connection marks the name stale, and the next dial starts a new lookup
      (at most one at a time per name, at most one per
      L{CachingResolver.min_interval} seconds) while the dial goes on with
      the last known address; an answer replaces it. A lookup that fails
      keeps the last address.
    - The lookup is injected: L{reactor_lookup} (the reactor's name
      resolver: C{getaddrinfo} in a thread, never on the reactor thread),
      L{HostsFileLookup} (a hosts(5) file, read again on every lookup, for
      C{RaftHostsFile}; tests re-point names by rewriting it), or any
      function returning a Deferred list of addresses.

An IP literal is its own address and is never looked up.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Dict, List, Optional

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from zope.interface import Interface, implementer

Lookup = Callable[[str], Deferred]


class IRaftResolver(Interface):
    """
    Addresses of raft members named by host name.
    """

    def address_of(host: str) -> Optional[str]:
        """
        The address to dial for C{host} now, or C{None} when none is known
        yet (the dial is skipped; a lookup is under way). Never blocks.
        """

    def connection_failed(host: str) -> None:
        """
        A connection to C{host} failed or was lost: look it up again before
        the next dial.
        """


def is_ip(host: str) -> bool:
    """
    Whether C{host} is an IPv4 or IPv6 literal.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IRaftResolver)
class CachingResolver:
    """
    The last known address of every name, looked up again after a failed
    connection (see the module docstring).

    @param lookup: C{host -> Deferred[list of addresses]}.
    @param clock: C{IReactorTime}.
    @param min_interval: the least time between two lookups of one name.
    """

    _log = Logger()

    def __init__(self, lookup: Lookup, clock, min_interval: float = 1.0) -> None:
        self._lookup = lookup
        self._clock = clock
        self.min_interval = min_interval
        self._addresses: Dict[str, str] = {}
        self._stale: Dict[str, bool] = {}
        self._busy: Dict[str, bool] = {}
        self._last_lookup: Dict[str, float] = {}

    def address_of(self, host: str) -> Optional[str]:
        if is_ip(host):
            return host
        known = self._addresses.get(host)
        if known is None or self._stale.get(host, False):
            self._refresh(host)
            known = self._addresses.get(host)  # a synchronous lookup answered
        return known

    def connection_failed(self, host: str) -> None:
        self._log.debug("raft member {host}: connection failed", host=host)
        if not is_ip(host):
            self._stale[host] = True

    def _refresh(self, host: str) -> None:
        now = self._clock.seconds()
        if self._busy.get(host) or now - self._last_lookup.get(host, -1e18) < self.min_interval:
            return
        self._busy[host] = True
        self._last_lookup[host] = now
        self._log.debug("raft member {host}: looking up", host=host)
        d = maybeDeferred(self._lookup, host)
        d.addCallbacks(lambda found: self._found(host, found), lambda f: self._failed(host, f))

    def _found(self, host: str, found: List[str]) -> None:
        self._busy[host] = False
        if not found:
            self._failed(host, None)
            return
        address = found[0]
        previous = self._addresses.get(host)
        if previous is not None and previous in found:
            address = previous  # still valid: keep it (no flapping between records)
        self._addresses[host] = address
        self._stale[host] = False
        if previous is not None and address != previous:
            self._log.info(
                "raft member {host} now resolves to {address} (was {previous})",
                host=host,
                address=address,
                previous=previous,
            )

    def _failed(self, host: str, failure) -> None:
        self._busy[host] = False
        self._log.warn(
            "raft member {host} could not be resolved{why}; keeping {address}",
            host=host,
            why="" if failure is None else f": {failure.getErrorMessage()}",
            address=self._addresses.get(host),
        )


def parse_hosts(text: str) -> Dict[str, List[str]]:
    """
    Name to addresses, from hosts(5) text (C{address name [alias...]},
    C{#} comments), in file order.
    """
    names: Dict[str, List[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or not is_ip(fields[0]):
            continue
        for name in fields[1:]:
            names.setdefault(name, []).append(fields[0])
    return names


class HostsFileLookup:
    """
    A lookup reading a hosts(5) file each time (C{RaftHostsFile}); names it
    does not hold go to C{fallback} (or are not found).

    @param path: the file; a missing or unreadable file holds no name.
    @param fallback: the lookup for other names, or C{None}.
    """

    def __init__(self, path: str, fallback: Optional[Lookup] = None) -> None:
        self.path = path
        self._fallback = fallback

    def __call__(self, host: str) -> Deferred:
        try:
            with open(self.path, encoding="utf-8") as f:
                names = parse_hosts(f.read())
        except OSError:
            names = {}
        if host in names:
            return succeed(names[host])
        if self._fallback is not None:
            return self._fallback(host)
        return succeed([])


def reactor_lookup(reactor) -> Lookup:
    """
    A lookup through C{reactor.nameResolver} (C{getaddrinfo} in the
    reactor's thread pool): IPv4 addresses first.
    """
    from twisted.internet.interfaces import IResolutionReceiver

    def lookup(host: str) -> Deferred:
        found: List[str] = []
        done: Deferred = Deferred()

        @implementer(IResolutionReceiver)
        class Receiver:
            def resolutionBegan(self, resolution) -> None:
                pass

            def addressResolved(self, address) -> None:
                if address.host not in found:
                    found.append(address.host)

            def resolutionComplete(self) -> None:
                done.callback(sorted(found, key=lambda a: ":" in a))

        reactor.nameResolver.resolveHostName(Receiver(), host)
        return done

    return lookup


def default_resolver(reactor, hosts_file: str = "") -> CachingResolver:
    """
    The resolver of a raft node: C{hosts_file} (C{RaftHostsFile}) first
    when set, then the reactor's name resolver.
    """
    lookup = reactor_lookup(reactor)
    if hosts_file:
        lookup = HostsFileLookup(hosts_file, fallback=lookup)
    return CachingResolver(lookup, reactor)
