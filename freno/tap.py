# -*- test-case-name: test.unit.test_tap,test.integration.test_tap,test.unit.test_http_listen,test.integration.test_node_edges,test.integration.test_answers -*-
"""
The wiring of C{twistd freno}: L{Options} mirrors the original freno's command
line, and L{makeService} builds the service tree. This is the only module that
touches the global reactor (inside L{makeService}); everything it builds takes
the reactor, clock or thread pool it needs as an argument.

The service tree (a L{MultiService}; its top is a L{HandOffFirst
<freno.consensus.raft.stopping.HandOffFirst>}, so that a raft leader hands
its leadership off before anything stops, docs/handoff.md), started in this
order and stopped in reverse::

    consensus          raft (pysyncobj) node, or the MySQL-table backend when
                       BackendMySQLHost is set: leadership and replicated commands
    probe              inventory refresh, MySQL probes, HTTP checks; only while leader
    shared-domain      other domains' /metrics-health, every 1 s while leader (MySQL
                       backend with a ShareDomain only)
    memcache           publishes aggregated values (when MemcacheServers is set)
    dashboard          the status page's sampler: every 1 s, the leader's cluster
                       values (history), leadership changes, the audit tail
    http               the API: a fast check resource in front of a Klein app, on a
                       socket whose backlog is ListenBacklog (default: somaxconn,
                       at least 1,024; L{freno.http.listen})
"""

from __future__ import annotations

import gc
import socket
import sys
from typing import Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel
from twisted.python.logfile import LogFile
from twisted.python import usage

from freno import __version__
from freno.config.loader import ConfigError, Overrides, load_config, load_default_config
from freno.config.model import Config
from freno.logs import make_log_observer, offer_log_observer


class Options(usage.Options):
    """
    C{twistd freno} options: the original freno's flags, so deployment scripts
    keep working. C{--http} is accepted and ignored (the service always serves).
    """

    synopsis = "[options]"
    longdesc = (
        "Runs one freno node: a throttler that probes MySQL replicas and "
        "answers HEAD /check/<app>/mysql/<cluster> with 200 (go), 429 (lag "
        "above threshold), 417 (app throttled), 404 or 500."
    )

    optParameters = [
        ["config", "c", None,
         "Path to the JSON configuration file (default: /etc/freno.conf.json, "
         "then conf/freno.conf.json, later overriding earlier)."],
        ["http-port", None, None,
         "HTTP port to listen on; overrides ListenPort.", int],
        ["http-interface", None, "",
         "Interface (IP address) to listen on; default all interfaces, as freno."],
        ["raft-bind", None, None,
         "host:port this node's raft listens on and advertises; overrides RaftBind."],
        ["raft-datadir", None, None,
         "Directory for the raft journal and snapshots; overrides RaftDataDir."],
        ["raft-nodes", None, None,
         "Comma-separated host:port of every raft member, this one included; "
         "overrides RaftNodes. An empty string means single-node mode."],
    ]

    optFlags = [
        ["force-leadership", None,
         "Act as leader (probe, serve checks, /leader-check 200) whatever raft "
         "says. Control commands still need a real raft leader."],
        ["verbose", None, "Log at info level."],
        ["debug", None, "Log at debug level."],
        ["quiet", None, "Log errors only (wins over --verbose and --debug)."],
        ["stack", None, "Accepted for compatibility; tracebacks are always logged."],
        ["enable-profiling", None, "Accepted for compatibility (sets EnableProfiling)."],
        ["http", None, "Accepted for compatibility; the service always serves HTTP."],
    ]

    def opt_version(self) -> None:
        """
        Print the version and exit.
        """
        print(f"freno version {__version__}, git commit unknown")
        sys.exit(0)

    def postOptions(self) -> None:
        """
        Load and validate the configuration once, before anything starts. A
        bad configuration prints one line naming the file, the key and the
        problem, and exits with status 1 (never a traceback).
        """
        overrides = Overrides(
            http_port=self["http-port"],
            raft_bind=self["raft-bind"],
            raft_datadir=self["raft-datadir"],
            raft_nodes=self["raft-nodes"],
            force_leadership=bool(self["force-leadership"]),
            enable_profiling=bool(self["enable-profiling"]),
        )
        try:
            self["freno-config"] = (
                load_config(self["config"], overrides=overrides)
                if self["config"]
                else load_default_config(overrides=overrides)
            )
        except ConfigError as e:
            sys.stderr.write(f"freno: configuration error: {e}\n")
            sys.stderr.flush()
            raise SystemExit(1)

    @property
    def log_level(self) -> str:
        """
        The log level the flags ask for: C{error}, C{info}, C{debug} or the
        default C{warn}.
        """
        if self["quiet"]:
            return "error"
        if self["debug"]:
            return "debug"
        if self["verbose"]:
            return "info"
        return "warn"


class HTTPPortService(StreamServerEndpointService):
    """
    The HTTP port. A port that cannot be bound fails the start with one line
    on stderr and exit status 1 (so a supervisor such as systemd restarts the
    node), instead of leaving a running node that serves no HTTP.
    """

    _raiseSynchronously = True

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            sys.stderr.write(
                f"freno: cannot listen on HTTP port {e.interface or '*'}:{e.port}: {e.socketError}\n"
            )
            sys.stderr.flush()
            raise SystemExit(1)


def build_service(
    reactor,
    config: Config,
    force_leadership: bool = False,
    interface: str = "",
    hostname: Optional[str] = None,
) -> MultiService:
    """
    Build the whole service tree of one node.

    @param reactor: the reactor every component uses (for time, sockets and
        threads).
    @param config: the validated configuration.
    """
    from freno.consensus.mysql.service import MySQLBackendConsensus
    from freno.consensus.raft import RaftConsensusService
    from freno.http.dashboard.parts import DashboardParts
    from freno.http.dashboard.sampler import DashboardSampler
    from freno.consensus.raft.stopping import HandOffFirst
    from freno.http.listen import listen_backlog
    from freno.http.site import build_site
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from freno.inventory.factory import make_source
    from freno.inventory.haproxy import CSVFetcher
    from freno.inventory.refresh import Inventory
    from freno.probe.metrics import AggregatedMetrics
    from freno.probe.mysql_source import MySQLMetricSource
    from freno.probe.reactor_lag import ReactorLagMonitor
    from freno.probe.service import ProbeService
    from freno.probe.warmth import WARM_BOUND, LeaderWarmth
    from freno.probe.wire.source import NativeMetricSource
    from freno.publish.memcache import MemcachePublisher
    from freno.metrics.prometheus import MetricsResource
    from freno.metrics.registry import Registry

    registry = Registry()
    force_leadership = force_leadership or config.force_leadership
    hostname = hostname if hostname is not None else socket.gethostname()
    clusters = config.mysql.clusters
    probe_settings = config.mysql.probe

    if config.consensus_kind == "mysql":
        consensus = MySQLBackendConsensus(
            reactor, config, force_leadership=force_leadership, registry=registry, hostname=hostname
        )
    else:
        consensus = RaftConsensusService(
            reactor, config, force_leadership=force_leadership, registry=registry
        )
    # A raft leader hands off before anything stops (docs/handoff.md).
    top = HandOffFirst(getattr(consensus, "stop_after_handoff", lambda: None))
    consensus.setName("consensus")
    consensus.setServiceParent(top)

    metrics = AggregatedMetrics(
        reactor,
        {name: cluster.throttle_threshold for name, cluster in clusters.items()},
        probe_settings.freshness,
    )
    http_client = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    fetcher = CSVFetcher(reactor, http_client)
    sources = {
        name: make_source(
            cluster,
            reactor=reactor,
            http_client=http_client,
            threadpool=reactor.getThreadPool(),
            haproxy_fetcher=fetcher,
        )
        for name, cluster in clusters.items()
    }
    inventory = Inventory(
        reactor, clusters, sources, registry, probe_settings.inventory_refresh_interval
    )
    if probe_settings.driver == "native":
        source = NativeMetricSource(reactor, probe_settings)
    else:
        source = MySQLMetricSource(reactor, probe_settings)
    probe = ProbeService(
        reactor, config, consensus, inventory, source, metrics, registry, http_client=http_client
    )
    probe.setName("probe")
    probe.setServiceParent(top)

    lag = ReactorLagMonitor(reactor, registry)
    lag.setName("reactor-lag")
    lag.setServiceParent(top)

    shared_domain = None
    if config.consensus_kind == "mysql" and config.share_domain:
        from freno.consensus.mysql.shared_domain import SharedDomainHealth

        shared_domain = SharedDomainHealth(reactor, consensus, http_client, registry)
        shared_domain.setName("shared-domain")
        shared_domain.setServiceParent(top)

    if config.memcache_servers:
        publisher = MemcachePublisher(
            reactor, config.memcache_servers, config.memcache_path, metrics, registry, reactor
        )
        publisher.setName("memcache")
        publisher.setServiceParent(top)

    dashboard = DashboardParts.for_config(config, consensus)
    sampler = DashboardSampler(
        reactor, consensus, metrics, dashboard.history, dashboard.leadership, dashboard.audit
    )
    sampler.setName("dashboard")
    sampler.setServiceParent(top)

    # A group of one, or forced leadership, has nobody to wait for: its first
    # /leader-check is 200 (D49, D33); a leader in a group waits to be warm (D68).
    alone = force_leadership or getattr(consensus, "single_node", False)
    warmth = LeaderWarmth(reactor, consensus, metrics, clusters, bound=0.0 if alone else WARM_BOUND)
    site = build_site(
        clock=reactor,
        config=config,
        consensus=consensus,
        metrics=metrics,
        registry=registry,
        hostname=hostname,
        metrics_resource=MetricsResource(registry),
        shared_domain=shared_domain,
        hosts=lambda name: None if inventory.hosts(name) is None else len(inventory.hosts(name)),
        inventory=inventory,
        host_states=probe.host_states,
        dashboard=dashboard,
        leader_check=warmth.leader_check,
    )
    endpoint = TCP4ServerEndpoint(
        reactor,
        config.listen_port,
        backlog=listen_backlog(config.listen_backlog),
        interface=interface,
    )
    http = HTTPPortService(endpoint, site)
    http.setName("http")
    http.setServiceParent(top)
    return top


def _log_file(options: Options):
    """
    Where twistd would have logged: its C{--logfile} (C{-} is stdout), or
    stdout under C{--nodaemon}, or C{twistd.log}.
    """
    parent = getattr(options, "parent", None)
    name = parent.get("logfile") if parent is not None else "-"
    nodaemon = parent.get("nodaemon") if parent is not None else True
    if name == "-" or (not name and nodaemon):
        return sys.stdout
    return LogFile.fromFullPath(name or "twistd.log")


def freeze_start_up_objects(collector=gc) -> None:
    """
    Move every object alive now (modules, configuration, the service tree,
    raft's state: what start-up built and keeps) out of the garbage
    collector's reach, so that its full collections scan only what was
    made since (docs/decisions.md, D86).

    A full collection of a node's start-up objects paused the reactor for
    20-50 ms on a busy machine, a pause every client waiting at that moment
    adds to its answer; frozen, a full collection scans a few hundred
    objects. What start-up leaves as garbage is never collected: a few
    kilobytes, once.

    @param collector: the C{gc} module (tests pass a fake).
    """
    collector.collect()
    collector.freeze()


def makeService(options: Options) -> IService:
    """
    The twistd entry point: the one place that imports the global reactor.

    twistd logs through our observer (text or one JSON object per line, as
    C{LogFormat} says, at the level C{--verbose}/C{--debug}/C{--quiet} ask
    for, with secrets redacted), written where twistd's C{--logfile} says.
    """
    from twisted.internet import reactor

    reactor.callWhenRunning(freeze_start_up_objects)
    config = options["freno-config"]
    top = build_service(
        reactor,
        config,
        force_leadership=bool(options["force-leadership"]),
        interface=options["http-interface"],
    )
    observer = make_log_observer(
        config.log_format,
        LogLevel.levelWithName(options.log_level),
        _log_file(options),
    )
    return offer_log_observer(top, observer)
