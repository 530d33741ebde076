"""
Tests for L{freno.inventory.fake}: the fakes provide the interfaces and
behave like the real ones where consumers can tell.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.hosts import HostKey
from freno.inventory.fake import FakeInventory, FakeInventorySource
from freno.inventory.interfaces import IInventory, IInventorySource, InventoryError

A, B = HostKey("a", 1), HostKey("b", 2)


class FakeInventorySourceTests(SynchronousTestCase):
    """
    L{FakeInventorySource}.
    """

    def test_interface(self):
        """
        It provides L{IInventorySource}.
        """
        verifyObject(IInventorySource, FakeInventorySource())

    def test_script(self):
        """
        Queued answers come first, then the default repeats.
        """
        source = FakeInventorySource([A])
        source.answer([B])
        source.fail_with(InventoryError("x"))
        source.hold()
        self.assertEqual(self.successResultOf(source.hosts()), [B])
        self.failureResultOf(source.hosts(), InventoryError)
        held = source.hosts()
        self.assertNoResult(held)
        source.held[0].callback([A, B])
        self.assertEqual(self.successResultOf(held), [A, B])
        self.assertEqual(self.successResultOf(source.hosts()), [A])
        source.set_failure("gone")
        self.failureResultOf(source.hosts(), InventoryError)
        self.assertEqual(source.calls, 5)


class FakeInventoryTests(SynchronousTestCase):
    """
    L{FakeInventory}.
    """

    def test_interface(self):
        """
        It provides L{IInventory}.
        """
        verifyObject(IInventory, FakeInventory())

    def test_hosts_and_observers(self):
        """
        Set lists are sorted and de-duplicated like the real one's; observers hear changes only.
        """
        inventory = FakeInventory({"c": [B, A]})
        seen = []
        inventory.add_observer(lambda name, hosts: seen.append((name, hosts)))
        self.assertEqual(inventory.hosts("c"), (A, B))
        self.assertIsNone(inventory.hosts("d"))
        inventory.set_hosts("c", [A, B, B])
        inventory.set_hosts("d", [A])
        self.assertEqual(seen, [("d", (A,))])

    def test_lifecycle(self):
        """
        start, refresh and stop are recorded.
        """
        inventory = FakeInventory()
        inventory.start()
        self.successResultOf(inventory.refresh())
        self.assertEqual((inventory.running, inventory.refreshes), (True, 2))
        self.successResultOf(inventory.stop())
        self.assertFalse(inventory.running)
