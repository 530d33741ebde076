"""
Publishing from a real node: one C{twistd freno} process probing a MariaDB
sandbox writes to a real memcached and serves C{/metrics} that
C{prometheus_client}'s parser reads.

[slow, real processes: about 15 s]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase

from test.skips import binary_or_skip
from test.integration.test_publish_memcache_integration import VALUE_RE, Memcached, free_port, get_or_down


class NodePublishingTests(TestCase):
    """
    [slow, real processes] A single node with C{MemcacheServers} set.
    """

    timeout = 120

    def setUp(self) -> None:
        for binary in ("memcached", "mariadbd"):
            binary_or_skip(binary)
        from freno.sandbox.cluster import store_for
        from freno.sandbox.mysql import MySQLSandbox
        from freno.sandbox.nodes import FrenoGroup

        self.workdir = tempfile.mkdtemp(prefix="freno-publish-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.memcached = Memcached(free_port())
        self.addCleanup(self.memcached.stop)
        self.memcached.start()
        self.sandbox = MySQLSandbox(self.workdir, replicas=1)
        self.addCleanup(self.sandbox.stop)
        self.sandbox.start()
        self.server = f"127.0.0.1:{self.memcached.port}"
        self.group = FrenoGroup(
            os.path.join(self.workdir, "freno"),
            size=1,
            store=store_for(self.sandbox),
            extra_config={"MemcacheServers": [self.server], "MemcachePath": "fr"},
        )
        self.addCleanup(self.group.stop)
        self.group.start()
        self.node = self.group.wait_leader(30)

    def test_memcache_and_metrics(self) -> None:
        """
        The leader writes C{fr/mysql/main} as C{<millis>:<lag %.6f>};
        C{/config/memcache} shows the configuration; C{/metrics} parses and
        counts the memcache writes.
        """
        from freno.sandbox.nodes import wait_for

        value = wait_for(
            lambda: (lambda v: v if isinstance(v, bytes) else None)(
                get_or_down(self.memcached.port, "fr/mysql/main")
            ),
            20,
            what="fr/mysql/main in memcached",
        )
        match = VALUE_RE.match(value)
        self.assertIsNotNone(match, value)
        self.assertLess(float(match.group(2)), 1.0)  # the sandbox's lag

        status, body = self.node.get("/config/memcache")
        self.assertEqual(status, 200)
        self.assertEqual(
            json.loads(body), {"MemcacheServers": [self.server], "MemcachePath": "fr"}
        )

        status, body = self.node.get("/metrics")
        self.assertEqual(status, 200)
        families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
        writes = [
            s.value
            for s in families["freno_memcache_writes"].samples
            if s.name == "freno_memcache_writes_total" and s.labels == {"server": self.server}
        ]
        self.assertEqual(len(writes), 1)
        self.assertGreater(writes[0], 0)
        self.assertIn("process_cpu_seconds", families)
