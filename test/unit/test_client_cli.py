"""
C{freno-cli} (L{freno.client.cli.main}) against in-memory fake nodes: exit
codes, text and C{--json} output, the environment, bad input; and the text
renderings of L{freno.client.render}.
"""

from __future__ import annotations

import io
import json
import time

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.client import render
from freno.client.cli import main
from freno.client.fake import FakeFreno, FakeGroupState, FakeTransport
from freno.client.result import ALLOWED, CheckResult

A, B = "http://a:1", "http://b:2"
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))


class TTY(io.StringIO):
    """
    Standard output that says it is a terminal.
    """

    def isatty(self) -> bool:
        return True


class CLITests(SynchronousTestCase):
    """
    L{main} with a fake transport.
    """

    def setUp(self):
        self.state = FakeGroupState(time.time)
        self.state.leader = "a"
        self.state.clusters["main"] = (0.5, 1.0)
        self.transport = FakeTransport({A: FakeFreno("a", self.state), B: FakeFreno("b", self.state)})
        self.environ = {"FRENO_URL": f"{A},{B}"}

    def cli(self, *argv, stdout=None, environ=None):
        out = stdout if stdout is not None else io.StringIO()
        err = io.StringIO()
        code = main(list(argv), environ if environ is not None else self.environ, out, err, self.transport)
        return code, out.getvalue(), err.getvalue()

    def test_check_exit_codes(self):
        """
        0 allowed, 1 throttled, 2 error (no such cluster, nobody answering).
        """
        self.assertEqual(self.cli("check", "app", "main")[0], 0)
        self.state.clusters["main"] = (2.0, 1.0)
        code, out, _ = self.cli("check", "app", "main")
        self.assertEqual(code, 1)
        self.assertIn("throttled 429: lag 2 on main > 1", out)
        self.assertEqual(self.cli("check", "app", "nope")[0], 2)
        self.state.leader = None
        code, out, _ = self.cli("check", "app", "main")
        self.assertEqual(code, 2)
        self.assertIn("no node is the leader", out)

    def test_check_json(self):
        """
        C{--json} prints the result's fields.
        """
        code, out, _ = self.cli("check", "app", "main", "--json")
        data = json.loads(out)
        self.assertEqual((code, data["status"], data["allowed"], data["value"]), (0, 200, True, 0.5))

    def test_url_option(self):
        """
        C{--url} wins over C{$FRENO_URL}; without either the default is
        C{http://127.0.0.1:8087}.
        """
        self.state.leader = "b"
        self.cli("check", "app", "main", "--url", B)
        self.assertEqual({s[0] for s in self.transport.sent}, {B})
        self.transport.sent.clear()
        self.cli("check", "app", "main", environ={})
        self.assertEqual({s[0] for s in self.transport.sent}, {"http://127.0.0.1:8087"})

    def test_wait(self):
        """
        C{wait} exits 0 once allowed and 1 when its deadline passes.
        """
        self.assertEqual(self.cli("wait", "app", "main", "--max-wait", "0")[0], 0)
        self.state.clusters["main"] = (2.0, 1.0)
        code, out, _ = self.cli("wait", "app", "main", "--max-wait", "0", "--json")
        self.assertEqual((code, json.loads(out)["status"]), (1, 429))

    def test_throttle_cycle(self):
        """
        throttle, list, check (417), unthrottle through freno's routes.
        """
        code, out, _ = self.cli("throttle", "app", "--ttl", "30m", "--ratio", "1", "--reason", "test")
        self.assertEqual((code, out.strip()), (0, f"done [{A}, freno route]"))
        code, out, _ = self.cli("list")
        self.assertIn("app", out)
        self.assertIn("(in 30m)", out)
        self.assertEqual(self.cli("check", "app", "main")[0], 1)
        code, out, _ = self.cli("list", "--json")
        self.assertEqual(json.loads(out)["throttles"][0]["key"], "app")
        self.assertEqual(self.cli("unthrottle", "app")[0], 0)
        self.assertEqual(self.cli("check", "app", "main")[0], 0)
        self.assertEqual(self.cli("skip", "db1", "--ttl", "1h")[0], 0)
        self.assertEqual(self.cli("recover", "db1", "--json")[1].strip(), '{"Message": "OK", "StatusCode": 200}')

    def test_token_from_environment(self):
        """
        C{$FRENO_TOKEN} switches mutations to the REST API with the token.
        """
        self.state.tokens = {"tok": "ops"}
        code, out, _ = self.cli("throttle", "app", environ=dict(self.environ, FRENO_TOKEN="tok"))
        self.assertEqual((code, out.strip()), (0, f"done (audit #1) [{A}, REST API]"))
        code, _, err = self.cli("throttle", "app", environ=dict(self.environ, FRENO_TOKEN="nope"))
        self.assertEqual(code, 2)
        self.assertIn("401", err)

    def test_token_file(self):
        """
        C{--token-file} reads the token from a file.
        """
        self.state.tokens = {"tok": "ops"}
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("tok\n")
        self.assertEqual(self.cli("unthrottle", "app", "--token-file", path)[0], 0)
        code, _, err = self.cli("unthrottle", "app", "--token-file", path + ".missing")
        self.assertEqual(code, 2)
        self.assertIn("No such file", err)

    def test_bad_input(self):
        """
        Bad arguments exit 2 and send nothing.
        """
        for argv in [("throttle", "app", "--ttl", "30"), ("throttle", "app", "--ttl", "soon"),
                     ("throttle", "app", "--ratio", "2"), ("check", "a/b", "main"), ("check",),
                     ("nope",), ("check", "a", "main", "--url", "ftp://x"),
                     ("throttle", "app", "--ttl", "90s", "--api", "freno")]:
            self.assertEqual(self.cli(*argv)[0], 2, argv)
        self.assertEqual(self.transport.sent, [])

    def test_status(self):
        """
        The status table; colours only on a terminal and without
        C{--no-color}; C{--json} the raw answer.
        """
        code, out, _ = self.cli("status")
        self.assertEqual(code, 0)
        self.assertIn("leader: a", out)
        self.assertIn("main", out)
        self.assertNotIn("\033[", out)
        code, out, _ = self.cli("status", stdout=TTY())
        self.assertIn(render.GREEN, out)
        code, out, _ = self.cli("status", "--no-color", stdout=TTY())
        self.assertNotIn("\033[", out)
        self.assertEqual(json.loads(self.cli("status", "--json")[1])["node"], "a")

    def test_default_timeouts(self):
        """
        Requests wait 2 s by default, membership changes 15 s; C{--timeout}
        sets either.
        """
        self.cli("status")
        self.assertEqual({t for _, _, _, t in self.transport.sent}, {2.0})
        self.transport.sent.clear()
        self.cli("members", "list")
        self.assertEqual({t for _, _, _, t in self.transport.sent}, {15.0})
        self.transport.sent.clear()
        self.cli("status", "--timeout", "5s")
        self.assertEqual({t for _, _, _, t in self.transport.sent}, {5.0})

    def test_leadership_transfer(self):
        """
        C{leadership transfer} posts to each node in turn with a 10 s
        timeout (B, a follower, refuses with 409; A, the leader, takes it),
        and prints who leads now; C{--to} names the target; a bad target is
        an error (exit 2).
        """
        self.state.members = ["a", "b", "c"]
        self.environ = {"FRENO_URL": f"{B},{A}"}
        code, out, err = self.cli("leadership", "transfer", "--reason", "deploy")
        self.assertEqual(code, 0, err)
        self.assertIn("leadership moved from a to b", out)
        self.assertIn("audit #1", out)
        post = [s for s in self.transport.sent if s[1] == "POST"]
        self.assertEqual(
            post,
            [(B, "POST", "/api/v1/leadership/transfer", 10.0), (A, "POST", "/api/v1/leadership/transfer", 10.0)],
        )
        self.assertEqual(self.state.audit[-1]["reason"], "deploy")
        code, out, _ = self.cli("leadership", "transfer", "--to", "a", "--json")
        self.assertEqual(json.loads(out), {"from": "b", "to": "a", "seconds": 0.02, "audit_id": 2})
        self.assertEqual(self.state.leader, "a")
        code, out, err = self.cli("leadership", "transfer", "--to", "nobody")
        self.assertEqual(code, 2)
        self.assertIn("nobody", err)

    def test_explain_and_audit(self):
        """
        explain and audit print what the leader says; C{--json} raw.
        """
        code, out, _ = self.cli("explain", "app", "main")
        self.assertEqual(code, 0)
        self.assertIn("app on main: 200", out)
        self.assertEqual(json.loads(self.cli("explain", "app", "main", "--json")[1])["app"], "app")
        self.cli("throttle", "app", "--reason", "why")
        code, out, _ = self.cli("audit")
        self.assertIn("#1", out)
        self.assertIn("reason='why'", out)
        self.assertEqual(json.loads(self.cli("audit", "--json")[1])["records"][0]["id"], 1)

    def test_old_server(self):
        """
        Against an older freno, explain and audit say the route is not
        served (exit 2); status works from freno's routes.
        """
        self.transport.nodes = {A: FakeFreno("a", self.state, headers=False, rest=False)}
        code, _, err = self.cli("explain", "app", "main", "--url", A)
        self.assertEqual(code, 2)
        self.assertIn("does not serve /explain", err)
        code, out, _ = self.cli("status", "--url", A)
        self.assertEqual(code, 0)
        self.assertIn("from freno's routes", out)

    def test_help(self):
        """
        C{--help} exits 0.
        """
        self.assertEqual(main(["--help"], {}, io.StringIO(), io.StringIO()), 0)

    def test_run_needs_command(self):
        """
        C{run} without a command exits 2.
        """
        code, _, err = self.cli("run", "--app", "app", "--cluster", "main")
        self.assertEqual(code, 2)
        self.assertIn("no command given", err)


class RenderTests(SynchronousTestCase):
    """
    L{freno.client.render}.
    """

    def test_check_line(self):
        """
        One line with the details known.
        """
        result = CheckResult(status=200, kind=ALLOWED, value=0.12, threshold=1.0, reason="OK",
                             data_age_ms=40, node="http://a")
        self.assertEqual(render.check_line(result, False),
                         "allowed 200: OK (value 0.12, threshold 1, age 40ms) [http://a]")

    def test_status_colours(self):
        """
        Over threshold or failing: red; within: green; an old value's age:
        yellow, then red.
        """
        status = {"leader": "x", "members": [], "clusters": [
            {"name": "ok", "value": 0.1, "threshold": 1, "age_ms": 30, "error": None, "hosts": 2},
            {"name": "hot", "value": 3, "threshold": 1, "age_ms": 2000, "error": None, "hosts": 2},
            {"name": "down", "value": None, "threshold": 1, "age_ms": None, "error": "refused", "hosts": 0},
        ]}
        lines = render.status_lines(status, True)
        ok, hot, down = lines[-3:]
        self.assertIn(f"{render.GREEN}0.1{render.RESET}", ok)
        self.assertIn(f"{render.RED}3{render.RESET}", hot)
        self.assertIn(f"{render.YELLOW}2000ms{render.RESET}", hot)
        self.assertIn(f"{render.RED}-{render.RESET}", down)
        plain = render.status_lines(status, False)
        columns = [line.find(value) for line, value in zip(plain[-4:], ["VALUE", "0.1", "3", "-"])]
        self.assertEqual(columns, [columns[0]] * 4)

    @given(st.lists(st.fixed_dictionaries({
        "name": st.text(max_size=5), "value": JSON_SCALAR, "threshold": JSON_SCALAR, "age_ms": JSON_SCALAR,
        "error": JSON_SCALAR, "hosts": JSON_SCALAR,
    }), max_size=3), JSON_SCALAR, st.booleans())
    def test_status_any_values(self, clusters, leader, colour):
        """
        Whatever values a status holds, the table renders.
        """
        lines = render.status_lines({"leader": leader, "members": [{"id": leader, "leader": leader}],
                                     "clusters": clusters}, colour)
        self.assertTrue(lines[0].startswith("leader: "))

    def test_explain_lines(self):
        """
        An explanation with hosts in words.
        """
        lines = render.explain_lines({
            "app": "gh-ost", "stores": ["main"], "node": "n1", "is_leader": True, "leader": "n1", "term": 7,
            "decision": {"status": 429, "message": "Threshold exceeded", "reason": "lag 2.31 on db7 > 1"},
            "clusters": [{"name": "main", "threshold": 1.0, "resume_threshold": 0.8, "holding": True,
                          "value": 2.31, "age_ms": 40, "error": None,
                          "inventory": {"source": "static", "hosts": 1, "glitch": None},
                          "hosts": [{"host": "db7:3306", "value": 2.31, "age_ms": 40, "state": "counted",
                                     "why": None}]}],
            "throttle": None, "policy": None,
        }, False)
        text = "\n".join(lines)
        self.assertIn("gh-ost on main: 429 Threshold exceeded: lag 2.31 on db7 > 1", text)
        self.assertIn("holding", text)
        self.assertIn("db7:3306", text)
