# -*- test-case-name: test.unit.test_inventory_vitess,test.integration.test_inventory_vitess -*-
"""
L{VitessSource}: the serving REPLICA tablets of one keyspace/shard, from
vtctld's HTTP API.

C{GET <api>/api/keyspace/<ks>/tablets/<shard>[?cells=a%2Cb]} with treq,
bounded by C{TimeoutSecs} (default 5 s) for the whole request. A non-200
answer fails with its status line (C{404 Not Found}); a body that is not a
JSON array of tablet objects, or a kept tablet without a usable host name or
port, fails with L{InventoryError}. The timeout is per source, never a shared
global (docs/decisions.md, D28).

L{freno.inventory.factory} builds it.
"""

from __future__ import annotations

import json
from typing import Any, List, Sequence
from urllib.parse import quote

import attr
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.model import VitessSettings
from freno.hosts import HostKey
from freno.inventory.haproxy import get_body
from freno.inventory.interfaces import IInventorySource, InventoryError

#: C{topodata.TabletType.REPLICA}.
TABLET_TYPE_REPLICA = 2
DEFAULT_TIMEOUT_SECS = 5


def _cells(cells: Sequence[str]) -> List[str]:
    return [cell.strip() for cell in cells if cell.strip()]


def tablets_url(api: str, keyspace: str, shard: str, cells: Sequence[str] = ()) -> str:
    """
    The tablets URL: C{api} without trailing C{/}, C{/api} appended unless
    present, then C{/keyspace/<ks>/tablets/<shard>}, and C{?cells=} with the
    non-blank cells joined by C{%2C}.
    """
    api = api.rstrip("/")
    if not api.endswith("/api"):
        api += "/api"
    url = f"{api}/keyspace/{keyspace}/tablets/{shard}"
    kept = _cells(cells)
    if kept:
        url += "?cells=" + quote(",".join(kept), safe="")
    return url


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _serveable(tablet: dict) -> bool:
    stats = tablet.get("stats")
    if stats is None:
        return True
    if not isinstance(stats, dict):
        raise InventoryError("malformed tablet: stats is not an object")
    last_error = stats.get("last_error") or ""
    return last_error == "" and stats.get("realtime") is not None


def parse_tablets(body: bytes, cells: Sequence[str] = ()) -> List[HostKey]:
    """
    Keep tablets in one of C{cells} (all cells when none is given) whose
    integer C{type} is REPLICA and that are serveable (no C{stats}, or an
    empty C{stats.last_error} and a C{stats.realtime}).

    @raise InventoryError: the body is not a JSON array of objects, or a kept
        tablet has no non-empty C{mysql_hostname} or no C{mysql_port} in
        1..65535.
    """
    try:
        tablets = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InventoryError(f"malformed tablets JSON: {e}") from None
    if not isinstance(tablets, list):
        raise InventoryError("malformed tablets JSON: not an array")
    wanted = set(_cells(cells))
    hosts = []
    for tablet in tablets:
        if not isinstance(tablet, dict):
            raise InventoryError("malformed tablet: not an object")
        if tablet.get("type") != TABLET_TYPE_REPLICA or not _is_int(tablet.get("type")):
            continue
        if wanted:
            alias = tablet.get("alias")
            cell = alias.get("cell") if isinstance(alias, dict) else None
            if cell not in wanted:
                continue
        if not _serveable(tablet):
            continue
        hostname, port = tablet.get("mysql_hostname"), tablet.get("mysql_port")
        if not isinstance(hostname, str) or not hostname or not _is_int(port) or not 0 < port < 65536:
            raise InventoryError(f"malformed tablet: mysql_hostname={hostname!r} mysql_port={port!r}")
        hosts.append(HostKey(hostname, port))
    return hosts


def _describe(failure: Failure) -> str:
    if failure.check(InventoryError):
        return str(failure.value)
    return f"{type(failure.value).__name__}: {failure.value}"


@implementer(IInventorySource)
@attr.s(auto_attribs=True)
class VitessSource:
    """
    One keyspace/shard's REPLICA tablets.

    @ivar settings: the cluster's L{VitessSettings} (cells already inherited).
    @ivar _reactor: the clock for the timeout.
    @ivar _http_client: a treq C{HTTPClient} (or C{StubTreq}).
    """

    settings: VitessSettings
    _reactor: IReactorTime
    _http_client: object

    @property
    def timeout(self) -> float:
        """
        C{TimeoutSecs}, or 5 s when it is 0.
        """
        return self.settings.timeout_secs or DEFAULT_TIMEOUT_SECS

    @property
    def url(self) -> str:
        """
        The tablets URL of these settings (see L{tablets_url}).
        """
        s = self.settings
        return tablets_url(s.api, s.keyspace, s.shard, s.cells)

    def hosts(self) -> "Deferred[List[HostKey]]":
        """
        @return: a Deferred firing with the kept tablets' hosts, or failing
            with L{InventoryError}.
        """
        s = self.settings
        if not s.api or not s.keyspace:
            return fail(InventoryError("VitessSettings: no API or no Keyspace"))
        url = self.url
        timeout = self.timeout
        d = get_body(self._http_client, url, self._reactor, timeout)
        d.addCallback(parse_tablets, s.cells)

        def wrap(failure: Failure):
            raise InventoryError(f"GET {url}: {_describe(failure)}")

        return d.addErrback(wrap)
