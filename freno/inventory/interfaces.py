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
