# -*- test-case-name: test.unit.test_sandbox,test.integration.test_sandbox -*-
"""
Making a fresh MariaDB datadir quickly: L{make_datadir}.

C{mariadb-install-db} pipes a series of SQL scripts into C{mariadbd
--bootstrap}. Two of them, the help tables and the C{sys} schema, are most of
its work and nothing a sandbox needs, so L{make_datadir} runs the bootstrap
itself with only the system tables (about a third of the time; several seconds
saved on a loaded machine) and falls back to C{mariadb-install-db} when the
scripts are not where Debian puts them or the short bootstrap fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional

from freno.sandbox import processes

#: Where Debian's mariadb-server-core keeps the bootstrap scripts.
SCRIPT_DIRS = ("/usr/share/mysql", "/usr/share/mariadb")

#: The scripts a server needs: grant tables, system tables, their data.
SCRIPTS = (
    "mysql_system_tables.sql",
    "mysql_performance_tables.sql",
    "mysql_system_tables_data.sql",
)

#: Options for every bootstrap, as C{mariadb-install-db} passes them.
_OPTIONS = (
    "--log-warnings=0",
    "--enforce-storage-engine=",
    "--max-allowed-packet=8M",
    "--net-buffer-length=16K",
)


class DatadirError(Exception):
    """
    Neither way of making a datadir worked; the message carries the tail of
    the log.
    """


def _user_option() -> list:
    """
    C{--user=root} when we are root (C{mariadbd} refuses to run as root
    otherwise); nothing when not.
    """
    return ["--user=root"] if os.geteuid() == 0 else []


def _scripts() -> Optional[list]:
    """
    The paths of L{SCRIPTS} in the first of L{SCRIPT_DIRS} that has them all.
    """
    for directory in SCRIPT_DIRS:
        paths = [os.path.join(directory, name) for name in SCRIPTS]
        if all(os.path.isfile(p) for p in paths):
            return paths
    return None


def bootstrap(mariadbd: str, datadir: str, log_path: str, timeout: float, options=()) -> bool:
    """
    Create C{datadir} with C{mariadbd --bootstrap} and the system-table
    scripts only. Returns whether it worked (C{datadir} is removed if not).
    """
    scripts = _scripts()
    if scripts is None:
        return False
    sql = [
        b"create database if not exists mysql;\n",
        b"use mysql;\n",
        b"SET @auth_root_socket=NULL;\n",  # root logs in with a password (empty)
    ]
    for path in scripts:
        with open(path, "rb") as f:
            sql.append(f.read())
    os.makedirs(datadir)
    with open(log_path, "ab") as out:
        try:
            result = subprocess.run(
                [mariadbd, "--no-defaults", "--bootstrap", f"--datadir={datadir}"]
                + _user_option()
                + list(_OPTIONS)
                + list(options),
                input=b"".join(sql),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            ok = result.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
    if not ok:
        shutil.rmtree(datadir, ignore_errors=True)
    return ok


def install_db(install_db_path: str, datadir: str, log_path: str, timeout: float, options=()) -> None:
    """
    Create C{datadir} with C{mariadb-install-db}.

    @raise DatadirError: it failed.
    """
    user = "root" if os.geteuid() == 0 else _login()
    with open(log_path, "ab") as out:
        result = subprocess.run(
            [
                install_db_path,
                "--no-defaults",
                f"--datadir={datadir}",
                f"--user={user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
            + list(options),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise DatadirError(
            f"mariadb-install-db failed with status {result.returncode}:\n"
            + processes.tail(log_path)
        )


def make_datadir(
    mariadbd: str,
    install_db_path: Optional[str],
    datadir: str,
    log_path: str,
    timeout: float,
    options=(),
) -> None:
    """
    Create a fresh datadir at C{datadir} (which must not exist), where root
    logs in over TCP from 127.0.0.1 with an empty password. C{options} are
    server options the datadir must match (for example
    C{--innodb-log-file-size}).

    @raise DatadirError: neither the short bootstrap nor
        C{mariadb-install-db} (if given) worked.
    """
    if bootstrap(mariadbd, datadir, log_path, timeout, options):
        return
    if install_db_path is None:
        raise DatadirError(
            "mariadbd --bootstrap failed and mariadb-install-db is missing:\n"
            + processes.tail(log_path)
        )
    install_db(install_db_path, datadir, log_path, timeout, options)


def _login() -> str:
    """
    The current user's name.
    """
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
