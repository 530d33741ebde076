# -*- test-case-name: test.unit.test_sandbox,test.integration.test_sandbox -*-
"""
A heartbeat writer in the manner of C{pt-heartbeat --update --utc}: every
C{interval} seconds it writes the primary's current UTC time, as a string such
as C{2026-11-26T10:50:07.000670}, into C{meta.heartbeat}.

The timestamp is computed by the server (C{UTC_TIMESTAMP(6)}), so the writer's
own clock and time zone do not matter; the servers run with
C{default-time-zone=+00:00}, so freno's lag query
C{unix_timestamp(now(6)) - unix_timestamp(ts)} reads it back correctly.

It runs as a child process of the sandbox::

    python -m freno.sandbox.heartbeat --port 40123 [--host 127.0.0.1]
        [--user root] [--password ''] [--interval 0.1] [--server-id 1]
        [--parent-pid PID]

so that it keeps writing whatever the parent's reactor is doing. It survives a
server that is down or hung (short timeouts, reconnects on every error), and
exits on SIGTERM or SIGINT, or when its parent process goes away.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Optional, Sequence

import pymysql

#: pt-heartbeat's table (C{pt-heartbeat --create-table}).
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS meta.heartbeat ("
    " ts varchar(26) NOT NULL,"
    " server_id int unsigned NOT NULL PRIMARY KEY,"
    " file varchar(255) DEFAULT NULL,"
    " position bigint unsigned DEFAULT NULL,"
    " relay_master_log_file varchar(255) DEFAULT NULL,"
    " exec_master_log_pos bigint unsigned DEFAULT NULL"
    ") ENGINE=InnoDB"
)

#: One beat: the server's UTC time with microseconds, in pt-heartbeat's format.
UPDATE = (
    "REPLACE INTO meta.heartbeat (ts, server_id) VALUES "
    "(DATE_FORMAT(UTC_TIMESTAMP(6), '%%Y-%%m-%%dT%%H:%%i:%%s.%%f'), %s)"
)


class _Stop(Exception):
    """
    Raised from the signal handler to leave the loop.
    """


def beat(connection: pymysql.connections.Connection, server_id: int) -> None:
    """
    Write one heartbeat row for C{server_id} over an autocommit C{connection}.
    """
    with connection.cursor() as cursor:
        cursor.execute(UPDATE, (server_id,))


def run(
    host: str,
    port: int,
    user: str,
    password: str,
    interval: float,
    server_id: int,
    parent_pid: Optional[int],
) -> None:
    """
    Write heartbeats until stopped. Ticks are scheduled on a fixed grid (no
    drift); a tick that overruns skips to the next grid point.
    """
    connection = None
    next_tick = time.monotonic()
    while True:
        if parent_pid is not None and os.getppid() != parent_pid:
            return
        try:
            if connection is None:
                connection = pymysql.connect(
                    host=host,
                    port=port,
                    user=user,
                    password=password,
                    autocommit=True,
                    connect_timeout=1,
                    read_timeout=2,
                    write_timeout=2,
                )
            beat(connection, server_id)
        except pymysql.MySQLError as e:
            print(f"heartbeat: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            if connection is not None:
                try:
                    connection.close()
                except Exception:
                    pass
            connection = None
        now = time.monotonic()
        next_tick += interval
        if next_tick < now:
            next_tick = now + interval - ((now - next_tick) % interval)
        time.sleep(next_tick - now)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    Parse the command line and write heartbeats until SIGTERM/SIGINT or the
    parent's exit. Returns the exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m freno.sandbox.heartbeat")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--server-id", type=int, default=1)
    parser.add_argument("--parent-pid", type=int, default=None)
    options = parser.parse_args(argv)
    if not (0 < options.interval < 3600):
        parser.error("--interval must be a number of seconds > 0")

    def stop(signum, frame):
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        run(
            options.host,
            options.port,
            options.user,
            options.password,
            options.interval,
            options.server_id,
            options.parent_pid,
        )
    except _Stop:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
