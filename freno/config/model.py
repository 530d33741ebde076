# -*- test-case-name: test.unit.test_config,test.unit.test_config_tls,test.unit.test_config_control -*-
"""
The configuration model: frozen attrs classes holding the I{resolved}
configuration (store-to-cluster inheritance applied, environment expanded,
raft addresses normalised).

Names mirror freno's JSON keys in snake_case (C{ThrottleThreshold} is
C{throttle_threshold}). Keys that are ours and not freno's are marked
I{extension} below; they all have defaults, so a freno configuration loads
unchanged.
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

import attr

from freno.config.tls import DEFAULT_SSL_MODE, DISABLED, TLS_REQUIRED_MODES

DEFAULT_LISTEN_PORT = 8087
DEFAULT_RAFT_BIND = "127.0.0.1:10008"
DEFAULT_MYSQL_PORT = 3306
DEFAULT_MEMCACHE_PATH = "freno"
#: Probe threads: measured (bench/probe.py, 50 hosts at 20 Hz) 8 threads keep
#: the reactor's lag p99 near 2 ms where 20 gave 6-10 ms (GIL hand-offs), for
#: the same CPU; each frozen host holds at most one thread for one timeout.
DEFAULT_PROBE_THREADS = 8
#: The probe driver when C{ProbeDriver} is not given: the pure-Twisted client
#: (measured in bench/probe.py: about half the CPU of PyMySQL's thread pool,
#: and the only driver meeting every probing target at 200 hosts).
DEFAULT_PROBE_DRIVER = "native"
#: Every C{ProbeDriver}, the default first.
PROBE_DRIVERS = ("native", "pymysql", "MySQLdb")

#: The lag query gh-ost, pt-heartbeat users and freno's docs use.
HEARTBEAT_QUERY = (
    "select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check "
    "from meta.heartbeat order by ts desc limit 1"
)


@attr.s(frozen=True, auto_attribs=True)
class StaticHostsSettings:
    """
    C{StaticHostsSettings}: a fixed list of C{host[:port]} entries.

    @ivar hosts: the entries as written (validated to be C{host} or C{host:port}).
    """

    hosts: Tuple[str, ...] = ()


@attr.s(frozen=True, auto_attribs=True)
class HAProxySettings:
    """
    C{HAProxySettings}: servers of one HAProxy pool, read from its stats CSV.

    @ivar addresses: the resolved stats URLs (C{Host}/C{Port} win over
        C{Addresses}, as freno), e.g. C{("http://10.0.0.2:1234",)}.
    """

    host: str = ""
    port: int = 0
    addresses: str = ""
    pool_name: str = ""
    resolved_addresses: Tuple[str, ...] = ()


@attr.s(frozen=True, auto_attribs=True)
class ProxySQLSettings:
    """
    C{ProxySQLSettings}: servers of one hostgroup, read from ProxySQL's admin
    interface. Store-level C{ProxySQLAddresses}/C{User}/C{Password} fill
    whatever the cluster leaves empty (docs/decisions.md, D27).
    """

    addresses: Tuple[str, ...] = ()
    user: str = ""
    password: str = attr.ib(default="", repr=False)
    hostgroup_id: int = 0
    ignore_server_ttl_secs: int = 0


@attr.s(frozen=True, auto_attribs=True)
class VitessSettings:
    """
    C{VitessSettings}: REPLICA tablets of one keyspace/shard, from vtctld's API.
    C{cells} already falls back to the store's C{VitessCells}.
    """

    api: str = ""
    cells: Tuple[str, ...] = ()
    keyspace: str = ""
    shard: str = ""
    timeout_secs: int = 0


@attr.s(frozen=True, auto_attribs=True, cache_hash=True)
class TLSSettings:
    """
    I{Extension}: TLS of probe connections, from the inherited keys
    C{SSLMode}, C{SSLCA}, C{SSLCert} and C{SSLKey} (L{freno.config.tls}
    defines the modes and reads the files).

    @ivar mode: one of L{freno.config.tls.SSL_MODES}, normalised
        (C{"verify-identity"}).
    @ivar ca: path of the CA certificates to verify the server against
        (verifying modes only; C{""}: the system's trusted CAs).
    @ivar cert: path of a client certificate (C{""}: none).
    @ivar key: path of its private key (C{""}: in the certificate file).
    """

    mode: str = DEFAULT_SSL_MODE
    ca: str = ""
    cert: str = ""
    key: str = ""

    @property
    def required(self) -> bool:
        """
        Whether a server without TLS is refused.
        """
        return self.mode in TLS_REQUIRED_MODES

    @property
    def enabled(self) -> bool:
        """
        Whether TLS is used when the server offers it.
        """
        return self.mode != DISABLED


@attr.s(frozen=True, auto_attribs=True)
class ClusterSettings:
    """
    One cluster (C{Stores.MySQL.Clusters.<name>}), with every store-level value
    it inherits already applied.

    Exactly one host source is set (validated by the loader); its kind is
    L{inventory_kind}.

    @ivar metric_query: "" means replication lag from C{SHOW SLAVE STATUS}.
    @ivar throttle_threshold: a value strictly above it answers 429.
    @ivar resume_threshold: I{extension} C{ResumeThreshold}: once the value
        went above C{throttle_threshold}, checks answer 429 until it falls
        strictly below this (L{freno.throttle.hysteresis}); C{None} (absent
        or 0): no hysteresis. Always below C{throttle_threshold}.
    @ivar port: the MySQL port for hosts given without one.
    @ivar http_check_port: <= 0 disables HTTP checks.
    @ivar tls: I{extension}: TLS of its probe connections.
    @ivar server_public_key_path: I{extension} C{ServerPublicKeyPath}: the
        server's RSA public key (PEM) for C{caching_sha2_password} full
        authentication without TLS; C{""}: ask the server for it.
    """

    name: str
    user: str = ""
    password: str = attr.ib(default="", repr=False)
    metric_query: str = ""
    cache_millis: int = 0
    throttle_threshold: float = 0.0
    resume_threshold: Optional[float] = None
    port: int = DEFAULT_MYSQL_PORT
    ignore_hosts_count: int = 0
    ignore_hosts_threshold: float = 0.0
    http_check_port: int = 0
    http_check_path: str = ""
    ignore_hosts: Tuple[str, ...] = ()
    ignore_dial_tcp_errors: bool = False
    collation: str = ""
    tls: TLSSettings = attr.ib(factory=TLSSettings)
    server_public_key_path: str = ""
    static_hosts: Optional[StaticHostsSettings] = None
    haproxy: Optional[HAProxySettings] = None
    proxysql: Optional[ProxySQLSettings] = None
    vitess: Optional[VitessSettings] = None

    @property
    def metric_name(self) -> str:
        """
        The metric name clients check: C{mysql/<name>}.
        """
        return "mysql/" + self.name

    @property
    def inventory_kind(self) -> str:
        """
        Which host source this cluster uses: C{"haproxy"}, C{"proxysql"},
        C{"vitess"} or C{"static"} (freno's order of precedence).
        """
        if self.haproxy is not None:
            return "haproxy"
        if self.proxysql is not None:
            return "proxysql"
        if self.vitess is not None:
            return "vitess"
        return "static"


@attr.s(frozen=True, auto_attribs=True)
class ProbeSettings:
    """
    I{Extension}: how hosts are probed. JSON keys live in C{Stores.MySQL}:
    C{ProbeIntervalMillis}, C{ProbeTimeoutMillis}, C{MetricFreshnessMillis},
    C{ProbeThreadPoolSize}, C{ProbeDriver}, C{InventoryRefreshSeconds},
    C{HttpCheckIntervalSeconds}.

    @ivar interval: seconds between probes of one host (freno: 0.05).
    @ivar timeout: connect, read and write timeout of one probe, seconds.
    @ivar freshness: a host value older than this no longer counts, seconds.
    @ivar thread_pool_size: the bound on MySQL client threads.
    @ivar driver: C{"native"} (L{freno.probe.wire.source.NativeMetricSource},
        the default), or C{"pymysql"} or C{"MySQLdb"} (adbapi,
        L{freno.probe.mysql_source.MySQLMetricSource}).
    """

    interval: float = 0.05
    timeout: float = 1.0
    freshness: float = 0.5
    thread_pool_size: int = DEFAULT_PROBE_THREADS
    driver: str = DEFAULT_PROBE_DRIVER
    inventory_refresh_interval: float = 10.0
    http_check_interval: float = 5.0


@attr.s(frozen=True, auto_attribs=True)
class MySQLStoreSettings:
    """
    C{Stores.MySQL}: the store-level settings and the resolved clusters.
    """

    clusters: Mapping[str, ClusterSettings] = attr.ib(factory=dict)
    probe: ProbeSettings = attr.ib(factory=ProbeSettings)
    ignore_dial_tcp_errors: bool = False
    collation: str = ""


#: The roles a control token may have (see L{freno.http.auth}).
ROLES = ("throttle", "operator", "admin", "audit")

#: The default C{AuditLogSize}.
DEFAULT_AUDIT_LOG_SIZE = 10_000


@attr.s(frozen=True, auto_attribs=True)
class ControlToken:
    """
    I{Extension} C{ControlTokens.<name>}: one bearer token of the control
    plane.

    @ivar name: the token's name (the actor recorded in the audit log).
    @ivar token: the secret (never shown in C{repr} or logs).
    @ivar role: one of L{ROLES}.
    """

    name: str
    token: str = attr.ib(repr=False)
    role: str


@attr.s(frozen=True, auto_attribs=True)
class Config:
    """
    The whole configuration of one freno node.

    @ivar raft_nodes: normalised C{host:port} of every member, this one
        included; empty means single-node mode.
    @ivar raft_password: I{extension} C{RaftPassword}: the shared secret a
        multi-node raft group requires.
    @ivar log_format: I{extension} C{LogFormat}: C{"text"} or C{"json"}.
    @ivar force_leadership: C{--force-leadership} (command line only): this
        node acts as leader whatever consensus says.
    @ivar listen_backlog: I{extension} C{ListenBacklog}: the HTTP listening
        socket's accept queue length; 0 (the default) means the kernel's
        C{somaxconn}, at least 1,024 (L{freno.http.listen.listen_backlog}).
    @ivar check_fast_path: I{extension} C{CheckFastPath}: serve the check
        routes through the fast check protocol (L{freno.http.fast_check});
        C{False} serves them through C{twisted.web} like every other route.
    @ivar control_tokens: I{extension} C{ControlTokens}: when non-empty,
        every mutation needs one of these bearer tokens with a role allowing
        it (L{freno.http.auth}).
    @ivar allow_get_mutations: I{extension} C{AllowGetMutations}: C{False}
        turns freno's GET mutation routes off (405).
    @ivar restrict_audit_log: I{extension} C{RestrictAuditLog}: reading the
        audit log needs a token with the C{audit} or C{admin} role.
    @ivar audit_log_size: I{extension} C{AuditLogSize}: how many audit
        records are kept.
    @ivar raft_join: I{extension} C{RaftJoin}: C{RaftBind} need not be in
        C{RaftNodes}: such a node joins a running group, as a learner until
        the group adds it (C{POST /api/v1/members}). Nodes that C{RaftNodes}
        lists are unaffected, so every node may share the setting.
    @ivar raft_hosts_file: I{extension} C{RaftHostsFile}: a hosts(5) file
        consulted (read again on every lookup) before DNS for raft member
        names.
    @ivar raft_listen_address: I{extension} C{RaftListenAddress}:
        C{host:port} the raft port listens on, when it is not C{RaftBind}
        (a member named by host name, e.g. in Kubernetes:
        C{${POD_IP}:10008}).
    @ivar dashboard_urls: I{extension} C{DashboardURLs}: member id (as
        C{/api/v1/status} names it) to the base URL of its HTTP API, for the
        status page's links to other nodes (L{freno.http.dashboard.views});
        sorted C{(id, url)} pairs.
    """

    listen_port: int = DEFAULT_LISTEN_PORT
    listen_backlog: int = 0
    check_fast_path: bool = True
    data_center: str = ""
    environment: str = ""
    domain: str = ""
    share_domain: str = ""
    raft_bind: str = DEFAULT_RAFT_BIND
    raft_data_dir: str = ""
    default_raft_port: int = 0
    raft_nodes: Tuple[str, ...] = ()
    raft_password: str = attr.ib(default="", repr=False)
    backend_mysql_host: str = ""
    backend_mysql_port: int = DEFAULT_MYSQL_PORT
    backend_mysql_schema: str = ""
    backend_mysql_user: str = ""
    backend_mysql_password: str = attr.ib(default="", repr=False)
    backend_mysql_collation: str = ""
    memcache_servers: Tuple[str, ...] = ()
    memcache_path: str = DEFAULT_MEMCACHE_PATH
    enable_profiling: bool = False
    log_format: str = "text"
    mysql: MySQLStoreSettings = attr.ib(factory=MySQLStoreSettings)
    force_leadership: bool = False
    control_tokens: Tuple[ControlToken, ...] = attr.ib(default=(), repr=False)
    allow_get_mutations: bool = True
    restrict_audit_log: bool = False
    audit_log_size: int = DEFAULT_AUDIT_LOG_SIZE
    raft_join: bool = False
    raft_hosts_file: str = ""
    raft_listen_address: str = ""
    dashboard_urls: Tuple[Tuple[str, str], ...] = ()

    @property
    def consensus_kind(self) -> str:
        """
        C{"mysql"} when C{BackendMySQLHost} is set (it wins, as in freno),
        else C{"raft"}.
        """
        return "mysql" if self.backend_mysql_host else "raft"
