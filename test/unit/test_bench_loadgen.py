"""
Tests for L{bench.loadgen}: reading C{wrk} and C{hey} output, with failed
requests counted apart from successes. Fixed outputs; no tool is run.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench.loadgen import LoadError, parse_hey, parse_hey_csv, parse_wrk, percentile

WRK_CLEAN = """\
Running 2s test @ http://127.0.0.1:44445/x
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.30ms    1.78ms  20.80ms   85.20%
    Req/Sec    11.80k     2.55k   17.43k    70.00%
  Latency Distribution
     50%    3.91ms
     75%    4.75ms
     90%    6.05ms
     99%   12.00ms
  23510 requests in 2.00s, 4.35MB read
Requests/sec:  11736.66
Transfer/sec:      2.17MB
"""

WRK_ERRORS = """\
Running 5s test @ http://127.0.0.1:44445/x
  1 threads and 50 connections
  Latency Distribution
     50%  850.00us
     75%    4.75ms
     90%    6.05ms
     99%    1.20s
  10000 requests in 5.00s, 4.35MB read
  Socket errors: connect 0, read 7, write 0, timeout 3
  Non-2xx or 3xx responses: 500
Requests/sec:   2000.00
Transfer/sec:      2.17MB
"""

HEY_CLEAN = """\

Summary:
  Total:\t2.0067 secs
  Slowest:\t0.0241 secs
  Fastest:\t0.0003 secs
  Average:\t0.0058 secs
  Requests/sec:\t8592.1197


Latency distribution:
  10% in 0.0032 secs
  50% in 0.0054 secs
  99% in 0.0151 secs

Status code distribution:
  [200]\t17242 responses



"""

HEY_ERRORS = """\

Summary:
  Total:\t4.0000 secs
  Slowest:\t1.0300 secs
  Fastest:\t0.0003 secs
  Average:\t0.0058 secs
  Requests/sec:\t3000.0000

Response time histogram:
  0.000 [1]\t|
  0.103 [1050]\t|■■■■■■

Latency distribution:
  50% in 0.0054 secs
  99% in 1.0100 secs

Status code distribution:
  [200]\t10000 responses
  [500]\t1000 responses

Error distribution:
  [900]\tHead "http://127.0.0.1:1/x": dial tcp 127.0.0.1:1: connect: connection refused
  [100]\tHead "http://127.0.0.1:1/x": read tcp 127.0.0.1:2->127.0.0.1:1: read: connection reset by peer
"""

HEY_CSV = """\
response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
0.0100,0.0001,0.0000,0.0001,0.0090,0.0002,200,0.0005
1.0200,1.0001,0.0000,0.0001,0.0090,0.0002,200,0.0006
0.0200,0.0001,0.0000,0.0001,0.0090,0.0002,500,0.0007
0.2500,0.0001,0.0000,0.0001,0.0090,0.0002,200,0.0008
"""


class WrkTests(SynchronousTestCase):
    """
    L{parse_wrk}.
    """

    def test_clean(self) -> None:
        """
        Requests, duration and percentiles are read; the rate is of
        successes.
        """
        load = parse_wrk(WRK_CLEAN)
        self.assertEqual((load.ok, load.non2xx, load.errors, load.seconds), (23510, 0, 0, 2.0))
        self.assertEqual((load.p50_ms, load.p99_ms), (3.91, 12.0))
        self.assertEqual(load.rps, 11755.0)
        self.assertEqual(load.failed, 0)

    def test_failures_apart(self) -> None:
        """
        Non-2xx answers are not successes and socket errors are failures;
        units are converted to ms.
        """
        load = parse_wrk(WRK_ERRORS)
        self.assertEqual((load.ok, load.non2xx, load.errors), (9500, 500, 10))
        self.assertEqual(load.rps, 1900.0)
        self.assertEqual(load.failed, 510)
        self.assertEqual((load.p50_ms, load.p99_ms), (0.85, 1200.0))
        self.assertEqual(
            load.error_kinds,
            {"non-2xx answer": 500, "socket read error": 7, "socket timeout error": 3},
        )

    def test_unreadable(self) -> None:
        """
        Output without a request count is an error, with the output's tail.
        """
        e = self.assertRaises(LoadError, parse_wrk, "unable to connect to 127.0.0.1:1\n")
        self.assertIn("unable to connect", str(e))


class HeyTests(SynchronousTestCase):
    """
    L{parse_hey} and L{parse_hey_csv}.
    """

    def test_clean(self) -> None:
        """
        The total time, 2xx answers and percentiles are read.
        """
        load = parse_hey(HEY_CLEAN)
        self.assertEqual((load.ok, load.non2xx, load.errors), (17242, 0, 0))
        self.assertEqual(load.seconds, 2.0067)
        self.assertAlmostEqual(load.p99_ms, 15.1)
        self.assertAlmostEqual(load.slowest_ms, 24.1)

    def test_failures_apart(self) -> None:
        """
        hey's own rate counts errors as requests; here other statuses and
        errors are counted apart, by kind, and the rate is of 2xx only.
        """
        load = parse_hey(HEY_ERRORS)
        self.assertEqual((load.ok, load.non2xx, load.errors), (10000, 1000, 1000))
        self.assertEqual(load.rps, 2500.0)
        self.assertEqual(
            load.error_kinds,
            {"status 500": 1000, "connection refused": 900, "connection reset": 100},
        )

    def test_only_errors(self) -> None:
        """
        A run in which every request failed has no latencies, not an error.
        """
        out = "Summary:\n  Total:\t0.1 secs\n\nError distribution:\n  [20]\tGet \"x\": EOF\n"
        load = parse_hey(out)
        self.assertEqual((load.ok, load.errors, load.error_kinds), (0, 20, {"EOF": 20}))

    def test_unreadable(self) -> None:
        """
        Output without a total time is an error.
        """
        self.assertRaises(LoadError, parse_hey, "flag provided but not defined: -x\n")

    def test_csv(self) -> None:
        """
        Per-request lines give the slowest request, the percentiles and the
        requests over 200 ms; requests absent from the CSV failed.
        """
        load = parse_hey_csv(HEY_CSV, requested=6, seconds=2.0)
        self.assertEqual((load.ok, load.non2xx, load.errors), (3, 1, 2))
        self.assertEqual(load.slowest_ms, 1020.0)
        self.assertEqual(load.over_200ms, 2)
        self.assertEqual(load.p99_ms, 1020.0)
        self.assertEqual(load.p50_ms, 20.0)
        self.assertEqual(
            load.error_kinds, {"status 500": 1, "no answer (absent from hey's CSV)": 2}
        )
        self.assertEqual(load.rps, 1.5)

    def test_csv_unreadable(self) -> None:
        """
        No header, a broken line, or more lines than requests: an error.
        """
        self.assertRaises(LoadError, parse_hey_csv, "", 10, 1.0)
        self.assertRaises(LoadError, parse_hey_csv, HEY_CSV + "0.1,x\n", 10, 1.0)
        self.assertRaises(LoadError, parse_hey_csv, HEY_CSV, 3, 1.0)

    def test_to_json(self) -> None:
        """
        The JSON form carries the rate of successes.
        """
        self.assertEqual(parse_hey(HEY_ERRORS).to_json()["rps"], 2500.0)


class PercentileTests(SynchronousTestCase):
    """
    L{percentile} is the nearest-rank percentile.
    """

    def test_nearest_rank(self) -> None:
        """
        The q quantile of n sorted values is the ceil(q * n)-th.
        """
        values = list(range(1, 101))
        self.assertEqual(percentile(values, 0.99), 99)
        self.assertEqual(percentile(values, 0.5), 50)
        self.assertEqual(percentile([7.0], 0.99), 7.0)
        self.assertNotEqual(percentile([], 0.5), percentile([], 0.5))  # NaN
