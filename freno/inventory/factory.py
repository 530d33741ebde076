# -*- test-case-name: test.unit.test_inventory_sources -*-
"""
L{make_source}: the L{IInventorySource} a cluster's configuration asks for
(C{ClusterSettings.inventory_kind}: HAProxy, ProxySQL, Vitess or static, in
freno's order of precedence). L{freno.tap} calls it once per cluster, with one
L{CSVFetcher} shared by every HAProxy cluster (one GET per stats URL).
"""

from __future__ import annotations

from typing import Any, Optional

from freno.config.model import ClusterSettings, HAProxySettings
from freno.inventory.haproxy import CSVFetcher, HAProxySource, parse_addresses
from freno.inventory.interfaces import IInventorySource
from freno.inventory.proxysql import ProxySQLSource
from freno.inventory.static import StaticSource
from freno.inventory.vitess import VitessSource


def haproxy_addresses(settings: HAProxySettings):
    """
    The stats URLs of C{settings}: C{resolved_addresses} when the config
    loader filled them, else computed with freno's rules.

    @raise freno.inventory.haproxy.HAProxyAddressError: a bad address.
    """
    if settings.resolved_addresses:
        return tuple(settings.resolved_addresses)
    return parse_addresses(settings.host, settings.port, settings.addresses)


def make_source(
    cluster: ClusterSettings,
    *,
    reactor: Any,
    http_client: Any,
    threadpool: Any = None,
    haproxy_fetcher: Optional[CSVFetcher] = None,
    haproxy_timeout: float = 5.0,
) -> IInventorySource:
    """
    Build the host source of C{cluster}.

    @param reactor: time for timeouts and caches; C{callFromThread} for
        ProxySQL.
    @param http_client: a treq C{HTTPClient} (or C{StubTreq}) for HAProxy and
        Vitess.
    @param threadpool: a started thread pool for ProxySQL's blocking queries
        (required only for ProxySQL clusters).
    @param haproxy_fetcher: a L{CSVFetcher} shared by every HAProxy cluster
        (its cache and de-duplication then span clusters); one is made per
        source when not given.
    @raise ValueError: a ProxySQL cluster without a thread pool, or bad
        HAProxy addresses.
    """
    kind = cluster.inventory_kind
    if kind == "haproxy":
        settings = cluster.haproxy
        fetcher = haproxy_fetcher or CSVFetcher(reactor, http_client, timeout=haproxy_timeout)
        return HAProxySource(haproxy_addresses(settings), settings.pool_name, cluster.port, fetcher)
    if kind == "proxysql":
        if threadpool is None:
            raise ValueError(f"cluster {cluster.name}: ProxySQL needs a thread pool")
        return ProxySQLSource(cluster.proxysql, reactor, threadpool)
    if kind == "vitess":
        return VitessSource(cluster.vitess, reactor, http_client)
    static = cluster.static_hosts
    return StaticSource(tuple(static.hosts) if static is not None else (), cluster.port)
