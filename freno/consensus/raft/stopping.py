# -*- test-case-name: test.unit.test_raft_handoff -*-
"""
L{HandOffFirst}: the top of a node's service tree, which lets the raft
leader hand off (and serve through the window after it) I{before} any
service stops.

twistd stops an application on SIGTERM by calling the top service's
C{stopService}, and a plain L{MultiService} stops all its children at once:
the HTTP port would close (and HAProxy see refused connections) while raft
is still handing off. L{HandOffFirst} first waits for C{before_stop()} (the
raft service's L{stop_after_handoff
<freno.consensus.raft.service.RaftConsensusService.stop_after_handoff>},
bounded: the hand-off bound plus the serving window, about 5.5 s at most),
then stops the children as usual.
"""

from __future__ import annotations

from typing import Callable

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger


class HandOffFirst(MultiService):
    """
    A L{MultiService} whose C{stopService} first waits for C{before_stop}.

    @param before_stop: returns a Deferred (or nothing) that fires when the
        children may stop; an error is logged and does not prevent stopping.
    """

    _log = Logger()

    def __init__(self, before_stop: Callable[[], object]) -> None:
        super().__init__()
        self._before_stop = before_stop

    def stopService(self) -> Deferred:
        """
        Wait for C{before_stop}, then stop every child.
        """
        d = maybeDeferred(self._before_stop)
        d.addErrback(lambda f: self._log.failure("before stopping", f))
        d.addCallback(lambda _: MultiService.stopService(self))
        return d
