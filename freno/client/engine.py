# -*- test-case-name: test.unit.test_client_engine -*-
"""
The client's logic, written once for both flavours and free of I/O: which
node to ask, when to move on to the next one, when no answer means "do not
write" and when (only if asked to) it means "go ahead", and how
L{wait_until_allowed<freno.client.FrenoClient.wait_until_allowed>} loops.

Each operation is a generator that yields steps: L{Send} (send this request
to this base URL; the driver sends back a L{Response<freno.client.answers.Response>}
or a L{NoAnswer}) and L{Sleep} (the driver sleeps, or waits on a clock). The
blocking client (L{freno.client.client}) drives them with C{http.client} and
C{time.sleep}; the Twisted one (L{freno.client.tx}) with treq and a clock.
Tests drive them with canned answers and no time passing.

Failover: the nodes are tried in order starting from the last one that gave a
usable answer. A node is passed over when it does not answer (refused, reset,
timed out), when it answers a check with C{500 not leader}, and when it
answers 502/503/504 (a proxy without a backend), and for any other request
when it answers 5xx. Each call tries each node at most once.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from freno.client import answers
from freno.client.answers import Response, node_unusable, read_check
from freno.client.backoff import Backoff, next_wait
from freno.client.result import (
    ALLOWED,
    ERROR,
    CheckResult,
    FrenoAPIError,
    FrenoUnavailable,
    NotAllowed,
    RouteNotServed,
)
from freno.client.routes import Request, freno_get


@dataclasses.dataclass(frozen=True)
class Send:
    """
    A step: send C{request} to the node at C{base_url}, waiting at most
    C{timeout} seconds (C{None}: the client's timeout).
    """

    base_url: str
    request: Request
    timeout: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Sleep:
    """
    A step: wait C{seconds}.
    """

    seconds: float


@dataclasses.dataclass(frozen=True)
class NoAnswer:
    """
    What a driver sends back when a node gave no HTTP answer: C{why} says
    what happened (C{connection refused}, C{timed out after 2s}, ...).
    """

    why: str


Step = Union[Send, Sleep]
Steps = Generator[Step, Any, Any]


def parse_urls(urls: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """
    Base URLs from a list or a comma-separated string: C{http://h:p},
    C{https://h:p/prefix}, or C{h:p} (read as C{http://h:p}); trailing
    slashes dropped.

    @raise ValueError: none given, or one that is not an http(s) URL with a
        host.
    """
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    found: List[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"base URL: must be a string, got {item!r}")
        text = item.strip()
        if not text:
            continue
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as e:
            raise ValueError(f"base URL {item.strip()!r}: {e}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL {item.strip()!r}: must be http://host:port or https://host:port")
        if parts.query or parts.fragment:
            raise ValueError(f"base URL {item.strip()!r}: must not have a query or fragment")
        url = text.rstrip("/")
        if url not in found:
            found.append(url)
    if not found:
        raise ValueError("no base URL given (e.g. http://freno:8087)")
    return tuple(found)


def _summary(attempts: Dict[str, str]) -> str:
    return "; ".join(f"{url}: {why}" for url, why in attempts.items())


class ClientCore:
    """
    The state both client flavours share: the nodes, the one to ask first,
    and how long no node has given a usable answer to a check.

    @ivar urls: the base URLs, in the order given.
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        clock: Callable[[], float],
        wall: Callable[[], float],
        rng: Optional[random.Random] = None,
        fail_open_after: Optional[float] = None,
    ) -> None:
        """
        @param clock: monotonic seconds (deadlines, the fail-open timer).
        @param wall: POSIX seconds (C{Retry-After} dates, listings).
        @param fail_open_after: seconds without a usable check answer after
            which checks are allowed anyway; L{None} (the default): never,
            the client fails closed.
        @raise ValueError: bad base URLs, or a negative C{fail_open_after}.
        """
        self.urls = parse_urls(urls)
        if fail_open_after is not None and (
            isinstance(fail_open_after, bool)
            or not isinstance(fail_open_after, (int, float))
            or not fail_open_after >= 0
        ):
            raise ValueError(f"fail_open_after: must be a number >= 0 or None, got {fail_open_after!r}")
        self.clock = clock
        self.wall = wall
        self.rng = rng if rng is not None else random.Random()
        self.fail_open_after = fail_open_after
        self._first = 0
        self._unavailable_since: Optional[float] = None
        self._lock = threading.Lock()

    # -- node order ---------------------------------------------------------

    def order(self) -> List[str]:
        """
        The base URLs in the order to try them: the last good one first.
        """
        first = self._first
        return list(self.urls[first:] + self.urls[:first])

    def prefer(self, url: str) -> None:
        """
        Ask C{url} first from now on.
        """
        self._first = self.urls.index(url)

    # -- checks --------------------------------------------------------------

    def check(self, request: Request) -> Steps:
        """
        Steps of one check: ask the nodes in order until one decides.

        @return: (through C{StopIteration}) the L{CheckResult}. Never
            raises for what a server answers; with no usable answer the
            result is an L{ERROR} (status 0, or 500 when nodes answered
            "not leader"), unless the client fails open.
        """
        attempts: Dict[str, str] = {}
        last_unusable: Optional[CheckResult] = None
        for url in self.order():
            answer = yield Send(url, request)
            if isinstance(answer, NoAnswer):
                attempts[url] = answer.why
                continue
            result = read_check(answer, url, self.wall())
            why = node_unusable(result)
            if why is not None:
                attempts[url] = why
                last_unusable = result
                continue
            with self._lock:
                self.prefer(url)
                self._unavailable_since = None
            return result
        return self._no_decision(attempts, last_unusable)

    def _no_decision(self, attempts: Dict[str, str], last: Optional[CheckResult]) -> CheckResult:
        now = self.clock()
        with self._lock:
            if self._unavailable_since is None:
                self._unavailable_since = now
            down_for = now - self._unavailable_since
        summary = _summary(attempts)
        if self.fail_open_after is not None and down_for >= self.fail_open_after:
            return CheckResult(
                status=0,
                kind=ALLOWED,
                reason=(
                    f"failing open: no usable answer for {down_for:.1f}s "
                    f"(fail_open_after {self.fail_open_after:g}s): {summary}"
                ),
                failed_open=True,
            )
        if last is not None and all(why == answers.NOT_LEADER for why in attempts.values()):
            reason = f"no node is the leader: {summary}"
        else:
            reason = f"no node could answer: {summary}"
        return CheckResult(
            status=last.status if last is not None else 0,
            kind=ERROR,
            reason=reason,
            retry_after=last.retry_after if last is not None else None,
        )

    def wait(self, request: Request, max_wait: Optional[float], backoff: Backoff) -> Steps:
        """
        Steps of L{wait_until_allowed<freno.client.FrenoClient.wait_until_allowed>}:
        check, and while not allowed sleep as L{next_wait} says.

        @return: the first allowed L{CheckResult}.
        @raise NotAllowed: the deadline passed, the server's C{Retry-After}
            reaches beyond it, or the request is bad (400: asking again
            cannot help).
        """
        if max_wait is not None and (
            isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not max_wait >= 0
        ):
            raise ValueError(f"max_wait: must be a number >= 0 or None, got {max_wait!r}")
        started = self.clock()
        attempt = 0
        while True:
            result = yield from self.check(request)
            attempt += 1
            if result.allowed:
                return result
            elapsed = self.clock() - started
            if result.status == 400:
                raise NotAllowed(result, elapsed, attempt)
            remaining = None if max_wait is None else max_wait - elapsed
            wait = next_wait(backoff, attempt, self.rng, result.retry_after, remaining)
            if wait is None:
                raise NotAllowed(result, elapsed, attempt)
            yield Sleep(wait)

    # -- other requests ------------------------------------------------------------

    def call(self, request: Request) -> Steps:
        """
        Steps of a read or a mutation: the first node that answers 2xx.

        @return: C{(base_url, response)}.
        @raise FrenoAPIError: a node answered 4xx (L{RouteNotServed} for a
            route it does not serve), or something that is not HTTP success.
        @raise FrenoUnavailable: every node gave no answer or 5xx.
        """
        attempts: Dict[str, str] = {}
        for url in self.order():
            answer = yield Send(url, request)
            if isinstance(answer, NoAnswer):
                attempts[url] = answer.why
                continue
            if answer.status >= 500:
                message, code, _ = answers.error_message(answer)
                attempts[url] = f"{answer.status} {code + ': ' if code else ''}{message}"
                continue
            if not 200 <= answer.status < 300:
                raise answers.api_error(answer, url, request.target)
            with self._lock:
                self.prefer(url)
            return url, answer
        raise FrenoUnavailable(
            f"{request.method} {request.target.split('?', 1)[0]}: no node could answer: {_summary(attempts)}",
            attempts,
        )

    def call_leader(self, request: Request) -> Steps:
        """
        Steps of a request only the leader takes (membership changes): as
        L{call}, except that a node answering 409 C{not_leader} is skipped
        for the next one.

        @return: C{(base_url, response)}.
        """
        attempts: Dict[str, str] = {}
        for url in self.order():
            answer = yield Send(url, request)
            if isinstance(answer, NoAnswer):
                attempts[url] = answer.why
                continue
            message, code, _ = answers.error_message(answer) if answer.status >= 300 else ("", None, None)
            if answer.status >= 500 or (answer.status == 409 and code == "not_leader"):
                attempts[url] = f"{answer.status} {code + ': ' if code else ''}{message}"
                continue
            if not 200 <= answer.status < 300:
                raise answers.api_error(answer, url, request.target)
            return url, answer
        raise FrenoUnavailable(
            f"{request.method} {request.target.split('?', 1)[0]}: no node could answer: {_summary(attempts)}",
            attempts,
        )

    def call_json(self, request: Request) -> Steps:
        """
        L{call}, and the answer's JSON.

        @return: C{(base_url, json)}.
        @raise FrenoAPIError: the answer is not JSON.
        """
        url, answer = yield from self.call(request)
        body = answer.json()
        if body is None:
            raise FrenoAPIError(
                f"{url} answered {request.target.split('?', 1)[0]} with something that is not JSON",
                answer.status,
                node=url,
            )
        return url, body

    def ask_leader(self, request: Request) -> Steps:
        """
        Steps of a read whose answer depends on the node (C{/api/v1/status},
        C{/explain}): every node is asked, in order, until one answers with
        C{"is_leader": true}.

        @return: C{(base_url, json)}: the leader's answer, else the first
            JSON answer.
        @raise FrenoAPIError: the nodes answered 4xx (L{RouteNotServed}
            when one does not serve the route).
        @raise FrenoUnavailable: no node answered 2xx.
        """
        attempts: Dict[str, str] = {}
        first: Optional[Tuple[str, Any]] = None
        refusal: Optional[FrenoAPIError] = None
        for url in self.order():
            answer = yield Send(url, request)
            if isinstance(answer, NoAnswer):
                attempts[url] = answer.why
                continue
            if 200 <= answer.status < 300:
                body = answer.json()
                if isinstance(body, dict) and body.get("is_leader") is True:
                    return url, body
                if first is None and body is not None:
                    first = (url, body)
                continue
            message, code, _ = answers.error_message(answer)
            attempts[url] = f"{answer.status} {message}"
            if 400 <= answer.status < 500 and refusal is None:
                refusal = answers.api_error(answer, url, request.target)
        if first is not None:
            return first
        if refusal is not None:
            raise refusal
        raise FrenoUnavailable(
            f"GET {request.target.split('?', 1)[0]}: no node could answer: {_summary(attempts)}",
            attempts,
        )

    def status_from_freno(self) -> Steps:
        """
        Steps of a status report for nodes without C{/api/v1/status}: each
        node's C{/consensus/status}, and the leader's C{/aggregated-metrics}.

        @return: a dict shaped like C{/api/v1/status} (C{docs/api.md}) with
            what freno's routes tell: no thresholds, ages, term or host counts
            (L{None}), C{"source": "freno routes"}, and each member's C{url}.
        @raise FrenoUnavailable: no node answered.
        """
        members = []
        attempts: Dict[str, str] = {}
        leader_url: Optional[str] = None
        first: Optional[Dict[str, Any]] = None
        for url in self.urls:
            answer = yield Send(url, freno_get("/consensus/status"))
            body = None if isinstance(answer, NoAnswer) else answer.json()
            if isinstance(answer, NoAnswer) or answer.status != 200 or not isinstance(body, dict):
                attempts[url] = answer.why if isinstance(answer, NoAnswer) else f"{answer.status}"
                members.append({"id": url, "url": url, "self": False, "leader": None, "reachable": False})
                continue
            is_leader = body.get("IsLeader") is True
            if is_leader and leader_url is None:
                leader_url = url
            if first is None or is_leader:
                first = body
            members.append(
                {"id": str(body.get("ServiceID") or url), "url": url, "self": False,
                 "leader": is_leader, "reachable": True}
            )
        if first is None:
            raise FrenoUnavailable(f"GET /consensus/status: no node could answer: {_summary(attempts)}", attempts)
        clusters = []
        if leader_url is not None:
            answer = yield Send(leader_url, freno_get("/aggregated-metrics"))
            metrics = None if isinstance(answer, NoAnswer) else answer.json()
            if isinstance(metrics, dict):
                for name in sorted(metrics):
                    clusters.append(_cluster_from_metric(name, metrics[name]))
        return {
            "node": first.get("ServiceID"),
            "leader": first.get("Leader") or None,
            "is_leader": first.get("IsLeader") is True,
            "term": None,
            "state": first.get("State"),
            "healthy": first.get("Healthy"),
            "backend": None,
            "members": members,
            "clusters": clusters,
            "time_unix": self.wall(),
            "source": "freno routes",
        }

    def status(self, request: Request) -> Steps:
        """
        Steps of a status report: the leader's C{/api/v1/status}, or
        L{status_from_freno} when the nodes do not serve it.
        """
        try:
            url, body = yield from self.ask_leader(request)
        except RouteNotServed:
            body = yield from self.status_from_freno()
            return body
        if isinstance(body, dict):
            body.setdefault("source", "api")
        return body


def _cluster_from_metric(name: str, text: Any) -> Dict[str, Any]:
    """
    One C{/aggregated-metrics} entry (C{"mysql/main": "0.500000"} or
    C{"error: ..."}) as a status cluster.
    """
    store = name.split("/", 1)[1] if name.startswith("mysql/") else name
    value: Optional[float] = None
    error: Optional[str] = None
    if isinstance(text, str) and text.startswith("error: "):
        error = text[len("error: "):]
    else:
        try:
            value = float(text)
        except (TypeError, ValueError):
            error = f"unreadable value {str(text)[:40]!r}"
    return {"name": store, "value": value, "threshold": None, "age_ms": None, "error": error, "hosts": None}


def run_steps(steps: Steps, send: Callable[[Send], Any], sleep: Callable[[float], None]) -> Any:
    """
    Drive C{steps} to the end, blocking: C{send} performs a L{Send} and
    returns a L{Response} or a L{NoAnswer}; C{sleep} sleeps.

    @return: the generator's return value (exceptions propagate).
    """
    try:
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                sleep(step.seconds)
                step = steps.send(None)
            else:
                step = steps.send(send(step))
    except StopIteration as stop:
        return stop.value


__all__ = [
    "ClientCore", "NoAnswer", "Response", "Send", "Sleep", "parse_urls", "run_steps",
]
