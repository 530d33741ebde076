# -*- test-case-name: test.unit.test_client_cli,test.integration.test_client_processes -*-
"""
C{freno-cli}: freno from a shell (C{docs/client.md}).

    freno-cli check APP CLUSTER          exit 0 allowed, 1 throttled, 2 error
    freno-cli wait APP CLUSTER [--max-wait 10m]
    freno-cli throttle APP [--ttl 30m] [--ratio 1] [--reason TEXT] [--store S]
    freno-cli unthrottle APP | skip HOST [--ttl 1h] | recover HOST
    freno-cli list | status | explain APP CLUSTER | audit [--follow]
    freno-cli leadership transfer [--to HOST:PORT] [--reason TEXT]
    freno-cli run --app APP --cluster CLUSTER -- COMMAND ...
    freno-cli members list | add HOST:PORT | remove HOST:PORT [--reason TEXT]

The nodes come from C{--url} or C{$FRENO_URL} (comma-separated base URLs;
default C{http://127.0.0.1:8087}); a token from C{$FRENO_TOKEN} or
C{--token-file} (never from the command line, where C{ps} shows it). Every
command takes C{--json}. Exit status: 0 success (allowed), 1 throttled (or
not allowed in time), 2 an error (no answer, a refusal, bad input).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, TextIO

from freno.client import render
from freno.client.client import FrenoClient
from freno.client.control import API_CHOICES
from freno.client.durations import DurationError, parse_duration
from freno.client.http import Transport
from freno.client.result import THROTTLED, FrenoError, NotAllowed
from freno.client.run import FORWARDED, Supervisor

DEFAULT_URL = "http://127.0.0.1:8087"

EXIT_OK, EXIT_THROTTLED, EXIT_ERROR = 0, 1, 2


def _duration(what: str, bare_seconds: bool = True) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return parse_duration(text, bare_seconds=bare_seconds, what=what)
        except DurationError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = what
    return parse


def _ttl(text: str) -> str:
    """
    A TTL as written (checked here; the client sends it on).
    """
    seconds = _duration("ttl", bare_seconds=False)(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("ttl: must be positive (leave --ttl out for no expiry)")
    return text.strip()


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"ratio: must be a number from 0 to 1, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return int(text)


#: Default per-request timeouts of commands that wait longer than 2 s: a
#: membership change waits for the learner to catch up (up to 5 s) and the
#: commit. (Not set_defaults on the subparser: the --timeout action is
#: shared by every subparser through the common parent, so that changed
#: the default of every command.)
DEFAULT_TIMEOUTS = {"members": 15.0}


def build_parser() -> argparse.ArgumentParser:
    """
    The argument parser of every command.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"base URLs, comma-separated (default: $FRENO_URL or {DEFAULT_URL})")
    common.add_argument("--token-file", help="read the bearer token from this file (default: $FRENO_TOKEN)")
    common.add_argument("--timeout", type=_duration("timeout"), default=None,
                        help="per request and node (default 2s; members: 15s)")
    common.add_argument("--api", choices=API_CHOICES, default="auto",
                        help="mutations and listings: the REST API, freno's routes, or auto (REST with a token)")
    common.add_argument("--json", action="store_true", help="print JSON")
    common.add_argument("--no-color", action="store_true", help="never colour the output")

    checking = argparse.ArgumentParser(add_help=False)
    checking.add_argument("--low-priority", action="store_true", help="a low-priority check (?p=low)")
    checking.add_argument("--threshold", type=float, help="use /check-read with this threshold")
    checking.add_argument("--fail-open-after", type=_duration("fail-open-after"),
                          help="allow once no node has answered for this long (default: never, fail closed)")

    parser = argparse.ArgumentParser(
        prog="freno-cli", description="A command-line client for freno.",
        epilog="Exit status: 0 allowed/success, 1 throttled, 2 error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, text: str, parents=(common,)) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text, parents=list(parents))

    p = add("check", "check once: exit 0 allowed, 1 throttled, 2 error", (common, checking))
    p.add_argument("app")
    p.add_argument("cluster", help="a cluster, or several separated by commas")

    p = add("wait", "check until allowed (backoff with jitter, honours Retry-After)", (common, checking))
    p.add_argument("app")
    p.add_argument("cluster")
    p.add_argument("--max-wait", type=_duration("max-wait"), help="give up after this long (exit 1)")
    p.add_argument("--poll", type=_duration("poll"), default=1.0, help="shortest wait between checks (1s)")
    p.add_argument("--cap", type=_duration("cap"), default=10.0, help="longest backoff between checks (10s)")

    p = add("throttle", "throttle an app")
    p.add_argument("app")
    p.add_argument("--ttl", type=_ttl, help="e.g. 30m, 2h, 1h30m (default: no expiry)")
    p.add_argument("--ratio", type=_ratio, help="share of checks refused, 0 to 1 (default 1)")
    p.add_argument("--reason")
    p.add_argument("--store", help="throttle on this store only")

    p = add("unthrottle", "remove an app's throttle")
    p.add_argument("app")
    p.add_argument("--store")
    p.add_argument("--reason")

    p = add("skip", "leave a host out of its cluster's value")
    p.add_argument("host")
    p.add_argument("--ttl", type=_ttl, help="default 60m")
    p.add_argument("--reason")

    p = add("recover", "count a skipped host again")
    p.add_argument("host")
    p.add_argument("--reason")

    add("list", "throttled apps and skipped hosts")
    add("status", "leader, members and clusters")

    p = add("explain", "why a check answers what it answers")
    p.add_argument("app")
    p.add_argument("cluster")

    p = add("audit", "the audit log")
    p.add_argument("--since", type=_count, help="records after this id")
    p.add_argument("--limit", type=_count)
    p.add_argument("--follow", action="store_true", help="keep printing new records")
    p.add_argument("--interval", type=_duration("interval"), default=2.0, help="with --follow (2s)")

    p = add("members", "the raft members: list, add a learner, remove a member (admin; sent to the leader)")
    p.add_argument("action", choices=("list", "add", "remove"))
    p.add_argument("address", nargs="?", help="host:port, as the node's RaftBind (add, remove)")
    p.add_argument("--reason")

    p = add("leadership", "leadership of the raft group")
    p.add_argument("action", choices=["transfer"], help="transfer: hand it to another member")
    p.add_argument("--to", help="the member (host:port as in RaftNodes; default: the best follower)")
    p.add_argument("--reason")

    p = add("run", "run a command, paused (SIGSTOP) while throttled", (common, checking))
    p.add_argument("--app", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--interval", type=_duration("interval"), default=1.0, help="between checks (1s)")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    return parser


class CLI:
    """
    One run of C{freno-cli}: the parsed arguments, the client, the output.
    """

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str], stdout: TextIO,
                 stderr: TextIO, transport: Optional[Transport]) -> None:
        self.args = args
        self.stdout = stdout
        self.stderr = stderr
        self.colour = (
            not args.no_color and "NO_COLOR" not in environ and hasattr(stdout, "isatty") and stdout.isatty()
        )
        token = environ.get("FRENO_TOKEN") or None
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.read().strip() or None
        self.client = FrenoClient(
            args.url or environ.get("FRENO_URL") or DEFAULT_URL,
            token=token,
            timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUTS.get(args.command, 2.0),
            fail_open_after=getattr(args, "fail_open_after", None),
            api=args.api,
            transport=transport,
        )

    def out(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.stdout)

    def dump(self, data: Any) -> None:
        print(json.dumps(data, sort_keys=True), file=self.stdout)

    def _check_code(self, result) -> int:
        if result.allowed:
            return EXIT_OK
        return EXIT_THROTTLED if result.kind == THROTTLED else EXIT_ERROR

    def check(self) -> int:
        a = self.args
        result = self.client.check(a.app, a.cluster.split(","), a.low_priority, a.threshold)
        if a.json:
            self.dump(result.to_json())
        else:
            self.out(render.check_line(result, self.colour))
        return self._check_code(result)

    def wait(self) -> int:
        a = self.args
        started = time.monotonic()
        try:
            result = self.client.wait_until_allowed(
                a.app, a.cluster.split(","), a.max_wait, a.poll, a.cap, a.low_priority, a.threshold
            )
            waited, code = time.monotonic() - started, EXIT_OK
        except NotAllowed as e:
            result, waited = e.result, e.waited
            code = EXIT_THROTTLED if result.kind == THROTTLED else EXIT_ERROR
        if a.json:
            self.dump(dict(result.to_json(), waited_s=round(waited, 3)))
        else:
            self.out(render.check_line(result, self.colour) + f" after {waited:.1f}s")
        return code

    def _control(self, result) -> int:
        if self.args.json:
            self.dump(result.body)
        else:
            text = "done" if result.removed is not False else "nothing to remove"
            if result.audit_id is not None:
                text += f" (audit #{result.audit_id})"
            self.out(f"{text} [{result.node}, {'REST API' if result.via == 'rest' else 'freno route'}]")
        return EXIT_OK

    def throttle(self) -> int:
        a = self.args
        return self._control(self.client.throttle(a.app, a.ttl, a.ratio, a.reason, a.store))

    def unthrottle(self) -> int:
        a = self.args
        return self._control(self.client.unthrottle(a.app, a.store, a.reason))

    def skip(self) -> int:
        return self._control(self.client.skip(self.args.host, self.args.ttl, self.args.reason))

    def recover(self) -> int:
        return self._control(self.client.recover(self.args.host, self.args.reason))

    def list(self) -> int:
        throttles, skips = self.client.throttles(), self.client.skips()
        if self.args.json:
            self.dump({"throttles": [dataclasses.asdict(t) for t in throttles],
                       "skips": [dataclasses.asdict(s) for s in skips]})
        else:
            now = time.time()
            self.out(*render.throttle_lines(throttles, now), "", *render.skip_lines(skips, now))
        return EXIT_OK

    def status(self) -> int:
        status = self.client.status()
        if self.args.json:
            self.dump(status)
        else:
            self.out(*render.status_lines(status, self.colour))
        return EXIT_OK

    def explain(self) -> int:
        explain = self.client.explain(self.args.app, self.args.cluster.split(","))
        if self.args.json:
            self.dump(explain)
        else:
            self.out(*render.explain_lines(explain, self.colour))
        return EXIT_OK

    def leadership(self) -> int:
        a = self.args
        answer = self.client.transfer_leadership(a.to, a.reason)
        if a.json:
            self.dump(answer)
        else:
            audit = f" (audit #{answer['audit_id']})" if answer.get("audit_id") is not None else ""
            self.out(
                f"leadership moved from {answer.get('from')} to {answer.get('to')} "
                f"in {answer.get('seconds')}s{audit}"
            )
        return EXIT_OK

    def audit(self) -> int:
        a = self.args
        since = a.since
        while True:
            page = self.client.audit(since, a.limit)
            records = page.get("records") or []
            if a.json and not a.follow:
                self.dump(page)
            else:
                for record in records:
                    if a.json:
                        self.dump(record)
                    else:
                        self.out(render.audit_line(record))
            self.stdout.flush()
            if not a.follow:
                return EXIT_OK
            if isinstance(page.get("next"), int):
                since = page["next"]
            time.sleep(a.interval)

    def members(self) -> int:
        a = self.args
        if a.action == "list":
            view = self.client.members()
            if a.json:
                self.dump(view)
            else:
                self.out(*render.member_lines(view))
            return EXIT_OK
        if not a.address:
            raise ValueError(f"members {a.action}: give the member's host:port")
        if a.action == "add":
            answer = self.client.add_member(a.address, a.reason)
        else:
            answer = self.client.remove_member(a.address, a.reason)
        if a.json:
            self.dump(answer)
        else:
            done = "added" if a.action == "add" else "removed"
            self.out(
                f"{done} {a.address} (audit #{answer.get('audit_id')}); members: "
                + ", ".join(answer.get("members") or [])
            )
        return EXIT_OK

    def run(self) -> int:
        a = self.args
        argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
        clusters = a.cluster.split(",")

        def report(event: str, fields: Dict[str, Any]) -> None:
            if a.json:
                print(json.dumps(dict(fields, event=event), sort_keys=True), file=self.stderr)
            else:
                detail = ", ".join(f"{k} {v}" for k, v in fields.items() if v is not None)
                print(f"freno-cli run: {event}: {detail}", file=self.stderr)
            self.stderr.flush()

        supervisor = Supervisor(
            argv, lambda: self.client.check(a.app, clusters, a.low_priority, a.threshold), a.interval, report
        )
        previous = {s: signal.signal(s, lambda signum, frame: supervisor.forward(signum)) for s in FORWARDED}
        try:
            return supervisor.run()
        except FileNotFoundError as e:
            print(f"freno-cli run: {e.strerror}: {e.filename}", file=self.stderr)
            return 127
        except PermissionError as e:
            print(f"freno-cli run: {e.strerror}: {e.filename}", file=self.stderr)
            return 126
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def main(
    argv: Optional[List[str]] = None,
    environ: Optional[Mapping[str, str]] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
    transport: Optional[Transport] = None,
) -> int:
    """
    Run C{freno-cli}; return its exit status.

    @param transport: how requests are sent (tests pass a fake).
    """
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    environ = environ if environ is not None else os.environ
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_ERROR if e.code else EXIT_OK
    try:
        cli = CLI(args, environ, stdout, stderr, transport)
        try:
            return getattr(cli, args.command)()
        finally:
            cli.client.close()
    except (FrenoError, ValueError, OSError) as e:
        print(f"freno-cli {args.command}: {e}", file=stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
