"""
Tests for L{freno.config.loader}: every class of configuration error gives
one line naming the file, the key path and the problem; the samples in
C{conf/} load.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from freno.config.errors import ConfigError
from freno.config.loader import load_config
from freno.config.model import ClusterSettings, Config, ProxySQLSettings
from test.skips import ROOT_READS_ANY_FILE
from test.unit.test_config_helpers import CLUSTER_PATH, ConfigFileMixin, base, with_cluster, with_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ConfigErrorTests(SynchronousTestCase):
    """
    L{ConfigError}'s string form.
    """

    def test_format(self):
        """
        The string is C{file: key.path: problem}, fields kept typed.
        """
        e = ConfigError("conf/x.json", "Stores.MySQL.Port", "bad")
        self.assertEqual(str(e), "conf/x.json: Stores.MySQL.Port: bad")
        self.assertEqual((e.file, e.key_path, e.problem), ("conf/x.json", "Stores.MySQL.Port", "bad"))

    def test_no_key_path(self):
        """
        Without a key path the string is C{file: problem}.
        """
        self.assertEqual(str(ConfigError("f.json", "", "oops")), "f.json: oops")

    def test_one_line(self):
        """
        Newlines in any part are escaped, so the message stays one line.
        """
        self.assertEqual(str(ConfigError("f", "a\nb", "x\ry")), "f: a\\nb: x\\ry")


class FileErrorTests(ConfigFileMixin, SynchronousTestCase):
    """
    Files that cannot be read or parsed.
    """

    def test_missing(self):
        """
        A missing file is named with the OS's reason.
        """
        path = self.mktemp()
        with self.assertRaises(ConfigError) as cm:
            load_config(path, {})
        self.assertEqual(str(cm.exception), f"{path}: cannot read the file: No such file or directory")

    def test_directory(self):
        """
        A directory is not a configuration file.
        """
        path = self.mktemp()
        os.mkdir(path)
        with self.assertRaises(ConfigError) as cm:
            load_config(path, {})
        self.assertEqual(str(cm.exception), f"{path}: cannot read the file: Is a directory")

    def test_unreadable(self):
        """
        A file without read permission is reported as such.
        """
        if os.geteuid() == 0:
            raise self.skipTest(ROOT_READS_ANY_FILE)
        path = self.write(base())
        os.chmod(path, 0)
        with self.assertRaises(ConfigError) as cm:
            load_config(path, {})
        self.assertEqual(str(cm.exception), f"{path}: cannot read the file: Permission denied")

    def test_invalid_json_line_and_column(self):
        """
        Malformed JSON gives the line and column of the problem.
        """
        text = '{\n  "ListenPort": 8087\n  "RaftDataDir": "x"\n}\n'
        self.assertEqual(self.fails(text=text), "invalid JSON at line 3, column 3: Expecting ',' delimiter")

    def test_empty_file(self):
        """
        An empty file is invalid JSON at line 1, column 1.
        """
        self.assertEqual(self.fails(text=""), "invalid JSON at line 1, column 1: Expecting value")

    def test_not_utf8(self):
        """
        Bytes that are not UTF-8 are reported without traceback.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b'{"DataCenter": "\xff"}')
        with self.assertRaises(ConfigError) as cm:
            load_config(path, {})
        self.assertEqual(cm.exception.problem, "not UTF-8 text (bad byte at offset 16)")

    def test_utf8_bom(self):
        """
        A UTF-8 byte order mark is accepted.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b'\xef\xbb\xbf{"RaftDataDir": "/tmp/x"}')
        self.assertEqual(load_config(path, {}).raft_data_dir, "/tmp/x")

    def test_top_level_not_object(self):
        """
        The document must be a JSON object.
        """
        self.assertEqual(self.fails([1, 2]), "expected a JSON object at the top level, got a list")

    def test_too_deep(self):
        """
        Absurd nesting is an error, not a RecursionError.
        """
        self.assertEqual(self.fails(text="[" * 100000 + "]" * 100000), "invalid JSON: nested too deeply")

    def test_huge_integer_literal(self):
        """
        An integer literal too long for Python to convert is an error.
        """
        self.assertEqual(
            self.fails(text='{"ListenPort": ' + "9" * 5000 + "}"), "invalid JSON: a number literal is too long"
        )


class TypeErrorTests(ConfigFileMixin, SynchronousTestCase):
    """
    Wrong types, negative and non-finite numbers, out-of-range ports.
    """

    def test_threshold_string(self):
        """
        The issue's example, exactly.
        """
        doc = with_cluster(base(), ThrottleThreshold="abc")
        self.assertEqual(self.fails(doc), f'{CLUSTER_PATH}.ThrottleThreshold: expected a number >= 0, got "abc"')

    def test_negative_threshold(self):
        """
        Thresholds cannot be negative.
        """
        doc = with_store(base(), ThrottleThreshold=-1)
        self.assertEqual(self.fails(doc), "Stores.MySQL.ThrottleThreshold: expected a number >= 0, got -1")

    def test_negative_int(self):
        """
        Counts cannot be negative.
        """
        doc = with_cluster(base(), IgnoreHostsCount=-2)
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.IgnoreHostsCount: expected an integer >= 0, got -2")

    def test_non_finite(self):
        """
        NaN, Infinity (which Python's JSON reader accepts) and overflowing
        literals are refused.
        """
        for literal, shown in (("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e999", "Infinity")):
            text = '{"RaftDataDir": "x", "Stores": {"MySQL": {"ThrottleThreshold": %s}}}' % (literal,)
            self.assertEqual(
                self.fails(text=text), f"Stores.MySQL.ThrottleThreshold: expected a finite number, got {shown}"
            )

    def test_float_for_int(self):
        """
        An integer key refuses a fractional number.
        """
        doc = with_store(base(), CacheMillis=1.5)
        self.assertEqual(self.fails(doc), "Stores.MySQL.CacheMillis: expected an integer >= 0, got 1.5")

    def test_bool_for_int(self):
        """
        C{true} is not a number.
        """
        self.assertEqual(self.fails(base(ListenPort=True)), "ListenPort: expected an integer in 0..65535, got true")

    def test_string_for_int(self):
        """
        A quoted number is a string (freno's own sample had this bug).
        """
        self.assertEqual(
            self.fails(base(DefaultRaftPort="9888")), 'DefaultRaftPort: expected an integer in 0..65535, got "9888"'
        )

    def test_string_for_list(self):
        """
        C{RaftNodes} is a list, not a comma string.
        """
        self.assertEqual(self.fails(base(RaftNodes="a,b")), 'RaftNodes: expected a list of strings, got "a,b"')

    def test_list_item_type(self):
        """
        List items are checked, with their index in the path.
        """
        doc = with_cluster(base(), StaticHostsSettings={"Hosts": ["h1", 5]})
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.StaticHostsSettings.Hosts[1]: expected a string, got 5")

    def test_bool(self):
        """
        Booleans are JSON booleans.
        """
        self.assertEqual(self.fails(base(EnableProfiling="yes")), 'EnableProfiling: expected true or false, got "yes"')

    def test_object(self):
        """
        Objects are objects.
        """
        self.assertEqual(self.fails(base(Stores=[])), "Stores: expected an object, got a list")
        doc = with_cluster(base(), HAProxySettings="h:1")
        self.assertEqual(self.fails(doc), f'{CLUSTER_PATH}.HAProxySettings: expected an object, got "h:1"')

    def test_cluster_null(self):
        """
        A cluster must be an object (freno crashed on C{null}).
        """
        doc = with_store(base(), Clusters={"main": None})
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}: expected an object, got null")

    def test_cluster_name(self):
        """
        Cluster names are non-empty and without C{/}.
        """
        for name in ("", "a/b", " a"):
            doc = with_store(base(), Clusters={name: {"StaticHostsSettings": {"Hosts": ["h"]}}})
            self.assertIn("a cluster name must be non-empty", self.fails(doc))

    def test_ports_out_of_range(self):
        """
        Ports are in range.
        """
        self.assertEqual(self.fails(base(ListenPort=70000)), "ListenPort: expected an integer in 0..65535, got 70000")
        self.assertEqual(
            self.fails(base(BackendMySQLPort=0)), "BackendMySQLPort: expected an integer in 1..65535, got 0"
        )
        self.assertEqual(
            self.fails(base(DefaultRaftPort=-1)), "DefaultRaftPort: expected an integer in 0..65535, got -1"
        )
        doc = with_cluster(base(), Port=65536)
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.Port: expected an integer in 0..65535, got 65536")
        doc = with_cluster(base(), replace=True, HAProxySettings={"Host": "h", "Port": 99999, "PoolName": "p"})
        self.assertEqual(
            self.fails(doc), f"{CLUSTER_PATH}.HAProxySettings.Port: expected an integer in 0..65535, got 99999"
        )

    def test_long_string_shortened(self):
        """
        Long values are shortened in messages.
        """
        message = self.fails(base(ListenPort="x" * 500))
        self.assertEqual(message, 'ListenPort: expected an integer in 0..65535, got "' + "x" * 60 + '..."')


class KeyTests(ConfigFileMixin, SynchronousTestCase):
    """
    Unknown, misspelt, differently-cased and repeated keys.
    """

    def test_typo_suggests(self):
        """
        A typo is reported by name, with the closest known key.
        """
        doc = with_cluster(base(), ThrotleThreshold=1)
        self.assertEqual(
            self.fails(doc), f'{CLUSTER_PATH}.ThrotleThreshold: unknown key (did you mean "ThrottleThreshold"?)'
        )

    def test_unknown_without_suggestion(self):
        """
        A key like nothing known is just unknown.
        """
        self.assertEqual(self.fails(base(Zzz=1)), "Zzz: unknown key")

    def test_unknown_nested(self):
        """
        Unknown keys are found at every level.
        """
        doc = with_cluster(base(), replace=True, StaticHostsSettings={"Hosts": ["h"], "Hostz": []})
        self.assertEqual(
            self.fails(doc), f'{CLUSTER_PATH}.StaticHostsSettings.Hostz: unknown key (did you mean "Hosts"?)'
        )
        self.assertEqual(
            self.fails(base(Stores={"MySql": {}, "Redis": {}})), 'Stores.Redis: unknown key'
        )

    def test_case_insensitive(self):
        """
        Keys match whatever their case, as with Go's decoder.
        """
        doc = {
            "raftdatadir": "/tmp/x",
            "LISTENPORT": 9000,
            "stores": {"mysql": {"throttlethreshold": 2, "clusters": {"Main": {"statichostssettings": {"hosts": ["h"]}}}}},
        }
        config = self.load(doc)
        self.assertEqual((config.raft_data_dir, config.listen_port), ("/tmp/x", 9000))
        self.assertEqual(config.mysql.clusters["Main"].throttle_threshold, 2.0)

    def test_given_twice(self):
        """
        A key given twice, in any case, is an error (Go kept the last).
        """
        text = '{"RaftDataDir": "a", "raftDataDir": "b"}'
        self.assertEqual(self.fails(text=text), 'RaftDataDir: key given twice (as "RaftDataDir" and "raftDataDir")')

    def test_cluster_given_twice(self):
        """
        A cluster name given twice is an error.
        """
        text = (
            '{"RaftDataDir": "a", "Stores": {"MySQL": {"Clusters": {'
            '"c": {"StaticHostsSettings": {"Hosts": ["h"]}}, "c": {}}}}}'
        )
        self.assertEqual(self.fails(text=text), "Stores.MySQL.Clusters.c: cluster given twice")

    def test_null_is_absent(self):
        """
        C{null} leaves the default, as in freno.
        """
        config = self.load(base(ListenPort=None, MemcachePath=None))
        self.assertEqual((config.listen_port, config.memcache_path), (8087, "freno"))


class HostSourceTests(ConfigFileMixin, SynchronousTestCase):
    """
    A cluster has exactly one complete host source.
    """

    def test_none(self):
        """
        A cluster without a host source is an error.
        """
        doc = with_cluster(base(), replace=True, ThrottleThreshold=1)
        self.assertEqual(
            self.fails(doc),
            f"{CLUSTER_PATH}: no host source: set one of HAProxySettings, ProxySQLSettings, "
            "VitessSettings, StaticHostsSettings",
        )

    def test_empty_counts_as_none(self):
        """
        Empty settings objects are not a source (freno's emptiness).
        """
        doc = with_cluster(base(), replace=True, StaticHostsSettings={"Hosts": []}, HAProxySettings={})
        self.assertIn("no host source", self.fails(doc))

    def test_two(self):
        """
        Two host sources are an error naming both.
        """
        doc = with_cluster(base(), HAProxySettings={"Host": "h", "Port": 1, "PoolName": "p"})
        self.assertEqual(
            self.fails(doc),
            f"{CLUSTER_PATH}: more than one host source (HAProxySettings, StaticHostsSettings); set exactly one",
        )

    def test_malformed_hosts(self):
        """
        Static hosts are C{host} or C{host:port}.
        """
        for i, bad in enumerate(["h:", "h:abc", "h:70000", "", ":3306"]):
            doc = with_cluster(base(), replace=True, StaticHostsSettings={"Hosts": ["ok"] + [bad]})
            message = self.fails(doc)
            self.assertTrue(
                message.startswith(f"{CLUSTER_PATH}.StaticHostsSettings.Hosts[1]: invalid host"), message
            )

    def test_static_hosts_use_cluster_port(self):
        """
        Hosts are kept as written (trimmed); the cluster port applies to
        those without one.
        """
        doc = with_cluster(base(), replace=True, Port=3310, StaticHostsSettings={"Hosts": [" a ", "b:1"]})
        cluster = self.load(doc).mysql.clusters["main"]
        self.assertEqual((cluster.static_hosts.hosts, cluster.port, cluster.inventory_kind), (("a", "b:1"), 3310, "static"))

    def test_haproxy_pool_required(self):
        """
        HAProxy settings need a pool name.
        """
        doc = with_cluster(base(), replace=True, HAProxySettings={"Host": "h", "Port": 1})
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.HAProxySettings.PoolName: must be set")

    def test_haproxy_host_without_port(self):
        """
        C{Host} needs C{Port} unless C{Addresses} is given.
        """
        doc = with_cluster(base(), replace=True, HAProxySettings={"Host": "h", "PoolName": "p"})
        self.assertEqual(
            self.fails(doc), f"{CLUSTER_PATH}.HAProxySettings: Host and Port must be given together (or give Addresses)"
        )

    def test_haproxy_bad_addresses(self):
        """
        freno's refused addresses are refused.
        """
        for bad in ("localhost:", "localhost:abcd", "localhost:abcd:1234", "http://", "ftp://h:1/", "a b"):
            doc = with_cluster(base(), replace=True, HAProxySettings={"Addresses": "ok," + bad, "PoolName": "p"})
            self.assertEqual(
                self.fails(doc),
                f'{CLUSTER_PATH}.HAProxySettings.Addresses: invalid address "{bad}" '
                "(expected host, host:port or an http(s) URL)",
            )

    def test_haproxy_addresses(self):
        """
        Addresses resolve to stats URLs; C{Host}/C{Port} win.
        """
        doc = with_cluster(
            base(),
            replace=True,
            HAProxySettings={
                "Addresses": " h1 , h2:1234,, http://h3:1234/stats/pool/ ,https://h4",
                "PoolName": "p",
            },
        )
        haproxy = self.load(doc).mysql.clusters["main"].haproxy
        self.assertEqual(
            haproxy.resolved_addresses,
            ("http://h1:80", "http://h2:1234", "http://h3:1234/stats/pool/", "https://h4"),
        )
        doc = with_cluster(
            base(), replace=True, HAProxySettings={"Host": "h", "Port": 9, "Addresses": "x", "PoolName": "p"}
        )
        self.assertEqual(self.load(doc).mysql.clusters["main"].haproxy.resolved_addresses, ("http://h:9",))

    def test_proxysql_store_fallbacks(self):
        """
        A cluster giving only C{HostgroupID} takes the store's addresses,
        user and password (freno's B7 fixed).
        """
        doc = with_store(base(), ProxySQLAddresses=["p1:6032", "p2"], ProxySQLUser="u", ProxySQLPassword="pw")
        doc = with_cluster(doc, replace=True, ProxySQLSettings={"HostgroupID": 3})
        proxysql = self.load(doc).mysql.clusters["main"].proxysql
        self.assertEqual(proxysql, ProxySQLSettings(("p1:6032", "p2"), "u", "pw", 3, 0))

    def test_proxysql_incomplete(self):
        """
        Without store fallbacks, missing ProxySQL fields are named.
        """
        doc = with_cluster(base(), replace=True, ProxySQLSettings={"HostgroupID": 3, "Addresses": ["p"], "User": "u"})
        self.assertEqual(
            self.fails(doc),
            f"{CLUSTER_PATH}.ProxySQLSettings.Password: must be set (here or as Stores.MySQL.ProxySQLPassword)",
        )
        doc = with_cluster(
            base(), replace=True, ProxySQLSettings={"Addresses": ["p"], "User": "u", "Password": "x"}
        )
        self.assertEqual(
            self.fails(doc), f"{CLUSTER_PATH}.ProxySQLSettings.HostgroupID: must be set to a hostgroup >= 1"
        )

    def test_vitess(self):
        """
        Vitess needs an http(s) API and a keyspace; cells fall back to the
        store's; timeout 0 is 5 s.
        """
        doc = with_store(base(), VitessCells=["zone1", " ", "zone2"])
        doc = with_cluster(doc, replace=True, VitessSettings={"API": "http://vtctld:15000/", "Keyspace": "ks"})
        vitess = self.load(doc).mysql.clusters["main"].vitess
        self.assertEqual((vitess.cells, vitess.timeout_secs, vitess.shard), (("zone1", "zone2"), 5, ""))
        doc = with_cluster(base(), replace=True, VitessSettings={"API": "vtctld:15000", "Keyspace": "ks"})
        self.assertEqual(
            self.fails(doc),
            f'{CLUSTER_PATH}.VitessSettings.API: expected an http(s) URL with a host, got "vtctld:15000"',
        )
        doc = with_cluster(base(), replace=True, VitessSettings={"API": "http://v", "Shard": "-"})
        self.assertEqual(self.fails(doc), f"{CLUSTER_PATH}.VitessSettings.Keyspace: must be set")


class ConsensusErrorTests(ConfigFileMixin, SynchronousTestCase):
    """
    freno's consensus checks and ours.
    """

    def test_no_backend(self):
        """
        freno's message, verbatim, naming the file.
        """
        self.assertEqual(self.fails(base(RaftDataDir="")), "Either RaftDataDir or BackendMySQLHost must be set")

    def test_backend_schema(self):
        """
        A MySQL backend needs a schema.
        """
        self.assertEqual(
            self.fails(base(BackendMySQLHost="db")),
            "BackendMySQLSchema must be set when BackendMySQLHost is specified",
        )

    def test_multi_node_needs_password(self):
        """
        Two or more distinct members require C{RaftPassword}.
        """
        doc = base(RaftBind="a:1", RaftNodes=["a:1", "b:1"])
        self.assertEqual(
            self.fails(doc),
            "RaftNodes: a multi-node raft group requires RaftPassword "
            "(pysyncobj runs code sent by any peer without it)",
        )
        doc["RaftPassword"] = "s"
        self.assertEqual(self.load(doc).raft_nodes, ("a:1", "b:1"))

    def test_duplicates_are_one_member(self):
        """
        A list that is only this node, however repeated, is not multi-node.
        """
        doc = base(RaftBind="a:1", RaftNodes=["a:1", " a:1 "])
        self.assertEqual(self.load(doc).raft_nodes, ("a:1",))

    def test_nodes_include_bind(self):
        """
        A non-empty C{RaftNodes} must include C{RaftBind}.
        """
        doc = base(RaftBind="c:1", RaftNodes=["a:1", "b:1"], RaftPassword="s")
        self.assertEqual(self.fails(doc), 'RaftNodes: must include RaftBind "c:1" (this node), got [a:1, b:1]')

    def test_join(self):
        """
        With C{RaftJoin} a node C{RaftNodes} does not list may start (it
        joins as a learner); it still needs members to join and the raft
        password; C{RaftHostsFile} and C{RaftListenAddress} are read
        (C{RaftListenAddress} must be C{host:port}).
        """
        doc = base(RaftBind="c:1", RaftNodes=["a:1", "b:1"], RaftPassword="s", RaftJoin=True)
        config = self.load(doc)
        self.assertTrue(config.raft_join)
        self.assertEqual(config.raft_nodes, ("a:1", "b:1"))
        self.assertEqual(
            self.fails(base(RaftBind="c:1", RaftJoin=True)), "RaftJoin: needs RaftNodes naming members of the group to join"
        )
        self.assertIn("requires RaftPassword", self.fails(base(RaftBind="c:1", RaftNodes=["a:1"], RaftJoin=True)))
        doc.update(RaftHostsFile="/etc/freno/hosts", RaftListenAddress="0.0.0.0:1")
        config = self.load(doc)
        self.assertEqual((config.raft_hosts_file, config.raft_listen_address), ("/etc/freno/hosts", "0.0.0.0:1"))
        doc["RaftListenAddress"] = "nowhere"
        self.assertIn("RaftListenAddress", self.fails(doc))
        self.assertIn("RaftJoin", self.fails(dict(doc, RaftJoin="yes")))

    def test_bind_without_port(self):
        """
        A port-less bind with no C{DefaultRaftPort} is an error.
        """
        self.assertEqual(
            self.fails(base(RaftBind="10.0.0.1")),
            'RaftBind: "10.0.0.1" has no port (add one, or set DefaultRaftPort)',
        )

    def test_node_bad_port(self):
        """
        Member ports are checked.
        """
        doc = base(RaftBind="a:1", RaftNodes=["a:1", "b:x"], RaftPassword="s")
        self.assertEqual(self.fails(doc), 'RaftNodes: "b:x": port must be an integer in 1..65535')

    def test_mysql_backend_skips_raft_checks(self):
        """
        With a MySQL backend the raft settings are unused, so not checked.
        """
        doc = base(RaftDataDir="", BackendMySQLHost="db", BackendMySQLSchema="s", RaftBind="x", RaftNodes=["y", "z"])
        config = self.load(doc)
        self.assertEqual(config.consensus_kind, "mysql")

    def test_extensions_checked(self):
        """
        Our extension keys are validated too.
        """
        self.assertEqual(self.fails(base(LogFormat="xml")), 'LogFormat: expected "text" or "json", got "xml"')
        self.assertEqual(
            self.fails(with_store(base(), ProbeDriver="mysql")),
            'Stores.MySQL.ProbeDriver: expected "native", "pymysql" or "MySQLdb", got "mysql"',
        )
        self.assertEqual(
            self.fails(with_store(base(), ProbeIntervalMillis=100, MetricFreshnessMillis=150)),
            "Stores.MySQL.MetricFreshnessMillis: must be at least 2 x ProbeIntervalMillis (200), got 150",
        )
        self.assertEqual(
            self.fails(with_store(base(), ProbeIntervalMillis=0)),
            "Stores.MySQL.ProbeIntervalMillis: expected an integer > 0, got 0",
        )

    def test_ignore_hosts_empty_pattern(self):
        """
        An empty C{IgnoreHosts} pattern would ignore every host.
        """
        self.assertEqual(
            self.fails(with_store(base(), IgnoreHosts=["x", ""])),
            "Stores.MySQL.IgnoreHosts[1]: an empty pattern would ignore every host",
        )

    def test_memcache_servers(self):
        """
        Memcache servers are C{host[:port]}.
        """
        self.assertEqual(self.load(base(MemcacheServers=[" m:11211 "])).memcache_servers, ("m:11211",))
        self.assertIn("MemcacheServers[0]: invalid host", self.fails(base(MemcacheServers=["m:"])))


class SecretTests(ConfigFileMixin, SynchronousTestCase):
    """
    Passwords never appear in messages or reprs.
    """

    def test_wrong_type_password_hidden(self):
        """
        A password of the wrong type is described, not shown.
        """
        for key in ("Password", "ProxySQLPassword"):
            message = self.fails(with_store(base(), **{key: 987654321}))
            self.assertEqual(message, f"Stores.MySQL.{key}: expected a string, got a number (value hidden)")
        message = self.fails(base(RaftPassword=["s3cr3t"]))
        self.assertEqual(message, "RaftPassword: expected a string, got a list (value hidden)")
        self.assertNotIn("s3cr3t", message)

    def test_env_error_hides_value(self):
        """
        An env error names the variable, never the surrounding text.
        """
        message = self.fails(with_store(base(), Password="hunter2${NOPE}"))
        self.assertEqual(message, "Stores.MySQL.Password: environment variable NOPE is not set")

    def test_reprs_hide_passwords(self):
        """
        The resolved model's reprs hide every password.
        """
        doc = base(
            RaftPassword="raftsecret",
            BackendMySQLPassword="backendsecret",
        )
        doc = with_store(doc, Password="storesecret", ProxySQLPassword="proxysecret", ProxySQLUser="u",
                         ProxySQLAddresses=["p"])
        doc = with_cluster(doc, name="other", ProxySQLSettings={"HostgroupID": 1})
        config = self.load(doc)
        text = repr(config)
        for secret in ("raftsecret", "backendsecret", "storesecret", "proxysecret"):
            self.assertNotIn(secret, text)
        self.assertEqual(config.mysql.clusters["other"].proxysql.password, "proxysecret")
        self.assertEqual(config.mysql.clusters["main"].password, "storesecret")
        self.assertIsInstance(config, Config)
        self.assertIsInstance(config.mysql.clusters["main"], ClusterSettings)


class SampleTests(SynchronousTestCase):
    """
    The samples in C{conf/} load.
    """

    environ = {
        "FRENO_RAFT_PASSWORD": "raft-secret",
        "FRENO_MYSQL_USER": "freno",
        "FRENO_MYSQL_PASSWORD": "mysql-secret",
    }

    def sample(self, name: str) -> Config:
        return load_config(os.path.join(REPO, "conf", name), self.environ)

    def test_every_sample_loads(self):
        """
        Every C{conf/*.json} (ours and other modules' samples) loads with
        the variables it uses set.
        """
        names = sorted(n for n in os.listdir(os.path.join(REPO, "conf")) if n.endswith(".json"))
        self.assertGreaterEqual(len(names), 3)
        for name in names:
            with open(os.path.join(REPO, "conf", name)) as f:
                referenced = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", f.read())
            environ = dict({variable: "value" for variable in referenced}, **self.environ)
            self.assertIsInstance(load_config(os.path.join(REPO, "conf", name), environ), Config, name)

    def test_single(self):
        """
        The single-node sample is single-node raft with a static cluster.
        """
        config = self.sample("freno.conf.single.json")
        self.assertEqual((config.raft_nodes, config.consensus_kind), ((), "raft"))
        self.assertEqual(config.mysql.clusters["main"].inventory_kind, "static")

    def test_raft3(self):
        """
        The 3-node sample takes its raft password from the environment and
        shows an explicit cluster-level 0 overriding the store.
        """
        config = self.sample("freno.conf.raft3.json")
        self.assertEqual(config.raft_nodes, ("10.0.0.1:10008", "10.0.0.2:10008", "10.0.0.3:10008"))
        self.assertEqual(config.raft_bind, "10.0.0.1:10008")
        self.assertEqual(config.raft_password, "raft-secret")
        self.assertEqual(config.mysql.clusters["main"].ignore_hosts_count, 1)
        self.assertEqual(config.mysql.clusters["archive"].ignore_hosts_count, 0)
        with self.assertRaises(ConfigError) as cm:
            load_config(os.path.join(REPO, "conf", "freno.conf.raft3.json"), {})
        self.assertEqual(cm.exception.problem, "environment variable FRENO_RAFT_PASSWORD is not set")

    def test_haproxy(self):
        """
        The HAProxy sample resolves its stats addresses.
        """
        config = self.sample("freno.conf.haproxy.json")
        self.assertEqual(
            config.mysql.clusters["reports"].haproxy.resolved_addresses,
            ("http://127.0.0.1:8404", "http://127.0.0.1:8405/stats"),
        )
