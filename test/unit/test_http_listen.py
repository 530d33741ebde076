"""
Tests for L{freno.http.listen} and the C{ListenBacklog} key: the HTTP
listening socket's backlog.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from freno.http.listen import MIN_DEFAULT_BACKLOG, listen_backlog, read_somaxconn
from freno.tap import build_service
from test.unit.test_config_helpers import ConfigFileMixin, base


class BacklogTests(SynchronousTestCase):
    """
    L{listen_backlog}.
    """

    def somaxconn(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_configured(self):
        """
        A configured backlog is used as given.
        """
        self.assertEqual(listen_backlog(200, self.somaxconn("4096\n")), 200)
        self.assertEqual(listen_backlog(8192, self.somaxconn("4096\n")), 8192)

    def test_automatic_is_somaxconn(self):
        """
        0 means the kernel's somaxconn when it is at least 1,024.
        """
        self.assertEqual(listen_backlog(0, self.somaxconn("4096\n")), 4096)
        self.assertEqual(listen_backlog(0, self.somaxconn("65535")), 65535)

    def test_automatic_at_least_1024(self):
        """
        A small, unreadable or nonsensical somaxconn gives 1,024.
        """
        self.assertEqual(MIN_DEFAULT_BACKLOG, 1024)
        for path in (self.somaxconn("128\n"), self.somaxconn("junk"), self.somaxconn("-1"),
                     os.path.abspath(self.mktemp())):
            self.assertEqual(listen_backlog(0, path), 1024, path)

    def test_read_somaxconn(self):
        """
        The machine's own value is read when there is one.
        """
        if not os.path.exists("/proc/sys/net/core/somaxconn"):
            self.assertIsNone(read_somaxconn())
            return
        with open("/proc/sys/net/core/somaxconn") as f:
            self.assertEqual(read_somaxconn(), int(f.read()))


class ConfigTests(ConfigFileMixin, SynchronousTestCase):
    """
    C{ListenBacklog} in the configuration, and in the service tree.
    """

    def test_default_and_set(self):
        """
        Absent means 0 (automatic); a value is kept.
        """
        self.assertEqual(self.load(base()).listen_backlog, 0)
        self.assertEqual(self.load(base(ListenBacklog=2048)).listen_backlog, 2048)
        self.assertEqual(self.load(base(listenbacklog=300)).listen_backlog, 300)

    def test_invalid(self):
        """
        Negative, too large and non-integer values are refused, naming the key.
        """
        for value, shown in ((-1, "-1"), (70000, "70000"), (1.5, "1.5"), ("big", '"big"')):
            self.assertEqual(
                self.fails(base(ListenBacklog=value)),
                f"ListenBacklog: expected an integer in 0..65535, got {shown}",
            )

    def endpoint(self, **top):
        config = self.load(base(RaftDataDir=os.path.abspath(self.mktemp()), **top))
        top_service = build_service(reactor, config, interface="127.0.0.1")
        return top_service.getServiceNamed("http").endpoint

    def test_service_tree_uses_it(self):
        """
        The HTTP endpoint of the service tree listens with the backlog:
        the configured one, or the automatic one.
        """
        self.assertEqual(self.endpoint(ListenBacklog=777)._backlog, 777)
        self.assertEqual(self.endpoint()._backlog, listen_backlog(0))
        self.assertGreaterEqual(self.endpoint()._backlog, 1024)
