"""
A whole node in memory for the tests of check answers, C{/explain},
hysteresis and multi-store checks (not a test module itself): the real
site (L{build_site}) over a L{LocalConsensus}, the real L{ProbeService}
probing a L{FakeMetricSource} through the real L{Inventory} (fed by
L{FakeInventorySource}s), all on one L{Clock}, served through StubTreq.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from treq.testing import StubTreq
from twisted.internet.task import Clock

from freno.config.model import (
    ClusterSettings,
    Config,
    MySQLStoreSettings,
    ProbeSettings,
    StaticHostsSettings,
)
from freno.consensus.local import LocalConsensus
from freno.hosts import HostKey
from freno.http.site import build_site
from freno.inventory.fake import FakeInventorySource
from freno.inventory.refresh import Inventory
from freno.probe.fake import FakeMetricSource
from freno.probe.metrics import AggregatedMetrics
from freno.probe.service import ProbeService
from freno.metrics.registry import Registry

START = 1_700_000_000.0
#: The probe interval of the harness (so 429s retry after 2 x 0.05 s).
INTERVAL = 0.05


class TermConsensus(LocalConsensus):
    """
    A L{LocalConsensus} that also has a raft term (as the raft service).
    """

    current_term = 7

    def term(self) -> int:
        """
        The term.
        """
        return self.current_term


def host(name: str, port: int = 3306) -> HostKey:
    """
    A host key.
    """
    return HostKey(name, port)


def cluster(name: str, threshold: float = 1.0, **kw) -> ClusterSettings:
    """
    A static-hosts cluster's settings.
    """
    return ClusterSettings(
        name=name, throttle_threshold=threshold, static_hosts=StaticHostsSettings(("x",)), **kw
    )


class Node:
    """
    One node in memory; see the module docstring.

    @param clusters: the clusters' settings.
    @param hosts: each cluster's hosts (its inventory source answers them).
    @param values: each host's probe value.
    @param leader: whether the node starts as leader.
    @param consensus: the consensus to use (default a L{LocalConsensus}).
    @param dice: the ratio dice's fixed value.
    @param probe: the probe settings.
    @param dashboard: the status page's parts (default: fresh ones).
    """

    def __init__(
        self,
        testcase,
        clusters: Sequence[ClusterSettings],
        hosts: Dict[str, Sequence[HostKey]],
        values: Optional[Dict[HostKey, float]] = None,
        leader: bool = True,
        consensus: Optional[LocalConsensus] = None,
        dice: float = 0.5,
        probe: Optional[ProbeSettings] = None,
        shared_domain=None,
        http_client=None,
        dashboard=None,
    ) -> None:
        self.testcase = testcase
        self.clock = Clock()
        self.clock.advance(START)
        probe = probe or ProbeSettings(interval=INTERVAL, freshness=0.5, http_check_interval=5.0)
        self.clusters = {c.name: c for c in clusters}
        self.config = Config(mysql=MySQLStoreSettings(clusters=self.clusters, probe=probe))
        self.consensus = consensus or LocalConsensus(self.clock, leader=leader, service_id="node1:8087")
        self.metrics = AggregatedMetrics(
            self.clock, {n: c.throttle_threshold for n, c in self.clusters.items()}, probe.freshness
        )
        self.stats = Registry()
        self.sources = {name: FakeInventorySource(list(hosts.get(name, ()))) for name in self.clusters}
        self.inventory = Inventory(self.clock, self.clusters, self.sources, self.stats, 10.0)
        self.source = FakeMetricSource(self.clock)
        for key, value in (values or {}).items():
            self.source.set_value(key, value)
        self.service = ProbeService(
            self.clock, self.config, self.consensus, self.inventory, self.source,
            self.metrics, self.stats, http_client=http_client,
        )
        self.dice = dice
        self.site = build_site(
            clock=self.clock,
            config=self.config,
            consensus=self.consensus,
            metrics=self.metrics,
            registry=self.stats,
            hostname="node1",
            random=lambda: self.dice,
            shared_domain=shared_domain,
            inventory=self.inventory,
            host_states=self.service.host_states,
            dashboard=dashboard,
        )
        self.throttler = self.site.resource.check_resource._throttler
        self.treq = StubTreq(self.site.resource)
        self.service.startService()
        testcase.addCleanup(self.stop)
        self.settle()

    def stop(self) -> None:
        """
        Stop probing and leave no delayed call behind.
        """
        if self.service.running:
            self.service.stopService()
        self.clock.advance(60)

    def settle(self, rounds: int = 2) -> None:
        """
        Let C{rounds} probe rounds run (every host is probed and
        aggregated).
        """
        for _ in range(int(rounds * 10)):
            self.clock.advance(INTERVAL / 10)

    def set_value(self, key: HostKey, value: float, settle: bool = True) -> None:
        """
        Make C{key} answer C{value} from now on (and let it be probed).
        """
        self.source.set_value(key, value)
        if settle:
            self.settle()

    def request(self, method: str, path: str, headers=None) -> Tuple[object, bytes]:
        """
        C{(response, body)} of one request.
        """
        d = self.treq.request(method, "http://freno" + path, headers=headers, allow_redirects=False)
        response = self.testcase.successResultOf(d)
        return response, self.testcase.successResultOf(response.content())

    def headers(self, method: str, path: str) -> Tuple[int, Dict[str, str]]:
        """
        The status and the lower-cased C{x-freno-*}/C{retry-after} headers
        (first values, as text) of one request.
        """
        response, _ = self.request(method, path)
        return response.code, answer_headers(response)

    def status(self, path: str) -> int:
        """
        The status of C{HEAD path}.
        """
        return self.request("HEAD", path)[0].code


def answer_headers(response) -> Dict[str, str]:
    """
    A response's check-answer headers: lower-cased names to their (single)
    values as text.
    """
    found = {}
    for name, values in response.headers.getAllRawHeaders():
        lower = name.lower().decode("ascii")
        if lower.startswith("x-freno-") or lower == "retry-after":
            assert len(values) == 1, (name, values)
            found[lower] = values[0].decode("utf-8")
    return found
