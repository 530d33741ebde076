# -*- test-case-name: test.unit.test_sandbox,test.integration.test_sandbox,test.integration.test_probe_wire_tls_sandbox -*-
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

With C{tls=} (a L{freno.sandbox.certs.PKI}, or anything with C{ca},
C{server_cert} and C{server_key} paths; the test makes the certificates)
every server starts with C{--ssl-ca}, C{--ssl-cert} and C{--ssl-key}, so it
offers TLS (MariaDB 10.11 offers none otherwise); users are still free to
log in without it unless created with C{REQUIRE SSL}::

    pki = certs.make_pki(directory)          # CA, server cert for localhost/127.0.0.1
    with MySQLSandbox(replicas=0, tls=pki) as sandbox: ...

C{start()} takes one to three seconds: one template datadir is made (by a
short C{mariadbd --bootstrap}, see L{freno.sandbox.datadir}) and copied for
each server; the servers start in parallel; it returns once every replica
replicates with sub-second lag.
C{stop()} takes well under a second. C{stop()} kills every process it started by pid, waits for them, and
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

import pymysql
from twisted.logger import Logger

from freno.sandbox import heartbeat, processes
from freno.sandbox.datadir import DatadirError, make_datadir
from freno.sandbox.server import (
    SERVER_OPTIONS,
    SandboxError,
    Server,
    ServerProcesses,
    need_binary,
)

__all__ = ["LAG_QUERY", "MySQLSandbox", "SandboxError", "Server", "main"]

#: freno's standard lag query (its default C{MetricQuery}).
LAG_QUERY = (
    "select unix_timestamp(now(6)) - unix_timestamp(ts) as lag_check"
    " from meta.heartbeat order by ts desc limit 1"
)

#: The longest path a Unix socket can have (C{sun_path} is 108 bytes).
_MAX_SOCKET_PATH = 107


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
        tls=None,
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
        @param tls: the server certificate files (C{ca}, C{server_cert},
            C{server_key} attributes: a L{freno.sandbox.certs.PKI}), or
            C{None} for servers without TLS.
        @raise ValueError: an argument is out of range, or a TLS file does
            not exist.
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
        #: The certificate files the servers use (C{None}: no TLS).
        self.tls = tls
        if tls is not None:
            paths = (tls.ca, tls.server_cert, tls.server_key)
            for path in paths:
                if not os.path.isfile(path):
                    raise ValueError(f"TLS file {path!r} does not exist")
            self._extra_args += (
                f"--ssl-ca={os.path.abspath(tls.ca)}",
                f"--ssl-cert={os.path.abspath(tls.server_cert)}",
                f"--ssl-key={os.path.abspath(tls.server_key)}",
            )
        self.root: Optional[str] = None
        self._socket_dir: Optional[str] = None
        self._created_base_dir = False
        self.primary: Optional[Server] = None
        self.replicas: List[Server] = []
        self._servers: Optional[ServerProcesses] = None
        self._heartbeat: Optional["subprocess.Popen[bytes]"] = None

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
        mariadbd = need_binary("mariadbd")
        install_db = processes.find_binary("mariadb-install-db")
        self._servers = ServerProcesses(mariadbd, self._extra_args, self._timeout)
        if self._base_dir is not None and not os.path.isdir(self._base_dir):
            os.makedirs(self._base_dir)
            self._created_base_dir = True
        self.root = tempfile.mkdtemp(prefix="freno-sandbox-", dir=self._base_dir)
        atexit.register(self.stop)

        template = os.path.join(self.root, "template")
        try:
            make_datadir(
                mariadbd,
                install_db,
                template,
                os.path.join(self.root, "install.log"),
                self._timeout,
                [o for o in SERVER_OPTIONS if o.startswith("--innodb-log-file-size")],
            )
        except DatadirError as e:
            raise SandboxError(str(e)) from None
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

        self._servers.start(servers, new_ports=True)
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
        if self._servers is not None:
            self._servers.kill_all()
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

    def lag(self, server: Server, timeout: float = 10.0) -> float:
        """
        Run L{LAG_QUERY} on C{server}.

        @raise SandboxError: C{meta.heartbeat} is empty there.
        @raise pymysql.MySQLError: no answer within C{timeout} seconds.
        """
        rows = self.query(server, LAG_QUERY, timeout=timeout)
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
                remaining = deadline - time.monotonic()
                try:
                    return self.lag(replica, max(0.2, min(2.0, remaining))) < max_lag
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
            about that many seconds (C{MASTER_DELAY}). MariaDB counts the
            delay in whole seconds against binlog timestamps in whole seconds,
            with a whole-second estimate of the primary's clock offset, so
            C{seconds} is rounded and the lag query then reads a saw-tooth
            about one second wide that lies within roughly a second of it
            (measured: 1.2-2.1 s in one run, 1.7-2.6 s in another, for 2).
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
        if self._servers is not None:
            self._servers.stop(replica, signal.SIGTERM if graceful else signal.SIGKILL, 30)

    def start_replica(self, index: int) -> None:
        """
        Start replica C{index}'s C{mariadbd} again, on the same datadir and
        port, and wait until it accepts connections. It resumes replicating
        on its own (a growing lag injected before is gone: both threads start;
        a C{MASTER_DELAY} stays).

        @raise SandboxError: it is running already, or did not start.
        """
        replica = self._replica(index)
        if self._servers is None or self.root is None:
            raise SandboxError("sandbox not started")
        if self._servers.running(replica):
            raise SandboxError(f"{replica.name} is already running (pid {replica.pid})")
        self._servers.start([replica], new_ports=False)

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

    def _execute(self, server: Server, statements: Sequence) -> None:
        """
        Run C{statements} (each a string, or a C{(sql, args)} pair) on
        C{server}, in order, over one root connection.
        """
        connection = self.connect(server)
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    sql, args = statement if isinstance(statement, tuple) else (statement, None)
                    cursor.execute(sql, args)
        finally:
            connection.close()

    def _set_up_primary(self) -> None:
        """
        Create the probe user and C{meta.heartbeat} on the primary (the
        replicas get them through replication) and write a first heartbeat.
        """
        statements = ["CREATE DATABASE meta", heartbeat.CREATE_TABLE]
        for host in ("%", "localhost"):
            account = f"'{self.user}'@'{host}'"
            statements += [
                f"CREATE USER {account} IDENTIFIED BY '{self.password}'",
                f"GRANT SELECT ON meta.* TO {account}",
                f"GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO {account}",
            ]
        statements.append((heartbeat.UPDATE, (self.primary.server_id,)))
        self._execute(self.primary, statements)

    def _set_up_replica(self, replica: Server) -> None:
        """
        Point C{replica} at the primary (GTID) and start replicating.
        """
        self._execute(
            replica,
            [
                (
                    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, "
                    "MASTER_USER='root', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1, "
                    "MASTER_USE_GTID=slave_pos",
                    (self.primary.port,),
                ),
                "START SLAVE",
            ],
        )

    def _change_master(self, replica: Server, setting: str) -> None:
        """
        Stop replication on C{replica}, apply one C{CHANGE MASTER} setting, and
        start both threads again.
        """
        self._execute(replica, ["STOP SLAVE", f"CHANGE MASTER TO {setting}", "START SLAVE"])

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
        pids = list(self._servers.pids) if self._servers is not None else []
        if self._heartbeat is not None:
            pids.append(self._heartbeat.pid)
        return pids


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
            print(
                f"  {replica.name:9} {replica.hostport}  pid {replica.pid}  "
                f"lag {sandbox.lag(replica):.3f}s"
            )
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
