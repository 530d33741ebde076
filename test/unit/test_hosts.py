"""
Tests for L{freno.hosts}.
"""

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.hosts import HostKey, InvalidHostError


class HostKeyTests(SynchronousTestCase):
    """
    L{HostKey.parse} reads freno's C{host[:port]} syntax.
    """

    def test_explicit_port(self):
        self.assertEqual(HostKey.parse("127.0.0.1:3307", 3306), HostKey("127.0.0.1", 3307))

    def test_default_port(self):
        self.assertEqual(HostKey.parse("db1", 3306), HostKey("db1", 3306))
        self.assertEqual(str(HostKey("db1", 3306)), "db1:3306")

    def test_invalid(self):
        for text in [":abcd", "h:", "h:abcd", "", "h:0", "h:70000", "h:1:2"]:
            self.assertRaises(InvalidHostError, HostKey.parse, text, 3306)

    @given(st.text())
    def test_never_crashes(self, text):
        """
        Any text either parses or raises L{InvalidHostError}.
        """
        try:
            key = HostKey.parse(text, 3306)
        except InvalidHostError:
            return
        self.assertTrue(key.hostname)
        self.assertTrue(0 < key.port < 65536)
