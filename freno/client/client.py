# -*- test-case-name: test.unit.test_client,test.integration.test_client_http,test.integration.test_client_processes -*-
"""
L{FrenoClient}: the blocking client, on the standard library only.

    from freno.client import FrenoClient
    freno = FrenoClient("http://freno1:8087,http://freno2:8087,http://freno3:8087")
    for chunk in chunks:
        freno.wait_until_allowed("archiver", "main", max_wait=600)   # raises NotAllowed
        write(chunk)

What a check means (C{docs/client.md}):

- 200 is the only "allowed"; 429 (lag above threshold) and 417 (the app is
  throttled) are "throttled"; every other answer, and no answer, is an
  "error": 404 (no such cluster), 500 (no leader, no metric yet, a stale
  metric, a probe error), 400 (a bad request), 0 (no node answered).
- Fail closed: nothing but a 200 allows a write, unless the client was made
  with C{fail_open_after=N}; then checks are allowed once no node has given a
  usable answer (none answered, or each said "not leader", or a proxy had no
  backend) for N seconds in a row, and the result says C{failed_open}. A
  node answering 500 for a database problem is an answer: it never opens.
- Several base URLs: a node that does not answer, or is not the leader, is
  passed over for the next; the last good one is asked first next time.
- Every request has a timeout (C{timeout}, 2 s by default) for connecting and
  for each wait on the socket; a call tries each node at most once, so it
  takes at most about C{timeout} times the number of nodes.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from freno.client import control, routes
from freno.client.answers import Response, api_error, error_message
from freno.client.backoff import Backoff
from freno.client.engine import ClientCore, NoAnswer, Send, run_steps
from freno.client.http import HTTPTransport, Transport, TransportError
from freno.client.result import CheckResult, ControlResult, FrenoUnavailable, Skip, Throttle

Cluster = Union[str, Sequence[str]]

#: Seconds a leadership transfer may take to answer (the node's 3 s bound,
#: and some).
TRANSFER_TIMEOUT = 10.0


def check_timeout(timeout: float) -> float:
    """
    @raise ValueError: not a finite number above 0.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout: must be a number of seconds above 0, got {timeout!r}")
    return float(timeout)


class FrenoClient:
    """
    A blocking freno client (see the module docstring). Safe to share
    between threads.
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        token: Optional[str] = None,
        timeout: float = 2.0,
        fail_open_after: Optional[float] = None,
        api: str = "auto",
        transport: Optional[Transport] = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Optional[random.Random] = None,
    ) -> None:
        """
        @param urls: base URLs, a list or one comma-separated string
            (C{"http://freno1:8087,http://freno2:8087"}; C{"host:port"}
            means C{http://host:port}).
        @param token: a bearer token for mutations (C{ControlTokens}); with
            one, mutations and listings go through the REST API.
        @param timeout: seconds allowed per request and node.
        @param fail_open_after: seconds without a usable answer after which
            checks allow writes anyway; L{None} (default): never.
        @param api: C{"auto"}, C{"rest"} or C{"freno"} (see
            L{freno.client.control}).
        @param transport: how requests are sent (default: an
            L{HTTPTransport}, keep-alive).
        @param clock: monotonic seconds; C{wall}: POSIX seconds; C{sleep}:
            sleeps; C{rng}: the jitter's random source. For tests.
        @raise ValueError: a bad argument.
        """
        self._core = ClientCore(urls, clock, wall, rng, fail_open_after)
        self._token = token or None
        self._timeout = check_timeout(timeout)
        self._api = control.check_api(api)
        self._transport = transport if transport is not None else HTTPTransport()
        self._sleep = sleep

    @property
    def urls(self):
        """
        The base URLs, in the order given.
        """
        return self._core.urls

    def _send(self, step: Send) -> Union[Response, NoAnswer]:
        request = step.request
        try:
            return self._transport.request(
                step.base_url,
                request.method,
                request.target,
                request.headers,
                request.body,
                self._timeout if step.timeout is None else max(step.timeout, self._timeout),
            )
        except TransportError as e:
            return NoAnswer(str(e))

    def _run(self, steps) -> Any:
        return run_steps(steps, self._send, self._sleep)

    # -- checks ------------------------------------------------------------

    def check(
        self,
        app: str,
        cluster: Cluster,
        low_priority: bool = False,
        threshold: Optional[float] = None,
    ) -> CheckResult:
        """
        Ask whether C{app} may write to C{cluster} now.

        @param cluster: a cluster name, or several for a multi-store check.
        @param low_priority: C{?p=low}: refused while a normal client was
            refused within the last second.
        @param threshold: ask C{/check-read} with this threshold instead.
        @return: the L{CheckResult}; C{result.allowed} is the answer. Never
            raises for what freno answers or for freno being down.
        @raise ValueError: a bad name or threshold.
        """
        request = routes.check(app, cluster, low_priority, threshold)
        return self._run(self._core.check(request))

    def wait_until_allowed(
        self,
        app: str,
        cluster: Cluster,
        max_wait: Optional[float] = None,
        poll: float = 1.0,
        cap: float = 10.0,
        low_priority: bool = False,
        threshold: Optional[float] = None,
    ) -> CheckResult:
        """
        Check until allowed, waiting between checks with exponential backoff
        and full jitter between C{poll} and C{cap} seconds, never sooner than
        the server's C{Retry-After}; nodes fail over as in L{check}.

        @param max_wait: give up after this many seconds (L{None}: never).
        @return: the allowed L{CheckResult}.
        @raise NotAllowed: the deadline passed without a 200 (also at once
            when the server's C{Retry-After} reaches past the deadline, or
            for a 400); it carries the last result.
        @raise ValueError: a bad argument.
        """
        request = routes.check(app, cluster, low_priority, threshold)
        backoff = Backoff(poll, cap)
        return self._run(self._core.wait(request, max_wait, backoff))

    # -- control -------------------------------------------------------------

    def _mutate(self, request: routes.Request) -> ControlResult:
        url, response = self._run(self._core.call(request))
        return control.result(request, url, response)

    def throttle(
        self,
        app: str,
        ttl: control.TTL = None,
        ratio: Optional[float] = None,
        reason: Optional[str] = None,
        store: Optional[str] = None,
    ) -> ControlResult:
        """
        Throttle C{app} (only on C{store} when given).

        @param ttl: seconds or a duration (C{"30m"}); L{None}: permanent.
        @param ratio: the share of checks refused, 0 to 1 (L{None}: 1 for a
            new throttle, unchanged for an existing one).
        @raise ValueError: a bad argument (a TTL that is not whole minutes on
            freno's routes among them).
        @raise FrenoAPIError: refused (401/403: token; 400: a bad value).
        @raise FrenoUnavailable: no node could do it.
        """
        return self._mutate(control.throttle(self._api, self._token, app, ttl, ratio, reason, store))

    def unthrottle(self, app: str, store: Optional[str] = None, reason: Optional[str] = None) -> ControlResult:
        """
        Remove C{app}'s throttle (the store-scoped one with C{store}).
        Errors as L{throttle}.
        """
        return self._mutate(control.unthrottle(self._api, self._token, app, store, reason))

    def skip(self, host: str, ttl: control.TTL = None, reason: Optional[str] = None) -> ControlResult:
        """
        Leave C{host} out of its cluster's value (no TTL: 60 minutes).
        Errors as L{throttle}.
        """
        return self._mutate(control.skip(self._api, self._token, host, ttl, reason))

    def recover(self, host: str, reason: Optional[str] = None) -> ControlResult:
        """
        Count C{host} again. Errors as L{throttle}.
        """
        return self._mutate(control.recover(self._api, self._token, host, reason))

    def throttles(self) -> List[Throttle]:
        """
        The active throttles, C{abusing-app} included.
        """
        request, read = control.list_throttles(self._api, self._token)
        _, body = self._run(self._core.call_json(request))
        return read(body)

    def skips(self) -> List[Skip]:
        """
        The skipped hosts.
        """
        request, read = control.list_skips(self._api, self._token)
        _, body = self._run(self._core.call_json(request))
        return read(body)

    # -- views ---------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """
        The leader's C{/api/v1/status} (C{docs/api.md}), or the same shape
        built from freno's routes when the nodes do not serve it (C{"source":
        "freno routes"}; no thresholds or ages then).
        """
        return self._run(self._core.status(routes.rest_get("/api/v1/status", self._token)))

    def transfer_leadership(self, to: Optional[str] = None, reason: Optional[str] = None) -> Dict[str, Any]:
        """
        C{POST /api/v1/leadership/transfer} on the leader (every node in
        turn until one that leads takes it): hand its leadership to C{to}
        (C{host:port} as in C{RaftNodes}; L{None}: the best up-to-date
        follower). Waits up to L{TRANSFER_TIMEOUT} seconds for the answer.

        @return: C{{"from", "to", "seconds", "audit_id"}}.
        @raise FrenoAPIError: refused (401/403: token; 400: not a member;
            409: not leader, not supported, in progress) or impossible (503:
            no up-to-date follower, timed out).
        @raise FrenoUnavailable: no node answered.
        """
        return self._run(self._transfer(routes.rest_transfer(to, reason, self._token)))

    def _transfer(self, request: routes.Request):
        # Every node in turn until one that leads takes it: a node that does
        # not lead refuses with 409 not_leader before recording anything.
        # (Not the node whose /api/v1/status says is_leader: a leader that
        # just handed off still serves, and says so, for a few seconds.)
        attempts: Dict[str, str] = {}
        refusal = None
        for url in self._core.order():
            answer = yield Send(url, request, TRANSFER_TIMEOUT)
            if isinstance(answer, NoAnswer):
                attempts[url] = answer.why
                continue
            if 200 <= answer.status < 300:
                return answer.json()
            message, code, _ = error_message(answer)
            if answer.status == 409 and code == "not_leader":
                attempts[url] = f"409 {message}"
                refusal = api_error(answer, url, request.target)
                continue
            raise api_error(answer, url, request.target)
        if refusal is not None:
            raise refusal
        raise FrenoUnavailable(f"POST {request.target}: no node could answer: {attempts}", attempts)

    def explain(self, app: str, cluster: Cluster) -> Dict[str, Any]:
        """
        The leader's C{/explain} of a check (C{docs/api.md}).

        @raise RouteNotServed: the nodes do not serve C{/explain}.
        """
        _, body = self._run(self._core.ask_leader(routes.explain(app, cluster)))
        return body

    def audit(self, since: Optional[int] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """
        C{GET /api/v1/audit}: C{{"records": [...], "next": id, "oldest": id}}.

        @raise RouteNotServed: the nodes have no audit log.
        """
        for name, value in (("since", since), ("limit", limit)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name}: must be an integer >= 0, got {value!r}")
        request = routes.rest_get(
            "/api/v1/audit",
            self._token,
            since=None if since is None else str(since),
            limit=None if limit is None else str(limit),
        )
        _, body = self._run(self._core.call_json(request))
        return body

    # -- raft members --------------------------------------------------------------

    def members(self) -> Dict[str, Any]:
        """
        C{GET /api/v1/members} (C{docs/api.md}): the members, learners and
        the change in progress, as the first node that answers sees them.

        @raise RouteNotServed: the nodes do not serve it.
        """
        _, body = self._run(self._core.call_json(routes.rest_get("/api/v1/members", self._token)))
        return body

    def add_member(self, address: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """
        Add learner C{address} as a raft member, through whichever node is
        the leader (the others answer 409 C{not_leader}); returns the answer
        (C{{"added", "members", "audit_id"}}) once committed.

        @raise FrenoAPIError: refused (C{error.code} says why).
        @raise FrenoUnavailable: no leader answered.
        """
        _, response = self._run(self._core.call_leader(routes.rest_add_member(address, reason, self._token)))
        return response.json()

    def remove_member(self, address: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """
        Remove member C{address}, through the leader. Errors as
        L{add_member}.
        """
        _, response = self._run(self._core.call_leader(routes.rest_remove_member(address, reason, self._token)))
        return response.json()

    def close(self) -> None:
        """
        Close idle connections.
        """
        self._transport.close()

    def __enter__(self) -> "FrenoClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
