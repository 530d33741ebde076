# -*- test-case-name: test.integration.test_raft_processes,test.integration.test_tap -*-
"""
Launching real C{twistd freno} processes on loopback: one L{FrenoNode} per
process, and L{FrenoGroup} for a raft group of them.

Used by the integration tests, the benchmarks and C{make run}. Every call here
is blocking (subprocesses and short HTTP requests with timeouts); every wait is
a poll with a deadline; every process is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import attr

from freno.sandbox.processes import free_port, wait_for

#: The repository root (so children import this checkout's freno).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NodeError(Exception):
    """
    A node failed to start or to answer in time; the message says which and
    carries the tail of its log.
    """


def http_get(url: str, method: str = "GET", timeout: float = 1.0) -> Tuple[int, bytes]:
    """
    One HTTP request; returns C{(status, body)}, or C{(0, b"")} when the
    server cannot be reached or does not answer in time.
    """
    return http_request(url, method, timeout=timeout)


def http_request(
    url: str,
    method: str = "GET",
    body: Any = None,
    token: Optional[str] = None,
    timeout: float = 1.0,
) -> Tuple[int, bytes]:
    """
    One HTTP request, with C{body} sent as JSON and C{token} as a bearer
    token when given; returns C{(status, body)}, or C{(0, b"")} when the
    server cannot be reached or does not answer in time.
    """
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


#: The log level flags of C{twistd freno}.
LOG_LEVEL_FLAGS = frozenset({"--verbose", "--debug", "--quiet"})


@attr.s(auto_attribs=True)
class FrenoNode:
    """
    One C{twistd -n freno} process.

    @ivar config: the JSON configuration (a dict), written to C{workdir}.
    @ivar extra_args: more C{twistd freno} options.
    @cvar default_log_flags: added to the command line unless C{extra_args}
        names a log level. None by default, so that benchmarks and C{make
        run} see a node as deployed (warnings only); the test suite sets
        C{("--verbose",)} (in C{test/__init__.py}) so that L{log_tail}
        explains a failure with raft leadership, hand-offs and probing.
    """

    default_log_flags: ClassVar[Tuple[str, ...]] = ()

    name: str
    workdir: str
    config: Dict[str, Any]
    extra_args: Sequence[str] = ()
    env: Optional[Dict[str, str]] = None
    process: Optional[subprocess.Popen] = None

    @property
    def http_port(self) -> int:
        """
        The node's HTTP port (C{ListenPort}).
        """
        return int(self.config["ListenPort"])

    @property
    def url(self) -> str:
        """
        The node's base URL.
        """
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def raft_address(self) -> str:
        """
        The node's C{RaftBind}.
        """
        return str(self.config.get("RaftBind", ""))

    @property
    def pid(self) -> Optional[int]:
        """
        The process id while started.
        """
        return self.process.pid if self.process is not None else None

    @property
    def config_path(self) -> str:
        return os.path.join(self.workdir, f"{self.name}.conf.json")

    @property
    def log_path(self) -> str:
        return os.path.join(self.workdir, f"{self.name}.log")

    def command(self) -> List[str]:
        """
        The command line that runs this node.
        """
        return [
            # "-m twisted.scripts.twistd" imports the module and exits 0
            # without running anything; call its run() instead.
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=", f"--logfile={self.log_path}",
            "freno", "--config", self.config_path, *self.extra_args,
            *(() if LOG_LEVEL_FLAGS.intersection(self.extra_args) else self.default_log_flags),
        ]

    def start(self) -> None:
        """
        Write the configuration and spawn the process (does not wait).
        """
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env or {})
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.workdir, f"{self.name}.stderr"), "wb"),
        )

    def running(self) -> bool:
        """
        Whether the process is alive.
        """
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """
        The last lines of the node's log and stderr, for error messages.
        """
        out = []
        for path in (self.log_path, os.path.join(self.workdir, f"{self.name}.stderr")):
            try:
                with open(path, errors="replace") as f:
                    out.extend(f.read().splitlines()[-lines:])
            except OSError:
                pass
        return "\n".join(out)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """
        Wait until the node answers C{/lb-check}.

        @raise NodeError: it exited or did not answer in time.
        """
        def ready():
            if not self.running():
                raise NodeError(f"{self.name} exited:\n{self.log_tail()}")
            return self.get("/lb-check")[0] == 200

        try:
            wait_for(ready, timeout, what=f"{self.name} to serve /lb-check")
        except TimeoutError as e:
            raise NodeError(f"{e}\n{self.log_tail()}") from None

    def get(self, path: str, method: str = "GET", timeout: float = 1.0) -> Tuple[int, bytes]:
        """
        One request to this node.
        """
        return http_get(self.url + path, method, timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: Optional[str] = None,
        timeout: float = 5.0,
    ) -> Tuple[int, Any]:
        """
        One request to this node (C{body} as JSON, C{token} as a bearer
        token); returns C{(status, parsed JSON body or None)}.
        """
        status, content = http_request(self.url + path, method, body, token, timeout)
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = None
        return status, parsed

    def is_leader(self) -> bool:
        """
        Whether the node answers C{/leader-check} with 200 now.
        """
        return self.get("/leader-check", timeout=0.5)[0] == 200

    def _signal(self, signum: int) -> None:
        if self.running():
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """
        SIGKILL the process and reap it.
        """
        if self.process is not None:
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGKILL)
            self.process.wait()

    def freeze(self) -> None:
        """
        SIGSTOP the process.
        """
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """
        SIGCONT the process.
        """
        self._signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """
        SIGTERM the process, wait for it (SIGKILL after C{timeout}), and
        return its exit code.
        """
        self.terminate()
        return self.reap(timeout)

    def terminate(self) -> None:
        """
        SIGTERM the process (waking it first if it was frozen); do not wait.
        """
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGTERM)

    def reap(self, timeout: float = 15.0) -> Optional[int]:
        """
        Wait for the process to exit (SIGKILL after C{timeout}) and return
        its exit code; C{None} if it was never started.
        """
        if self.process is None:
            return None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.process.returncode


def cluster_config(
    name: str,
    hosts: Sequence[str],
    threshold: float = 1.0,
    user: str = "",
    password: str = "",
    **extra: Any,
) -> Dict[str, Any]:
    """
    A static-hosts cluster entry for C{Stores.MySQL.Clusters}.
    """
    config: Dict[str, Any] = {
        "ThrottleThreshold": threshold,
        "StaticHostsSettings": {"Hosts": list(hosts)},
    }
    if user:
        config["User"] = user
        config["Password"] = password
    config.update(extra)
    return {name: config}


@attr.s(auto_attribs=True)
class FrenoGroup:
    """
    N freno nodes in one raft group (N = 1 is single-node mode), with free
    ports and a generated raft secret.

    @ivar store: the C{Stores.MySQL} object every node gets.
    """

    workdir: str
    size: int = 3
    store: Dict[str, Any] = attr.ib(factory=dict)
    extra_config: Dict[str, Any] = attr.ib(factory=dict)
    raft_password: str = attr.ib(factory=lambda: secrets.token_hex(16))
    nodes: List[FrenoNode] = attr.ib(factory=list)

    def __attrs_post_init__(self) -> None:
        raft = [f"127.0.0.1:{free_port()}" for _ in range(self.size)]
        ports = [free_port() for _ in range(self.size)]
        # Every node listens on 127.0.0.1 with its own port: the status page
        # needs each member's URL to link to the leader and follow it.
        urls = {raft[i]: f"http://127.0.0.1:{ports[i]}" for i in range(self.size)}
        for index in range(self.size):
            config: Dict[str, Any] = {
                "ListenPort": ports[index],
                "RaftBind": raft[index],
                "RaftDataDir": os.path.join(self.workdir, f"node{index}", "raft"),
                "RaftNodes": raft if self.size > 1 else [],
                "Stores": {"MySQL": self.store},
            }
            if self.size > 1:
                config["RaftPassword"] = self.raft_password
                config["DashboardURLs"] = urls
            config.update(self.extra_config)
            self.nodes.append(
                FrenoNode(f"node{index}", os.path.join(self.workdir, f"node{index}"), config)
            )

    def start(self, timeout: float = 20.0) -> None:
        """
        Start every node and wait until each serves HTTP.
        """
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready(timeout)

    def leaders(self) -> List[FrenoNode]:
        """
        The running, unfrozen-looking nodes answering C{/leader-check} 200.
        """
        return [n for n in self.nodes if n.running() and n.is_leader()]

    def wait_leader(self, timeout: float = 15.0, among: Optional[Sequence[FrenoNode]] = None) -> FrenoNode:
        """
        Wait until exactly one node (of C{among}) claims leadership; return it.
        """
        candidates = list(among) if among is not None else self.nodes

        def one():
            found = [n for n in candidates if n.running() and n.is_leader()]
            return found[0] if len(found) == 1 else None

        return wait_for(one, timeout, what="a single leader")

    def stop(self, timeout: float = 15.0) -> None:
        """
        Stop every node by its pid: SIGTERM to all at once, then wait for
        each (SIGKILL for one still running C{timeout} seconds later). A
        leader whose followers are all gone ends its hand-off within half a
        second (D88), so the group stops in about that.
        """
        for node in self.nodes:
            node.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            node.reap(max(0.0, deadline - time.monotonic()))
