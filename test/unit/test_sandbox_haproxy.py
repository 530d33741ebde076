"""
Tests for L{freno.sandbox.haproxy.render_config}, which adapts the
recommended C{haproxy.cfg} to local ports.
"""

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.haproxy import render_config

TEMPLATE = """\
global
    daemon
    pidfile /run/haproxy.pid
    maxconn 4096

frontend freno
    bind *:8080
    default_backend freno_leader

backend freno_leader
    option httpchk GET /leader-check
    server node1 10.0.0.1:8087 check inter 250ms fall 1 rise 1
    server node2 10.0.0.2:8087 check inter 250ms fall 1 rise 1
"""


class RenderConfigTests(SynchronousTestCase):
    """
    The template's options survive; addresses and ports are replaced.
    """

    def test_servers_and_bind(self):
        text = render_config(TEMPLATE, 9000, [9101, 9102, 9103])
        self.assertIn("bind 127.0.0.1:9000", text)
        for index, port in enumerate([9101, 9102, 9103]):
            self.assertIn(
                f"server freno{index} 127.0.0.1:{port} check inter 250ms fall 1 rise 1", text
            )
        self.assertNotIn("10.0.0.1", text)
        self.assertIn("option httpchk GET /leader-check", text)

    def test_foreground_only(self):
        """
        Daemon and pidfile lines are dropped: the launcher runs it with -db.
        """
        text = render_config(TEMPLATE, 9000, [9101])
        self.assertNotIn("daemon", text)
        self.assertNotIn("pidfile", text)
        self.assertIn("maxconn 4096", text)
