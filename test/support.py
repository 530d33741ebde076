"""
Test support shared by several test modules (not a test module itself):
starting MariaDB sandboxes for integration tests, with a skip naming the
C{make deps} package when C{mariadbd} is missing (see L{test.skips}).
"""

from freno.sandbox.mysql import MySQLSandbox
from test.skips import binary_or_skip


def start_sandbox(case, **kwargs) -> MySQLSandbox:
    """
    A started L{MySQLSandbox} (C{kwargs} for its constructor) that C{case}'s
    clean-up stops.

    @raise twisted.trial.unittest.SkipTest: C{mariadbd} is missing (a skip
        that C{.ci/run} does not allow).
    """
    binary_or_skip("mariadbd")
    sandbox = MySQLSandbox(**kwargs)
    case.addCleanup(sandbox.stop)
    sandbox.start()
    return sandbox


class SharedSandboxMixin:
    """
    One sandbox for all the tests of a class in a run (trial has no
    C{setUpClass}): the first C{setUp} starts it, and the clean-up of the last
    test instance the loader created for this run stops it. Were a test never
    torn down, C{MySQLSandbox}'s C{atexit} hook and the children's parent-death
    signal still stop it when trial exits. Without C{mariadbd}, every test
    skips, naming the package C{make deps} installs.

    @cvar sandbox_kwargs: arguments for L{MySQLSandbox}.
    """

    sandbox_kwargs: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._shared = None
        cls._created = 0
        cls._finished = 0

    def __init__(self, methodName="runTest"):
        super().__init__(methodName)
        type(self)._created += 1

    def setUp(self):
        cls = type(self)
        self.addCleanup(self._release)
        if cls._shared is None:
            binary_or_skip("mariadbd")
            sandbox = MySQLSandbox(**self.sandbox_kwargs)
            sandbox.start()
            cls._shared = sandbox
        self.sandbox = cls._shared

    def _release(self):
        cls = type(self)
        cls._finished += 1
        if cls._finished >= cls._created:
            sandbox, cls._shared = cls._shared, None
            cls._created = cls._finished = 0
            if sandbox is not None:
                sandbox.stop()
