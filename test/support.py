"""
Test support shared by several test modules (not a test module itself).
"""

from freno.sandbox.mysql import MySQLSandbox


class SharedSandboxMixin:
    """
    One sandbox for all the tests of a class in a run (trial has no
    C{setUpClass}): the first C{setUp} starts it, and the clean-up of the last
    test instance the loader created for this run stops it. Were a test never
    torn down, C{MySQLSandbox}'s C{atexit} hook and the children's parent-death
    signal still stop it when trial exits.

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
        if cls._shared is None:
            sandbox = MySQLSandbox(**self.sandbox_kwargs)
            sandbox.start()
            cls._shared = sandbox
        self.sandbox = cls._shared
        self.addCleanup(self._release)

    def _release(self):
        cls = type(self)
        cls._finished += 1
        if cls._finished >= cls._created:
            sandbox, cls._shared = cls._shared, None
            cls._created = cls._finished = 0
            sandbox.stop()
