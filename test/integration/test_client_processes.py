"""
The client library and C{freno-cli} against a real deployment: three
C{twistd freno} processes in a raft group probing a MariaDB replication
sandbox (L{freno.sandbox}), lag injected and removed on a replica, the
leader SIGKILLed.

[slow, real processes: about a minute and a half] One sandbox and one group
serve the whole class; every test leaves them as it found them (no lag, no
throttle, three nodes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from freno.client import FrenoClient, NotAllowed
from freno.client.answers import GO_NOT_FOUND
from freno.client.http import HTTPTransport
from freno.sandbox.processes import process_state, wait_for
from test.support import SharedGroupMixin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: A batch job: writes "<pid> <counter>" to a file, about 50 times a second.
COUNTER_CHILD = """
import os, sys, time
path, n = sys.argv[1], 0
while True:
    n += 1
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {n}\\n")
    os.replace(path + ".tmp", path)
    time.sleep(0.02)
"""


def read_counter(path: str) -> Optional[Tuple[int, int]]:
    """
    C{(pid, counter)} from the child's file, or L{None} before it wrote one.
    """
    try:
        with open(path) as f:
            pid, n = f.read().split()
        return int(pid), int(n)
    except (OSError, ValueError):
        return None


class CountingTransport(HTTPTransport):
    """
    The real transport, counting the checks sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def request(self, base_url, method, target, headers, body, timeout):
        if target.startswith("/check/"):
            self.checks += 1
        return super().request(base_url, method, target, headers, body, timeout)


class ClientProcessTests(SharedGroupMixin, SynchronousTestCase):
    """
    [slow, real processes] The client against a raft group of C{twistd freno}
    processes and a MariaDB sandbox.
    """

    sandbox_kwargs = {"replicas": 2}
    def setUp(self) -> None:
        super().setUp()
        self.urls = [node.url for node in self.group.nodes]
        self.client = FrenoClient(self.urls, timeout=1.0)
        self.addCleanup(self.client.close)
        wait_for(lambda: self.client.check("setup", "main").allowed, 30, what="/check 200 from the group")


    # -- helpers ------------------------------------------------------------

    def cli(self, *argv: str, timeout: float = 60) -> Tuple[int, str, str]:
        """
        Run C{freno-cli} from this checkout with C{FRENO_URL} naming every
        node; return its exit status and output.
        """
        env = dict(os.environ, PYTHONPATH=ROOT, FRENO_URL=",".join(self.urls))
        env.pop("FRENO_TOKEN", None)
        done = subprocess.run(
            [sys.executable, "-m", "freno.client.cli", *argv], capture_output=True, timeout=timeout, env=env
        )
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    def lag(self) -> None:
        """
        Make replica 0 lag (growing), and undo it at clean-up.
        """
        self.sandbox.inject_lag(0)
        self.addCleanup(self.unlag)

    def unlag(self) -> None:
        self.sandbox.remove_lag(0)
        self.sandbox.wait_caught_up(timeout=30)

    # -- tests ----------------------------------------------------------------

    def test_check_exit_codes(self) -> None:
        """
        C{freno-cli check} exits 0, then 1 while lag is injected (429,
        value above threshold), then 0 again once it is removed.
        """
        code, out, err = self.cli("check", "cli-check", "main")
        self.assertEqual(code, 0, out + err)
        self.assertIn("allowed 200", out)
        self.lag()
        wait_for(lambda: self.cli("check", "cli-check", "main")[0] == 1, 30, interval=0.2, what="exit 1")
        code, out, _ = self.cli("check", "cli-check", "main", "--json")
        result = json.loads(out)
        self.assertEqual((code, result["status"], result["threshold"]), (1, 429, 1.0))
        self.assertGreater(result["value"], 1.0)
        self.assertIn(result["node"], self.urls)
        self.unlag()
        wait_for(lambda: self.cli("check", "cli-check", "main")[0] == 0, 30, interval=0.2, what="exit 0")
        code, out, _ = self.cli("check", "cli-check", "no-such-cluster")
        self.assertEqual(code, 2, out)

    def test_check_headers(self) -> None:
        """
        Where the nodes send the check headers (C{X-Freno-*}, C{Retry-After}),
        the result carries reason, data age and leader; under lag the server's
        C{Retry-After} spaces the checks of C{wait_until_allowed}, which gives
        up at its deadline.
        """
        transport = CountingTransport()
        client = FrenoClient(self.urls, timeout=1.0, transport=transport)
        self.addCleanup(client.close)
        result = client.check("headers", "main")
        if result.data_age_ms is None:
            raise SkipTest("the nodes send no X-Freno-* check headers (the check-answers work is not here)")
        self.assertTrue(result.allowed)
        self.assertGreaterEqual(result.data_age_ms, 0)
        self.assertTrue(result.leader["leader"])
        self.lag()
        result = wait_for(lambda: (lambda r: r if r.status == 429 else None)(client.check("headers", "main")),
                          30, what="429")
        self.assertGreater(result.retry_after, 0)
        self.assertIn("lag", result.reason)
        before = transport.checks
        started = time.monotonic()
        error = self.assertRaises(NotAllowed, client.wait_until_allowed, "headers", "main",
                                  max_wait=3, poll=0.01, cap=0.01)
        elapsed = time.monotonic() - started
        self.assertEqual(error.result.status, 429)
        # Without Retry-After, 3 s at a 10 ms poll would be ~300 checks.
        self.assertLessEqual(transport.checks - before, elapsed / result.retry_after + 2)

    def test_control_through_freno_routes(self) -> None:
        """
        Without a token, throttle, unthrottle, skip and recover go through
        freno's GET routes and the listings show their effect; a throttled
        app's check is 417 (exit 1).
        """
        now = time.time()
        result = self.client.throttle("ctl-app", ttl="30m", ratio=1, reason="client test")
        self.assertEqual((result.via, result.body), ("freno", {"StatusCode": 200, "Message": "OK"}))
        self.addCleanup(self.client.unthrottle, "ctl-app")
        [throttle] = [t for t in self.client.throttles() if t.key == "ctl-app"]
        self.assertEqual(throttle.ratio, 1.0)
        self.assertLess(abs(throttle.expires_at_unix - (now + 1800)), 60)
        check = self.client.check("ctl-app", "main")
        self.assertEqual(check.status, 417)
        self.assertTrue(check.reason == "App denied" or "throttled" in check.reason, check.reason)
        self.assertEqual(self.cli("check", "ctl-app", "main")[0], 1)
        code, out, _ = self.cli("list", "--json")
        self.assertIn("ctl-app", [t["key"] for t in json.loads(out)["throttles"]])
        self.client.unthrottle("ctl-app")
        self.assertTrue(self.client.check("ctl-app", "main").allowed)

        self.client.skip("db-gone", ttl="1h")
        [skip] = [s for s in self.client.skips() if s.host == "db-gone"]
        self.assertLess(abs(skip.expires_at_unix - (now + 3600)), 60)
        self.client.recover("db-gone")
        self.assertNotIn("db-gone", [s.host for s in self.client.skips()])

        code, out, err = self.cli("throttle", "cli-app", "--ttl", "10m", "--store", "main")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.cli("check", "cli-app", "main")[0], 1)
        self.assertEqual(self.cli("unthrottle", "cli-app", "--store", "main")[0], 0)
        self.assertEqual(self.cli("check", "cli-app", "main")[0], 0)
        code, _, err = self.cli("throttle", "cli-app", "--ttl", "90s")
        self.assertEqual(code, 2)
        self.assertIn("whole minutes", err)

    def test_status(self) -> None:
        """
        C{freno-cli status} shows the leader, the three members and the
        cluster's value: from C{/api/v1/status} where the nodes serve it
        (with threshold and age), else from freno's routes.
        """
        leader = self.group.wait_leader(10)
        code, out, err = self.cli("status", "--json")
        self.assertEqual(code, 0, err)
        status = json.loads(out)
        self.assertTrue(status["is_leader"])
        self.assertEqual(status["leader"], leader.raft_address)
        [main] = status["clusters"]
        self.assertEqual(main["name"], "main")
        self.assertLess(main["value"], 1.0)
        if status["source"] == "api":
            self.assertEqual(sorted(m["id"] for m in status["members"]),
                             sorted(n.raft_address for n in self.group.nodes))
            self.assertEqual((main["threshold"], type(main["age_ms"])), (1.0, int))
        else:
            self.assertEqual(status["source"], "freno routes")
            self.assertEqual(sorted(m["url"] for m in status["members"]), sorted(self.urls))
            self.assertEqual([m["reachable"] for m in status["members"]], [True] * 3)
        code, out, _ = self.cli("status")
        self.assertIn(f"leader: {leader.raft_address}", out)

    def test_run_pauses_and_resumes(self) -> None:
        """
        C{freno-cli run} stops a real batch process (state T, its counter
        frozen) while lag is injected and continues it once the lag is gone;
        a SIGTERM reaches it, and freno-cli exits with its status.
        """
        workdir = self.mktemp()
        os.makedirs(workdir)
        counter = os.path.join(workdir, "counter")
        env = dict(os.environ, PYTHONPATH=ROOT, FRENO_URL=",".join(self.urls))
        stderr_path = os.path.join(workdir, "stderr")
        with open(stderr_path, "wb") as stderr:
            runner = subprocess.Popen(
                [sys.executable, "-m", "freno.client.cli", "run", "--app", "cli-run", "--cluster", "main",
                 "--interval", "0.2", "--json", "--", sys.executable, "-c", COUNTER_CHILD, counter],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            )
        child: List[int] = []

        def stop_all() -> None:
            if runner.poll() is None:
                runner.kill()
                runner.wait(10)
            for pid in child:
                if process_state(pid) not in (None, "Z"):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)

        self.addCleanup(stop_all)
        pid, first = wait_for(lambda: read_counter(counter), 30, what="the child's counter")
        child.append(pid)
        wait_for(lambda: read_counter(counter)[1] > first + 5, 10, what="the counter to advance")

        self.lag()
        wait_for(lambda: process_state(pid) == "T", 30, interval=0.05, what="the child to be stopped")
        frozen = read_counter(counter)[1]
        time.sleep(1.0)  # a stopped process writes nothing
        self.assertEqual(process_state(pid), "T")
        self.assertEqual(read_counter(counter)[1], frozen)

        self.unlag()
        wait_for(lambda: process_state(pid) not in ("T", None), 30, interval=0.05, what="the child to continue")
        wait_for(lambda: read_counter(counter)[1] > frozen + 5, 10, what="the counter to advance again")

        runner.send_signal(signal.SIGTERM)
        self.assertEqual(runner.wait(20), 128 + signal.SIGTERM)
        self.assertIsNone(process_state(pid))
        with open(stderr_path) as f:
            events = [json.loads(line)["event"] for line in f if line.startswith("{")]
        for event in ("started", "paused", "resumed", "signal", "exited"):
            self.assertIn(event, events)

    def test_failover_during_wait(self) -> None:
        """
        A client given every node waits while lag is injected; the leader is
        SIGKILLed mid-wait and the lag removed; C{wait_until_allowed} returns
        allowed from the new leader.
        """
        transport = CountingTransport()
        client = FrenoClient(self.urls, timeout=1.0, transport=transport)
        self.addCleanup(client.close)
        self.lag()
        wait_for(lambda: client.check("failover", "main").status == 429, 30, what="429")
        outcome: dict = {}

        def wait() -> None:
            try:
                outcome["result"] = client.wait_until_allowed("failover", "main", max_wait=90, poll=0.2, cap=1.0)
            except Exception as e:  # reported by the assertions below
                outcome["error"] = e
            outcome["at"] = time.monotonic()

        waiter = threading.Thread(target=wait, daemon=True)
        before = transport.checks
        waiter.start()
        wait_for(lambda: transport.checks >= before + 3, 30, what="the client to be waiting")
        leader = self.group.wait_leader(10)
        leader.kill()
        killed_at = time.monotonic()
        self.addCleanup(self._restart, leader)
        self.unlag()
        waiter.join(120)
        self.assertFalse(waiter.is_alive())
        self.assertNotIn("error", outcome)
        result = outcome["result"]
        self.assertTrue(result.allowed)
        self.assertGreater(outcome["at"], killed_at)
        self.assertNotEqual(result.node, leader.url)
        self.assertIn(result.node, self.urls)

    def _restart(self, node) -> None:
        node.start()
        node.wait_ready(30)
        self.group.wait_leader(30)

    def test_explain_and_audit(self) -> None:
        """
        C{freno-cli explain} and C{audit} print the leader's answer where the
        nodes serve C{/explain} and C{/api/v1/audit}, and otherwise say the
        route is not served and exit 2.
        """
        serves = {path: self.group.nodes[0].get(path)[1] != GO_NOT_FOUND
                  for path in ("/explain/app/mysql/main", "/api/v1/audit")}
        code, out, err = self.cli("explain", "app", "main", "--json")
        if serves["/explain/app/mysql/main"]:
            self.assertEqual(code, 0, err)
            explain = json.loads(out)
            self.assertTrue(explain["is_leader"])
            self.assertEqual(explain["decision"]["status"], 200)
        else:
            self.assertEqual(code, 2)
            self.assertIn("does not serve /explain", err)
        code, out, err = self.cli("audit", "--json")
        if serves["/api/v1/audit"]:
            self.assertEqual(code, 0, err)
            self.assertIsInstance(json.loads(out)["records"], list)
        else:
            self.assertEqual(code, 2)
            self.assertIn("does not serve /api/v1/audit", err)
