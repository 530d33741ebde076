"""
The status page in a real browser: Debian's chromium, headless, driven by
playwright (launched with C{executable_path=/usr/bin/chromium}; it never
downloads a browser), against three C{twistd freno} processes in a raft
group probing a MariaDB replication sandbox.

It checks that the page loads with no console errors and shows every
cluster; that lag injected on a replica turns its row red within 2 s of the
leader refusing checks, and green again once removed; that a throttled app
shows with its countdown; that a follower's page says so and links to the
leader; and that killing the leader makes the page follow the new one.
Screenshots (healthy and unhealthy, 1280x800 and a 390-pixel-wide phone;
a follower's page; the page after following a new leader) are saved under
C{_trial_temp/dashboard-screens/}.

[slow, real processes and a browser: about a minute and a half] One
sandbox, one group and one browser serve the whole class; the leader is
killed by the last test.
"""

from __future__ import annotations

import json
import os
import time
from typing import List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from freno.config.model import HEARTBEAT_QUERY
from freno.sandbox.cluster import CONSTANT_QUERY
from freno.sandbox.nodes import FrenoNode
from freno.sandbox.processes import wait_for
from test.skips import binary_or_skip
from test.support import SharedGroupMixin

#: Where screenshots go (relative to trial's working directory, _trial_temp).
SCREENS = "dashboard-screens"
#: The issue's bound: a row turns red within 2 s of the leader refusing checks.
RED_WITHIN = 2.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def store(sandbox) -> dict:
    """
    Two clusters: C{main} (the replicas' heartbeat lag, threshold 1 s) and
    C{archive} (the primary, a constant 0).
    """
    primary = sandbox.primary
    return {
        "User": sandbox.user,
        "Password": sandbox.password,
        "Clusters": {
            "main": {
                "MetricQuery": HEARTBEAT_QUERY,
                "ThrottleThreshold": 1.0,
                "StaticHostsSettings": {"Hosts": [f"{s.host}:{s.port}" for s in sandbox.replicas]},
            },
            "archive": {
                "MetricQuery": CONSTANT_QUERY,
                "ThrottleThreshold": 2.0,
                "StaticHostsSettings": {"Hosts": [f"{primary.host}:{primary.port}"]},
            },
        },
    }


class DashboardBrowserTests(SharedGroupMixin, SynchronousTestCase):
    """
    [slow, real processes and a browser] The status page against a raft
    group of C{twistd freno} processes and a MariaDB sandbox.
    """

    sandbox_kwargs = {"replicas": 2}
    _playwright = None
    _browser = None

    def setUp(self) -> None:
        binary_or_skip("chromium")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise SkipTest("playwright not installed: run make deps (pip install -e '.[test]')")
        super().setUp()
        cls = type(self)
        if cls._browser is None:
            cls._playwright = sync_playwright().start()
            cls._browser = cls._playwright.chromium.launch(
                executable_path=binary_or_skip("chromium"), args=["--no-sandbox"]
            )
        self.leader = self.group.wait_leader(30)
        wait_for(lambda: self.leader.get("/check/setup/mysql/main")[0] == 200, 30, what="/check 200")
        wait_for(lambda: self.leader.get("/check/setup/mysql/archive")[0] == 200, 30, what="/check 200")
        os.makedirs(SCREENS, exist_ok=True)

    def group_store(self) -> dict:
        return store(self.sandbox)

    def release_shared(self) -> None:
        cls = type(self)
        if cls._browser is not None:
            cls._browser.close()
            cls._playwright.stop()
            cls._browser = cls._playwright = None

    # -- helpers ------------------------------------------------------------

    def open(self, node: FrenoNode, viewport=DESKTOP):
        """
        A new page on C{node}'s dashboard, its console errors collected in
        C{page.errors}, closed at clean-up.
        """
        page = self._browser.new_page(viewport=viewport)
        self.addCleanup(page.close)
        errors: List[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto(node.url + "/", wait_until="load")
        return page

    def row_status(self, page, cluster: str):
        """
        The C{data-status} of a cluster's row, or C{None} before it shows.
        """
        row = page.query_selector(f'#clusters tr[data-cluster="{cluster}"]')
        return row.get_attribute("data-status") if row is not None else None

    def wait_page(self, page, predicate, timeout: float, what: str):
        """
        Poll C{predicate(page)} (letting the page run between polls) until
        it is true or C{timeout} passes.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(page)
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout} s waiting for {what}")
            page.wait_for_timeout(100)

    def screenshot(self, page, name: str) -> None:
        """
        Save C{name}.png (the whole page) under L{SCREENS}, once the
        selected cluster's breakdown shows.
        """
        self.wait_page(page, lambda p: p.is_visible("#detail") and p.query_selector("#chart svg"), 10,
                       "the selected cluster's chart")
        page.wait_for_timeout(300)
        page.screenshot(path=os.path.join(SCREENS, name + ".png"), full_page=True)

    def lag(self) -> None:
        """
        Make replica 0 lag (growing), and undo it at clean-up.
        """
        self.sandbox.inject_lag(0)
        self.addCleanup(self.sandbox.remove_lag, 0)

    # -- tests --------------------------------------------------------------

    def test_loads(self):
        """
        The page loads with no console errors, shows every cluster green
        with its hosts, the leader and its members, and a sparkline.
        """
        self.leader.get("/check/dash-app/mysql/main")
        page = self.open(self.leader)
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok" and self.row_status(p, "archive") == "ok",
                       15, "both clusters ok")
        self.assertEqual(
            sorted(e.get_attribute("data-cluster") for e in page.query_selector_all("#clusters tbody tr")),
            ["archive", "main"],
        )
        page.click('#clusters tr[data-cluster="main"]')
        self.wait_page(page, lambda p: p.text_content("#detail-name") == "main", 5, "main selected")
        self.wait_page(page, lambda p: len(p.query_selector_all("#hosts tbody tr")) == 2, 10, "main's two hosts")
        self.assertEqual(page.inner_text("#role"), "leader")
        self.assertEqual(len(page.query_selector_all("#members tr")), 3)
        self.wait_page(page, lambda p: p.query_selector('#clusters tr[data-cluster="main"] svg polyline'), 10,
                       "a sparkline")
        self.wait_page(page, lambda p: p.query_selector('#recent li[data-app="dash-app"]'), 10, "recent apps")
        self.screenshot(page, "healthy-1280x800")
        phone = self.open(self.leader, PHONE)
        self.wait_page(phone, lambda p: self.row_status(p, "main") == "ok", 15, "main ok on a phone")
        self.screenshot(phone, "healthy-390")
        self.assertEqual(page.errors, [])
        self.assertEqual(phone.errors, [])

    def test_lag(self):
        """
        Lag on a replica turns its cluster's row red within 2 s of the
        leader refusing checks, problems first; removing the lag turns it
        green again.
        """
        page = self.open(self.leader)
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok", 15, "main ok")
        self.lag()
        wait_for(lambda: self.leader.get("/check/dash/mysql/main")[0] == 429, 30, interval=0.05,
                 what="the leader to answer 429")
        refused = time.monotonic()
        self.wait_page(page, lambda p: self.row_status(p, "main") == "over", 30, "main red")
        took = time.monotonic() - refused
        self.assertLessEqual(took, RED_WITHIN, f"main turned red {took:.2f} s after the first 429")
        first = page.query_selector("#clusters tbody tr").get_attribute("data-cluster")
        self.assertEqual(first, "main")
        self.wait_page(page, lambda p: p.text_content("#detail-name") == "main", 5, "main selected")
        self.wait_page(page, lambda p: len(p.query_selector_all("#hosts tbody tr")) == 2, 10, "main's two hosts")
        self.screenshot(page, "unhealthy-1280x800")
        phone = self.open(self.leader, PHONE)
        self.wait_page(phone, lambda p: self.row_status(p, "main") == "over", 15, "main red on a phone")
        self.screenshot(phone, "unhealthy-390")
        self.sandbox.remove_lag(0)
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok", 30, "main green again")
        self.assertEqual(page.errors, [])

    def test_throttle(self):
        """
        A throttled app shows with its countdown, which counts down; it
        goes when unthrottled.
        """
        page = self.open(self.leader)
        status, body = self.leader.request(
            "POST", "/api/v1/throttles", {"app": "dash-batch", "ttl": "10m", "reason": "browser test"}
        )
        self.assertEqual(status, 200, body)
        self.addCleanup(self.leader.request, "DELETE", "/api/v1/throttles/dash-batch")
        item = '#throttles li[data-app="dash-batch"] .countdown'
        first = self.wait_page(page, lambda p: p.query_selector(item), 10, "the throttled app")
        text = first.inner_text()
        self.assertRegex(text, r"^(10m 00s|9m [0-5]\ds)$")
        page.wait_for_timeout(2100)
        later = page.inner_text(item)
        self.assertRegex(later, r"^9m [0-5]\ds$")
        self.assertNotEqual(later, text)
        self.assertIn("browser test", page.inner_text('#throttles li[data-app="dash-batch"]'))
        self.wait_page(page, lambda p: p.query_selector('#audit li'), 10, "the audit record")
        self.leader.request("DELETE", "/api/v1/throttles/dash-batch")
        self.wait_page(page, lambda p: p.query_selector(item) is None, 10, "the throttle to go")
        self.assertEqual(page.errors, [])

    def test_follower(self):
        """
        A follower's page says it is a follower, links to the leader's page
        and shows the leader's data.
        """
        follower = next(n for n in self.group.nodes if n is not self.leader and n.running())
        page = self.open(follower)
        self.wait_page(page, lambda p: "follower" in p.inner_text("#banner") if p.is_visible("#banner") else False,
                       15, "the follower banner")
        link = page.get_attribute("#banner a", "href")
        self.assertEqual(link, self.leader.url + "/dashboard")
        self.assertIn(self.leader.raft_address, page.inner_text("#banner"))
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok", 15, "the leader's values")
        self.assertEqual(page.inner_text("#role"), "follower")
        self.screenshot(page, "follower-1280x800")
        self.assertEqual(page.errors, [])

    def test_z_leader_killed(self):
        """
        Killing the leader makes the page follow the new leader and say so.
        """
        old = self.leader
        page = self.open(old)
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok", 15, "main ok")
        old.kill()
        new = self.group.wait_leader(30, among=[n for n in self.group.nodes if n is not old])
        self.wait_page(
            page,
            lambda p: p.inner_text("#node") == new.raft_address and p.inner_text("#role") == "leader",
            30, "the page to follow the new leader",
        )
        self.assertIn("does not answer", page.inner_text("#banner"))
        self.assertEqual(page.get_attribute("#banner a", "href"), new.url + "/dashboard")
        self.wait_page(page, lambda p: self.row_status(p, "main") == "ok", 30, "the new leader's values")
        self.screenshot(page, "followed-1280x800")
        state = json.loads(new.get("/dashboard/state.json")[1])
        self.assertTrue(state["is_leader"])
