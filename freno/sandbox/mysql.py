# -*- test-case-name: test.test_sandbox -*-
"""
A real MariaDB replication sandbox on loopback: L{MySQLSandbox}.

A primary and N replicas, each its own C{mariadbd --no-defaults} process with
its own datadir, loopback port and server id, all with
C{default-time-zone=+00:00}; GTID replication from the primary to every
replica; a probe user L{MySQLSandbox.user} with the privileges a freno probe
needs; pt-heartbeat's C{meta.heartbeat} table, updated every
C{heartbeat_interval} seconds by a child process (L{freno.sandbox.heartbeat}),
so that freno's standard lag query (L{LAG_QUERY}) gives sub-second lag on every
replica.

Usage (everything here blocks; call it from test set-up, a thread, or a
script, not from reactor code)::

    with MySQLSandbox(replicas=2) as sandbox:
        sandbox.primary.port, [r.port for r in sandbox.replicas]
        sandbox.lag(sandbox.replicas[0])          # about 0.0-0.1
        sandbox.inject_lag(0)                     # growing lag on replica 0
        sandbox.inject_lag(1, 3)                  # about 3 s of lag on replica 1
        sandbox.remove_lag(0)
        sandbox.freeze(1); sandbox.thaw(1)        # SIGSTOP / SIGCONT
        sandbox.stop_replica(0); sandbox.start_replica(0)

C{start()} takes a couple of seconds: one template datadir is made with
C{mariadb-install-db} and copied for each server; the servers start in
parallel. C{stop()} kills every process it started by pid, waits for them, and
removes the directory it created, also after a failed or half-done start.

From a shell, C{python -m freno.sandbox.mysql [--replicas N]} starts one,
prints its ports and lag queries, and stops it on Ctrl-C or SIGTERM.

Only Debian's C{mariadb-server} package is needed (C{apt-get install
mariadb-server}); the machine's own MariaDB on port 3306 is never touched.
"""

from __future__ import annotations

import argparse
import atexit
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import attr
import pymysql
from twisted.logger import Logger

from freno.sandbox import heartbeat, processes

#: freno's standard lag query (its default C{MetricQuery}).
LAG_QUERY = (
    "select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check"
    " from meta.heartbeat order by ts desc limit 1"
)

#: How C{mariadbd}'s error log says the port was taken.
_BIND_ERRORS = ("Address already in use", "Do you already have another")

#: Options shared by every server: small, fast, no durability (throwaway data).
_SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--default-time-zone=+00:00",
    "--innodb-log-file-size=8M",
    "--innodb-buffer-pool-size=32M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--sync-binlog=0",
    "--binlog-format=ROW",
    "--log-bin=mysql-bin",
    "--relay-log=relay-bin",
    "--performance-schema=OFF",
    "--max-connections=300",
)

#: The longest path a Unix socket can have (C{sun_path} is 108 bytes).
_MAX_SOCKET_PATH = 107


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
        L{MySQLSandbox.stop_replica}/L{MySQLSandbox.start_replica}).
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
    def error_log(self) -> str:
        """
        The path of its error log.
        """
        return os.path.join(os.path.dirname(self.datadir), "error.log")


class MySQLSandbox:
    """
    A MariaDB primary with C{replicas} replicas on loopback. See the module
    docstring.

    @ivar primary: the primary L{Server} (set by L{start}).
    @ivar replicas: the replica L{Server}s, in order; C{index} arguments
        below are positions in this list.
    @ivar root: the directory holding everything the sandbox created (set by
        L{start}, removed by L{stop}).
    """

    log = Logger()

    #: The probe user, created on the primary and replicated everywhere.
    user = "freno"
    #: Its password.
    password = "freno-sandbox"
    #: The root user the sandbox itself uses (no password, loopback only).
    root_user = "root"

    def __init__(
        self,
        base_dir: Optional[str] = None,
        replicas: int = 2,
        heartbeat_interval: float = 0.1,
        start_timeout: float = 30.0,
        mariadbd_args: Sequence[str] = (),
    ) -> None:
        """
        @param base_dir: where to create the sandbox's own directory (a new
            C{freno-sandbox-*} directory inside it); default: the system's
            temporary directory.
        @param replicas: how many replicas (>= 0).
        @param heartbeat_interval: seconds between heartbeats (> 0).
        @param start_timeout: the deadline, in seconds, for each phase of
            L{start} and L{start_replica}.
        @param mariadbd_args: extra options for every C{mariadbd}.
        @raise ValueError: an argument is out of range.
        """
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ValueError(f"replicas must be an integer >= 0, got {replicas!r}")
        for name, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("start_timeout", start_timeout),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self._base_dir = base_dir
        self._replica_count = replicas
        self._heartbeat_interval = float(heartbeat_interval)
        self._timeout = float(start_timeout)
        self._extra_args = tuple(mariadbd_args)
        self.root: Optional[str] = None
        self._socket_dir: Optional[str] = None
        self._created_base_dir = False
        self.primary: Optional[Server] = None
        self.replicas: List[Server] = []
        self._procs: Dict[str, "subprocess.Popen[bytes]"] = {}
        self._heartbeat: Optional["subprocess.Popen[bytes]"] = None
        self._mariadbd: Optional[str] = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """
        Create, start and wire up every server and the heartbeat writer; return
        once every replica's lag is below one second.

        @raise SandboxError: something failed; everything started so far has
            been stopped and removed again.
        """
        if self.root is not None:
            raise SandboxError("sandbox already started")
        started = time.monotonic()
        try:
            self._start()
        except BaseException as e:
            self.stop()
            if isinstance(e, SandboxError) or not isinstance(e, Exception):
                raise
            raise SandboxError(f"sandbox failed to start: {type(e).__name__}: {e}") from e
        self.log.info(
            "MySQL sandbox up in {seconds:.2f}s: primary {primary}, replicas {replicas}",
            seconds=time.monotonic() - started,
            primary=self.primary.hostport,
            replicas=[r.hostport for r in self.replicas],
        )

    def _start(self) -> None:
        """
        The body of L{start}; may leave things behind for L{stop} to clean.
        """
        self._mariadbd = _need_binary("mariadbd")
        install_db = _need_binary("mariadb-install-db")
        if self._base_dir is not None and not os.path.isdir(self._base_dir):
            os.makedirs(self._base_dir)
            self._created_base_dir = True
        self.root = tempfile.mkdtemp(prefix="freno-sandbox-", dir=self._base_dir)
        atexit.register(self.stop)

        template = os.path.join(self.root, "template")
        self._install(install_db, template)
        names = ["primary"] + [f"replica{i}" for i in range(1, self._replica_count + 1)]
        socket_dir = self._make_socket_dir(max(len(n) for n in names) + len(".sock") + 1)
        servers = []
        for server_id, name in enumerate(names, start=1):
            directory = os.path.join(self.root, name)
            os.mkdir(directory)
            datadir = os.path.join(directory, "data")
            shutil.copytree(template, datadir)
            sock = os.path.join(socket_dir, f"{name}.sock")
            servers.append(Server(name, "127.0.0.1", 0, datadir, sock, None, server_id))
        shutil.rmtree(template)
        self.primary, self.replicas = servers[0], servers[1:]

        self._launch(servers, new_ports=True)
        self._set_up_primary()
        for replica in self.replicas:
            self._set_up_replica(replica)
        self._start_heartbeat()
        self.wait_caught_up(timeout=self._timeout)

    def _make_socket_dir(self, name_length: int) -> str:
        """
        The directory for the servers' Unix sockets: the sandbox's own
        directory when its path is short enough for a socket path (108 bytes
        at most), else a separate short-named temporary directory that
        L{stop} removes too.
        """
        if len(self.root) + name_length <= _MAX_SOCKET_PATH:
            return self.root
        for parent in (None, "/tmp"):
            candidate = tempfile.mkdtemp(prefix="freno-sock-", dir=parent)
            if len(candidate) + name_length <= _MAX_SOCKET_PATH:
                self._socket_dir = candidate
                return candidate
            os.rmdir(candidate)
        raise SandboxError("no directory short enough for Unix socket paths")

    def stop(self) -> None:
        """
        Stop the heartbeat writer and every C{mariadbd} this sandbox started
        (by pid, SIGKILL: the data is thrown away), wait for them to exit, and
        remove the sandbox's directory. Idempotent; safe after a failed
        L{start}.
        """
        if self._heartbeat is not None:
            processes.stop_process(self._heartbeat, signal.SIGTERM, timeout=5)
            self._heartbeat = None
        procs, self._procs = self._procs, {}
        for proc in procs.values():
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in procs.values():
            proc.wait()
        for server in ([self.primary] if self.primary else []) + self.replicas:
            server.pid = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            if self._created_base_dir:
                try:
                    os.rmdir(self._base_dir)
                except OSError:
                    pass
                self._created_base_dir = False
        atexit.unregister(self.stop)

    def __enter__(self) -> "MySQLSandbox":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- queries -------------------------------------------------------------

    def connect(self, server: Server, timeout: float = 10.0, **kwargs) -> pymysql.connections.Connection:
        """
        A new autocommit PyMySQL connection to C{server} as root over TCP, with
        C{timeout} as connect, read and write timeout. Keyword arguments
        override the defaults (for example C{user}, C{password}).
        """
        options = dict(
            host=server.host,
            port=server.port,
            user=self.root_user,
            password="",
            autocommit=True,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
        )
        options.update(kwargs)
        return pymysql.connect(**options)

    def query(self, server: Server, sql: str, args=(), timeout: float = 10.0) -> List[tuple]:
        """
        Run one statement on C{server} as root on a fresh connection and return
        its rows (an empty list for statements without a result set). With no
        C{args}, C{sql} is sent as is (no C{%} formatting).

        @raise pymysql.MySQLError: the server refused or did not answer within
            C{timeout} seconds.
        """
        connection = self.connect(server, timeout)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args or None)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def lag(self, server: Server) -> float:
        """
        Run L{LAG_QUERY} on C{server}.

        @raise SandboxError: C{meta.heartbeat} is empty there.
        """
        rows = self.query(server, LAG_QUERY)
        if not rows or rows[0][0] is None:
            raise SandboxError(f"no heartbeat on {server.name} ({server.hostport})")
        return float(rows[0][0])

    def replica_status(self, index: int) -> Dict[str, object]:
        """
        C{SHOW SLAVE STATUS} of replica C{index}, as a column name to value
        dict (empty if replication is not configured).
        """
        server = self._replica(index)
        connection = self.connect(server)
        try:
            with connection.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                row = cursor.fetchone()
                return dict(row) if row else {}
        finally:
            connection.close()

    def wait_caught_up(
        self,
        indexes: Optional[Sequence[int]] = None,
        max_lag: float = 1.0,
        timeout: float = 15.0,
    ) -> None:
        """
        Poll until the lag of each replica in C{indexes} (default: all) is
        below C{max_lag} seconds.

        @raise SandboxError: not within C{timeout} seconds; the message carries
            the replica's replication errors.
        """
        if indexes is None:
            indexes = range(len(self.replicas))
        deadline = time.monotonic() + timeout
        for index in indexes:
            replica = self._replica(index)

            def caught_up():
                try:
                    return self.lag(replica) < max_lag
                except (pymysql.MySQLError, SandboxError):
                    return False

            try:
                processes.wait_for(
                    caught_up,
                    max(0.0, deadline - time.monotonic()),
                    what=f"{replica.name} lag < {max_lag}s",
                )
            except TimeoutError as e:
                raise SandboxError(f"{e}; {self._replication_errors(index)}") from None

    # -- faults ----------------------------------------------------------------

    def inject_lag(self, index: int, seconds: Optional[float] = None) -> None:
        """
        Make replica C{index} lag.

        @param seconds: L{None} for growing lag (its SQL thread stops, so the
            heartbeat stops advancing there); a number for a steady lag of
            about that many seconds (C{MASTER_DELAY}, which counts whole
            seconds: C{seconds} is rounded, and the lag query then reads a
            saw-tooth from about 0.3 s below to 0.6 s above it).
        @raise ValueError: C{seconds} is negative or not finite.
        """
        replica = self._replica(index)
        if seconds is None:
            self.query(replica, "STOP SLAVE SQL_THREAD")
            return
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        delay = int(math.floor(seconds + 0.5))
        self._change_master(replica, f"MASTER_DELAY={delay}")

    def remove_lag(self, index: int) -> None:
        """
        Undo L{inject_lag} on replica C{index}: no delay, both replication
        threads running. The replica then catches up within a moment.
        """
        self._change_master(self._replica(index), "MASTER_DELAY=0")

    def stop_replica(self, index: int, graceful: bool = True) -> None:
        """
        Stop replica C{index}'s C{mariadbd} and wait until it exited: SIGTERM
        (a clean shutdown, SIGKILL after 30 s), or SIGKILL if not C{graceful}.
        Its datadir and port are kept for L{start_replica}.
        """
        replica = self._replica(index)
        proc = self._procs.pop(replica.name, None)
        if proc is not None:
            processes.stop_process(
                proc, signal.SIGTERM if graceful else signal.SIGKILL, timeout=30
            )
        replica.pid = None

    def start_replica(self, index: int) -> None:
        """
        Start replica C{index}'s C{mariadbd} again, on the same datadir and
        port, and wait until it accepts connections. It resumes replicating
        on its own (a growing lag injected before is gone: both threads start;
        a C{MASTER_DELAY} stays).

        @raise SandboxError: it is running already, or did not start.
        """
        replica = self._replica(index)
        if replica.name in self._procs:
            raise SandboxError(f"{replica.name} is already running (pid {replica.pid})")
        self._launch([replica], new_ports=False)

    def freeze(self, index: int) -> None:
        """
        SIGSTOP replica C{index}: its port still accepts TCP connections but
        nothing answers. Returns once the kernel reports it stopped.
        """
        replica = self._running(index)
        os.kill(replica.pid, signal.SIGSTOP)
        processes.wait_for(
            lambda: processes.process_state(replica.pid) in ("T", "t", None),
            5.0,
            interval=0.01,
            what=f"{replica.name} to stop",
        )

    def thaw(self, index: int) -> None:
        """
        SIGCONT replica C{index} after L{freeze}.
        """
        os.kill(self._running(index).pid, signal.SIGCONT)

    # -- internals ---------------------------------------------------------------

    def _replica(self, index: int) -> Server:
        """
        Replica C{index}, or a clear error.
        """
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.replicas):
            raise IndexError(
                f"replica index must be an integer in 0..{len(self.replicas) - 1}, got {index!r}"
            )
        return self.replicas[index]

    def _running(self, index: int) -> Server:
        """
        Replica C{index}, which must be running.
        """
        replica = self._replica(index)
        if replica.pid is None:
            raise SandboxError(f"{replica.name} is not running")
        return replica

    def _install(self, install_db: str, datadir: str) -> None:
        """
        Make a fresh datadir with C{mariadb-install-db}.
        """
        log_path = os.path.join(self.root, "install.log")
        with open(log_path, "wb") as out:
            result = subprocess.run(
                [
                    install_db,
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--user=root" if os.geteuid() == 0 else f"--user={_login()}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--innodb-log-file-size=8M",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=self._timeout,
            )
        if result.returncode != 0:
            raise SandboxError(
                f"mariadb-install-db failed with status {result.returncode}:\n"
                + processes.tail(log_path)
            )

    def _argv(self, server: Server) -> List[str]:
        """
        The C{mariadbd} command line for C{server}.
        """
        directory = os.path.dirname(server.datadir)
        argv = [
            self._mariadbd,
            "--no-defaults",
            f"--datadir={server.datadir}",
            f"--port={server.port}",
            "--bind-address=127.0.0.1",
            f"--socket={server.socket}",
            f"--pid-file={os.path.join(directory, 'mysqld.pid')}",
            f"--log-error={server.error_log}",
            f"--tmpdir={directory}",
            f"--server-id={server.server_id}",
        ]
        if os.geteuid() == 0:
            argv.append("--user=root")
        return argv + list(_SERVER_OPTIONS) + list(self._extra_args)

    def _launch(self, servers: Sequence[Server], new_ports: bool) -> None:
        """
        Start C{servers} in parallel and wait until each accepts connections.
        With C{new_ports}, each gets a free port, and a fresh one if another
        process took it first (up to 5 tries).
        """
        pending = list(servers)
        for attempt in range(5):
            for server in pending:
                if new_ports:
                    server.port = processes.free_port()
                self._spawn(server)
            pending = self._wait_ready(pending)
            if not pending:
                return
            if not new_ports:
                break
            self.log.warn(
                "ports taken, retrying: {servers}", servers=[s.name for s in pending]
            )
        server = pending[0]
        raise SandboxError(
            f"{server.name} could not bind 127.0.0.1:{server.port} (port in use); "
            f"error log {server.error_log}:\n{processes.tail(server.error_log)}"
        )

    def _spawn(self, server: Server) -> None:
        """
        Start C{server}'s C{mariadbd} and remember its process.
        """
        # A fresh error log per attempt, so a bind error is this attempt's.
        if os.path.exists(server.error_log):
            os.replace(server.error_log, server.error_log + ".old")
        proc = processes.spawn(
            self._argv(server), os.path.join(os.path.dirname(server.datadir), "stdout.log")
        )
        self._procs[server.name] = proc
        server.pid = proc.pid

    def _wait_ready(self, servers: Sequence[Server]) -> List[Server]:
        """
        Wait until each of C{servers} answers on its port. Returns those that
        exited because their port was taken (forgotten, for a retry).

        @raise SandboxError: one exited for another reason, or did not answer
            within the start timeout.
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
                    if any(marker in log for marker in _BIND_ERRORS):
                        port_taken.append(server)
                        continue
                    raise SandboxError(
                        f"{server.name} (mariadbd on port {server.port}) exited with "
                        f"status {proc.returncode} while starting; error log "
                        f"{server.error_log}:\n{log}"
                    )
                if _answers(server):
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

    def _set_up_primary(self) -> None:
        """
        Create the probe user and C{meta.heartbeat} on the primary (the
        replicas get them through replication) and write a first heartbeat.
        """
        for statement in (
            f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{self.password}'",
            f"CREATE USER '{self.user}'@'localhost' IDENTIFIED BY '{self.password}'",
            "CREATE DATABASE meta",
            heartbeat.CREATE_TABLE,
        ):
            self.query(self.primary, statement)
        for host in ("%", "localhost"):
            self.query(self.primary, f"GRANT SELECT ON meta.* TO '{self.user}'@'{host}'")
            self.query(
                self.primary,
                "GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* "
                f"TO '{self.user}'@'{host}'",
            )
        self.query(self.primary, heartbeat.UPDATE, (self.primary.server_id,))

    def _set_up_replica(self, replica: Server) -> None:
        """
        Point C{replica} at the primary (GTID) and start replicating.
        """
        self.query(
            replica,
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, "
            "MASTER_USER='root', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, "
            "MASTER_USE_GTID=slave_pos",
            (self.primary.port,),
        )
        self.query(replica, "START SLAVE")

    def _change_master(self, replica: Server, setting: str) -> None:
        """
        Stop replication on C{replica}, apply one C{CHANGE MASTER} setting, and
        start both threads again.
        """
        self.query(replica, "STOP SLAVE")
        self.query(replica, f"CHANGE MASTER TO {setting}")
        self.query(replica, "START SLAVE")

    def _start_heartbeat(self) -> None:
        """
        Start the heartbeat writer child process against the primary.
        """
        env = dict(os.environ)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(
            [package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        self._heartbeat = processes.spawn(
            [
                sys.executable,
                "-m",
                "freno.sandbox.heartbeat",
                f"--port={self.primary.port}",
                f"--user={self.root_user}",
                f"--interval={self._heartbeat_interval}",
                f"--server-id={self.primary.server_id}",
                f"--parent-pid={os.getpid()}",
            ],
            os.path.join(self.root, "heartbeat.log"),
            env=env,
        )

    def _replication_errors(self, index: int) -> str:
        """
        A one-line summary of replica C{index}'s replication state.
        """
        try:
            status = self.replica_status(index)
        except pymysql.MySQLError as e:
            return f"SHOW SLAVE STATUS failed: {e}"
        keys = ("Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error")
        return ", ".join(f"{k}={status.get(k)!r}" for k in keys)

    @property
    def heartbeat_pid(self) -> Optional[int]:
        """
        The heartbeat writer's pid while it runs, else L{None}.
        """
        return self._heartbeat.pid if self._heartbeat is not None else None

    @property
    def pids(self) -> List[int]:
        """
        The pids of every process the sandbox is running now.
        """
        pids = [p.pid for p in self._procs.values()]
        if self._heartbeat is not None:
            pids.append(self._heartbeat.pid)
        return pids


def _answers(server: Server) -> bool:
    """
    Whether C{server} accepts a root login now.
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


def _need_binary(name: str) -> str:
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


def _login() -> str:
    """
    The current user's name (for C{mariadb-install-db --user} when not root).
    """
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    C{python -m freno.sandbox.mysql}: start a sandbox, print how to reach it,
    and stop it on Ctrl-C or SIGTERM.
    """
    parser = argparse.ArgumentParser(
        prog="python -m freno.sandbox.mysql",
        description="Run a MariaDB replication sandbox on loopback until Ctrl-C.",
    )
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--heartbeat-interval", type=float, default=0.1)
    parser.add_argument("--base-dir", default=None)
    options = parser.parse_args(argv)

    def terminate(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, terminate)
    try:
        sandbox = MySQLSandbox(
            base_dir=options.base_dir,
            replicas=options.replicas,
            heartbeat_interval=options.heartbeat_interval,
        )
    except ValueError as e:
        parser.error(str(e))
    try:
        started = time.monotonic()
        sandbox.start()
        print(f"MySQL sandbox up in {time.monotonic() - started:.1f}s ({sandbox.root})")
        print(f"  primary   {sandbox.primary.hostport}  pid {sandbox.primary.pid}")
        for replica in sandbox.replicas:
            print(f"  {replica.name:9} {replica.hostport}  pid {replica.pid}")
        print(f"probe user: {sandbox.user} / {sandbox.password}")
        for replica in sandbox.replicas:
            print(
                f"  mariadb -h127.0.0.1 -P{replica.port} -u{sandbox.user} "
                f"-p{sandbox.password} -e '{LAG_QUERY}'"
            )
        print("Ctrl-C stops it.", flush=True)
        while True:
            signal.pause()
    except SandboxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    print("MySQL sandbox stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
