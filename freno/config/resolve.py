# -*- test-case-name: test.unit.test_config_resolve,test.unit.test_config,test.unit.test_config_tls,test.unit.test_config_control,test.unit.test_hysteresis -*-
"""
From a merged, type-checked document (L{freno.config.schema}) to the
resolved L{Config}: C{${ENV}} expansion, store-to-cluster inheritance, host
source checks, probe extensions and the consensus checks.

B{Inheritance} (docs/decisions.md, D41). A key I{present} in a cluster's JSON
overrides the store's value even when it is C{0}, C{""} or C{[]}: a cluster
can say C{"ThrottleThreshold": 0}, C{"IgnoreHostsCount": 0} or
C{"MetricQuery": ""} (replication lag). A key I{absent} from the cluster (or
C{null}) inherits the store's value, or the default. The one exception is
C{Port}: 0 is not a port, so 0 keeps meaning "inherit" (store 0 means 3306).

B{ProxySQL} (docs/decisions.md, D27). The store's C{ProxySQLAddresses},
C{ProxySQLUser} and C{ProxySQLPassword} fill whichever of the cluster's
C{Addresses}, C{User}, C{Password} are empty.

B{Host sources.} A source counts as given when its object has any non-empty
field; exactly one must be given, and it must then be complete.

B{TLS} (our extension; freno had none). C{SSLMode}, C{SSLCA}, C{SSLCert},
C{SSLKey} and C{ServerPublicKeyPath} are inherited like C{User}. Each
cluster's resolved combination is checked (L{freno.config.tls}): the mode
is known, the files are readable and hold what they should, the key
belongs to the certificate, C{SSLCA} comes with a verifying mode and no
file with C{"disabled"}. The error names the key where the cluster or, if
it inherited it, the store set it. C{ProbeDriver: "MySQLdb"} refuses every
one of these keys: mysqlclient's TLS options depend on the C library it was
built against and are not tested here, so they would not surely mean what
they mean with the other drivers.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import attr

from freno.config.addresses import (
    AddressProblem,
    check_http_url,
    check_raft_address,
    normalise_raft_address,
    normalise_raft_nodes,
    parse_haproxy_address,
    parse_haproxy_addresses,
)
from freno.config.environment import EnvironmentProblem, expand
from freno.config.errors import ConfigError, format_path
from freno.config.model import (
    DEFAULT_AUDIT_LOG_SIZE,
    DEFAULT_PROBE_DRIVER,
    PROBE_DRIVERS,
    DEFAULT_LISTEN_PORT,
    DEFAULT_MEMCACHE_PATH,
    DEFAULT_MYSQL_PORT,
    DEFAULT_PROBE_THREADS,
    DEFAULT_RAFT_BIND,
    ROLES,
    ClusterSettings,
    Config,
    ControlToken,
    HAProxySettings,
    MySQLStoreSettings,
    ProbeSettings,
    ProxySQLSettings,
    StaticHostsSettings,
    TLSSettings,
    VitessSettings,
)
from freno.config.tls import (
    DEFAULT_SSL_MODE,
    TLSFileProblem,
    check_tls_settings,
    normalise_mode,
    read_public_key,
)
from freno.hosts import HostKey, InvalidHostError

Path = Tuple[str, ...]
Fail = Callable[[Path, str], ConfigError]

DEFAULT_MEMCACHE_PORT = 11211
DEFAULT_PROXYSQL_PORT = 6032
DEFAULT_VITESS_TIMEOUT_SECS = 5
LOG_FORMATS = ("text", "json")
#: The inherited TLS keys (refused with C{ProbeDriver: "MySQLdb"}).
TLS_KEYS = ("SSLMode", "SSLCA", "SSLCert", "SSLKey", "ServerPublicKeyPath")
#: The shortest control token accepted (a guessable token is no control).
MIN_TOKEN_LENGTH = 16
#: The longest token name (it is the actor of the audit records).
MAX_TOKEN_NAME_LENGTH = 64
MULTI_NODE_NEEDS_PASSWORD = (
    "a multi-node raft group requires RaftPassword (pysyncobj runs code sent by any peer without it)"
)

_SOURCES = ("HAProxySettings", "ProxySQLSettings", "VitessSettings", "StaticHostsSettings")
_STORE: Path = ("Stores", "MySQL")


def check_consensus(config: Config, fail: Fail) -> Config:
    """
    Normalise the raft addresses (freno's C{DefaultRaftPort} rule) and check
    the consensus settings. Shared by loading and L{apply_overrides
    <freno.config.loader.apply_overrides>}, so command-line values are
    checked exactly like file values.

    @param fail: makes the error for a key path and a problem.
    @return: C{config} with C{raft_bind} and C{raft_nodes} normalised.
    @raise ConfigError: neither backend configured, a MySQL backend without
        schema, or (raft backend) a bad address, a member list without this
        node, or a multi-node group without C{RaftPassword}.
    """
    bind = normalise_raft_address(config.raft_bind, config.default_raft_port)
    nodes = normalise_raft_nodes(config.raft_nodes, config.default_raft_port)
    if not config.raft_data_dir and not config.backend_mysql_host:
        raise fail((), "Either RaftDataDir or BackendMySQLHost must be set")
    if config.backend_mysql_host and not config.backend_mysql_schema:
        raise fail((), "BackendMySQLSchema must be set when BackendMySQLHost is specified")
    if config.consensus_kind == "raft":
        try:
            check_raft_address(bind, allow_empty_host=True)
        except AddressProblem as e:
            raise fail(("RaftBind",), str(e))
        for node in nodes:
            try:
                check_raft_address(node)
            except AddressProblem as e:
                raise fail(("RaftNodes",), str(e))
        if nodes and bind not in nodes and not config.raft_join:
            shown = ", ".join(nodes)
            raise fail(("RaftNodes",), f'must include RaftBind "{bind}" (this node), got [{shown}]')
        if config.raft_join and not nodes:
            raise fail(("RaftJoin",), "needs RaftNodes naming members of the group to join")
        if config.raft_listen_address:
            try:
                check_raft_address(config.raft_listen_address)
            except AddressProblem as e:
                raise fail(("RaftListenAddress",), str(e))
        if (len(nodes) > 1 or config.raft_join) and not config.raft_password:
            raise fail(("RaftNodes",), MULTI_NODE_NEEDS_PASSWORD)
    return attr.evolve(config, raft_bind=bind, raft_nodes=nodes)


@attr.s(auto_attribs=True)
class Resolver:
    """
    Builds a L{Config} from one merged document.

    @ivar environ: the variables C{${NAME}} refers to.
    @ivar where: gives the file a key path came from (for errors).
    """

    environ: Mapping[str, str]
    where: Callable[[Path], str]
    _driver: str = DEFAULT_PROBE_DRIVER
    _tls_checked: Dict[Any, Tuple[Any, Any]] = attr.ib(factory=dict)

    def fail(self, path: Path, problem: str) -> ConfigError:
        """
        The error for a key path, naming the file that key came from.
        """
        return ConfigError(self.where(path), format_path(path), problem)

    def env(self, obj: Mapping[str, Any], key: str, path: Path, default: str = "", allow_empty: bool = True) -> str:
        """
        C{obj[key]} (or C{default}) with C{${NAME}} expanded.
        """
        try:
            return expand(obj.get(key, default), self.environ, allow_empty)
        except EnvironmentProblem as e:
            raise self.fail(path + (key,), str(e))

    def config(self, doc: Mapping[str, Any], force_leadership: bool = False) -> Config:
        """
        Resolve the whole document.

        @raise ConfigError: the first problem found.
        """
        store = doc.get("Stores", {}).get("MySQL", {})
        log_format = doc.get("LogFormat", "text")
        if log_format not in LOG_FORMATS:
            raise self.fail(("LogFormat",), f'expected "text" or "json", got "{log_format}"')
        config = Config(
            listen_port=doc.get("ListenPort", DEFAULT_LISTEN_PORT),
            listen_backlog=doc.get("ListenBacklog", 0),
            check_fast_path=doc.get("CheckFastPath", True),
            data_center=self.env(doc, "DataCenter", ()),
            environment=self.env(doc, "Environment", ()),
            domain=self.env(doc, "Domain", ()),
            share_domain=self.env(doc, "ShareDomain", ()),
            raft_bind=doc.get("RaftBind", DEFAULT_RAFT_BIND),
            raft_data_dir=doc.get("RaftDataDir", ""),
            default_raft_port=doc.get("DefaultRaftPort", 0),
            raft_nodes=doc.get("RaftNodes", ()),
            raft_password=self.env(doc, "RaftPassword", ()),
            backend_mysql_host=self.env(doc, "BackendMySQLHost", ()),
            backend_mysql_port=doc.get("BackendMySQLPort", DEFAULT_MYSQL_PORT),
            backend_mysql_schema=self.env(doc, "BackendMySQLSchema", ()),
            backend_mysql_user=self.env(doc, "BackendMySQLUser", ()),
            backend_mysql_password=self.env(doc, "BackendMySQLPassword", ()),
            backend_mysql_collation=doc.get("BackendMySQLCollation", ""),
            memcache_servers=self.hosts(doc.get("MemcacheServers", ()), ("MemcacheServers",), DEFAULT_MEMCACHE_PORT),
            memcache_path=doc.get("MemcachePath", DEFAULT_MEMCACHE_PATH),
            enable_profiling=doc.get("EnableProfiling", False),
            log_format=log_format,
            mysql=self.store(store),
            force_leadership=force_leadership,
            control_tokens=self.tokens(doc.get("ControlTokens", {})),
            allow_get_mutations=doc.get("AllowGetMutations", True),
            restrict_audit_log=doc.get("RestrictAuditLog", False),
            audit_log_size=doc.get("AuditLogSize", DEFAULT_AUDIT_LOG_SIZE),
            raft_join=doc.get("RaftJoin", False),
            raft_hosts_file=self.env(doc, "RaftHostsFile", ()),
            raft_listen_address=self.env(doc, "RaftListenAddress", ()),
            dashboard_urls=self.dashboard_urls(doc.get("DashboardURLs", {})),
        )
        if config.restrict_audit_log and not config.control_tokens:
            raise self.fail(
                ("RestrictAuditLog",),
                "needs ControlTokens (with an audit or admin token), or nobody could read the audit log",
            )
        return check_consensus(config, self.fail)

    def dashboard_urls(self, doc: Mapping[str, Any]) -> Tuple[Tuple[str, str], ...]:
        """
        C{DashboardURLs}: each an C{http(s)://} URL with a host, kept
        without a trailing C{/}.
        """
        urls = []
        for member, url in doc.items():
            try:
                check_http_url(url)
            except AddressProblem as e:
                raise self.fail(("DashboardURLs", member), str(e))
            urls.append((member, url.rstrip("/")))
        return tuple(sorted(urls))

    def tokens(self, doc: Mapping[str, Any]) -> Tuple[ControlToken, ...]:
        """
        C{ControlTokens}: each token expanded (C{${ENV}}), at least
        L{MIN_TOKEN_LENGTH} characters and distinct, each role one of
        L{ROLES}.
        """
        tokens = []
        seen: Dict[str, str] = {}
        for name, entry in doc.items():
            path = ("ControlTokens", name)
            if len(name) > MAX_TOKEN_NAME_LENGTH:
                raise self.fail(path, f"a token name is at most {MAX_TOKEN_NAME_LENGTH} characters")
            token = self.env(entry, "Token", path, allow_empty=False)
            if len(token) < MIN_TOKEN_LENGTH:
                raise self.fail(path + ("Token",), f"must be at least {MIN_TOKEN_LENGTH} characters")
            if token in seen:
                raise self.fail(path + ("Token",), f'is the same as the token of "{seen[token]}"')
            seen[token] = name
            role = entry.get("Role", "")
            if role not in ROLES:
                shown = ", ".join(f'"{r}"' for r in ROLES)
                raise self.fail(path + ("Role",), f'expected one of {shown}, got "{role}"')
            tokens.append(ControlToken(name=name, token=token, role=role))
        return tuple(tokens)

    def hosts(self, entries: Tuple[str, ...], path: Path, default_port: int) -> Tuple[str, ...]:
        """
        Check C{host[:port]} entries with L{HostKey.parse}; return them trimmed.
        """
        for i, entry in enumerate(entries):
            try:
                HostKey.parse(entry, default_port)
            except InvalidHostError as e:
                raise self.fail(path + (f"[{i}]",), str(e))
        return tuple(entry.strip() for entry in entries)

    def patterns(self, entries: Tuple[str, ...], path: Path) -> Tuple[str, ...]:
        """
        C{IgnoreHosts}: an empty pattern would match every host, so refuse it.
        """
        for i, entry in enumerate(entries):
            if not entry:
                raise self.fail(path + (f"[{i}]",), "an empty pattern would ignore every host")
        return tuple(entries)

    def probe(self, store: Mapping[str, Any]) -> ProbeSettings:
        """
        The probe extension keys of C{Stores.MySQL}, in seconds.
        """
        interval = store.get("ProbeIntervalMillis", 50)
        freshness = store.get("MetricFreshnessMillis")
        if freshness is None:
            freshness = max(500, 2 * interval)
        elif freshness < 2 * interval:
            raise self.fail(
                _STORE + ("MetricFreshnessMillis",),
                f"must be at least 2 x ProbeIntervalMillis ({2 * interval}), got {freshness}",
            )
        driver = store.get("ProbeDriver", DEFAULT_PROBE_DRIVER)
        if driver not in PROBE_DRIVERS:
            shown = ", ".join(f'"{d}"' for d in PROBE_DRIVERS[:-1]) + f' or "{PROBE_DRIVERS[-1]}"'
            raise self.fail(_STORE + ("ProbeDriver",), f'expected {shown}, got "{driver}"')
        return ProbeSettings(
            interval=interval / 1000.0,
            timeout=store.get("ProbeTimeoutMillis", 1000) / 1000.0,
            freshness=freshness / 1000.0,
            thread_pool_size=store.get("ProbeThreadPoolSize", DEFAULT_PROBE_THREADS),
            driver=driver,
            inventory_refresh_interval=float(store.get("InventoryRefreshSeconds", 10.0)),
            http_check_interval=float(store.get("HttpCheckIntervalSeconds", 5.0)),
        )

    def store(self, store: Mapping[str, Any]) -> MySQLStoreSettings:
        """
        C{Stores.MySQL}, its clusters resolved.
        """
        inherited = dict(store)
        inherited["User"] = self.env(store, "User", _STORE)
        inherited["Password"] = self.env(store, "Password", _STORE)
        if not inherited.get("Port"):
            inherited["Port"] = DEFAULT_MYSQL_PORT
        inherited["IgnoreHosts"] = self.patterns(store.get("IgnoreHosts", ()), _STORE + ("IgnoreHosts",))
        inherited["ProxySQLAddresses"] = self.hosts(
            store.get("ProxySQLAddresses", ()), _STORE + ("ProxySQLAddresses",), DEFAULT_PROXYSQL_PORT
        )
        cells = store.get("VitessCells", ())
        inherited["VitessCells"] = tuple(self._cell(cell, i) for i, cell in enumerate(cells))
        probe = self.probe(store)
        self._driver = probe.driver
        if "SSLMode" in store:
            inherited["SSLMode"] = self.ssl_mode(store["SSLMode"], _STORE)
        self.refuse_tls_with_mysqldb(probe.driver, store, _STORE)
        clusters = {
            name: self.cluster(name, cluster, inherited) for name, cluster in store.get("Clusters", {}).items()
        }
        return MySQLStoreSettings(
            clusters=clusters,
            probe=probe,
            ignore_dial_tcp_errors=store.get("IgnoreDialTcpErrors", False),
            collation=store.get("Collation", ""),
        )

    def ssl_mode(self, value: str, path: Path) -> str:
        """
        C{SSLMode}, normalised (L{normalise_mode}).
        """
        try:
            return normalise_mode(value)
        except ValueError as e:
            raise self.fail(path + ("SSLMode",), str(e))

    def refuse_tls_with_mysqldb(self, driver: str, doc: Mapping[str, Any], path: Path) -> None:
        """
        C{ProbeDriver: "MySQLdb"} takes none of L{TLS_KEYS} (see the module
        docstring).
        """
        if driver != "MySQLdb":
            return
        for key in TLS_KEYS:
            if key in doc:
                raise self.fail(
                    path + (key,),
                    'is not supported with ProbeDriver "MySQLdb"; use ProbeDriver "native" '
                    'or "pymysql", or remove the TLS keys',
                )

    def tls(self, own: Mapping[str, Any], store: Mapping[str, Any], path: Path) -> Tuple[TLSSettings, str]:
        """
        A cluster's resolved TLS settings and C{ServerPublicKeyPath},
        checked (files read).
        """

        def pick(key: str) -> Any:
            return own[key] if key in own else store.get(key, "")

        def where(key: str) -> Path:
            return path + (key,) if key in own else _STORE + (key,)

        settings = TLSSettings(
            mode=pick("SSLMode") or DEFAULT_SSL_MODE,
            ca=pick("SSLCA"),
            cert=pick("SSLCert"),
            key=pick("SSLKey"),
        )
        cache_key = (settings, pick("ServerPublicKeyPath"))
        cached = self._tls_checked.get(cache_key)
        if cached is None:
            blamed, problem = check_tls_settings(settings.mode, settings.ca, settings.cert, settings.key)
            if blamed is None and cache_key[1]:
                try:
                    read_public_key(cache_key[1])
                except TLSFileProblem as e:
                    blamed, problem = "ServerPublicKeyPath", str(e)
            cached = self._tls_checked[cache_key] = (blamed, problem)
        blamed, problem = cached
        if blamed is not None:
            raise self.fail(where(blamed), problem)
        return settings, cache_key[1]

    def _cell(self, cell: str, i: int) -> str:
        try:
            return expand(cell, self.environ)
        except EnvironmentProblem as e:
            raise self.fail(_STORE + ("VitessCells", f"[{i}]"), str(e))

    def cluster(self, name: str, doc: Mapping[str, Any], store: Mapping[str, Any]) -> ClusterSettings:
        """
        One cluster: inheritance applied, exactly one complete host source.
        """
        path = _STORE + ("Clusters", name)
        own = dict(doc)
        for key in ("User", "Password"):
            if key in doc:
                own[key] = self.env(doc, key, path)
        if "IgnoreHosts" in doc:
            own["IgnoreHosts"] = self.patterns(doc["IgnoreHosts"], path + ("IgnoreHosts",))
        if "SSLMode" in doc:
            own["SSLMode"] = self.ssl_mode(doc["SSLMode"], path)
        self.refuse_tls_with_mysqldb(self._driver, doc, path)
        tls, public_key = self.tls(own, store, path)

        def pick(key: str, default: Any) -> Any:
            if key in own and not (key == "Port" and own[key] == 0):
                return own[key]
            return store.get(key, default)

        port = pick("Port", DEFAULT_MYSQL_PORT)
        threshold = pick("ThrottleThreshold", 0.0)
        resume = self.resume_threshold(own, store, path, threshold)
        given = [s for s in _SOURCES if any(doc.get(s, {}).values())]
        if not given:
            raise self.fail(path, "no host source: set one of " + ", ".join(_SOURCES))
        if len(given) > 1:
            raise self.fail(path, f"more than one host source ({', '.join(given)}); set exactly one")
        source = given[0]
        sub = doc[source]
        where = path + (source,)
        kwargs: Dict[str, Any] = {}
        if source == "HAProxySettings":
            kwargs["haproxy"] = self.haproxy(sub, where)
        elif source == "ProxySQLSettings":
            kwargs["proxysql"] = self.proxysql(sub, where, store)
        elif source == "VitessSettings":
            kwargs["vitess"] = self.vitess(sub, where, store)
        else:
            kwargs["static_hosts"] = StaticHostsSettings(self.hosts(sub["Hosts"], where + ("Hosts",), port))
        return ClusterSettings(
            name=name,
            user=pick("User", ""),
            password=pick("Password", ""),
            metric_query=pick("MetricQuery", ""),
            cache_millis=pick("CacheMillis", 0),
            throttle_threshold=threshold,
            resume_threshold=resume,
            port=port,
            ignore_hosts_count=pick("IgnoreHostsCount", 0),
            ignore_hosts_threshold=pick("IgnoreHostsThreshold", 0.0),
            http_check_port=pick("HttpCheckPort", 0),
            http_check_path=pick("HttpCheckPath", ""),
            ignore_hosts=pick("IgnoreHosts", ()),
            ignore_dial_tcp_errors=store.get("IgnoreDialTcpErrors", False),
            collation=store.get("Collation", ""),
            tls=tls,
            server_public_key_path=public_key,
            **kwargs,
        )

    def resume_threshold(
        self, own: Mapping[str, Any], store: Mapping[str, Any], path: Path, threshold: float
    ) -> Optional[float]:
        """
        A cluster's C{ResumeThreshold} (inherited like C{ThrottleThreshold}):
        C{None} when absent or 0 (no hysteresis; a cluster turns off a
        store's value with 0), else it must be below the cluster's
        C{ThrottleThreshold}. The error names the key where it was set.
        """
        inherited = "ResumeThreshold" not in own
        resume = store.get("ResumeThreshold", 0) if inherited else own["ResumeThreshold"]
        if not resume:
            return None
        if resume >= threshold:
            where = _STORE if inherited else path
            whose = f" of cluster {path[-1]}" if inherited else ""
            raise self.fail(
                where + ("ResumeThreshold",),
                f"must be below ThrottleThreshold{whose} ({threshold:g}), or 0 for no "
                f"hysteresis; got {resume:g}",
            )
        return float(resume)

    def haproxy(self, doc: Mapping[str, Any], path: Path) -> HAProxySettings:
        """
        C{HAProxySettings}: C{Host}/C{Port} win over C{Addresses}, as freno.
        """
        host, port = doc.get("Host", ""), doc.get("Port", 0)
        addresses = self.env(doc, "Addresses", path, allow_empty=False)
        pool = doc.get("PoolName", "")
        if not pool:
            raise self.fail(path + ("PoolName",), "must be set")
        try:
            if host and port:
                resolved: Tuple[str, ...] = (parse_haproxy_address(f"{host}:{port}"),)
            else:
                resolved = parse_haproxy_addresses(addresses)
        except AddressProblem as e:
            raise self.fail(path + (("Host",) if host and port else ("Addresses",)), str(e))
        if not resolved:
            if host or port:
                raise self.fail(path, "Host and Port must be given together (or give Addresses)")
            raise self.fail(path, "no address: set Host and Port, or Addresses")
        return HAProxySettings(
            host=host, port=port, addresses=addresses, pool_name=pool, resolved_addresses=resolved
        )

    def proxysql(self, doc: Mapping[str, Any], path: Path, store: Mapping[str, Any]) -> ProxySQLSettings:
        """
        C{ProxySQLSettings}, empty fields filled from the store (D27).
        """
        addresses = self.hosts(doc.get("Addresses", ()), path + ("Addresses",), DEFAULT_PROXYSQL_PORT)
        addresses = addresses or store.get("ProxySQLAddresses", ())
        user = doc.get("User", "") or store.get("ProxySQLUser", "")
        password = doc.get("Password", "") or store.get("ProxySQLPassword", "")
        for key, value, fallback in (
            ("Addresses", addresses, "ProxySQLAddresses"),
            ("User", user, "ProxySQLUser"),
            ("Password", password, "ProxySQLPassword"),
        ):
            if not value:
                raise self.fail(path + (key,), f"must be set (here or as Stores.MySQL.{fallback})")
        if doc.get("HostgroupID", 0) < 1:
            raise self.fail(path + ("HostgroupID",), "must be set to a hostgroup >= 1")
        return ProxySQLSettings(
            addresses=tuple(addresses),
            user=user,
            password=password,
            hostgroup_id=doc["HostgroupID"],
            ignore_server_ttl_secs=doc.get("IgnoreServerTTLSecs", 0),
        )

    def vitess(self, doc: Mapping[str, Any], path: Path, store: Mapping[str, Any]) -> VitessSettings:
        """
        C{VitessSettings}; empty C{Cells} fall back to the store's
        C{VitessCells}; blank cells are dropped; C{TimeoutSecs} 0 is 5.
        """
        api = doc.get("API", "")
        if not api:
            raise self.fail(path + ("API",), "must be set")
        try:
            check_http_url(api)
        except AddressProblem as e:
            raise self.fail(path + ("API",), str(e))
        if not doc.get("Keyspace"):
            raise self.fail(path + ("Keyspace",), "must be set")
        cells = doc.get("Cells") or store.get("VitessCells", ())
        return VitessSettings(
            api=api,
            cells=tuple(c.strip() for c in cells if c.strip()),
            keyspace=doc["Keyspace"],
            shard=doc.get("Shard", ""),
            timeout_secs=doc.get("TimeoutSecs", 0) or DEFAULT_VITESS_TIMEOUT_SECS,
        )


def resolve(
    doc: Mapping[str, Any],
    environ: Mapping[str, str],
    where: Callable[[Path], str],
    force_leadership: bool = False,
) -> Config:
    """
    Resolve a merged document into a L{Config}.

    @raise ConfigError: the first problem found.
    """
    return Resolver(environ, where).config(doc, force_leadership)

