"""
Shared-domain health end to end (docs/compatibility.md, 429): two real C{twistd
freno} nodes on the MySQL consensus backend, each alone in its domain
(C{dc1:prod}, C{dc2:prod}) and both in the same C{ShareDomain}, backed by
a sandbox primary that the test starts (L{freno.sandbox.mysql}, no
replicas), in a database the test creates. Both nodes probe that primary for
a cluster named C{main}, each with a C{MetricQuery} reading its own row of a
table the test controls; pushing domain 2's value over the threshold makes domain 1's
C{/check} answer 429 within a few seconds, and recovery brings back 200.

[slow, real processes: about 20 s]
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from freno.sandbox.nodes import FrenoNode
from freno.sandbox.processes import free_port, wait_for
from test.skips import HOSTNAME_UNRESOLVABLE
from test.support import start_sandbox


class SharedDomainNodesTests(SynchronousTestCase):
    """
    [slow, real processes] Two domains sharing a ShareDomain.
    """

    def setUp(self) -> None:
        try:
            socket.gethostbyname(socket.gethostname())
        except OSError:
            raise SkipTest(HOSTNAME_UNRESOLVABLE)
        self.sandbox = start_sandbox(self, replicas=0)
        primary = self.sandbox.primary
        conn = self.sandbox.connect(primary)
        self.db = "freno_sd_" + uuid.uuid4().hex[:12]
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.db}")
            cursor.execute(
                f"CREATE TABLE {self.db}.lagtab (name varchar(8) PRIMARY KEY, value double)"
            )
            cursor.execute(f"INSERT INTO {self.db}.lagtab VALUES ('a', 0.1), ('b', 0.1)")
        conn.close()
        self.workdir = tempfile.mkdtemp(prefix="freno-shared-domain-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        share = "sd-" + self.db[-8:]
        self.node1 = self._node("dc1", share, "a")
        self.node2 = self._node("dc2", share, "b")
        for node in (self.node1, self.node2):
            self.addCleanup(node.stop)
            node.start()
        for node in (self.node1, self.node2):
            node.wait_ready(20)

    def _node(self, dc: str, share: str, row: str) -> FrenoNode:
        config = {
            "ListenPort": free_port(),
            "DataCenter": dc,
            "Environment": "prod",
            "ShareDomain": share,
            "BackendMySQLHost": self.sandbox.primary.host,
            "BackendMySQLPort": self.sandbox.primary.port,
            "BackendMySQLSchema": self.db,
            "BackendMySQLUser": "root",
            "BackendMySQLPassword": "",
            "Stores": {
                "MySQL": {
                    "User": "root",
                    "Password": "",
                    "MetricQuery": f"select value from {self.db}.lagtab where name='{row}'",
                    "Clusters": {
                        "main": {
                            "ThrottleThreshold": 1.0,
                            "StaticHostsSettings": {"Hosts": [self.sandbox.primary.hostport]},
                        }
                    },
                }
            },
        }
        return FrenoNode(dc, os.path.join(self.workdir, dc), config)

    def set_value(self, row: str, value: float) -> None:
        conn = self.sandbox.connect(self.sandbox.primary, database=self.db)
        with conn.cursor() as cursor:
            cursor.execute("UPDATE lagtab SET value=%s WHERE name=%s", (value, row))
        conn.close()

    def shared_services(self, node: FrenoNode):
        """
        C{node}'s C{ShareDomainServices} as C{/consensus/status} shows them.
        """
        status, body = node.get("/consensus/status")
        if status != 200:
            return None
        return json.loads(body).get("ShareDomainServices")

    def node2_id(self) -> str:
        """
        Domain 2's service id (C{hostname:ListenPort}).
        """
        return f"{socket.gethostname()}:{self.node2.http_port}"

    def check(self, node: FrenoNode):
        """
        C{GET /check/app/mysql/main}: C{(status, JSON body or None)}.
        """
        status, body = node.get("/check/app/mysql/main")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def wait_status(self, node: FrenoNode, status: int, timeout: float, what: str):
        """
        Poll C{node}'s check until it answers C{status}; return the body.
        """
        try:
            return wait_for(
                lambda: (lambda r: r[1] if r[0] == status else None)(self.check(node)),
                timeout,
                interval=0.1,
                what=what,
            )
        except TimeoutError as e:
            raise AssertionError(
                f"{e}; last answer {self.check(node)}\n"
                f"{node.name} log:\n{node.log_tail(30)}"
            ) from None

    def test_peer_unhealthy_then_recovered(self) -> None:
        """
        Domain 2's metric over its threshold turns domain 1's check into 429
        (with domain 1's own value below the threshold), domain 1's C{freno}
        app is exempt, and recovery brings back 200.
        """
        for node in (self.node1, self.node2):
            self.wait_status(node, 200, 30, f"{node.name} to answer 200")
        wait_for(
            lambda: self.shared_services(self.node1) == {"dc2:prod": self.node2_id()},
            15,
            interval=0.1,
            what="dc1 to see dc2's leader in its ShareDomain",
        )

        self.set_value("b", 5.0)
        self.wait_status(self.node2, 429, 10, "dc2 to see its own lag")
        answer = self.wait_status(self.node1, 429, 10, "dc1 to answer 429 for dc2's lag")
        self.assertEqual(answer["Message"], "Threshold exceeded")
        self.assertLess(answer["Value"], answer["Threshold"])
        self.assertEqual(self.node1.get("/check/freno/mysql/main")[0], 200)

        self.set_value("b", 0.1)
        self.wait_status(self.node1, 200, 10, "dc1 to answer 200 after recovery")
