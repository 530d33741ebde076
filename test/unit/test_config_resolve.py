"""
Tests for configuration resolution: store-to-cluster inheritance, C{${ENV}}
expansion, raft address normalisation, multi-file merging and command-line
overrides.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.config.addresses import normalise_raft_address, normalise_raft_nodes
from freno.config.environment import EnvironmentProblem, expand
from freno.config.loader import (
    ConfigError,
    Overrides,
    apply_overrides,
    load_default_config,
    split_nodes,
)
from freno.config.model import ProbeSettings
from test.unit.test_config_helpers import CLUSTER_PATH, ConfigFileMixin, base, with_cluster, with_store

STORE = dict(
    User="su",
    Password="sp",
    MetricQuery="select 7",
    CacheMillis=100,
    ThrottleThreshold=2.5,
    Port=3310,
    IgnoreHostsCount=2,
    IgnoreHostsThreshold=4.0,
    HttpCheckPort=9000,
    HttpCheckPath="/health",
    IgnoreHosts=["bad"],
    IgnoreDialTcpErrors=True,
    Collation="utf8mb4_bin",
)


class InheritanceTests(ConfigFileMixin, SynchronousTestCase):
    """
    Store-to-cluster inheritance (docs/decisions.md, D41).
    """

    def test_absent_inherits(self):
        """
        A cluster that gives nothing takes every store value.
        """
        cluster = self.load(with_store(base(), **STORE)).mysql.clusters["main"]
        self.assertEqual(
            (
                cluster.user,
                cluster.password,
                cluster.metric_query,
                cluster.cache_millis,
                cluster.throttle_threshold,
                cluster.port,
                cluster.ignore_hosts_count,
                cluster.ignore_hosts_threshold,
                cluster.http_check_port,
                cluster.http_check_path,
                cluster.ignore_hosts,
                cluster.ignore_dial_tcp_errors,
                cluster.collation,
            ),
            ("su", "sp", "select 7", 100, 2.5, 3310, 2, 4.0, 9000, "/health", ("bad",), True, "utf8mb4_bin"),
        )

    def test_present_zero_and_empty_override(self):
        """
        A key present at cluster level wins even when 0, C{""} or C{[]}:
        an explicit threshold 0, IgnoreHostsCount 0 and SHOW SLAVE STATUS
        are possible against store values.
        """
        doc = with_cluster(
            with_store(base(), **STORE),
            User="",
            MetricQuery="",
            CacheMillis=0,
            ThrottleThreshold=0,
            IgnoreHostsCount=0,
            IgnoreHostsThreshold=0,
            HttpCheckPort=0,
            HttpCheckPath="",
            IgnoreHosts=[],
        )
        cluster = self.load(doc).mysql.clusters["main"]
        self.assertEqual(
            (
                cluster.user,
                cluster.metric_query,
                cluster.cache_millis,
                cluster.throttle_threshold,
                cluster.ignore_hosts_count,
                cluster.ignore_hosts_threshold,
                cluster.http_check_port,
                cluster.http_check_path,
                cluster.ignore_hosts,
            ),
            ("", "", 0, 0.0, 0, 0.0, 0, "", ()),
        )
        self.assertEqual(cluster.password, "sp")

    def test_present_values_override(self):
        """
        Non-empty cluster values override too.
        """
        doc = with_cluster(with_store(base(), **STORE), ThrottleThreshold=9, Port=3400, IgnoreHosts=["x", "y"])
        cluster = self.load(doc).mysql.clusters["main"]
        self.assertEqual((cluster.throttle_threshold, cluster.port, cluster.ignore_hosts), (9.0, 3400, ("x", "y")))

    def test_port_zero_inherits(self):
        """
        Port 0 is not a port: at cluster level it inherits, at store level
        it means 3306.
        """
        doc = with_cluster(with_store(base(), Port=3310), Port=0)
        self.assertEqual(self.load(doc).mysql.clusters["main"].port, 3310)
        doc = with_cluster(with_store(base(), Port=0), Port=0)
        self.assertEqual(self.load(doc).mysql.clusters["main"].port, 3306)

    def test_null_inherits(self):
        """
        A C{null} cluster key is absent, so it inherits.
        """
        doc = with_cluster(with_store(base(), ThrottleThreshold=3), ThrottleThreshold=None)
        self.assertEqual(self.load(doc).mysql.clusters["main"].throttle_threshold, 3.0)

    def test_defaults(self):
        """
        With nothing set anywhere, freno's defaults apply.
        """
        config = self.load(base())
        cluster = config.mysql.clusters["main"]
        self.assertEqual((cluster.port, cluster.throttle_threshold, cluster.metric_query), (3306, 0.0, ""))
        self.assertEqual(
            (config.listen_port, config.raft_bind, config.memcache_path, config.log_format),
            (8087, "127.0.0.1:10008", "freno", "text"),
        )
        self.assertEqual(config.mysql.probe, ProbeSettings())

    def test_probe_extensions(self):
        """
        Probe keys are given in milliseconds and resolved to seconds; the
        freshness default grows with the interval.
        """
        doc = with_store(
            base(),
            ProbeIntervalMillis=400,
            ProbeTimeoutMillis=250,
            ProbeThreadPoolSize=4,
            ProbeDriver="MySQLdb",
            InventoryRefreshSeconds=0.5,
            HttpCheckIntervalSeconds=2,
        )
        self.assertEqual(
            self.load(doc).mysql.probe,
            ProbeSettings(
                interval=0.4,
                timeout=0.25,
                freshness=0.8,
                thread_pool_size=4,
                driver="MySQLdb",
                inventory_refresh_interval=0.5,
                http_check_interval=2.0,
            ),
        )


    def test_native_probe_driver(self):
        """
        C{ProbeDriver: "native"} selects the native wire-protocol source.
        """
        self.assertEqual(self.load(with_store(base(), ProbeDriver="native")).mysql.probe.driver, "native")


class EnvironmentTests(ConfigFileMixin, SynchronousTestCase):
    """
    C{${NAME}} expansion.
    """

    def test_expand(self):
        """
        Every occurrence is substituted in place.
        """
        self.assertEqual(expand("${A}", {"A": "x"}), "x")
        self.assertEqual(expand("pre-${A}-${B}-${A}", {"A": "x", "B": "y"}), "pre-x-y-x")
        self.assertEqual(expand("no refs, $A, ${", {}), "no refs, $A, ${")
        self.assertEqual(expand("${A}", {"A": ""}), "")

    def test_expand_errors(self):
        """
        Unset, malformed, and (when refused) empty variables raise.
        """
        for text, environ, allow_empty, message in (
            ("${NOPE}", {}, True, "environment variable NOPE is not set"),
            ("${}", {}, True, "malformed environment variable reference (expected ${NAME})"),
            ("${a b}", {}, True, "malformed environment variable reference (expected ${NAME})"),
            ("${E}", {"E": ""}, False, "environment variable E is empty"),
        ):
            with self.assertRaises(EnvironmentProblem) as cm:
                expand(text, environ, allow_empty)
            self.assertEqual(str(cm.exception), message)

    def test_expanded_keys(self):
        """
        The documented keys are expanded.
        """
        environ = {"V": "val", "P": "pw"}
        doc = base(
            DataCenter="dc-${V}",
            Environment="${V}",
            Domain="${V}",
            ShareDomain="${V}",
            RaftPassword="${P}",
        )
        doc = with_store(doc, User="${V}", Password="${P}", VitessCells=["${V}", "z"])
        doc = with_cluster(doc, name="c", User="u-${V}", Password="${P}2", HAProxySettings={
            "Addresses": "${V}:1", "PoolName": "p"})
        config = self.load(doc, environ)
        self.assertEqual(
            (config.data_center, config.environment, config.domain, config.share_domain, config.raft_password),
            ("dc-val", "val", "val", "val", "pw"),
        )
        main, c = config.mysql.clusters["main"], config.mysql.clusters["c"]
        self.assertEqual((main.user, main.password), ("val", "pw"))
        self.assertEqual((c.user, c.password), ("u-val", "pw2"))
        self.assertEqual((c.haproxy.addresses, c.haproxy.resolved_addresses), ("val:1", ("http://val:1",)))

    def test_backend_keys_expanded(self):
        """
        The MySQL backend's keys are expanded before validation, so an empty
        variable counts as unset host.
        """
        environ = {"H": "db", "S": "freno", "U": "u", "P": "p"}
        doc = base(
            RaftDataDir="",
            BackendMySQLHost="${H}",
            BackendMySQLSchema="${S}",
            BackendMySQLUser="${U}",
            BackendMySQLPassword="${P}",
        )
        config = self.load(doc, environ)
        self.assertEqual(
            (config.backend_mysql_host, config.backend_mysql_schema, config.backend_mysql_user,
             config.backend_mysql_password),
            ("db", "freno", "u", "p"),
        )
        self.assertEqual(
            self.fails(doc, dict(environ, H="")), "Either RaftDataDir or BackendMySQLHost must be set"
        )

    def test_other_keys_literal(self):
        """
        Keys not marked for expansion keep C{${...}} literally.
        """
        doc = with_store(base(), MetricQuery="select '${X}'")
        self.assertEqual(self.load(doc).mysql.clusters["main"].metric_query, "select '${X}'")

    def test_unset_names_variable_and_key(self):
        """
        An unset variable is an error naming the variable and the key path.
        """
        doc = with_cluster(base(), Password="${MYSQL_PW}")
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.Password: environment variable MYSQL_PW is not set")
        doc = with_store(base(), VitessCells=["a", "${CELL}"])
        self.assertEqual(self.fails(doc), "Stores.MySQL.VitessCells[1]: environment variable CELL is not set")

    def test_haproxy_addresses_refuse_empty(self):
        """
        As in freno, an empty variable in C{Addresses} is an error.
        """
        doc = with_cluster(base(), replace=True, HAProxySettings={"Addresses": "${HA}", "PoolName": "p"})
        self.assertEqual(
            self.fails(doc, {"HA": ""}), f"{CLUSTER_PATH}.HAProxySettings.Addresses: environment variable HA is empty"
        )

    def test_empty_password_allowed(self):
        """
        Elsewhere a variable set to C{""} expands to C{""}.
        """
        doc = with_store(base(), Password="${P}")
        self.assertEqual(self.load(doc, {"P": ""}).mysql.clusters["main"].password, "")


class RaftNormalisationTests(ConfigFileMixin, SynchronousTestCase):
    """
    Raft address normalisation (freno's C{DefaultRaftPort} rule).
    """

    def test_normalise_address(self):
        """
        A port-less entry takes C{DefaultRaftPort}; others are kept.
        """
        self.assertEqual(normalise_raft_address("", 10008), ":10008")
        self.assertEqual(normalise_raft_address("localhost", 10008), "localhost:10008")
        self.assertEqual(normalise_raft_address(" h:1 ", 10008), "h:1")
        self.assertEqual(normalise_raft_address("h", 0), "h")

    def test_normalise_nodes(self):
        """
        Entries are trimmed, blank ones dropped, duplicates removed.
        """
        self.assertEqual(normalise_raft_nodes(["a", " a:9 ", "", "b:1", "a"], 9), ("a:9", "b:1"))

    def test_loaded(self):
        """
        Loading normalises bind and members with C{DefaultRaftPort}, host
        names included.
        """
        doc = base(DefaultRaftPort=9888, RaftBind="node1.example", RaftPassword="s",
                   RaftNodes=["node1.example", "node2.example:9999", "node1.example:9888"])
        config = self.load(doc)
        self.assertEqual(config.raft_bind, "node1.example:9888")
        self.assertEqual(config.raft_nodes, ("node1.example:9888", "node2.example:9999"))

    def test_empty_bind(self):
        """
        freno's C{""} bind becomes C{":<DefaultRaftPort>"} (single-node).
        """
        self.assertEqual(self.load(base(DefaultRaftPort=7000, RaftBind="")).raft_bind, ":7000")


class MergeTests(ConfigFileMixin, SynchronousTestCase):
    """
    Several files (freno's default search): later overrides earlier.
    """

    def paths(self, *docs):
        return [self.write(doc) for doc in docs]

    def test_merge(self):
        """
        Objects merge key by key, lists are replaced, clusters replaced whole.
        """
        first = with_store(base(ListenPort=1000, RaftNodes=["a:1", "b:1"], RaftBind="a:1", RaftPassword="s"),
                           ThrottleThreshold=1, User="u")
        first = with_cluster(first, ThrottleThreshold=5)
        second = {
            "RaftNodes": ["a:1"],
            "Stores": {"MySQL": {"User": "v", "Clusters": {"main": {"StaticHostsSettings": {"Hosts": ["z"]}}}}},
        }
        config = load_default_config({}, paths=self.paths(first, second) + [self.mktemp()])
        self.assertEqual((config.listen_port, config.raft_nodes), (1000, ("a:1",)))
        cluster = config.mysql.clusters["main"]
        self.assertEqual((cluster.user, cluster.throttle_threshold, cluster.static_hosts.hosts), ("v", 1.0, ("z",)))

    def test_error_names_file_of_key(self):
        """
        An error found after merging names the file the key came from.
        """
        first, second = self.paths(with_store(base(), Password="${NOPE}"), {"ListenPort": 1})
        with self.assertRaises(ConfigError) as cm:
            load_default_config({}, paths=[first, second])
        self.assertEqual(cm.exception.file, first)
        first, second = self.paths(base(), {"Stores": {"MySQL": {"Clusters": {"x": {}}}}})
        with self.assertRaises(ConfigError) as cm:
            load_default_config({}, paths=[first, second])
        self.assertEqual(str(cm.exception).split(": ")[0:2], [second, "Stores.MySQL.Clusters.x"])

    def test_schema_error_in_second_file(self):
        """
        A bad key in the second file names the second file.
        """
        first, second = self.paths(base(), {"ListenPrt": 1})
        with self.assertRaises(ConfigError) as cm:
            load_default_config({}, paths=[first, second])
        self.assertEqual(str(cm.exception), f'{second}: ListenPrt: unknown key (did you mean "ListenPort"?)')

    def test_none_found(self):
        """
        With no file found the defaults are validated and fail clearly,
        unless the command line supplies C{RaftDataDir}.
        """
        missing = [self.mktemp(), self.mktemp()]
        with self.assertRaises(ConfigError) as cm:
            load_default_config({}, paths=missing)
        self.assertEqual(
            str(cm.exception),
            f"no configuration file (tried {missing[0]}, {missing[1]}): "
            "Either RaftDataDir or BackendMySQLHost must be set",
        )
        config = load_default_config({}, Overrides(raft_datadir="/tmp/d"), paths=missing)
        self.assertEqual((config.raft_data_dir, config.mysql.clusters), ("/tmp/d", {}))

    def test_default_paths(self):
        """
        freno's search order.
        """
        from freno.config.loader import DEFAULT_CONFIG_PATHS

        self.assertEqual(DEFAULT_CONFIG_PATHS, ("/etc/freno.conf.json", "conf/freno.conf.json"))


class OverrideTests(ConfigFileMixin, SynchronousTestCase):
    """
    Command-line overrides, applied before validation.
    """

    def test_before_validation(self):
        """
        C{--raft-datadir} satisfies the "Either RaftDataDir..." check (B20).
        """
        config = self.load(base(RaftDataDir=""), overrides=Overrides(raft_datadir="/tmp/cli"))
        self.assertEqual(config.raft_data_dir, "/tmp/cli")

    def test_load_overrides(self):
        """
        Every override replaces its key; C{--raft-nodes} is trimmed and
        normalised.
        """
        overrides = Overrides(
            http_port=9999,
            raft_bind="a",
            raft_nodes=" a , b:2 ,",
            force_leadership=True,
            enable_profiling=True,
        )
        config = self.load(base(DefaultRaftPort=5, RaftPassword="s"), overrides=overrides)
        self.assertEqual(
            (config.listen_port, config.raft_bind, config.raft_nodes, config.force_leadership, config.enable_profiling),
            (9999, "a:5", ("a:5", "b:2"), True, True),
        )

    def test_override_errors_name_command_line(self):
        """
        A problem caused by the command line says so.
        """
        self.assertEqual(
            self.fails(base(), overrides=Overrides(raft_bind="a:1", raft_nodes="a:1,b:1")),
            "command line: RaftNodes: a multi-node raft group requires RaftPassword "
            "(pysyncobj runs code sent by any peer without it)",
        )
        self.assertEqual(
            self.fails(base(), overrides=Overrides(http_port=70000)),
            "command line: --http-port: expected a port number in 1..65535, got 70000",
        )

    def test_apply_overrides(self):
        """
        L{apply_overrides} returns a new, re-validated config and leaves the
        original unchanged.
        """
        config = self.load(base(DefaultRaftPort=5, RaftBind="a", RaftNodes=["a", "b"], RaftPassword="s"))
        updated = apply_overrides(config, http_port=1234, raft_nodes="", force_leadership=True)
        self.assertEqual((updated.listen_port, updated.raft_nodes, updated.force_leadership), (1234, (), True))
        self.assertEqual((config.listen_port, config.raft_nodes), (8087, ("a:5", "b:5")))
        self.assertEqual(apply_overrides(config, raft_bind="b").raft_bind, "b:5")
        self.assertEqual(apply_overrides(config, raft_datadir="/d").raft_data_dir, "/d")
        self.assertEqual(apply_overrides(config), config)

    def test_apply_overrides_zero_and_empty_mean_not_given(self):
        """
        freno's flag defaults (0, C{""}) leave the configuration alone.
        """
        config = self.load(base(ListenPort=1000))
        self.assertEqual(apply_overrides(config, http_port=0, raft_bind="", raft_datadir=""), config)

    def test_apply_overrides_revalidates(self):
        """
        Overrides that break the consensus rules raise L{ConfigError}.
        """
        config = self.load(base(RaftBind="a:1"))
        with self.assertRaises(ConfigError) as cm:
            apply_overrides(config, raft_nodes="b:1,c:1")
        self.assertEqual(
            str(cm.exception), 'command line: RaftNodes: must include RaftBind "a:1" (this node), got [b:1, c:1]'
        )
        with self.assertRaises(ConfigError) as cm:
            apply_overrides(config, raft_bind="x:notaport")
        self.assertEqual(str(cm.exception), 'command line: RaftBind: "x:notaport": port must be an integer in 1..65535')

    def test_split_nodes(self):
        """
        C{--raft-nodes} splitting.
        """
        self.assertEqual(split_nodes(""), ())
        self.assertEqual(split_nodes(" a, ,b "), ("a", "b"))


class FrenoSampleTests(ConfigFileMixin, SynchronousTestCase):
    """
    freno's own sample configuration loads unchanged (its port fixed to a
    number: the original quoted it, which freno's own decoder refused).
    """

    def test_freno_sample(self):
        """
        Its clusters resolve as freno resolved them.
        """
        doc = {
            "ListenPort": 9777,
            "DefaultRaftPort": 9888,
            "RaftDataDir": "/var/lib/freno",
            "RaftBind": "10.0.0.1",
            "RaftNodes": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
            "RaftPassword": "ours",
            "Stores": {
                "MySQL": {
                    "User": "${mysql_user_env_variable}",
                    "Password": "${mysql_password_env_variable}",
                    "MetricQuery": "select 1",
                    "ThrottleThreshold": 1.0,
                    "Clusters": {
                        "prod4": {
                            "ThrottleThreshold": 0.8,
                            "HAProxySettings": {"Host": "my.haproxy.mydomain.com", "Port": 1001, "PoolName": "p4"},
                        },
                        "local": {
                            "User": "msandbox",
                            "Password": "msandbox",
                            "StaticHostsSettings": {"Hosts": ["127.0.0.1:22293", "127.0.0.1:22294"]},
                        },
                    },
                }
            },
        }
        config = self.load(doc, {"mysql_user_env_variable": "u", "mysql_password_env_variable": "p"})
        prod4, local = config.mysql.clusters["prod4"], config.mysql.clusters["local"]
        self.assertEqual((prod4.user, prod4.password, prod4.throttle_threshold), ("u", "p", 0.8))
        self.assertEqual((local.user, local.password, local.throttle_threshold), ("msandbox", "msandbox", 1.0))
        self.assertEqual(prod4.haproxy.resolved_addresses, ("http://my.haproxy.mydomain.com:1001",))
        self.assertEqual(config.raft_nodes, ("10.0.0.1:9888", "10.0.0.2:9888", "10.0.0.3:9888"))
