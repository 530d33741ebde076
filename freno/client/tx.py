# -*- test-case-name: test.unit.test_client_tx,test.integration.test_client_http -*-
"""
L{TxFrenoClient}: the client for Twisted programs, on treq. Every method
returns a L{Deferred}; the logic (failover, fail closed or open, the wait
loop, what a status means) is L{freno.client.engine}'s, shared with the
blocking L{FrenoClient<freno.client.client.FrenoClient>}, so both behave
alike (C{docs/client.md}).

    from twisted.internet import reactor
    from freno.client.tx import TxFrenoClient

    freno = TxFrenoClient.from_reactor(reactor, "http://freno1:8087,http://freno2:8087")
    result = yield freno.wait_until_allowed("archiver", "main", max_wait=600)

The one module of L{freno.client} that needs more than the standard library
(Twisted and treq). It never imports the global reactor: time comes from the
C{clock} given, HTTP from the C{http_client} given (a treq C{HTTPClient}, or
C{treq.testing.StubTreq} in tests), and every request's timeout (connect,
answer and body together) runs on that clock.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Sequence, Union

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from freno.client import control, routes
from freno.client.answers import Response
from freno.client.backoff import Backoff
from freno.client.client import Cluster, check_timeout
from freno.client.engine import ClientCore, NoAnswer, Send, Sleep
from freno.client.result import CheckResult, ControlResult, Skip, Throttle


def _why(failure) -> str:
    error = failure.value
    name = type(error).__name__
    if name in ("CancelledError", "TimeoutError"):
        return "timed out"
    if name == "ConnectionRefusedError":
        return "connection refused"
    reasons = getattr(error, "reasons", None)  # ResponseNeverReceived and friends
    if reasons:
        return f"{name}: {reasons[0].getErrorMessage()}"
    return f"{name}: {failure.getErrorMessage()}"


class TxFrenoClient:
    """
    A freno client returning Deferreds. Arguments as
    L{FrenoClient<freno.client.client.FrenoClient>}'s, except:

    @param http_client: a treq C{HTTPClient} (or C{StubTreq}).
    @param clock: the reactor's time (timeouts, waits, the fail-open timer).
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        http_client: Any,
        clock: IReactorTime,
        token: Optional[str] = None,
        timeout: float = 2.0,
        fail_open_after: Optional[float] = None,
        api: str = "auto",
        rng: Optional[random.Random] = None,
    ) -> None:
        self._core = ClientCore(urls, clock.seconds, clock.seconds, rng, fail_open_after)
        self._http = http_client
        self._clock = clock
        self._token = token or None
        self._timeout = check_timeout(timeout)
        self._api = control.check_api(api)
        self._pool = None

    @classmethod
    def from_reactor(cls, reactor, urls: Union[str, Sequence[str]], **kwargs) -> "TxFrenoClient":
        """
        A client on C{reactor} with a persistent connection pool (connections
        are reused).
        """
        from treq.client import HTTPClient
        from twisted.web.client import Agent, HTTPConnectionPool

        pool = HTTPConnectionPool(reactor, persistent=True)
        client = cls(urls, HTTPClient(Agent(reactor, pool=pool)), reactor, **kwargs)
        client._pool = pool
        return client

    def close(self) -> Deferred:
        """
        Close the connections kept by L{from_reactor}'s pool; fires when they
        are closed.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        return pool.closeCachedConnections()

    # -- driving the engine -------------------------------------------------

    def _send(self, step: Send) -> Deferred:
        """
        One request; fires with a L{Response} or a L{NoAnswer}, never fails.
        """
        request = step.request

        def read(response):
            def done(body: bytes) -> Response:
                headers = {
                    name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
                    for name, values in response.headers.getAllRawHeaders()
                }
                return Response(response.code, headers, body)

            return response.content().addCallback(done)

        d = self._http.request(
            request.method,
            step.base_url + request.target,
            headers={k: [v] for k, v in request.headers.items()},
            data=request.body,
            allow_redirects=False,
        )
        d.addCallback(read)
        d.addTimeout(self._timeout, self._clock)
        d.addErrback(lambda failure: NoAnswer(_why(failure)))
        return d

    @inlineCallbacks
    def _run(self, steps):
        try:
            step = steps.send(None)
            while True:
                if isinstance(step, Sleep):
                    yield deferLater(self._clock, step.seconds)
                    step = steps.send(None)
                else:
                    answer = yield self._send(step)
                    step = steps.send(answer)
        except StopIteration as stop:
            return stop.value

    # -- the API (see FrenoClient for each method's contract) -------------------

    def check(self, app: str, cluster: Cluster, low_priority: bool = False,
              threshold: Optional[float] = None) -> "Deferred[CheckResult]":
        """
        See L{FrenoClient.check<freno.client.client.FrenoClient.check>}.
        C{ValueError} for bad input is raised at once, not through the
        Deferred.
        """
        return self._run(self._core.check(routes.check(app, cluster, low_priority, threshold)))

    def wait_until_allowed(self, app: str, cluster: Cluster, max_wait: Optional[float] = None,
                           poll: float = 1.0, cap: float = 10.0, low_priority: bool = False,
                           threshold: Optional[float] = None) -> "Deferred[CheckResult]":
        """
        See L{FrenoClient.wait_until_allowed<freno.client.client.FrenoClient.wait_until_allowed>};
        fails with L{NotAllowed<freno.client.result.NotAllowed>}.
        """
        request = routes.check(app, cluster, low_priority, threshold)
        return self._run(self._core.wait(request, max_wait, Backoff(poll, cap)))

    @inlineCallbacks
    def _mutate(self, request: routes.Request):
        url, response = yield self._run(self._core.call(request))
        return control.result(request, url, response)

    def throttle(self, app: str, ttl: control.TTL = None, ratio: Optional[float] = None,
                 reason: Optional[str] = None, store: Optional[str] = None) -> "Deferred[ControlResult]":
        """
        See L{FrenoClient.throttle<freno.client.client.FrenoClient.throttle>}.
        """
        return self._mutate(control.throttle(self._api, self._token, app, ttl, ratio, reason, store))

    def unthrottle(self, app: str, store: Optional[str] = None,
                   reason: Optional[str] = None) -> "Deferred[ControlResult]":
        """
        See L{FrenoClient.unthrottle<freno.client.client.FrenoClient.unthrottle>}.
        """
        return self._mutate(control.unthrottle(self._api, self._token, app, store, reason))

    def skip(self, host: str, ttl: control.TTL = None, reason: Optional[str] = None) -> "Deferred[ControlResult]":
        """
        See L{FrenoClient.skip<freno.client.client.FrenoClient.skip>}.
        """
        return self._mutate(control.skip(self._api, self._token, host, ttl, reason))

    def recover(self, host: str, reason: Optional[str] = None) -> "Deferred[ControlResult]":
        """
        See L{FrenoClient.recover<freno.client.client.FrenoClient.recover>}.
        """
        return self._mutate(control.recover(self._api, self._token, host, reason))

    @inlineCallbacks
    def throttles(self):
        """
        See L{FrenoClient.throttles<freno.client.client.FrenoClient.throttles>};
        fires with a list of L{Throttle}.
        """
        request, read = control.list_throttles(self._api, self._token)
        _, body = yield self._run(self._core.call_json(request))
        found: List[Throttle] = read(body)
        return found

    @inlineCallbacks
    def skips(self):
        """
        See L{FrenoClient.skips<freno.client.client.FrenoClient.skips>};
        fires with a list of L{Skip}.
        """
        request, read = control.list_skips(self._api, self._token)
        _, body = yield self._run(self._core.call_json(request))
        found: List[Skip] = read(body)
        return found

    def status(self) -> "Deferred[Dict[str, Any]]":
        """
        See L{FrenoClient.status<freno.client.client.FrenoClient.status>}.
        """
        return self._run(self._core.status(routes.rest_get("/api/v1/status", self._token)))

    @inlineCallbacks
    def explain(self, app: str, cluster: Cluster):
        """
        See L{FrenoClient.explain<freno.client.client.FrenoClient.explain>}.
        """
        _, body = yield self._run(self._core.ask_leader(routes.explain(app, cluster)))
        return body
