"""
Tests for L{freno.consensus.mysql.shared_domain} (freno's shared-domain
health) and for step 9 of the check algorithm that reads it: in memory,
with L{Clock}, L{StubTreq} and a scripted HTTP client.
"""

from __future__ import annotations

import json
from typing import Dict, List

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from zope.interface import implementer

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.interface import ISharedDomainServices
from freno.consensus.local import LocalConsensus
from freno.http.site import build_site
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry
from freno.throttle.checker import Throttler
from freno.throttle.flags import LOW_PRIORITY, OK_IF_NOT_EXISTS, CheckFlags
from freno.consensus.mysql.shared_domain import (
    MetricHealth,
    MetricHealthError,
    SharedDomainHealth,
    aggregate,
    parse_metrics_health,
)

START = 1_700_000_000.0


def health_map(**seconds) -> Dict[str, MetricHealth]:
    """
    A metric-health map from metric name to C{SecondsSinceLastHealthy}.
    """
    return {name: MetricHealth(float(s)) for name, s in seconds.items()}


def seconds_of(health: Dict[str, MetricHealth]) -> Dict[str, float]:
    """
    A metric-health map reduced to C{SecondsSinceLastHealthy} per metric.
    """
    return {name: h.seconds_since_last_healthy for name, h in health.items()}


def body(**seconds) -> bytes:
    """
    A C{/metrics-health} body in freno's shape.
    """
    return json.dumps(
        {
            name.replace("_", "/"): {
                "LastHealthyAt": "2026-11-26T11:26:21.449916859Z",
                "SecondsSinceLastHealthy": s,
            }
            for name, s in seconds.items()
        }
    ).encode("utf-8")


@implementer(ISharedDomainServices)
class SharedConsensus(LocalConsensus):
    """
    A L{LocalConsensus} with the MySQL backend's C{shared_domain_services}.
    """

    def __init__(self, clock, services=None):
        super().__init__(clock)
        self.services: Dict[str, str] = dict(services or {})
        self.service_reads = 0

    def shared_domain_services(self) -> Dict[str, str]:
        self.service_reads += 1
        return dict(self.services)


class PeersResource(Resource):
    """
    Serves C{/metrics-health} per C{Host} header: C{answers[host]} is
    C{(status, body)}; unknown hosts get 404.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.answers: Dict[str, tuple] = {}
        self.requests: List[tuple] = []

    def render_GET(self, request):
        host = request.getHeader(b"host").decode("ascii")
        self.requests.append((host, request.path))
        status, payload = self.answers.get(host, (404, b"404 page not found\n"))
        if request.path != b"/metrics-health":
            status, payload = 404, b"404 page not found\n"
        request.setResponseCode(status)
        return payload


class FakeResponse:
    """
    A treq-like response whose body is a held or fired Deferred.
    """

    def __init__(self, code: int, content: Deferred) -> None:
        self.code = code
        self._content = content
        self.content_read = False

    def content(self) -> Deferred:
        self.content_read = True
        return self._content


class ScriptedClient:
    """
    A treq-like client: C{get(url)} returns C{self.answers[url]} (a
    Deferred), or a Deferred that never fires.
    """

    def __init__(self) -> None:
        self.answers: Dict[str, Deferred] = {}
        self.urls: List[str] = []
        self.cancelled: List[str] = []

    def get(self, url: str) -> Deferred:
        self.urls.append(url)
        d = self.answers.get(url)
        if d is None:
            d = Deferred(lambda _: self.cancelled.append(url))
        return d


class AggregateTests(SynchronousTestCase):
    """
    freno's C{TestAggregate} (pkg/base/metric_health_test.go), case by case.
    """

    def test_empty_other(self):
        """
        Merging an empty map changes nothing.
        """
        for seconds in (0, 7):
            m1 = health_map(a=seconds)
            aggregate(m1, {})
            self.assertEqual(m1, health_map(a=seconds))

    def test_into_empty(self):
        """
        Merging into an empty map copies the other map.
        """
        for seconds in (0, 7):
            m2: Dict[str, MetricHealth] = {}
            aggregate(m2, health_map(a=seconds))
            self.assertEqual(m2, health_map(a=seconds))

    def test_larger_wins(self):
        """
        For a metric in both maps the larger C{SecondsSinceLastHealthy} wins,
        whichever side it is on.
        """
        self.assertEqual(aggregate(health_map(a=7), health_map(a=11)), health_map(a=11))
        self.assertEqual(aggregate(health_map(a=11), health_map(a=7)), health_map(a=11))

    def test_per_metric(self):
        """
        Each metric is merged on its own.
        """
        self.assertEqual(
            aggregate(health_map(a=7, b=19), health_map(a=11, b=17)),
            health_map(a=11, b=19),
        )

    def test_metrics_only_in_other_are_added(self):
        """
        Metrics only in the other map are added.
        """
        self.assertEqual(
            aggregate(health_map(a=7, b=19), health_map(a=11, c=17)),
            health_map(a=11, b=19, c=17),
        )

    def test_chained(self):
        """
        Merges chain: m0 <- m2 <- m1 gives a:11, b:19, c:17.
        """
        m0: Dict[str, MetricHealth] = {}
        aggregate(m0, health_map(a=11, c=17))
        result = aggregate(m0, health_map(a=7, b=19))
        self.assertIs(result, m0)
        self.assertEqual(m0, health_map(a=11, b=19, c=17))


class ParseTests(SynchronousTestCase):
    """
    L{parse_metrics_health}.
    """

    def test_freno_shape(self):
        """
        freno's body parses into L{MetricHealth} values; extra fields are
        ignored.
        """
        payload = json.loads(body(mysql_main=3))
        payload["mysql/main"]["StoreHealth"] = {}
        self.assertEqual(
            parse_metrics_health(json.dumps(payload).encode()),
            {"mysql/main": MetricHealth(3.0, "2026-11-26T11:26:21.449916859Z")},
        )
        self.assertEqual(parse_metrics_health(b"{}"), {})

    def test_garbage(self):
        """
        Anything but an object of objects with a finite numeric
        C{SecondsSinceLastHealthy} is refused whole.
        """
        for garbage in (
            b"", b"not json", b"[]", b"null", b"3", b'{"a": 1}', b'{"a": {}}',
            b'{"a": {"SecondsSinceLastHealthy": "3"}}',
            b'{"a": {"SecondsSinceLastHealthy": true}}',
            b'{"a": {"SecondsSinceLastHealthy": NaN}}',
            b'{"a": {"SecondsSinceLastHealthy": Infinity}}',
            b'{"ok": {"SecondsSinceLastHealthy": 1}, "a": []}',
            b"\xff\xfe",
        ):
            self.assertRaises(MetricHealthError, parse_metrics_health, garbage)


class CollectionTests(SynchronousTestCase):
    """
    L{SharedDomainHealth} over L{StubTreq}: a round every second while
    leader, merge, TTL, fail open.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.consensus = SharedConsensus(
            self.clock, {"dc2:prod": "peer2:8087", "dc3:prod": "peer3:8087"}
        )
        self.peers = PeersResource()
        self.stats = Registry()
        self.events: list = []
        self.shared = SharedDomainHealth(
            self.clock, self.consensus, StubTreq(self.peers), self.stats
        )
        self.shared._log = Logger(observer=self.events.append)
        self.shared.startService()
        self.addCleanup(self.shared.stopService)

    def tick(self, seconds=1.0):
        self.clock.advance(seconds)

    def test_merges_peers(self):
        """
        Each round fetches every shared-domain service's C{/metrics-health}
        and keeps per metric the largest C{SecondsSinceLastHealthy}.
        """
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=0, mysql_other=9))
        self.peers.answers["peer3:8087"] = (200, body(mysql_main=4, mysql_third=2))
        self.assertEqual(self.peers.requests, [])
        self.tick()
        self.assertEqual(
            sorted(self.peers.requests),
            [("peer2:8087", b"/metrics-health"), ("peer3:8087", b"/metrics-health")],
        )
        now = self.clock.seconds()
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", now), 4.0)
        self.assertEqual(self.shared.seconds_since_healthy("mysql/other", now), 9.0)
        self.assertEqual(self.shared.seconds_since_healthy("mysql/third", now), 2.0)
        self.assertIsNone(self.shared.seconds_since_healthy("mysql/none", now))
        self.assertEqual(variables(self.stats).counters.get("sharedomain.fetch.total"), 2)

    def test_each_round_replaces(self):
        """
        A later round's merged entry replaces the earlier one (a recovered
        peer reports 0 again).
        """
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=5))
        self.tick()
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", self.clock.seconds()), 5.0)
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=0))
        self.tick()
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", self.clock.seconds()), 0.0)

    def test_ttl(self):
        """
        An entry that no round refreshed disappears 5 s after it was stored.
        """
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=5))
        self.tick()
        stored = self.clock.seconds()
        self.peers.answers["peer2:8087"] = (200, body(mysql_other=1))
        self.tick(4.0)
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", stored + 4.999), 5.0)
        self.assertIsNone(self.shared.seconds_since_healthy("mysql/main", stored + 5.0))
        self.tick()
        self.assertEqual(seconds_of(self.shared.health(self.clock.seconds())), {"mysql/other": 1.0})
        self.assertNotIn("mysql/main", self.shared._health)

    def test_fail_open(self):
        """
        A peer answering non-200, garbage JSON, or nothing known is logged
        and ignored; the others still count.
        """
        self.consensus.services["dc4:prod"] = "peer4:8087"
        self.consensus.services["dc5:prod"] = "nosuch:8087"
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=2))
        self.peers.answers["peer3:8087"] = (500, body(mysql_main=50))
        self.peers.answers["peer4:8087"] = (200, b'{"mysql/main": "garbage"')
        self.tick()
        self.assertEqual(seconds_of(self.shared.health(self.clock.seconds())), {"mysql/main": 2.0})
        self.assertEqual(variables(self.stats).counters.get("sharedomain.fetch.error"), 3)
        ignored = sorted(e["service_id"] for e in self.events if "ignored" in e["log_format"])
        self.assertEqual(ignored, ["nosuch:8087", "peer3:8087", "peer4:8087"])

    def test_not_leader(self):
        """
        A node that is not leader fetches nothing (and does not even read
        the services); it fetches again once leader.
        """
        self.consensus.set_leader(False)
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=3))
        self.tick(3.0)
        self.assertEqual(self.peers.requests, [])
        self.assertEqual(self.consensus.service_reads, 0)
        self.consensus.set_leader(True)
        self.tick()
        self.assertEqual(len(self.peers.requests), 2)

    def test_no_services(self):
        """
        No other domain shares the ShareDomain: nothing is fetched.
        """
        self.consensus.services.clear()
        for _ in range(3):
            self.tick()
        self.assertEqual(self.peers.requests, [])
        self.assertEqual(self.consensus.service_reads, 3)

    def test_services_error(self):
        """
        A consensus service that raises is logged; the loop goes on.
        """
        def broken():
            raise RuntimeError("boom")

        self.consensus.shared_domain_services = broken
        self.tick()
        failures = [e["log_failure"] for e in self.events if "log_failure" in e]
        self.assertEqual([f.type for f in failures], [RuntimeError])
        self.consensus.shared_domain_services = lambda: {"dc2:prod": "peer2:8087"}
        self.peers.answers["peer2:8087"] = (200, body(mysql_main=3))
        self.tick()
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", self.clock.seconds()), 3.0)

    def test_stop(self):
        """
        After C{stopService} no more rounds run and no call is pending.
        """
        self.successResultOf(self.shared.stopService())
        self.tick(5.0)
        self.assertEqual(self.peers.requests, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class TimeoutTests(SynchronousTestCase):
    """
    A peer that does not answer within 1 s (headers or body) is ignored, and
    rounds never overlap.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.consensus = SharedConsensus(
            self.clock, {"dc2:prod": "peer2:8087", "dc3:prod": "peer3:8087"}
        )
        self.client = ScriptedClient()
        self.stats = Registry()
        self.shared = SharedDomainHealth(
            self.clock, self.consensus, self.client, self.stats
        )
        self.shared._log = Logger(observer=lambda e: None)

    def test_no_headers(self):
        """
        A peer that never answers is cancelled after 1 s; the other's answer
        is stored.
        """
        self.client.answers["http://peer3:8087/metrics-health"] = succeed(
            FakeResponse(200, succeed(body(mysql_main=7)))
        )
        d = self.shared.collect()
        self.assertNoResult(d)
        self.assertIsNone(self.shared.seconds_since_healthy("mysql/main", self.clock.seconds()))
        self.clock.advance(1.0)
        self.successResultOf(d)
        self.assertEqual(self.client.cancelled, ["http://peer2:8087/metrics-health"])
        self.assertEqual(self.shared.seconds_since_healthy("mysql/main", self.clock.seconds()), 7.0)
        self.assertEqual(variables(self.stats).counters.get("sharedomain.fetch.error"), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_body(self):
        """
        A body that never completes counts against the same 1 s; a non-200
        response's body is read too.
        """
        slow = FakeResponse(200, Deferred())
        error = FakeResponse(503, succeed(b"busy"))
        self.client.answers["http://peer2:8087/metrics-health"] = succeed(slow)
        self.client.answers["http://peer3:8087/metrics-health"] = succeed(error)
        d = self.shared.collect()
        self.assertTrue(slow.content_read)
        self.assertTrue(error.content_read)
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.successResultOf(d)
        self.assertEqual(self.shared.health(self.clock.seconds()), {})
        self.assertEqual(variables(self.stats).counters.get("sharedomain.fetch.error"), 2)

    def test_rounds_do_not_overlap(self):
        """
        While a round waits on a peer, no second round starts.
        """
        self.consensus.services = {"dc2:prod": "peer2:8087"}
        self.shared.startService()
        self.clock.advance(1.0)
        self.assertEqual(len(self.client.urls), 1)
        self.clock.advance(0.5)
        self.assertEqual(len(self.client.urls), 1)
        self.clock.advance(0.5)  # the first round timed out at 2.0
        self.assertEqual(len(self.client.urls), 1)
        self.clock.advance(1.0)
        self.assertEqual(len(self.client.urls), 2)
        d = self.shared.stopService()
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class RaftTests(SynchronousTestCase):
    """
    A consensus service without shared domains (raft) leaves the service
    idle.
    """

    def test_idle(self):
        """
        No loop runs and nothing is fetched.
        """
        clock = Clock()
        client = ScriptedClient()
        shared = SharedDomainHealth(clock, LocalConsensus(clock), client, Registry())
        self.assertFalse(shared.enabled)
        shared.startService()
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10.0)
        self.assertEqual(client.urls, [])
        self.assertIsNone(shared.stopService())


class StubHealth:
    """
    A shared-domain source reporting fixed seconds per metric.
    """

    def __init__(self, **seconds) -> None:
        self.seconds = {name.replace("_", "/"): s for name, s in seconds.items()}
        self.asked: List[tuple] = []

    def seconds_since_healthy(self, metric_name, now):
        self.asked.append((metric_name, now))
        return self.seconds.get(metric_name)


def make_throttler(shared, value=0.5):
    clock = Clock()
    clock.advance(START)
    clusters = {"main": ClusterSettings(name="main", throttle_threshold=1.0)}
    config = Config(mysql=MySQLStoreSettings(clusters=clusters))
    metrics = AggregatedMetrics(clock, {"main": 1.0}, 5.0)
    metrics.set("main", ClusterMetric(value, None, clock.seconds()))
    consensus = LocalConsensus(clock)
    throttler = Throttler(
        clock, config, consensus, metrics, Registry(), lambda: 0.5, shared_domain=shared
    )
    return throttler, clock, consensus


class CheckStepTests(SynchronousTestCase):
    """
    Step 9 (shared-domain health) of L{Throttler.check}.
    """

    def check(self, throttler, app="app", flags=None):
        kwargs = {} if flags is None else {"flags": flags}
        return throttler.check(app, "mysql", "main", "10.0.0.1", **kwargs)

    def test_unhealthy_peer(self):
        """
        A peer unhealthy for at least 1 s gives 429 C{Threshold exceeded}
        with the local value and threshold, for every kind of check.
        """
        shared = StubHealth(mysql_main=1)
        throttler, clock, _ = make_throttler(shared)
        for flags in (None, LOW_PRIORITY, OK_IF_NOT_EXISTS, CheckFlags(False, False, 3.0)):
            result = self.check(throttler, flags=flags)
            self.assertEqual(
                (result.status_code, result.message, result.value),
                (429, "Threshold exceeded", 0.5),
            )
        self.assertEqual(result.threshold, 3.0)
        self.assertEqual(shared.asked[0], ("mysql/main", clock.seconds()))

    def test_healthy_peer(self):
        """
        Below 1 s, or no entry: 200.
        """
        for shared in (StubHealth(mysql_main=0.99), StubHealth(mysql_main=0), StubHealth()):
            throttler, _, _ = make_throttler(shared)
            self.assertEqual(self.check(throttler).status_code, 200)

    def test_freno_exempt(self):
        """
        The C{freno} app (the self-check) is exempt.
        """
        throttler, _, _ = make_throttler(StubHealth(mysql_main=30))
        self.assertEqual(self.check(throttler, app="freno").status_code, 200)
        self.assertEqual(self.check(throttler, app="freno-share-domain").status_code, 429)

    def test_after_local_steps(self):
        """
        Local answers come first: over threshold is the local 429 (and marks
        low-priority denial, which step 8 never does), an empty app 417.
        """
        shared = StubHealth(mysql_main=30)
        throttler, clock, _ = make_throttler(shared, value=2.0)
        result = self.check(throttler)
        self.assertEqual((result.status_code, result.value), (429, 2.0))
        throttler2, clock2, _ = make_throttler(shared)
        self.assertEqual(self.check(throttler2).status_code, 429)
        self.assertFalse(throttler2.low_priority.denied("mysql/main", clock2.seconds()))
        self.assertEqual(self.check(throttler2, app="").status_code, 417)

    def test_default_off(self):
        """
        Without a source (the default), step 8 does nothing.
        """
        throttler, _, _ = make_throttler(None)
        self.assertEqual(self.check(throttler).status_code, 200)

    def test_through_site(self):
        """
        C{build_site(shared_domain=...)} reaches the check path: a peer's
        unhealthy metric turns C{/check} into 429, and back to 200 once the
        entry expires.
        """
        clock = Clock()
        clock.advance(START)
        clusters = {"main": ClusterSettings(name="main", throttle_threshold=1.0)}
        config = Config(mysql=MySQLStoreSettings(clusters=clusters))
        metrics = AggregatedMetrics(clock, {"main": 1.0}, 5.0)
        consensus = SharedConsensus(clock, {"dc2:prod": "peer2:8087"})
        peers = PeersResource()
        peers.answers["peer2:8087"] = (200, body(mysql_main=2))
        shared = SharedDomainHealth(clock, consensus, StubTreq(peers), Registry())
        site = build_site(
            clock=clock, config=config, consensus=consensus, metrics=metrics,
            registry=Registry(), hostname="node1", shared_domain=shared,
        )
        client = StubTreq(site.resource)

        def check():
            metrics.set("main", ClusterMetric(0.5, None, clock.seconds()))
            response = self.successResultOf(client.get("http://freno/check/app/mysql/main"))
            return response.code, json.loads(self.successResultOf(response.content()))

        self.assertEqual(check()[0], 200)
        shared.collect()
        code, answer = check()
        self.assertEqual(
            (code, answer),
            (429, {"StatusCode": 429, "Value": 0.5, "Threshold": 1, "Message": "Threshold exceeded"}),
        )
        clock.advance(5.0)
        self.assertEqual(check()[0], 200)
