"""
The seam between the refresh loop and where hosts come from: L{IInventorySource}.
"""

from __future__ import annotations

from zope.interface import Interface


class InventoryError(Exception):
    """
    A host source failed or returned something unusable; the last good
    inventory stays in force. C{str(error)} says why.
    """


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
