"""
Test support shared by several test modules (not a test module itself):
starting MariaDB sandboxes and groups of C{twistd freno} nodes for
integration tests, with a skip naming the C{make deps} package when
C{mariadbd} is missing (see L{test.skips}).
"""

import json
import os
import shutil
import tempfile
import time

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater

from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.processes import free_port
from test.skips import binary_or_skip


def write_config(testcase, config):
    """
    Write C{config} (a dict) to a temporary file and return its path.
    """
    path = testcase.mktemp() + ".json"
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def single_node_config(testcase, http_port=0):
    """
    A minimal valid single-node configuration with one static cluster.
    """
    return {
        "ListenPort": http_port,
        "RaftBind": f"127.0.0.1:{free_port()}",
        "RaftDataDir": os.path.abspath(testcase.mktemp()),
        "RaftNodes": [],
        "Stores": {
            "MySQL": {
                "ThrottleThreshold": 1,
                "Clusters": {"main": {"StaticHostsSettings": {"Hosts": ["127.0.0.1:1"]}}},
            }
        },
    }


@inlineCallbacks
def poll_on_reactor(predicate, timeout: float, what: str = "condition", interval: float = 0.02):
    """
    Poll C{predicate} every C{interval} seconds on the running reactor (for
    tests whose code under test runs in the test process's reactor) until
    it returns a true value, and fire with that value.

    @raise AssertionError: C{timeout} seconds passed first; the message
        names C{what}.
    """
    from twisted.internet import reactor

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        yield deferLater(reactor, interval, lambda: None)


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


class SharedGroupMixin(SharedSandboxMixin):
    """
    One raft group of C{twistd freno} processes probing the class's shared
    sandbox, for all the tests of a class in a run: the first C{setUp}
    starts it (after the sandbox) and waits for a leader; the clean-up of
    the last test instance stops every node by its pid and removes the
    group's files, before the sandbox stops.

    @cvar group_size: how many nodes.
    @ivar group: the L{FrenoGroup}, in every test.
    """

    group_size = 3

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._group = None
        cls._group_workdir = None

    def group_store(self) -> dict:
        """
        The group's C{Stores.MySQL} (override): by default the sandbox's
        primary and replicas as the cluster C{main}.
        """
        from freno.sandbox.cluster import store_for

        return store_for(self.sandbox)

    def group_extra_config(self) -> dict:
        """
        More configuration keys for every node (override); none by default.
        """
        return {}

    def setUp(self):
        super().setUp()
        cls = type(self)
        if cls._group is None:
            from freno.sandbox.nodes import FrenoGroup

            workdir = tempfile.mkdtemp(prefix=f"freno-{cls.__name__}-")
            group = FrenoGroup(
                os.path.join(workdir, "freno"),
                size=self.group_size,
                store=self.group_store(),
                extra_config=self.group_extra_config(),
            )
            try:
                group.start()
                group.wait_leader(30)
            except BaseException:
                group.stop()
                shutil.rmtree(workdir, ignore_errors=True)
                raise
            cls._group, cls._group_workdir = group, workdir
        self.group = cls._group
        self.addCleanup(self._release_group)

    def release_shared(self) -> None:
        """
        Stop what the class shares besides the group (override; called
        once, by the last test's clean-up, before the group stops).
        """

    def _release_group(self):
        # Runs before SharedSandboxMixin._release (clean-ups run last
        # first), so this test is not yet counted as finished.
        cls = type(self)
        if cls._finished + 1 >= cls._created:
            self.release_shared()
            if cls._group is not None:
                group, cls._group = cls._group, None
                group.stop()
                shutil.rmtree(cls._group_workdir, ignore_errors=True)
