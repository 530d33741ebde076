"""
Tests for the status page's history (L{freno.http.dashboard.history}): the
ring buffer's order, wrap-around, missing values and bounded memory.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.http.dashboard.history import DEFAULT_CAPACITY, History, Ring


class RingTests(SynchronousTestCase):
    """
    L{Ring}.
    """

    def test_order(self):
        """
        Points come back oldest first; a missing or non-finite value is
        C{None}.
        """
        ring = Ring(5)
        ring.append(1.0, 0.5)
        ring.append(2.0, None)
        ring.append(3.0, float("inf"))
        ring.append(4.0, 2.0)
        self.assertEqual(ring.points(), [(1.0, 0.5), (2.0, None), (3.0, None), (4.0, 2.0)])
        self.assertEqual(len(ring), 4)

    def test_wraps(self):
        """
        Past its capacity, the oldest points are dropped.
        """
        ring = Ring(3)
        for t in range(10):
            ring.append(float(t), float(t) / 10)
        self.assertEqual(ring.points(), [(7.0, 0.7), (8.0, 0.8), (9.0, 0.9)])

    def test_clear(self):
        """
        A cleared ring is empty and fills again from the start.
        """
        ring = Ring(3)
        for t in range(5):
            ring.append(float(t), 1.0)
        ring.clear()
        self.assertEqual(ring.points(), [])
        ring.append(9.0, 2.0)
        self.assertEqual(ring.points(), [(9.0, 2.0)])

    def test_capacity(self):
        """
        A ring holds at least one point.
        """
        self.assertRaises(ValueError, Ring, 0)


class HistoryTests(SynchronousTestCase):
    """
    L{History}.
    """

    def test_record(self):
        """
        Each record adds one point per configured cluster (C{None} where no
        value was given); other names are ignored.
        """
        history = History(["b", "a"], capacity=10)
        history.record(100.0, {"a": 0.1, "intruder": 5.0})
        history.record(101.0, {"a": 0.2, "b": 3.0})
        self.assertEqual(history.clusters(), ("a", "b"))
        self.assertEqual(history.points("a"), [(100.0, 0.1), (101.0, 0.2)])
        self.assertEqual(history.points("b"), [(100.0, None), (101.0, 3.0)])
        self.assertEqual(history.points("intruder"), [])
        self.assertEqual(history.started_at, 100.0)

    def test_clear(self):
        """
        Clearing starts a fresh buffer from the given time.
        """
        history = History(["a"], capacity=10)
        history.record(100.0, {"a": 0.1})
        history.clear(200.0)
        self.assertEqual(history.points("a"), [])
        self.assertEqual(history.started_at, 200.0)

    def test_bounded_memory(self):
        """
        However long it records, a history holds at most its capacity per
        cluster, in storage allocated once (15 minutes at one point a
        second by default).
        """
        self.assertEqual(DEFAULT_CAPACITY, 900)
        history = History(["a", "b"])
        ring = history._rings["a"]
        before = (ring._times.buffer_info(), ring._values.buffer_info())
        for t in range(10 * DEFAULT_CAPACITY):
            history.record(float(t), {"a": float(t), "b": None})
        self.assertEqual(history.size(), 2 * DEFAULT_CAPACITY)
        self.assertEqual((ring._times.buffer_info(), ring._values.buffer_info()), before)
        points = history.points("a")
        self.assertEqual(len(points), DEFAULT_CAPACITY)
        self.assertEqual(points[0][0], float(9 * DEFAULT_CAPACITY))
        self.assertEqual(points[-1][0], float(10 * DEFAULT_CAPACITY - 1))
