"""
Tests for L{freno.inventory.haproxy}: address rules, the CSV parser and
filter (freno's C{pkg/haproxy/parser_test.go} and
C{pkg/config/haproxy_config_test.go} cases), garbage CSV, the fetcher and the
multi-address merge.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from zope.interface.verify import verifyObject

from freno.hosts import HostKey
from freno.inventory.haproxy import (
    STATUS_DOWN,
    STATUS_NO_CHECK,
    STATUS_NOLB,
    STATUS_UNKNOWN,
    STATUS_UP,
    CSVFetcher,
    HAProxyAddressError,
    HAProxyParseError,
    HAProxySource,
    csv_url,
    filter_hosts,
    hosts_from_csv,
    parse_addresses,
    parse_header,
    parse_hosts,
    parse_status,
)
from freno.inventory.interfaces import IInventorySource, InventoryError

HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,"
    "status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,"
    "type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,"
    "hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,"
    "comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,"
)
NCOLS = len(HEADER.split(","))


def row(pxname: str, svname: str, status: str) -> str:
    """
    One stats row with the given pool, server and status; other cells zero.
    """
    cells = ["0"] * NCOLS
    cells[0], cells[1], cells[17] = pxname, svname, status
    return ",".join(cells)


def csv(*rows) -> str:
    """
    A stats CSV: the header, C{rows} (C{(pxname, svname, status)}), trailing newline.
    """
    return "\n".join([HEADER] + [row(*r) for r in rows]) + "\n"


CSV0 = csv(
    ("mysqlcluster0rw", "FRONTEND", "OPEN"),
    ("mysqlcluster0_rw_main", "mysqlcluster0a-dc", "NOLB"),
    ("mysqlcluster0_rw_main", "mysqlcluster0b-dc", "NOLB"),
    ("mysqlcluster0_rw_main", "mysqlcluster0c-dc", "UP"),
    ("mysqlcluster0_rw_main", "mysqlcluster0d-dc", "NOLB"),
    ("mysqlcluster0_rw_main", "BACKEND", "UP"),
    ("mysqlcluster0_rw_panic", "BACKEND", "UP"),
    ("mysqlcluster0ro", "FRONTEND", "OPEN"),
    ("mysqlcluster0_ro_main", "mysqlcluster0a-dc", "DOWN"),
    ("mysqlcluster0_ro_main", "mysqlcluster0b-dc", "DOWN"),
    ("mysqlcluster0_ro_main", "mysqlcluster0c-dc", "NOLB"),
    ("mysqlcluster0_ro_main", "mysqlcluster0d-dc", "NOLB"),
    ("mysqlcluster0_ro_main", "BACKEND", "UP"),
    ("mysqlcluster0_ro_backup", "mysqlcluster0e-dc", "DOWN"),
    ("mysqlcluster0_ro_backup", "mysqlcluster0f-dc", "DOWN"),
    ("mysqlcluster0_ro_backup", "mysqlcluster0g-dc", "NOLB"),
    ("mysqlcluster0_ro_backup", "mysqlcluster0h-dc", "UP"),
    ("mysqlcluster0_ro_backup", "BACKEND", "UP"),
    ("monitoring", "FRONTEND", "OPEN"),
    ("monitoring", "BACKEND", "UP"),
)


def ro_main(*statuses: str) -> str:
    """
    A C{mysqlcluster0_ro_main} pool of servers a, b, c, ... with C{statuses}.
    """
    rows = [("mysqlcluster0ro", "FRONTEND", "OPEN")]
    for letter, status in zip("abcdefgh", statuses):
        rows.append(("mysqlcluster0_ro_main", f"mysqlcluster0{letter}-dc", status))
    rows.append(("mysqlcluster0_ro_main", "BACKEND", "UP"))
    rows.append(("monitoring", "BACKEND", "UP"))
    return csv(*rows)


class AddressTests(SynchronousTestCase):
    """
    L{parse_addresses} and L{csv_url}.
    """

    def test_empty(self):
        """
        Empty, comma-only and space-only strings give no addresses.
        """
        for text in ("", ",", " , ,", "   "):
            self.assertEqual(parse_addresses("", 0, text), ())

    def test_host_port(self):
        """
        C{host:port} becomes C{http://host:port}; bare C{host} gets port 80.
        """
        self.assertEqual(parse_addresses("", 0, "localhost:1234"), ("http://localhost:1234",))
        self.assertEqual(parse_addresses("", 0, "localhost"), ("http://localhost:80",))

    def test_mixed(self):
        """
        URLs keep their scheme and path; blanks are skipped.
        """
        self.assertEqual(
            parse_addresses("", 0, " localhost:1234, http://localhost:1234/stats/pool/ ,,https://other:443"),
            ("http://localhost:1234", "http://localhost:1234/stats/pool/", "https://other:443"),
        )

    def test_errors(self):
        """
        A trailing colon, a non-integer port or two colons are errors, as is a URL without a host.
        """
        for text in ("localhost:", "localhost:abcd", "localhost:abcd:1234", "http://", "http://:80/x"):
            self.assertRaises(HAProxyAddressError, parse_addresses, "", 0, text)

    def test_host_and_port_win(self):
        """
        Host and Port, when both set, override Addresses.
        """
        self.assertEqual(parse_addresses("explicit", 1000, "a:1,b:2"), ("http://explicit:1000",))
        self.assertEqual(parse_addresses("explicit", 0, "a:1"), ("http://a:1",))

    def test_csv_url(self):
        """
        C{;csv;norefresh} is appended to the path (C{/} when there is none).
        """
        self.assertEqual(csv_url("http://10.0.0.2:1234"), "http://10.0.0.2:1234/;csv;norefresh")
        self.assertEqual(csv_url("http://10.0.0.2:1234/"), "http://10.0.0.2:1234/;csv;norefresh")
        self.assertEqual(
            csv_url("http://10.0.0.2:1234/stats/pool"), "http://10.0.0.2:1234/stats/pool;csv;norefresh"
        )


class ParserTests(SynchronousTestCase):
    """
    freno's parser tests, ported.
    """

    def test_parse_header(self):
        """
        Leading C{#} is stripped and names map to indexes.
        """
        columns = parse_header(HEADER)
        self.assertEqual((columns["pxname"], columns["svname"], columns["status"]), (0, 1, 17))
        self.assertNotIn("no_such_element", columns)

    def test_parse_hosts(self):
        """
        Each pool lists its 4 servers; the filter keeps UP, DOWN, drops NOLB.
        """
        for pool, expected in [
            ("mysqlcluster0_rw_main", ["mysqlcluster0c-dc"]),
            ("mysqlcluster0_ro_main", ["mysqlcluster0a-dc", "mysqlcluster0b-dc"]),
            ("mysqlcluster0_ro_backup", ["mysqlcluster0e-dc", "mysqlcluster0f-dc", "mysqlcluster0h-dc"]),
        ]:
            hosts = parse_hosts(CSV0, pool)
            self.assertEqual(len(hosts), 4)
            self.assertEqual(filter_hosts(hosts), expected)

    def test_transitioning_up_dropped(self):
        """
        An C{UP 1/2} server is dropped while another UP server is steady.
        """
        hosts = parse_hosts(ro_main("UP 1/2", "UP", "NOLB", "NOLB"), "mysqlcluster0_ro_main")
        self.assertEqual(len(hosts), 4)
        self.assertEqual(filter_hosts(hosts), ["mysqlcluster0b-dc"])

    def test_all_up_transitioning(self):
        """
        Every UP server transitioning means HAProxy is reloading: an error.
        """
        e = self.assertRaises(
            HAProxyParseError, parse_hosts, ro_main("UP 1/2", "UP 1/2", "NOLB", "NOLB"), "mysqlcluster0_ro_main"
        )
        self.assertIn("all hosts marked as UP are in transition", str(e))

    def test_all_transitioning(self):
        """
        Every server transitioning (NOLB included) is an error.
        """
        e = self.assertRaises(
            HAProxyParseError,
            parse_hosts,
            ro_main("UP 1/2", "UP 1/2", "NOLB 2/3", "NOLB 1/3"),
            "mysqlcluster0_ro_main",
        )
        self.assertIn("all hosts are in transition", str(e))

    def test_parse_status(self):
        """
        Status and transitioning flag of each status form.
        """
        self.assertEqual(parse_status("NOLB"), (STATUS_NOLB, False))
        self.assertEqual(parse_status("NOLB 1/2"), (STATUS_NOLB, True))
        self.assertEqual(parse_status("UP 1/2"), (STATUS_UP, True))
        self.assertEqual(parse_status("DOWN"), (STATUS_DOWN, False))
        self.assertEqual(parse_status("DOWN (agent)"), (STATUS_DOWN, False))
        self.assertEqual(parse_status("no check"), (STATUS_NO_CHECK, False))
        self.assertEqual(parse_status("MAINT"), (STATUS_UNKNOWN, False))
        self.assertEqual(parse_status("DRAIN"), (STATUS_UNKNOWN, False))

    def test_filter(self):
        """
        MAINT and DRAIN are dropped; C{no check} and C{DOWN 1/2} are kept.
        """
        text = ro_main("MAINT", "DRAIN", "no check", "DOWN 1/2", "UP")
        self.assertEqual(
            filter_hosts(parse_hosts(text, "mysqlcluster0_ro_main")),
            ["mysqlcluster0c-dc", "mysqlcluster0d-dc", "mysqlcluster0e-dc"],
        )

    def test_hosts_use_cluster_port(self):
        """
        Server names become host names on the cluster's port.
        """
        self.assertEqual(
            hosts_from_csv(CSV0, "mysqlcluster0_rw_main", 3307), [HostKey("mysqlcluster0c-dc", 3307)]
        )

    def test_header_only(self):
        """
        A header-only or empty body (HAProxy reloading) is an error.
        """
        for text in ("", "\n", HEADER, HEADER + "\n", HEADER + "\n\n"):
            self.assertRaises(HAProxyParseError, parse_hosts, text, "mysqlcluster0_rw_main")

    def test_pool_not_found(self):
        """
        A pool absent from the CSV is an error.
        """
        e = self.assertRaises(HAProxyParseError, parse_hosts, CSV0, "nope")
        self.assertIn("pool not found", str(e))

    def test_short_row(self):
        """
        A row of the pool too short to hold svname or status is an error,
        not a crash (freno's B13); a short row of another pool is ignored.
        """
        text = HEADER + "\nmysqlcluster0_rw_main,x,0,0\n" + row("mysqlcluster0_rw_main", "a", "UP") + "\n"
        self.assertRaises(HAProxyParseError, parse_hosts, text, "mysqlcluster0_rw_main")
        text = HEADER + "\nother,x,0\n" + row("mysqlcluster0_rw_main", "a", "UP") + "\n"
        self.assertEqual(filter_hosts(parse_hosts(text, "mysqlcluster0_rw_main")), ["a"])

    def test_header_without_columns(self):
        """
        A header lacking status is an error.
        """
        e = self.assertRaises(HAProxyParseError, parse_hosts, "# pxname,svname\np,a\n", "p")
        self.assertIn("status", str(e))

    def test_crlf(self):
        """
        CRLF line ends parse like LF.
        """
        self.assertEqual(
            hosts_from_csv(CSV0.replace("\n", "\r\n"), "mysqlcluster0_rw_main", 3306),
            [HostKey("mysqlcluster0c-dc", 3306)],
        )

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from("#,\n\r abUPDOWNLBpool_/0123"), max_size=300), st.text(max_size=5))
    def test_garbage_never_crashes(self, text, pool):
        """
        Garbage CSV raises only L{HAProxyParseError}, and whatever is returned is host keys.
        """
        try:
            hosts = hosts_from_csv(text, pool, 3306)
        except HAProxyParseError:
            return
        self.assertTrue(all(isinstance(h, HostKey) for h in hosts))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_characters=",\n"), max_size=8), max_size=20), max_size=8))
    def test_garbage_rows_never_crash(self, rows):
        """
        Arbitrary rows after a real header raise only L{HAProxyParseError}.
        """
        text = HEADER + "\n" + "\n".join(",".join(cells) for cells in rows)
        for pool in ("", "p", "mysqlcluster0_rw_main"):
            try:
                hosts_from_csv(text, pool, 3306)
            except HAProxyParseError:
                pass


class Page(Resource):
    """
    A stats page whose answer the test sets: C{code}, C{body}; counts hits per path.
    """

    isLeaf = True

    def __init__(self, body: bytes = b"", code: int = 200):
        super().__init__()
        self.body, self.code, self.hits = body, code, []

    def render_GET(self, request):
        self.hits.append(request.uri.decode())
        request.setResponseCode(self.code)
        return self.body


class FetcherAndSourceTests(SynchronousTestCase):
    """
    L{CSVFetcher} and L{HAProxySource} against in-memory HTTP.
    """

    def setUp(self):
        self.clock = Clock()
        self.page = Page(CSV0.encode())
        self.client = StubTreq(self.page)
        self.fetcher = CSVFetcher(self.clock, self.client, timeout=5.0)

    def source(self, *addresses, pool="mysqlcluster0_ro_backup"):
        return HAProxySource(addresses, pool, 3306, self.fetcher)

    def test_interface(self):
        """
        L{HAProxySource} provides L{IInventorySource}.
        """
        verifyObject(IInventorySource, self.source("http://h:1"))

    def test_hosts(self):
        """
        The pool's kept servers, on the cluster port, from C{/;csv;norefresh}.
        """
        hosts = self.successResultOf(self.source("http://h:1").hosts())
        self.assertEqual([h.hostname for h in hosts], ["mysqlcluster0e-dc", "mysqlcluster0f-dc", "mysqlcluster0h-dc"])
        self.assertEqual(self.page.hits, ["/;csv;norefresh"])

    def test_status_checked(self):
        """
        A non-200 answer fails, even with a valid CSV body.
        """
        self.page.code = 500
        f = self.failureResultOf(self.source("http://h:1").hosts(), InventoryError)
        self.assertIn("500", str(f.value))

    def test_empty_body(self):
        """
        An empty body fails.
        """
        self.page.body = b""
        f = self.failureResultOf(self.source("http://h:1").hosts(), InventoryError)
        self.assertIn("empty body", str(f.value))

    def test_cache(self):
        """
        A body is reused for 1 s, then fetched again.
        """
        src = self.source("http://h:1")
        self.successResultOf(src.hosts())
        self.successResultOf(src.hosts())
        self.assertEqual(len(self.page.hits), 1)
        self.clock.advance(1.0)
        self.successResultOf(src.hosts())
        self.assertEqual(len(self.page.hits), 2)

    def test_union_of_addresses(self):
        """
        Hosts from several addresses are merged without duplicates.
        """
        hosts = self.successResultOf(self.source("http://h:1", "http://h:2/").hosts())
        self.assertEqual(len(hosts), 3)

    def test_one_address_bad_fails(self):
        """
        One address answering garbage fails the whole refresh, naming it.
        """

        class Two(Resource):
            def getChild(self, name, request):
                return Page(b"garbage") if request.getHost().port == 2 else Page(CSV0.encode())

        fetcher = CSVFetcher(self.clock, StubTreq(Two()), timeout=5.0)
        src = HAProxySource(("http://h:1", "http://h:2"), "mysqlcluster0_ro_backup", 3306, fetcher)
        f = self.failureResultOf(src.hosts(), InventoryError)
        self.assertIn("http://h:2", str(f.value))
        self.assertNotIn("http://h:1", str(f.value))

    def test_nothing_kept_fails(self):
        """
        A pool whose servers are all dropped by the filter fails.
        """
        self.page.body = ro_main("NOLB", "MAINT").encode()
        f = self.failureResultOf(self.source("http://h:1", pool="mysqlcluster0_ro_main").hosts(), InventoryError)
        self.assertIn("Unable to get any HAProxy hosts", str(f.value))

    def test_not_configured(self):
        """
        No pool name or no address fails.
        """
        self.failureResultOf(self.source("http://h:1", pool="").hosts(), InventoryError)
        self.failureResultOf(self.source().hosts(), InventoryError)

    def test_timeout(self):
        """
        A page that never answers fails after the timeout, and the fetcher frees its slot.
        """
        from twisted.web.server import NOT_DONE_YET

        class Hang(Resource):
            isLeaf = True

            def render_GET(self, request):
                return NOT_DONE_YET

        fetcher = CSVFetcher(self.clock, StubTreq(Hang()), timeout=5.0)
        src = HAProxySource(("http://h:1",), "p", 3306, fetcher)
        d = src.hosts()
        self.assertNoResult(d)
        self.clock.advance(5.0)
        f = self.failureResultOf(d, InventoryError)
        self.assertIn("timed out", str(f.value))
        self.assertEqual(fetcher._waiters, {})

    def test_in_flight_shared(self):
        """
        Concurrent fetches of one URL share one request.
        """
        from twisted.web.server import NOT_DONE_YET

        requests = []

        class Held(Resource):
            isLeaf = True

            def render_GET(self, request):
                requests.append(request)
                return NOT_DONE_YET

        client = StubTreq(Held())
        fetcher = CSVFetcher(self.clock, client, timeout=5.0)
        d1, d2 = fetcher.fetch("http://h:1/;csv;norefresh"), fetcher.fetch("http://h:1/;csv;norefresh")
        self.assertEqual(len(requests), 1)
        requests[0].write(b"body")
        requests[0].finish()
        client.flush()
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), ("body", "body"))
