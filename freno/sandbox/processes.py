# -*- test-case-name: test.unit.test_sandbox,test.integration.test_sandbox -*-
"""
Blocking helpers for child processes and loopback ports, used by the MySQL
sandbox: pick a free port (outside the kernel's ephemeral range), spawn a
child that dies with its parent, poll with a deadline, stop a child by its
pid and reap it.

These run outside any reactor (test set-up, command-line tools), so they block
and read the monotonic clock directly.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Optional, Sequence, Set, Tuple

#: Directories searched after C{$PATH}: Debian puts C{mariadbd} in
#: C{/usr/sbin}, which a non-root C{$PATH} often lacks.
EXTRA_SEARCH_PATH = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin")


def find_binary(name: str, extra: Sequence[str] = EXTRA_SEARCH_PATH) -> Optional[str]:
    """
    The full path of executable C{name} on C{$PATH} or in C{extra}, or L{None}.
    """
    found = shutil.which(name)
    if found:
        return found
    return shutil.which(name, path=os.pathsep.join(extra))


#: The lowest port L{free_port} picks (well-known and registered service
#: ports such as 3306, 5432 or 8080 lie below it).
PORT_FLOOR = 20000

#: Where the kernel's ephemeral range is read, and what to assume without it.
EPHEMERAL_RANGE_PATH = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)

_random = random.Random()
_handed_out: Set[int] = set()
_handed_out_lock = threading.Lock()


def ephemeral_range(path: str = EPHEMERAL_RANGE_PATH) -> Tuple[int, int]:
    """
    The kernel's ephemeral port range (first and last), from which it picks
    the local port of every outgoing connection and of every C{bind} to
    port 0.
    """
    try:
        with open(path) as f:
            low, high = (int(field) for field in f.read().split())
        return low, high
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """
    A TCP port free on C{host} now, for a server a test or a tool is about
    to start, and never handed out before by this process.

    It is picked at random below the kernel's ephemeral range (from
    L{PORT_FLOOR}): a port the kernel chose for us (C{bind} to port 0) could
    be given again, before our server binds it, as the local port of any
    outgoing connection (a probe, a raft dial, an HTTP client), which made a
    raft member fail to start with C{BindError} now and then. Below that
    range only another process that picks ports itself can take it; the
    random pick makes that unlikely too. Where the range leaves no room
    below it, the kernel's choice is the fallback.
    """
    low, _ = ephemeral_range()
    with _handed_out_lock:
        if low - PORT_FLOOR >= 1000:
            for _ in range(500):
                port = _random.randrange(PORT_FLOOR, low)
                if port not in _handed_out and _bindable(host, port):
                    _handed_out.add(port)
                    return port
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """
    Poll C{predicate} until it returns a true value, and return that value.

    @raise TimeoutError: C{timeout} seconds passed first; the message names
        C{what}.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def spawn(
    argv: Sequence[str],
    output_path: str,
    env: Optional[dict] = None,
) -> "subprocess.Popen[bytes]":
    """
    Start C{argv} in its own session (so a terminal's Ctrl-C reaches only our
    process, which then stops its children in order), with stdout and stderr
    appended to C{output_path}.

    When called from the main thread and C{setpriv} exists, the child is also
    started under C{setpriv --pdeathsig KILL}: the kernel kills it if we die
    without cleaning up (a SIGKILLed test run). C{setpriv} execs the command,
    so the returned pid is the command's own. The death signal follows the
    thread that forked, so it is not used from other threads, whose exit would
    kill the child.
    """
    argv = list(argv)
    setpriv = find_binary("setpriv")
    if setpriv and threading.current_thread() is threading.main_thread():
        argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
    with open(output_path, "ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )


def process_state(pid: int) -> Optional[str]:
    """
    The state letter of C{pid} from C{/proc} (C{R}, C{S}, C{T} for stopped,
    C{Z} for a zombie, ...), or L{None} if there is no such process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[0]


def is_alive(pid: int) -> bool:
    """
    Whether C{pid} names a live process (a zombie counts as dead).
    """
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def stop_process(
    proc: "subprocess.Popen[bytes]",
    sig: int = signal.SIGTERM,
    timeout: float = 10.0,
) -> None:
    """
    Send C{sig} to C{proc} (and C{SIGCONT}, in case it is frozen), wait up to
    C{timeout} seconds for it to exit, then C{SIGKILL} it; always reap it.
    Does nothing if it already exited.
    """
    if proc.poll() is not None:
        return
    for s in (sig, signal.SIGCONT):
        try:
            os.kill(proc.pid, s)
        except ProcessLookupError:
            break
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def tail(path: str, lines: int = 15) -> str:
    """
    The last C{lines} lines of the text file at C{path}, or a note saying it
    cannot be read.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    return "\n".join(text.splitlines()[-lines:])
