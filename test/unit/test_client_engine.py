"""
The shared client logic (L{freno.client.engine}) driven by hand: base URLs,
node order and failover, failing closed and (only when asked) open, and the
wait loop on a fake clock. No I/O, no sleeping.
"""

from __future__ import annotations

import json
import random
from typing import Dict, List

from twisted.trial.unittest import SynchronousTestCase

from freno.client import routes
from freno.client.answers import GO_NOT_FOUND, Response
from freno.client.backoff import Backoff
from freno.client.engine import ClientCore, NoAnswer, Send, Sleep, parse_urls, run_steps
from freno.client.result import ALLOWED, ERROR, FrenoAPIError, FrenoUnavailable, NotAllowed, RouteNotServed


def check_answer(status: int, message: str = "", value: float = 0.5, headers=None) -> Response:
    body = json.dumps({"StatusCode": status, "Value": value, "Threshold": 1, "Message": message}).encode()
    return Response(status, headers or {}, body)


NOT_LEADER = check_answer(500, "not leader", 0)


class FakeTime:
    """
    A monotonic clock that L{sleep} advances.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: List[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Script:
    """
    Answers per base URL, consumed in order (the last one repeats); records
    every L{Send}.
    """

    def __init__(self, answers: Dict[str, list], time: FakeTime = None, cost: float = 0.0) -> None:
        self.answers = answers
        self.sent: List[Send] = []
        self.time = time
        self.cost = cost

    def __call__(self, step: Send):
        self.sent.append(step)
        if self.time is not None:
            self.time.now += self.cost
        queue = self.answers.get(step.base_url, [NoAnswer("connection refused")])
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def urls(self) -> List[str]:
        return [s.base_url for s in self.sent]


A, B, C = "http://a:1", "http://b:2", "http://c:3"
POLICY = Backoff(1, 8)


def core(time: FakeTime = None, **kwargs) -> ClientCore:
    time = time or FakeTime()
    return ClientCore([A, B, C], time.clock, lambda: 1_800_000_000.0, random.Random(1), **kwargs)


class ParseURLTests(SynchronousTestCase):
    """
    L{parse_urls}.
    """

    def test_forms(self):
        """
        Lists and comma-separated strings; C{host:port} means http; trailing
        slashes and duplicates go.
        """
        self.assertEqual(parse_urls("a:1, http://b:2/ ,https://c/x/,a:1"), ("http://a:1", "http://b:2", "https://c/x"))
        self.assertEqual(parse_urls(["http://[::1]:8087"]), ("http://[::1]:8087",))

    def test_bad(self):
        """
        Nothing, other schemes, bad ports, queries are refused.
        """
        for urls in ["", " , ", "ftp://a", "http://a:99999", "http://a:x", "http://a/?q=1", "http://", [5]]:
            self.assertRaises(ValueError, parse_urls, urls)


class CheckTests(SynchronousTestCase):
    """
    L{ClientCore.check}.
    """

    def ask(self, core: ClientCore, script: Script, time: FakeTime = None):
        return run_steps(core.check(routes.check("app", "main")), script, (time or FakeTime()).sleep)

    def test_first_node_answers(self):
        """
        A node that decides is the answer; only it is asked.
        """
        script = Script({A: [check_answer(429, "Threshold exceeded", 2)]})
        result = self.ask(core(), script)
        self.assertEqual((result.status, result.node, result.value), (429, A, 2.0))
        self.assertEqual(script.urls(), [A])

    def test_fail_over_and_stick(self):
        """
        A dead node and a follower are passed over; the node that answered
        is asked first next time.
        """
        c = core()
        script = Script({A: [NoAnswer("connection refused")], B: [NOT_LEADER], C: [check_answer(200)]})
        self.assertEqual(self.ask(c, script).node, C)
        self.assertEqual(script.urls(), [A, B, C])
        script = Script({C: [check_answer(200)]})
        self.ask(c, script)
        self.assertEqual(script.urls(), [C])
        self.assertEqual(c.order(), [C, A, B])

    def test_database_errors_stand(self):
        """
        A leader's 500 about the database (not "not leader") is its answer:
        no other node is asked, and it is an error, not allowed.
        """
        script = Script({A: [check_answer(500, "Metric not collected yet")]})
        result = self.ask(core(), script)
        self.assertEqual((result.kind, result.reason), (ERROR, "Metric not collected yet"))
        self.assertEqual(script.urls(), [A])

    def test_fail_closed(self):
        """
        With no usable answer the result is an error naming each node, with
        the status of the last node that answered.
        """
        script = Script({A: [NoAnswer("timed out after 2s")], B: [NOT_LEADER], C: [Response(503, {}, b"")]})
        result = self.ask(core(), script)
        self.assertEqual((result.kind, result.status, result.allowed), (ERROR, 503, False))
        self.assertIn(f"{A}: timed out after 2s", result.reason)
        self.assertIn(f"{B}: not leader", result.reason)
        self.assertIn(f"{C}: 503", result.reason)

    def test_no_leader(self):
        """
        When every node says it is not the leader, the result says so.
        """
        result = self.ask(core(), Script({A: [NOT_LEADER], B: [NOT_LEADER], C: [NOT_LEADER]}))
        self.assertTrue(result.reason.startswith("no node is the leader"), result.reason)
        result = self.ask(core(), Script({}))
        self.assertEqual(result.status, 0)

    def test_fail_open_after_deadline(self):
        """
        With C{fail_open_after}, checks stay closed until no node has given
        a usable answer for that long, then allow (saying so); one usable
        answer closes them again.
        """
        time = FakeTime()
        c = core(time, fail_open_after=30)
        down = Script({})
        self.assertFalse(self.ask(c, down).allowed)
        time.now += 29
        self.assertFalse(self.ask(c, down).allowed)
        time.now += 1
        result = self.ask(c, down)
        self.assertEqual((result.kind, result.failed_open, result.status), (ALLOWED, True, 0))
        self.assertIn("failing open", result.reason)
        self.assertEqual(self.ask(c, Script({A: [check_answer(429)]})).status, 429)
        self.assertFalse(self.ask(c, down).allowed)

    def test_fail_open_never_for_throttled(self):
        """
        A node that answers (even 500 about the database) keeps the client
        closed however long it lasts.
        """
        time = FakeTime()
        c = core(time, fail_open_after=0)
        for _ in range(3):
            time.now += 100
            self.assertFalse(self.ask(c, Script({A: [check_answer(500, "probe error")]})).allowed)

    def test_bad_fail_open(self):
        """
        C{fail_open_after} must be a number >= 0.
        """
        for value in (-1, "5", True, float("nan")):
            self.assertRaises(ValueError, core, fail_open_after=value)


class WaitTests(SynchronousTestCase):
    """
    L{ClientCore.wait} on a fake clock.
    """

    def wait(self, c, script, time, max_wait=None):
        return run_steps(c.wait(routes.check("app", "main"), max_wait, POLICY), script, time.sleep)

    def test_until_allowed(self):
        """
        Refusals are waited out with growing, jittered sleeps; the first 200
        is returned.
        """
        time = FakeTime()
        script = Script({A: [check_answer(429)] * 5 + [check_answer(200)]})
        result = self.wait(core(time), script, time)
        self.assertTrue(result.allowed)
        self.assertEqual(len(time.slept), 5)
        for attempt, slept in enumerate(time.slept, start=1):
            self.assertTrue(1 <= slept <= min(8, 2 ** (attempt - 1)), (attempt, slept))

    def test_retry_after(self):
        """
        A C{Retry-After} longer than the backoff is waited in full.
        """
        time = FakeTime()
        refused = check_answer(429, headers={"x-freno-retry-after-ms": "4500"})
        self.wait(core(time), Script({A: [refused, check_answer(200)]}), time)
        self.assertEqual(time.slept, [4.5])

    def test_deadline(self):
        """
        At the deadline one last check is made; then L{NotAllowed} carries
        the last result, the time waited and the checks made.
        """
        time = FakeTime()
        script = Script({A: [check_answer(429, "Threshold exceeded")]}, time, cost=0.01)
        error = self.assertRaises(NotAllowed, self.wait, core(time), script, time, 10)
        self.assertEqual(error.result.status, 429)
        self.assertEqual(error.attempts, len(script.sent))
        self.assertLessEqual(abs(error.waited - 10), 0.02)
        self.assertLessEqual(sum(time.slept), 10)

    def test_retry_after_beyond_deadline(self):
        """
        When the server asks for more time than is left, the wait gives up at
        once instead of sleeping for nothing.
        """
        time = FakeTime()
        refused = check_answer(417, "App denied", headers={"retry-after": "600"})
        error = self.assertRaises(NotAllowed, self.wait, core(time), Script({A: [refused]}), time, 60)
        self.assertEqual((error.attempts, time.slept), (1, []))

    def test_zero_wait(self):
        """
        C{max_wait=0} is a single check.
        """
        time = FakeTime()
        self.assertRaises(NotAllowed, self.wait, core(time), Script({A: [check_answer(429)]}), time, 0)
        self.assertEqual(time.slept, [])

    def test_bad_request(self):
        """
        A 400 cannot change by waiting: given up at once.
        """
        time = FakeTime()
        self.assertRaises(NotAllowed, self.wait, core(time), Script({A: [check_answer(400)]}), time)
        self.assertEqual(time.slept, [])

    def test_failover_during_wait(self):
        """
        The leader dies mid-wait; a follower takes over and its 200 ends the
        wait.
        """
        time = FakeTime()
        script = Script({
            A: [check_answer(429), check_answer(429), NoAnswer("connection refused")],
            B: [NOT_LEADER, NOT_LEADER, check_answer(200)],
            C: [NOT_LEADER],
        })
        result = self.wait(core(time), script, time, max_wait=60)
        self.assertEqual((result.allowed, result.node), (True, B))

    def test_bad_max_wait(self):
        """
        C{max_wait} must be a number >= 0.
        """
        time = FakeTime()
        for value in (-1, "1", float("nan")):
            self.assertRaises(ValueError, self.wait, core(time), Script({}), time, value)


class CallTests(SynchronousTestCase):
    """
    L{ClientCore.call}, L{ClientCore.ask_leader}.
    """

    def call(self, steps, script):
        return run_steps(steps, script, FakeTime().sleep)

    def test_moves_on_5xx(self):
        """
        Reads and mutations move on after no answer or a 5xx, and stop at
        the first 2xx.
        """
        script = Script({A: [Response(503, {}, b'{"error":{"code":"no_quorum","message":"x"}}')],
                         B: [Response(200, {}, b"{}")]})
        url, answer = self.call(core().call(routes.freno_get("/throttled-apps")), script)
        self.assertEqual(url, B)

    def test_refusal_raises(self):
        """
        A 4xx is raised at once: no other node is asked.
        """
        script = Script({A: [Response(401, {}, b'{"error":{"code":"unauthenticated","message":"token"}}')]})
        error = self.assertRaises(FrenoAPIError, self.call, core().call(routes.freno_get("/x")), script)
        self.assertEqual((error.status, error.code), (401, "unauthenticated"))
        self.assertEqual(script.urls(), [A])

    def test_unavailable(self):
        """
        No usable answer raises L{FrenoUnavailable} naming each node.
        """
        error = self.assertRaises(FrenoUnavailable, self.call, core().call(routes.freno_get("/x")), Script({}))
        self.assertEqual(set(error.attempts), {A, B, C})

    def test_ask_leader(self):
        """
        The leader's answer is preferred over a follower's.
        """
        script = Script({A: [Response(200, {}, b'{"is_leader": false}')],
                         B: [Response(200, {}, b'{"is_leader": true, "n": 2}')]})
        url, body = self.call(core().ask_leader(routes.rest_get("/api/v1/status")), script)
        self.assertEqual((url, body["n"]), (B, 2))
        script = Script({A: [Response(200, {}, b'{"is_leader": false}')]})
        self.assertEqual(self.call(core().ask_leader(routes.rest_get("/s")), script)[0], A)

    def test_ask_leader_route_missing(self):
        """
        Nodes that do not serve the route raise L{RouteNotServed}.
        """
        script = Script({A: [Response(404, {}, GO_NOT_FOUND)]})
        self.assertRaises(RouteNotServed, self.call, core().ask_leader(routes.rest_get("/s")), script)

    def test_sleep_steps(self):
        """
        L{run_steps} sleeps on L{Sleep} steps and returns the value.
        """
        def steps():
            yield Sleep(2.5)
            return "done"

        time = FakeTime()
        self.assertEqual(run_steps(steps(), None, time.sleep), "done")
        self.assertEqual(time.slept, [2.5])
