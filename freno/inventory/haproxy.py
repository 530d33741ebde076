# -*- test-case-name: test.unit.test_inventory_haproxy -*-
"""
L{HAProxySource}: the servers of one HAProxy backend (pool), read from the
stats page's CSV export (docs/decisions.md, D25 and D26).

The pieces, each testable alone:

  - L{parse_addresses}: freno's C{Host}/C{Port}/C{Addresses} rules, for
    settings whose C{resolved_addresses} the config loader left empty;
  - L{csv_url}: C{<address path>;csv;norefresh};
  - L{parse_header}, L{parse_status}, L{parse_hosts}, L{filter_hosts}: the
    CSV parser and freno's keep/drop filter. Short or malformed rows raise
    L{HAProxyParseError}; nothing here raises anything else (a short row
    crashed freno);
  - L{CSVFetcher}: the HTTP GET with treq: bounded concurrency (2, as
    freno), a whole-request timeout, the status I{checked} (non-200 is an
    error, unlike freno), a 1 s per-URL cache and in-flight de-duplication so
    that clusters sharing one HAProxy fetch its CSV once;
  - L{HAProxySource}: one cluster's pool across its addresses.

B{Several addresses.} Every address is fetched; the result is the union of
their hosts (first-seen order, de-duplicated). If I{any} address fails
(fetch error, non-200, empty body, parse error, or nothing usable), the
whole refresh fails with L{InventoryError}, so the refresh loop keeps the
last good list. freno concatenated the addresses' hosts, so addresses may
list different servers; a partial union could therefore shrink the cluster,
which is exactly the glitch the refresh loop exists to prevent. The cost is
that an address that stays down freezes the cluster's inventory at its last
good list (logged and counted as a glitch every refresh) rather than
silently dropping its hosts.

L{freno.inventory.factory} builds the sources; one L{CSVFetcher} serves
them all.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

import attr
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    fail,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.hosts import HostKey
from freno.inventory.interfaces import IInventorySource, InventoryError

STATUS_UP = "UP"
STATUS_DOWN = "DOWN"
STATUS_NOLB = "NOLB"
STATUS_NO_CHECK = "no check"
STATUS_UNKNOWN = "unknown"

_KNOWN_STATUSES = (STATUS_UP, STATUS_DOWN, STATUS_NOLB)
_NOT_SERVERS = ("FRONTEND", "BACKEND")


class HAProxyParseError(InventoryError):
    """
    The stats CSV cannot be used (empty, partial, malformed, pool missing, or
    HAProxy reloading).
    """


class HAProxyAddressError(InventoryError):
    """
    An entry of C{HAProxySettings.Addresses} is not a usable address.
    """


# -- addresses -------------------------------------------------------------


def _valid_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


def _parse_address(token: str) -> str:
    if "://" in token:
        parts = urlsplit(token)
        if parts.scheme not in ("http", "https"):
            raise HAProxyAddressError(f"invalid HAProxy address {token!r}: scheme must be http or https")
        host, sep, port = parts.netloc.rpartition(":") if ":" in parts.netloc else (parts.netloc, "", "")
        if not host or (sep and not _valid_port(port)) or ":" in host:
            raise HAProxyAddressError(f"invalid HAProxy address {token!r}: host must be host[:port]")
        return token
    host, sep, port = token.partition(":")
    if not host:
        raise HAProxyAddressError(f"invalid HAProxy address {token!r}: empty host")
    if not sep:
        return f"http://{host}:80"
    if not _valid_port(port):
        raise HAProxyAddressError(f"invalid HAProxy address {token!r}: port must be an integer in 1..65535")
    return f"http://{host}:{port}"


def parse_addresses(host: str, port: int, addresses: str) -> Tuple[str, ...]:
    """
    freno's address rules: C{Host} and C{Port > 0} give the single address
    C{http://Host:Port} and C{Addresses} is ignored; otherwise C{Addresses} is
    split on C{,}, blanks skipped, and each token is C{host} (port 80),
    C{host:port}, or an C{http(s)://} URL (path allowed).

    @raise HAProxyAddressError: a token such as C{localhost:},
        C{localhost:abcd} or C{localhost:abcd:1234}, or a URL without a host.
    """
    if host and port > 0:
        return (f"http://{host}:{port}",)
    tokens = [token.strip() for token in addresses.split(",")]
    return tuple(_parse_address(token) for token in tokens if token)


def csv_url(address: str) -> str:
    """
    The CSV export URL of a stats page: its path plus C{;csv;norefresh}
    (C{http://h:1234} and C{http://h:1234/} give C{http://h:1234/;csv;norefresh}).
    """
    parts = urlsplit(address)
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path + ";csv;norefresh", parts.query, ""))


# -- CSV -------------------------------------------------------------------


@attr.s(frozen=True, auto_attribs=True)
class BackendHost:
    """
    One server row of a pool.

    @ivar name: C{svname}, used as the MySQL host name.
    @ivar status: L{STATUS_UP}, L{STATUS_DOWN}, L{STATUS_NOLB},
        L{STATUS_NO_CHECK} or L{STATUS_UNKNOWN} (MAINT, DRAIN, ...).
    @ivar transitioning: the status carries an C{n/m} health-check counter
        (C{UP 1/2}).
    """

    name: str
    status: str
    transitioning: bool


def parse_header(line: str) -> Dict[str, int]:
    """
    Map column names to indexes: leading C{#} removed, trimmed, split on C{,}.
    """
    tokens = line.lstrip("#").strip().split(",")
    return {token: index for index, token in enumerate(tokens)}


def parse_status(full_status: str) -> Tuple[str, bool]:
    """
    Classify a C{status} cell: C{(status, transitioning)}. C{no check} is
    matched whole; otherwise the first space-separated token is the status
    and a C{/} in the second token means transitioning.
    """
    if full_status == STATUS_NO_CHECK:
        return STATUS_NO_CHECK, False
    tokens = full_status.split(" ")
    transitioning = len(tokens) > 1 and "/" in tokens[1]
    status = tokens[0] if tokens[0] in _KNOWN_STATUSES else STATUS_UNKNOWN
    return status, transitioning


def parse_hosts(csv_text: str, pool_name: str) -> List[BackendHost]:
    """
    Every server row of C{pool_name} (C{FRONTEND}/C{BACKEND} rows skipped).

    @raise HAProxyParseError: empty or header-only text, a header without
        C{pxname}/C{svname}/C{status}, a row too short to hold them (a row of
        another pool only needs its C{pxname}), an empty C{svname}, the pool
        missing, or every server (or every UP server) transitioning, which
        means HAProxy is reloading.
    """
    lines = [line.rstrip("\r") for line in csv_text.split("\n")]
    if not csv_text.strip():
        raise HAProxyParseError("HAProxy CSV parsing error: no lines found")
    if len([line for line in lines if line.strip()]) < 2:
        raise HAProxyParseError("HAProxy CSV parsing error: only got partial file")
    columns = parse_header(lines[0])
    missing = [name for name in ("pxname", "svname", "status") if name not in columns]
    if missing:
        raise HAProxyParseError(f"HAProxy CSV parsing error: header lacks {', '.join(missing)}")
    px, sv, st = columns["pxname"], columns["svname"], columns["status"]
    needed = max(sv, st)
    hosts: List[BackendHost] = []
    pool_found = False
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        tokens = line.split(",")
        if len(tokens) <= px:
            raise HAProxyParseError(f"HAProxy CSV parsing error: malformed row at line {number}")
        if tokens[px] != pool_name:
            continue
        if len(tokens) <= needed or not tokens[sv]:
            raise HAProxyParseError(f"HAProxy CSV parsing error: malformed row at line {number}")
        pool_found = True
        if tokens[sv] in _NOT_SERVERS:
            continue
        status, transitioning = parse_status(tokens[st])
        hosts.append(BackendHost(tokens[sv], status, transitioning))
    if not pool_found:
        raise HAProxyParseError(f"HAProxy CSV parsing: pool not found: {pool_name}")
    transitioning = [h for h in hosts if h.transitioning]
    if hosts and len(transitioning) == len(hosts):
        raise HAProxyParseError("HAProxy: all hosts are in transition. HAProxy is likely reloading")
    up = [h for h in hosts if h.status == STATUS_UP]
    if up and all(h.transitioning for h in up):
        raise HAProxyParseError(
            "HAProxy: all hosts marked as UP are in transition. HAProxy is likely reloading"
        )
    return hosts


def filter_hosts(hosts: Sequence[BackendHost]) -> List[str]:
    """
    freno's filter: keep steady C{UP}, any C{DOWN} and C{no check}; drop
    C{NOLB}, transitioning C{UP} and unknown statuses (MAINT, DRAIN, ...).
    Servers that are not disabled are expected to be active, so they are
    probed.
    """
    kept = []
    for host in hosts:
        if host.status == STATUS_UP and not host.transitioning:
            kept.append(host.name)
        elif host.status in (STATUS_DOWN, STATUS_NO_CHECK):
            kept.append(host.name)
    return kept


def hosts_from_csv(csv_text: str, pool_name: str, port: int) -> List[HostKey]:
    """
    Parse and filter one address's CSV into host keys on C{port} (the
    cluster's port; HAProxy's server address is not used, as in freno).

    @raise HAProxyParseError: see L{parse_hosts}.
    """
    return [HostKey(name, port) for name in filter_hosts(parse_hosts(csv_text, pool_name))]


# -- fetching --------------------------------------------------------------


def _describe(failure: Failure) -> str:
    if failure.check(InventoryError):
        return str(failure.value)
    return f"{type(failure.value).__name__}: {failure.value}"


class TimedOut(InventoryError):
    """
    An HTTP request (body included) did not finish in time.
    """


def get_body(http_client, url: str, reactor: IReactorTime, timeout: float) -> "Deferred[bytes]":
    """
    GET C{url} and read the body, all within C{timeout} seconds.

    @return: a Deferred firing with the body of a 200 answer, or failing with
        L{TimedOut}, L{InventoryError} for another status (C{"404 Not
        Found"}), or the client's own error.
    """
    timed_out = []

    def expire() -> None:
        timed_out.append(True)
        d.cancel()

    def read(response) -> Deferred:
        if response.code != 200:
            phrase = (response.phrase or b"").decode("latin-1")
            raise InventoryError(f"{response.code} {phrase}".rstrip())
        return response.content()

    def finish(result):
        if call.active():
            call.cancel()
        if timed_out and isinstance(result, Failure):
            raise TimedOut(f"timed out after {timeout:g}s")
        return result

    d = http_client.get(url, reactor=reactor)
    d.addCallback(read)
    call = reactor.callLater(timeout, expire)
    return d.addBoth(finish)


@attr.s(auto_attribs=True)
class CSVFetcher:
    """
    GETs stats CSV pages with treq.

    @ivar _reactor: the clock for timeouts and the cache (an C{IReactorTime}).
    @ivar _http_client: a treq C{HTTPClient} (or C{StubTreq} in tests).
    @ivar timeout: seconds for the whole request, body included.
    @ivar cache_seconds: how long a fetched body is reused (freno: 1 s).
    """

    _reactor: IReactorTime
    _http_client: object
    timeout: float = 5.0
    max_concurrency: int = 2
    cache_seconds: float = 1.0
    _semaphore: DeferredSemaphore = attr.ib(init=False)
    _cache: Dict[str, Tuple[float, str]] = attr.ib(init=False, factory=dict)
    _waiters: Dict[str, List[Deferred]] = attr.ib(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self._semaphore = DeferredSemaphore(self.max_concurrency)

    def fetch(self, url: str) -> "Deferred[str]":
        """
        @return: a Deferred firing with the body text of a 200 answer, or
            failing with L{InventoryError} (connection error, timeout,
            non-200 status, empty body).
        """
        now = self._reactor.seconds()
        cached = self._cache.get(url)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return succeed(cached[1])
        waiter: Deferred = Deferred()
        if url in self._waiters:
            self._waiters[url].append(waiter)
            return waiter
        self._waiters[url] = [waiter]
        d = self._semaphore.run(self._get, url)
        d.addBoth(self._deliver, url)
        return waiter

    def _get(self, url: str) -> Deferred:
        return get_body(self._http_client, url, self._reactor, self.timeout)

    def _deliver(self, result, url: str) -> None:
        waiters = self._waiters.pop(url, [])
        if isinstance(result, Failure):
            result = Failure(InventoryError(f"GET {url}: {_describe(result)}"))
        else:
            text = result.decode("utf-8", "replace")
            if not text:
                result = Failure(InventoryError(f"GET {url}: empty body"))
            else:
                self._cache[url] = (self._reactor.seconds(), text)
                result = text
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


@implementer(IInventorySource)
@attr.s(auto_attribs=True)
class HAProxySource:
    """
    The servers of one pool, as listed by every address's stats CSV.

    @ivar addresses: stats page URLs (C{HAProxySettings.resolved_addresses}).
    @ivar pool_name: the backend (C{pxname}) to read.
    @ivar port: the cluster's MySQL port, given to every server.
    """

    addresses: Tuple[str, ...]
    pool_name: str
    port: int
    _fetcher: CSVFetcher

    def hosts(self) -> "Deferred[List[HostKey]]":
        """
        @return: a Deferred firing with the union of every address's hosts,
            or failing with L{InventoryError} if any address failed or none
            listed a usable server.
        """
        if not self.pool_name or not self.addresses:
            return fail(InventoryError("HAProxySettings: no PoolName or no address"))
        ds = [self._one(address) for address in self.addresses]
        return DeferredList(ds, consumeErrors=True).addCallback(self._merge)

    def _one(self, address: str) -> Deferred:
        d = self._fetcher.fetch(csv_url(address))
        d.addCallback(hosts_from_csv, self.pool_name, self.port)
        return d

    def _merge(self, results) -> List[HostKey]:
        errors = []
        merged: List[HostKey] = []
        seen = set()
        for address, (ok, value) in zip(self.addresses, results):
            if not ok:
                errors.append(f"{address}: {_describe(value)}")
                continue
            for key in value:
                if key not in seen:
                    seen.add(key)
                    merged.append(key)
        if errors:
            raise InventoryError("; ".join(errors))
        if not merged:
            raise InventoryError(f"Unable to get any HAProxy hosts for pool: {self.pool_name}")
        return merged
