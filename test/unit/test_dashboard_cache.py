"""
Tests for L{freno.http.dashboard.cache}: values are built at most once per
key per clock second.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.http.dashboard.cache import PerSecondCache


class PerSecondCacheTests(SynchronousTestCase):
    """
    L{PerSecondCache}.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000.2)
        self.cache = PerSecondCache(self.clock)
        self.built = []

    def build(self, value):
        def make():
            self.built.append(value)
            return value
        return make

    def test_same_second(self):
        """
        Within one clock second a key's value is built once, whoever asks.
        """
        for _ in range(10):
            self.assertEqual(self.cache.get("k", self.build("v1")), "v1")
        self.clock.advance(0.7)
        self.assertEqual(self.cache.get("k", self.build("v2")), "v1")
        self.assertEqual(self.built, ["v1"])
        self.assertEqual(self.cache.builds, 1)

    def test_next_second(self):
        """
        In the next clock second the value is built again.
        """
        self.cache.get("k", self.build("v1"))
        self.clock.advance(0.8)
        self.assertEqual(self.cache.get("k", self.build("v2")), "v2")
        self.assertEqual(self.built, ["v1", "v2"])

    def test_keys(self):
        """
        Keys are cached apart.
        """
        self.cache.get("a", self.build(1))
        self.cache.get("b", self.build(2))
        self.assertEqual((self.cache.get("a", self.build(3)), self.cache.get("b", self.build(4))), (1, 2))
        self.assertEqual(self.built, [1, 2])

    def test_bounded(self):
        """
        Past C{max_entries} keys, older entries go first, then all: the
        cache never holds more than its bound.
        """
        cache = PerSecondCache(self.clock, max_entries=3)
        for k in range(3):
            cache.get(k, self.build(k))
        self.clock.advance(1)
        cache.get("new", self.build("new"))
        self.assertEqual(len(cache), 1)
        for k in range(10):
            cache.get(("x", k), self.build(k))
            self.assertLessEqual(len(cache), 3)
