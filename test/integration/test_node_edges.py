"""
Real C{twistd freno} processes at the edges of the check path:

    - a single node (C{"RaftNodes": []}) is leader from its very first
      answer: C{/leader-check} is 200 and no check ever gets C{not leader};
    - clusters whose inventory source is down, answers garbage or never
      answers (HAProxy; also ProxySQL down and Vitess garbage) answer 500
      C{Metric not collected yet} on every check route, method and flag,
      never 200 and never 404;
    - the HTTP socket listens with the configured backlog (C{ss -ltn}).

The stand-ins are local: a closed port, a socket that listens and never
accepts, and a tiny HTTP server (a thread of this process) answering
garbage. No MySQL server is used: no cluster ever gets a host to probe.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twisted.trial.unittest import SynchronousTestCase

from freno.http.listen import listen_backlog, read_somaxconn
from freno.sandbox.nodes import FrenoNode
from freno.sandbox.processes import free_port, wait_for
from test.skips import binary_or_skip

NOT_COLLECTED = "Metric not collected yet"
ROUTES = ("check/app/mysql/{c}", "check-if-exists/app/mysql/{c}",
          "check-read/app/mysql/{c}/1", "check-read-if-exists/app/mysql/{c}/1")


class _Garbage(BaseHTTPRequestHandler):
    """
    Answers every GET with 200 and bytes that are neither CSV nor JSON.
    """

    def do_GET(self):
        body = b"\x00\xff<html>garbage, not\na,stats\ncsv [{\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class NodeEdgeTests(SynchronousTestCase):
    """
    One single-node C{twistd freno} per test.
    """

    def setUp(self):
        self.garbage = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
        thread = threading.Thread(target=self.garbage.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(self.garbage.server_close)
        self.addCleanup(self.garbage.shutdown)
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen(8)  # accepts connections in the kernel, never answers
        self.addCleanup(self.silent.close)

    def node(self, **extra) -> FrenoNode:
        garbage = f"127.0.0.1:{self.garbage.server_address[1]}"
        silent = f"127.0.0.1:{self.silent.getsockname()[1]}"
        closed = f"127.0.0.1:{free_port()}"
        workdir = os.path.abspath(self.mktemp())
        config = {
            "ListenPort": free_port(),
            "RaftBind": f"127.0.0.1:{free_port()}",
            "RaftDataDir": os.path.join(workdir, "raft"),
            "RaftNodes": [],
            "Stores": {
                "MySQL": {
                    "ThrottleThreshold": 1.0,
                    "InventoryRefreshSeconds": 1,
                    "Clusters": {
                        "hapdown": {"HAProxySettings": {"Addresses": closed, "PoolName": "p"}},
                        "hapgarbage": {"HAProxySettings": {"Addresses": garbage, "PoolName": "p"}},
                        "hapslow": {"HAProxySettings": {"Addresses": silent, "PoolName": "p"}},
                        "proxysqldown": {"ProxySQLSettings": {
                            "Addresses": [closed], "User": "u", "Password": "p", "HostgroupID": 1}},
                        "vitessgarbage": {"VitessSettings": {
                            "API": f"http://{garbage}", "Keyspace": "ks", "Shard": "0"}},
                    },
                }
            },
        }
        config.update(extra)
        node = FrenoNode("edge", workdir, config)
        self.addCleanup(node.stop)
        node.start()
        return node

    def first_answer(self, node: FrenoNode, path: str, timeout: float = 20.0):
        """
        Poll C{path} from the moment the process starts until it answers
        anything; return that first answer.
        """
        def answered():
            if not node.running():
                raise AssertionError(f"node exited:\n{node.log_tail()}")
            status, body = node.get(path, timeout=2.0)
            return (status, body) if status else None

        return wait_for(answered, timeout, interval=0.005, what=f"a first answer to {path}")

    def test_single_node_leads_from_its_first_answer(self):
        """
        A single node's very first answers: C{/leader-check} 200, and a check
        answers 500 C{Metric not collected yet}, not C{not leader}.
        """
        node = self.node()
        self.assertEqual(self.first_answer(node, "/leader-check"), (200, b'"HTTP 200"\n'))
        node.stop()

        node = self.node()
        status, body = self.first_answer(node, "/check/app/mysql/hapdown")
        self.assertEqual((status, json.loads(body)["Message"]), (500, NOT_COLLECTED))
        self.assertEqual(node.get("/leader-check")[0], 200)

    def test_unloaded_inventories_never_say_go(self):
        """
        For several seconds (several failed refreshes of each source), every
        check route, with GET and HEAD, with and without C{p=low}, on every
        cluster answers 500 C{Metric not collected yet}.
        """
        node = self.node()
        node.wait_ready()
        wait_for(node.is_leader, 20, what="leadership")
        clusters = ("hapdown", "hapgarbage", "hapslow", "proxysqldown", "vitessgarbage")
        deadline = time.monotonic() + 4.0
        rounds = 0
        while time.monotonic() < deadline or rounds < 2:
            rounds += 1
            for cluster in clusters:
                for route in ROUTES:
                    for query in ("", "?p=low"):
                        path = "/" + route.format(c=cluster) + query
                        status, body = node.get(path, timeout=5.0)
                        self.assertEqual(status, 500, (path, body))
                        self.assertEqual(json.loads(body)["Message"], NOT_COLLECTED, path)
                        self.assertEqual(node.get(path, "HEAD", timeout=5.0), (500, b""), path)
        _, metrics = node.get("/metrics")
        for cluster in clusters:
            self.assertIn(
                f'freno_inventory_glitches_total{{cluster="{cluster}"}}'.encode(), metrics
            )
        with open(node.log_path) as f:
            self.assertNotIn("Traceback", f.read())

    def test_listen_backlog(self):
        """
        The HTTP socket's accept queue is the automatic backlog (capped by
        the kernel's somaxconn), or C{ListenBacklog} when set.
        """
        ss = binary_or_skip("ss")
        somaxconn = read_somaxconn() or 4096
        for extra, expected in (({}, min(listen_backlog(0), somaxconn)),
                                ({"ListenBacklog": 300}, min(300, somaxconn))):
            node = self.node(**extra)
            node.wait_ready()
            output = subprocess.run(
                [ss, "-ltnH", f"sport = :{node.http_port}"],
                capture_output=True, text=True, check=True,
            ).stdout.split()
            self.assertEqual(output[0], "LISTEN", output)
            self.assertEqual(int(output[2]), expected, output)
            node.stop()
