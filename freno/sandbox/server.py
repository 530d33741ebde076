# -*- test-case-name: test.unit.test_sandbox,test.integration.test_sandbox -*-
"""
One sandbox C{mariadbd}: its description (L{Server}) and the processes that
run a set of them (L{ServerProcesses}): parallel start on free loopback ports
with a retry when another process takes a port first, readiness by polling a
login, and stopping by pid.

Everything here blocks; every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Dict, List, Optional, Sequence

import attr
import pymysql
from twisted.logger import Logger

from freno.sandbox import processes

#: Options shared by every server: UTC, binary logs with row events, small
#: and fast, no durability (the data are thrown away).
SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--default-time-zone=+00:00",
    "--innodb-log-file-size=8M",
    "--innodb-buffer-pool-size=32M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-load-at-startup=OFF",
    "--innodb-buffer-pool-dump-at-shutdown=OFF",
    "--sync-binlog=0",
    "--binlog-format=ROW",
    "--log-bin=mysql-bin",
    "--relay-log=relay-bin",
    "--performance-schema=OFF",
    "--max-connections=300",
)

#: How C{mariadbd}'s error log says its port was taken.
BIND_ERRORS = ("Address already in use", "Do you already have another")

#: How many ports to try per server before giving up.
PORT_ATTEMPTS = 5


class SandboxError(Exception):
    """
    The sandbox cannot do what was asked: C{mariadbd} is not installed, a
    server did not start (the message carries the tail of its error log),
    replication did not come up in time, and so on.
    """


@attr.s(auto_attribs=True)
class Server:
    """
    One C{mariadbd} of the sandbox.

    @ivar name: C{"primary"}, C{"replica1"}, C{"replica2"}, ...
    @ivar host: always C{"127.0.0.1"}.
    @ivar port: its TCP port (chosen free when the sandbox starts; kept across
        a stop and start of the server).
    @ivar datadir: its data directory.
    @ivar socket: its Unix socket path.
    @ivar pid: its process id while it runs, else L{None}.
    @ivar server_id: its replication server id (1 for the primary).
    """

    name: str
    host: str
    port: int
    datadir: str
    socket: str
    pid: Optional[int] = None
    server_id: int = 0

    @property
    def hostport(self) -> str:
        """
        C{"127.0.0.1:PORT"}, as freno's configuration names a host.
        """
        return f"{self.host}:{self.port}"

    @property
    def directory(self) -> str:
        """
        The directory holding its datadir and logs.
        """
        return os.path.dirname(self.datadir)

    @property
    def error_log(self) -> str:
        """
        The path of its error log.
        """
        return os.path.join(self.directory, "error.log")


def need_binary(name: str) -> str:
    """
    The path of MariaDB's C{name}, or a L{SandboxError} saying how to get it.
    """
    path = processes.find_binary(name)
    if path is None:
        raise SandboxError(
            f"{name} not found on PATH or in /usr/sbin: the MySQL sandbox needs "
            "MariaDB's server binaries; install them with: apt-get install mariadb-server"
        )
    return path


def answers(server: Server) -> bool:
    """
    Whether C{server} accepts a root login over TCP now.
    """
    try:
        connection = pymysql.connect(
            host=server.host,
            port=server.port,
            user="root",
            password="",
            connect_timeout=1,
            read_timeout=2,
        )
    except pymysql.MySQLError:
        return False
    connection.close()
    return True


class ServerProcesses:
    """
    The running C{mariadbd} processes of a set of L{Server}s, by name.
    """

    log = Logger()

    def __init__(self, mariadbd: str, extra_args: Sequence[str] = (), timeout: float = 30.0):
        """
        @param mariadbd: the server binary.
        @param extra_args: more options for every server.
        @param timeout: seconds a server may take to accept connections.
        """
        self._mariadbd = mariadbd
        self._extra_args = tuple(extra_args)
        self._timeout = timeout
        self._procs: Dict[str, "subprocess.Popen[bytes]"] = {}

    @property
    def pids(self) -> List[int]:
        """
        The pids of the servers started and not yet stopped.
        """
        return [p.pid for p in self._procs.values()]

    def running(self, server: Server) -> bool:
        """
        Whether C{server} was started here and not stopped since.
        """
        return server.name in self._procs

    def argv(self, server: Server) -> List[str]:
        """
        The command line for C{server}.
        """
        argv = [
            self._mariadbd,
            "--no-defaults",
            f"--datadir={server.datadir}",
            f"--port={server.port}",
            "--bind-address=127.0.0.1",
            f"--socket={server.socket}",
            f"--pid-file={os.path.join(server.directory, 'mysqld.pid')}",
            f"--log-error={server.error_log}",
            f"--tmpdir={server.directory}",
            f"--server-id={server.server_id}",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        return argv + list(SERVER_OPTIONS) + list(self._extra_args)

    def start(self, servers: Sequence[Server], new_ports: bool) -> None:
        """
        Start C{servers} in parallel and wait until each accepts connections.
        With C{new_ports}, each gets a free loopback port, and another one if a
        different process took it first (up to L{PORT_ATTEMPTS} tries); else
        each keeps C{server.port}.

        @raise SandboxError: a server exited (the message carries its error
            log), or did not answer within the timeout.
        """
        pending = list(servers)
        for attempt in range(PORT_ATTEMPTS if new_ports else 1):
            for server in pending:
                if new_ports:
                    server.port = processes.free_port()
                self._spawn(server)
            pending = self._wait_ready(pending)
            if not pending:
                return
            self.log.warn(
                "port taken, retrying {servers}", servers=[s.name for s in pending]
            )
        server = pending[0]
        raise SandboxError(
            f"{server.name} could not bind 127.0.0.1:{server.port} (port in use); "
            f"error log {server.error_log}:\n{processes.tail(server.error_log)}"
        )

    def stop(self, server: Server, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """
        Stop C{server} by pid (C{sig}, then SIGKILL after C{timeout} seconds)
        and wait until it exited. Does nothing if it is not running.
        """
        proc = self._procs.pop(server.name, None)
        if proc is not None:
            processes.stop_process(proc, sig, timeout)
        server.pid = None

    def kill_all(self) -> None:
        """
        SIGKILL every server (frozen ones too) and reap them all.
        """
        procs, self._procs = self._procs, {}
        for proc in procs.values():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in procs.values():
            proc.wait()

    def _spawn(self, server: Server) -> None:
        """
        Start C{server}'s C{mariadbd} and remember its process.
        """
        # A fresh error log per attempt, so that a bind error is this attempt's.
        if os.path.exists(server.error_log):
            os.replace(server.error_log, server.error_log + ".old")
        proc = processes.spawn(self.argv(server), os.path.join(server.directory, "stdout.log"))
        self._procs[server.name] = proc
        server.pid = proc.pid

    def _wait_ready(self, servers: Sequence[Server]) -> List[Server]:
        """
        Wait until each of C{servers} answers. Returns those that exited
        because their port was taken (forgotten, ready for a retry).

        @raise SandboxError: one exited for another reason, or did not answer
            in time.
        """
        deadline = time.monotonic() + self._timeout
        waiting = list(servers)
        port_taken = []
        while waiting:
            for server in list(waiting):
                proc = self._procs[server.name]
                if proc.poll() is not None:
                    del self._procs[server.name]
                    server.pid = None
                    waiting.remove(server)
                    log = processes.tail(server.error_log, 25)
                    if any(marker in log for marker in BIND_ERRORS):
                        port_taken.append(server)
                        continue
                    raise SandboxError(
                        f"{server.name} (mariadbd on port {server.port}) exited with "
                        f"status {proc.returncode} while starting; error log "
                        f"{server.error_log}:\n{log}"
                    )
                if answers(server):
                    waiting.remove(server)
            if not waiting:
                break
            if time.monotonic() >= deadline:
                server = waiting[0]
                raise SandboxError(
                    f"{server.name} (mariadbd on port {server.port}) did not accept "
                    f"connections within {self._timeout:.0f}s; error log:\n"
                    + processes.tail(server.error_log)
                )
            time.sleep(0.03)
        return port_taken
