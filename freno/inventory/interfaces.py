"""
The seam between the refresh loop and where hosts come from: L{IInventorySource}.
"""

from __future__ import annotations

from typing import Optional

import attr
from zope.interface import Interface


class InventoryError(Exception):
    """
    A host source failed or returned something unusable; the last good
    inventory stays in force. C{str(error)} says why.
    """


@attr.s(frozen=True, auto_attribs=True, slots=True)
class RefreshStatus:
    """
    How a cluster's inventory refreshes have gone (for C{/explain}).

    @ivar last_refresh: when a refresh last succeeded (POSIX seconds), or
        C{None} if none has.
    @ivar glitch: why the latest refresh failed, when it did (the last good
        list stays in force); C{None} once a refresh succeeds again.
    """

    last_refresh: Optional[float] = None
    glitch: Optional[str] = None


class IInventorySource(Interface):
    """
    Lists one cluster's hosts.
    """

    def hosts():
        """
        @return: a Deferred firing with a list of L{freno.hosts.HostKey}, or
            failing with L{InventoryError}.
        """


class IInventory(Interface):
    """
    The current hosts of every cluster, refreshed on a schedule. A failed
    refresh keeps the last good host list (it never empties or shrinks a
    cluster by mistake).
    """

    def hosts(cluster_name):
        """
        The last good host list of C{cluster_name}, or C{None} if it never
        loaded.

        @rtype: C{tuple} of L{freno.hosts.HostKey} or C{None}
        """

    def refresh_status(cluster_name):
        """
        How C{cluster_name}'s refreshes have gone.

        @rtype: L{RefreshStatus}
        """

    def refresh():
        """
        Refresh every cluster now.

        @return: a Deferred firing (never failing) when every cluster's
            refresh has finished.
        """

    def add_observer(observer):
        """
        Call C{observer(cluster_name, hosts)} whenever a cluster's host list
        changes.
        """

    def start():
        """
        Refresh now and then periodically.
        """

    def stop():
        """
        Stop refreshing. @return: a Deferred firing when stopped.
        """
