# -*- test-case-name: test.unit.test_client_run,test.integration.test_client_processes -*-
"""
C{freno-cli run}: run a batch command as a cooperative freno client without
changing a line of it.

L{Supervisor} starts the command in a process group of its own, checks
freno every C{interval}, stops the whole group (C{SIGSTOP}) while the check
is not allowed and continues it (C{SIGCONT}) once it is. The command starts
only after a first allowed check. No answer from freno means "stopped"
(fail closed) unless the client fails open (C{--fail-open-after}).
C{SIGINT}, C{SIGTERM} and C{SIGHUP} received by C{freno-cli} are passed to
the group (after a C{SIGCONT}, so that a stopped command can act on them);
C{freno-cli} exits with the command's status (128 + N when a signal N ended
it), and never leaves the group stopped when it returns, whatever happens.

Limits: a check takes up to the client's timeout per node, during which the
command keeps its current state; a C{SIGKILL} of C{freno-cli} itself cannot
be caught, and would leave a stopped command stopped; a command that moves
its children to other process groups or sessions takes them out of reach.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any, Callable, Dict, Optional, Sequence

from freno.client.result import CheckResult

#: The signals forwarded to the command's process group.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_status(returncode: int) -> int:
    """
    A child's C{returncode} as a shell reports it: 128 + N when signal N
    ended it.
    """
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    """
    One supervised command.

    @ivar stopped: whether the group is stopped now.
    """

    def __init__(
        self,
        argv: Sequence[str],
        check: Callable[[], CheckResult],
        interval: float,
        report: Callable[[str, Dict[str, Any]], None],
        popen: Callable[..., Any] = subprocess.Popen,
        killpg: Callable[[int, int], None] = os.killpg,
        sleep: Optional[Callable[[float], None]] = None,
    ) -> None:
        """
        @param check: one freno check.
        @param interval: seconds between checks.
        @param report: called with an event name (C{waiting}, C{started},
            C{paused}, C{resumed}, C{signal}, C{exited}) and its fields.
        @param popen: starts the command (C{subprocess.Popen}'s signature;
            called with C{process_group=0}).
        @param killpg: signals a process group.
        @param sleep: sleeps before the command is started (default: the
            standard library's).
        """
        if not argv:
            raise ValueError("run: no command given (freno-cli run --app A --cluster C -- COMMAND ...)")
        self._argv = list(argv)
        self._check = check
        self._interval = interval
        self._report = report
        self._popen = popen
        self._killpg = killpg
        self._sleep = sleep if sleep is not None else time.sleep
        self._process: Any = None
        self._terminating = False
        self._pending: list = []
        self.stopped = False

    def _signal(self, signum: int) -> None:
        try:
            self._killpg(self._process.pid, signum)
        except ProcessLookupError:
            pass

    def forward(self, signum: int) -> None:
        """
        Pass C{signum} to the command's group (a signal handler calls this),
        continuing the group first if it is stopped; from then on it is never
        stopped again. Before the command started, the signal is kept and
        L{run} returns 128 + C{signum} without starting it.
        """
        self._terminating = True
        if self._process is None:
            self._pending.append(signum)
            return
        self._report("signal", {"signal": signal.Signals(signum).name, "pid": self._process.pid})
        if self.stopped:
            self._resume(None)
        self._signal(signum)

    def _pause(self, result: CheckResult) -> None:
        self._signal(signal.SIGSTOP)
        self.stopped = True
        self._report("paused", _fields(self._process.pid, result))

    def _resume(self, result: Optional[CheckResult]) -> None:
        self._signal(signal.SIGCONT)
        self.stopped = False
        self._report("resumed", _fields(self._process.pid, result))

    def run(self) -> int:
        """
        Wait for an allowed check, start the command, supervise it until it
        exits; return its exit status (see L{exit_status}).
        """
        reported = None
        while True:
            if self._pending:
                return 128 + self._pending[0]
            result = self._check()
            if result.allowed:
                break
            if result.status != reported:
                reported = result.status
                self._report("waiting", _fields(None, result))
            self._sleep(self._interval)
        if self._pending:
            return 128 + self._pending[0]
        self._process = self._popen(self._argv, process_group=0)
        self._report("started", {"pid": self._process.pid, "argv": self._argv})
        try:
            while True:
                code = self._process.poll()
                if code is not None:
                    break
                if not self._terminating:
                    result = self._check()
                    if not result.allowed and not self.stopped and not self._terminating:
                        self._pause(result)
                    elif result.allowed and self.stopped:
                        self._resume(result)
                try:
                    code = self._process.wait(timeout=self._interval)
                    break
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if self.stopped:
                self._resume(None)
        self._report("exited", {"pid": self._process.pid, "status": exit_status(code)})
        return exit_status(code)


def _fields(pid: Optional[int], result: Optional[CheckResult]) -> Dict[str, Any]:
    fields: Dict[str, Any] = {}
    if pid is not None:
        fields["pid"] = pid
    if result is not None:
        fields.update(status=result.status, reason=result.reason, value=result.value,
                      threshold=result.threshold, failed_open=result.failed_open)
    return fields
