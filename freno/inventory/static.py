# -*- test-case-name: test.unit.test_inventory_sources -*-
"""
L{StaticSource}: a cluster's hosts written in the configuration
(C{StaticHostsSettings.Hosts}: C{host} or C{host:port}, the cluster's
C{Port} when none is given).
"""

from __future__ import annotations

from typing import List, Tuple

import attr
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from freno.hosts import HostKey, InvalidHostError
from freno.inventory.interfaces import IInventorySource, InventoryError


def parse_static_hosts(entries: Tuple[str, ...], default_port: int) -> List[HostKey]:
    """
    Parse C{host} / C{host:port} entries; a host without a port gets
    C{default_port} (the cluster's C{Port}).

    @raise InventoryError: an entry is not a valid host, or there are none
        (freno logs C{Could not find any hosts definition} then).
    """
    if not entries:
        raise InventoryError("no hosts definition: StaticHostsSettings.Hosts is empty")
    try:
        return [HostKey.parse(entry, default_port) for entry in entries]
    except InvalidHostError as e:
        raise InventoryError(str(e)) from e


@implementer(IInventorySource)
@attr.s(frozen=True, auto_attribs=True)
class StaticSource:
    """
    Hosts fixed by configuration. Entries are parsed on every call, so a bad
    entry fails each refresh with a clear L{InventoryError} instead of being
    silently dropped.

    @ivar entries: the C{host[:port]} strings as written.
    @ivar default_port: the cluster's MySQL port.
    """

    entries: Tuple[str, ...]
    default_port: int

    def hosts(self) -> "Deferred[List[HostKey]]":
        """
        @return: an already-fired Deferred with the configured hosts, or
            failed with L{InventoryError}.
        """
        try:
            return succeed(parse_static_hosts(self.entries, self.default_port))
        except InventoryError:
            return fail()
