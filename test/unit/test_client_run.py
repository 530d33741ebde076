"""
L{freno.client.run.Supervisor} with a fake process, fake signals and
scripted checks: when the command starts, stops and continues, what happens
to signals, and that it is never left stopped.
"""

from __future__ import annotations

import signal
import subprocess
from typing import List, Optional, Tuple

from twisted.trial.unittest import SynchronousTestCase

from freno.client.result import ALLOWED, ERROR, THROTTLED, CheckResult
from freno.client.run import Supervisor, exit_status

OK = CheckResult(status=200, kind=ALLOWED, reason="OK")
LAG = CheckResult(status=429, kind=THROTTLED, reason="lag 2 > 1", value=2.0, threshold=1.0)
DOWN = CheckResult(status=0, kind=ERROR, reason="no node could answer")


class FakeProcess:
    """
    A child that exits after C{lifetime} waits (or when a signal kills it).
    """

    def __init__(self, pid: int, lifetime: int) -> None:
        self.pid = pid
        self.lifetime = lifetime
        self.returncode: Optional[int] = None

    def poll(self) -> Optional[int]:
        return self.returncode

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            self.lifetime -= 1
            if self.lifetime <= 0:
                self.returncode = 0
        if self.returncode is None:
            raise subprocess.TimeoutExpired("cmd", timeout)
        return self.returncode


class World:
    """
    Scripted checks, a fake child, and the signals sent to its group.
    """

    def __init__(self, checks: List[CheckResult], lifetime: int = 100, dies_on: Tuple[int, ...] = ()) -> None:
        self.checks = list(checks)
        self.signals: List[Tuple[int, int]] = []
        self.events: List[Tuple[str, dict]] = []
        self.slept: List[float] = []
        self.started: List[Tuple[list, dict]] = []
        self.process = FakeProcess(4242, lifetime)
        self.dies_on = dies_on
        self.on_check = None

    def check(self) -> CheckResult:
        if self.on_check is not None:
            self.on_check(len(self.checks))
        return self.checks.pop(0) if len(self.checks) > 1 else self.checks[0]

    def popen(self, argv, **kwargs):
        self.started.append((argv, kwargs))
        return self.process

    def killpg(self, pgid: int, signum: int) -> None:
        self.signals.append((pgid, signum))
        if signum in self.dies_on:
            self.process.returncode = -signum

    def supervisor(self) -> Supervisor:
        return Supervisor(["batch", "--fast"], self.check, 0.5, lambda e, f: self.events.append((e, f)),
                          popen=self.popen, killpg=self.killpg, sleep=self.slept.append)

    def names(self) -> List[str]:
        return [e for e, _ in self.events]


class SupervisorTests(SynchronousTestCase):
    """
    L{Supervisor.run}.
    """

    def test_runs_to_the_end(self):
        """
        Allowed throughout: started in its own process group, never
        signalled; the child's status is the result.
        """
        world = World([OK], lifetime=3)
        self.assertEqual(world.supervisor().run(), 0)
        self.assertEqual(world.started, [(["batch", "--fast"], {"process_group": 0})])
        self.assertEqual(world.signals, [])
        self.assertEqual(world.names(), ["started", "exited"])

    def test_pause_and_resume(self):
        """
        A refusal stops the group, the next allowed check continues it.
        """
        world = World([OK, OK, LAG, LAG, LAG, OK], lifetime=8)
        world.supervisor().run()
        self.assertEqual(world.signals, [(4242, signal.SIGSTOP), (4242, signal.SIGCONT)])
        self.assertEqual(world.names(), ["started", "paused", "resumed", "exited"])
        paused = world.events[1][1]
        self.assertEqual((paused["status"], paused["reason"], paused["pid"]), (429, "lag 2 > 1", 4242))

    def test_fail_closed(self):
        """
        No answer from freno stops the command too.
        """
        world = World([OK, DOWN], lifetime=3)
        world.supervisor().run()
        self.assertEqual(world.signals[0], (4242, signal.SIGSTOP))

    def test_waits_before_start(self):
        """
        The command starts only after an allowed check; the wait is reported
        once per status.
        """
        world = World([LAG, LAG, DOWN, OK], lifetime=1)
        world.supervisor().run()
        self.assertEqual(world.slept, [0.5, 0.5, 0.5])
        self.assertEqual(world.names(), ["waiting", "waiting", "started", "exited"])

    def test_never_left_stopped(self):
        """
        A child that exits while stopped (killed by someone) is continued on
        the way out; so is one when the check itself blows up.
        """
        world = World([OK, LAG], lifetime=3)
        world.supervisor().run()
        self.assertEqual(world.signals[-1], (4242, signal.SIGCONT))

        world = World([OK, LAG])
        calls = []

        def explode(remaining):
            calls.append(remaining)
            if len(calls) == 3:
                raise RuntimeError("boom")

        world.on_check = explode
        self.assertRaises(RuntimeError, world.supervisor().run)
        self.assertEqual(world.signals, [(4242, signal.SIGSTOP), (4242, signal.SIGCONT)])

    def test_forward_signal(self):
        """
        A forwarded signal continues a stopped group first, is passed on,
        and the group is not stopped again; the exit status is 128 + N.
        """
        world = World([OK, LAG], dies_on=(signal.SIGTERM,))
        supervisor = world.supervisor()

        def on_check(remaining):
            if supervisor.stopped:
                supervisor.forward(signal.SIGTERM)

        world.on_check = on_check
        self.assertEqual(supervisor.run(), 128 + signal.SIGTERM)
        self.assertEqual(world.signals, [(4242, signal.SIGSTOP), (4242, signal.SIGCONT), (4242, signal.SIGTERM)])
        self.assertIn("signal", world.names())

    def test_signal_before_start(self):
        """
        A signal before the command started ends the wait without starting it.
        """
        world = World([LAG])
        supervisor = world.supervisor()
        world.on_check = lambda remaining: supervisor.forward(signal.SIGINT)
        self.assertEqual(supervisor.run(), 128 + signal.SIGINT)
        self.assertEqual(world.started, [])

    def test_vanished_group(self):
        """
        Signalling a group that is already gone is not an error.
        """
        world = World([OK, LAG], lifetime=3)

        def gone(pgid, signum):
            raise ProcessLookupError()

        world.killpg = gone
        self.assertEqual(world.supervisor().run(), 0)

    def test_no_command(self):
        """
        An empty command is refused.
        """
        self.assertRaises(ValueError, Supervisor, [], lambda: OK, 1, lambda e, f: None)

    def test_exit_status(self):
        """
        A shell's exit status: the code, or 128 + the signal.
        """
        self.assertEqual([exit_status(c) for c in (0, 3, -9, -15)], [0, 3, 137, 143])
