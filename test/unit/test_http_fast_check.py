"""
Tests for L{freno.http.fast_check} (the fast check channel) and
L{freno.http.check_bytes}, in memory: a whole site over a L{StringTransport},
its timeouts on a L{Clock}.
"""

from __future__ import annotations

import json
import os

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import Config
from freno.http.fast_check import FAST_HEAD_LIMIT, HEAD_TIMEOUT, FastCheckChannel
from freno.http.protocol import MAX_REQUEST_LINE, FrenoChannel
from freno.http.site import build_site
from freno.metrics.expvar import variables
from freno.tap import build_service
from test.unit.test_config_helpers import ConfigFileMixin, base
from test.unit.test_http_check import Service

PEER = IPv4Address("TCP", "10.1.2.3", 40000)
CHECK = b"GET /check/app/mysql/main HTTP/1.1\r\nHost: freno\r\n\r\n"
OK_BODY = b'{"StatusCode":200,"Value":0.5,"Threshold":1,"Message":""}\n'


class Connection:
    """
    One connection to a L{Service}'s site.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.protocol = service.site.buildProtocol(PEER)
        self.transport = StringTransport(peerAddress=PEER)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> bytes:
        """
        Send C{data}; return what the server wrote since the last call.
        """
        self.protocol.dataReceived(data)
        written = self.transport.value()
        self.transport.clear()
        return written

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def lose(self) -> None:
        self.protocol.connectionLost(None)


def answers(data: bytes):
    """
    Split a stream of responses into C{(status line, headers dict, body)}.
    """
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines[1:])
        length = int(headers.get(b"Content-Length", b"0"))
        body, data = data[:length], data[length:]
        out.append((lines[0], headers, body))
    return out


class SiteTests(SynchronousTestCase):
    """
    Which channel the site builds.
    """

    def test_fast_by_default(self):
        """
        The site serves through L{FastCheckChannel} by default (a
        L{FrenoChannel} subclass).
        """
        s = Service(self)
        channel = s.site.buildProtocol(None)
        self.assertIsInstance(channel, FastCheckChannel)
        self.assertIsInstance(channel, FrenoChannel)

    def test_setting_off(self):
        """
        C{CheckFastPath: false} serves through the plain L{FrenoChannel}.
        """
        s = Service(self)
        site = build_site(
            clock=s.clock, config=Config(check_fast_path=False), consensus=s.consensus,
            metrics=s.metrics, registry=s.stats, hostname="h",
        )
        self.assertIs(type(site.buildProtocol(None)), FrenoChannel)
        self.assertIs(type(build_site(
            clock=s.clock, config=Config(), consensus=s.consensus, metrics=s.metrics,
            registry=s.stats, hostname="h", fast_check=False,
        ).buildProtocol(None)), FrenoChannel)


class FastChannelTests(SynchronousTestCase):
    """
    The fast channel over one connection.
    """

    def setUp(self):
        self.s = Service(self)
        self.c = Connection(self.s)
        self.addCleanup(self.c.lose)

    def test_check_answer(self):
        """
        A check is answered with the check's status, headers and body.
        """
        [(status, headers, body)] = answers(self.c.send(CHECK))
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, OK_BODY)
        self.assertEqual(headers[b"Content-Type"], b"application/json")
        self.assertEqual(headers[b"X-Freno-Store"], b"main")
        self.assertFalse(self.c.closed)
        self.assertFalse(self.c.protocol._handed_over)

    def test_head(self):
        """
        HEAD: the status and headers, C{Content-Length: 0}, no body.
        """
        data = self.c.send(b"HEAD /check/app/mysql/main HTTP/1.1\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(data.endswith(b"\r\nContent-Length: 0\r\n\r\n"))

    def test_keep_alive_and_pipelining(self):
        """
        Pipelined requests are answered in order in one write; the
        connection stays open.
        """
        stream = CHECK + b"HEAD /check-read/app/mysql/main/0.1 HTTP/1.1\r\n\r\n" + CHECK
        self.c.protocol.dataReceived(stream)
        self.assertEqual(len(self.c.transport.io.getvalue()), len(self.c.transport.value()))
        got = answers(self.c.transport.value())
        self.assertEqual([a[0] for a in got], [
            b"HTTP/1.1 200 OK", b"HTTP/1.1 429 Too Many Requests", b"HTTP/1.1 200 OK"])
        self.assertFalse(self.c.closed)

    def test_split_head(self):
        """
        A head arriving a byte at a time is answered once complete.
        """
        for byte in CHECK[:-1]:
            self.assertEqual(self.c.send(bytes([byte])), b"")
        self.assertTrue(self.c.send(CHECK[-1:]).startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertFalse(self.c.protocol._handed_over)

    def test_connection_close(self):
        """
        C{Connection: close}: answered with C{Connection: close}, then
        closed; later bytes are dropped.
        """
        data = self.c.send(
            b"GET /check/app/mysql/main HTTP/1.1\r\nConnection: close\r\n\r\n" + CHECK)
        [(status, headers, _)] = answers(data)
        self.assertEqual(headers[b"Connection"], b"close")
        self.assertTrue(self.c.closed)
        self.assertEqual(self.c.send(CHECK), b"")

    def test_http_10(self):
        """
        HTTP/1.0 gets an C{HTTP/1.0} status line and a closed connection,
        even with C{Connection: keep-alive} (as Twisted).
        """
        data = self.c.send(
            b"GET /check/app/mysql/main HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertNotIn(b"Connection:", data)
        self.assertTrue(self.c.closed)

    def test_chunked_body_drained(self):
        """
        A chunked request body goes to twisted.web, which drains it and
        answers; the next request is answered on the same connection.
        """
        data = self.c.send(
            b"GET /check/app/mysql/main HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n" + CHECK)
        got = answers(data)
        self.assertEqual([a[0] for a in got], [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"])
        self.assertEqual(got[0][2], OK_BODY)
        self.assertTrue(self.c.protocol._handed_over)
        self.assertFalse(self.c.closed)

    def test_bad_chunked_body(self):
        """
        A malformed chunked body is twisted.web's 400, then closed.
        """
        data = self.c.send(
            b"GET /check/app/mysql/main HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        self.assertEqual(data, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(self.c.closed)

    def test_content_length_zero(self):
        """
        C{Content-Length: 0} is no body: answered here.
        """
        data = self.c.send(b"GET /check/app/mysql/main HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertFalse(self.c.protocol._handed_over)

    def test_other_routes_handed_over(self):
        """
        A request for another route goes to twisted.web with everything
        after it; the connection stays twisted.web's.
        """
        data = self.c.send(CHECK + b"GET /lb-check HTTP/1.1\r\n\r\n" + CHECK)
        got = answers(data)
        self.assertEqual(len(got), 3)
        self.assertEqual(got[1][2], b'{"StatusCode":200,"Message":"OK"}\n')
        self.assertTrue(self.c.protocol._handed_over)
        self.assertEqual(got[2][2], OK_BODY)

    def test_request_line_too_long(self):
        """
        A request line over the limit is twisted.web's 414.
        """
        data = self.c.send(b"GET /check/" + b"a" * MAX_REQUEST_LINE + b"/mysql/main HTTP/1.1\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), data[:60])
        self.assertTrue(self.c.closed)

    def test_headers_too_long(self):
        """
        Headers over the limit are twisted.web's 431.
        """
        pad = b"X-Pad: " + b"p" * 1000 + b"\r\n"
        data = self.c.send(b"GET /check/app/mysql/main HTTP/1.1\r\n" + pad * 70 + b"\r\n")
        self.assertTrue(
            data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), data[:60])
        self.assertTrue(self.c.closed)

    def test_big_head_still_served(self):
        """
        A head longer than L{FAST_HEAD_LIMIT} but within twisted.web's
        limits is served (by twisted.web).
        """
        pad = b"X-Pad: " + b"p" * FAST_HEAD_LIMIT + b"\r\n"
        data = self.c.send(b"GET /check/app/mysql/main HTTP/1.1\r\n" + pad + b"\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(self.c.protocol._handed_over)

    def test_garbage(self):
        """
        Garbage gets twisted.web's 400 and a closed connection, no
        traceback.
        """
        self.assertEqual(self.c.send(b"garbage\r\n"), b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(self.c.closed)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_bad_header_line(self):
        """
        A header line twisted.web refuses is its 400, once the head is
        complete.
        """
        data = self.c.send(b"GET /check/app/mysql/main HTTP/1.1\r\nNoColon\r\n\r\n")
        self.assertEqual(data, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(self.c.closed)

    def test_slow_head_times_out(self):
        """
        A check request's head not complete within L{HEAD_TIMEOUT} seconds
        of its first byte closes the connection, however the bytes trickle.
        """
        self.c.send(b"GET /check/app")
        for _ in range(int(HEAD_TIMEOUT) - 1):
            self.s.clock.advance(1)
            self.c.send(b"p")
        self.assertFalse(self.c.closed)
        self.s.clock.advance(1)
        self.assertTrue(self.c.closed)
        self.assertEqual(self.c.send(b"/mysql/main HTTP/1.1\r\n\r\n"), b"")

    def test_head_timer_cleared(self):
        """
        A head completed in time leaves no head timer; closing leaves no
        timer at all.
        """
        self.c.send(CHECK[:10])
        self.assertIsNotNone(self.c.protocol._head_timer)
        self.c.send(CHECK[10:])
        self.assertIsNone(self.c.protocol._head_timer)
        self.s.clock.advance(HEAD_TIMEOUT * 2)
        self.assertFalse(self.c.closed)
        self.c.lose()
        self.assertEqual([c for c in self.s.clock.getDelayedCalls() if c.active()], [])

    def test_not_leader(self):
        """
        A node that does not lead answers 500 C{not leader}, saying so in
        C{X-Freno-Leader}.
        """
        self.s.consensus.set_leader(False)
        [(status, headers, body)] = answers(self.c.send(CHECK))
        self.assertEqual(status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(json.loads(body)["Message"], "not leader")
        self.assertIn(b"leader=false", headers[b"X-Freno-Leader"])

    def test_counted_and_recorded(self):
        """
        Checks are counted and recorded in recent apps, with the first
        C{X-Forwarded-For} as the client's address, else the peer's.
        """
        self.c.send(CHECK)
        self.c.send(b"HEAD /check/other/mysql/main HTTP/1.1\r\n"
                    b"X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-For: 192.0.2.8\r\n\r\n")
        _, body = self.s.get("/recent-apps")
        self.assertIn(b'"app/10.1.2.3"', body)
        self.assertIn(b'"other/192.0.2.7"', body)
        counters = variables(self.s.stats).counters
        self.assertEqual(counters["check.app.mysql.main.total"], 1)
        self.assertEqual(counters["check.other.mysql.main.total"], 1)

    def test_bad_threshold_and_path(self):
        """
        A bad check-read threshold or a path that is not UTF-8: 400 naming
        the parameter (JSON on GET, status only on HEAD).
        """
        [(status, _, body)] = answers(self.c.send(
            b"GET /check-read/app/mysql/main/abc HTTP/1.1\r\n\r\n"))
        self.assertEqual(status, b"HTTP/1.1 400 Bad Request")
        self.assertTrue(json.loads(body)["Message"].startswith("threshold: "))
        data = self.c.send(b"HEAD /check/%ff/mysql/main HTTP/1.1\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"))
        self.assertTrue(data.endswith(b"Content-Length: 0\r\n\r\n"))
        self.assertFalse(self.c.protocol._handed_over)

    def test_low_priority_query(self):
        """
        C{p=low} (as Twisted parses queries) makes a low-priority check:
        417 within a second of a normal client's 429.
        """
        self.s.set_value(2.0)
        self.c.send(b"GET /check/n/mysql/main HTTP/1.1\r\n\r\n")
        data = self.c.send(b"GET /check/lp/mysql/main?x=1&p=lo%77 HTTP/1.1\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 417 Expectation Failed\r\n"), data[:80])
        data = self.c.send(b"GET /check/lp/mysql/main?p=lowish HTTP/1.1\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), data[:80])

    def test_check_error(self):
        """
        An error in the check is logged and answered 500; the connection
        goes on.
        """
        check = self.s.site.resource.check_resource

        def broken(*args):
            raise RuntimeError("boom")

        self.patch(check, "evaluate", broken)
        [(status, _, body)] = answers(self.c.send(CHECK))
        self.assertEqual(status, b"HTTP/1.1 500 Internal Server Error")
        self.assertEqual(body, b'{"StatusCode":500,"Message":"internal error"}\n')
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.c.closed)

    def test_back_pressure(self):
        """
        While the transport cannot send, the channel stops reading.
        """
        self.c.protocol.pauseProducing()
        self.assertEqual(self.c.transport.producerState, "paused")
        self.c.protocol.resumeProducing()
        self.assertEqual(self.c.transport.producerState, "producing")


class ConfigTests(ConfigFileMixin, SynchronousTestCase):
    """
    C{CheckFastPath} in the configuration, and in the service tree.
    """

    def test_default_and_set(self):
        """
        Absent means on; C{false} turns it off; anything else is refused.
        """
        self.assertTrue(self.load(base()).check_fast_path)
        self.assertFalse(self.load(base(CheckFastPath=False)).check_fast_path)
        self.assertIn("CheckFastPath", self.fails(base(CheckFastPath="no")))

    def test_service_tree_uses_it(self):
        """
        The node's HTTP service builds the channel the setting names.
        """
        for setting, channel in ((True, FastCheckChannel), (False, FrenoChannel)):
            config = self.load(base(RaftDataDir=os.path.abspath(self.mktemp()),
                                    CheckFastPath=setting))
            top = build_service(reactor, config, interface="127.0.0.1")
            site = top.getServiceNamed("http").factory
            self.assertIs(type(site.buildProtocol(None)), channel)


class _SocketLike(StringTransport):
    """
    A transport with C{writeSomeData}: the kernel takes at most C{room}
    bytes a call (C{None}: the connection is lost).
    """

    room = 1 << 20
    connected = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.direct = b""

    def writeSomeData(self, data):
        if self.room is None:
            return ConnectionLost()
        taken = bytes(data[:self.room])
        self.direct += taken
        return len(taken)


class DirectWriteTests(SynchronousTestCase):
    """
    Answers go straight to the socket while the transport's buffer is
    empty, else through C{transport.write}.
    """

    def setUp(self):
        self.patch(FastCheckChannel, "direct_transports", (_SocketLike,))
        self.s = Service(self)
        self.channel = self.s.site.buildProtocol(PEER)
        self.transport = _SocketLike(peerAddress=PEER)
        self.channel.makeConnection(self.transport)
        self.addCleanup(self.channel.connectionLost, None)

    def test_direct(self):
        """
        A whole answer the kernel takes never touches the buffer.
        """
        self.channel.dataReceived(CHECK)
        self.assertTrue(self.transport.direct.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertEqual(self.transport.value(), b"")

    def test_partial_then_buffered(self):
        """
        What the kernel does not take is buffered in order, and later
        answers are buffered too.
        """
        self.transport.room = 10
        self.channel.dataReceived(CHECK)
        self.channel.dataReceived(CHECK)
        self.assertEqual(self.transport.direct, b"HTTP/1.1 2")
        stream = self.transport.direct + self.transport.value()
        self.assertEqual([a[0] for a in answers(stream)], [b"HTTP/1.1 200 OK"] * 2)

    def test_lost(self):
        """
        A connection found lost: the answer goes to the transport, which
        will find out too.
        """
        self.transport.room = None
        self.channel.dataReceived(CHECK)
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
