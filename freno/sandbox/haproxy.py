# -*- test-case-name: test.unit.test_sandbox_haproxy -*-
"""
Running the real HAProxy in front of a freno group, with the project's
recommended C{haproxy.cfg} adapted to local ports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from typing import Optional, Sequence

import attr

from freno.sandbox.nodes import REPO_ROOT, FrenoGroup, http_get, wait_for
from freno.sandbox.processes import find_binary, free_port

#: The recommended configuration at the top of the repository.
HAPROXY_CFG = os.path.join(REPO_ROOT, "haproxy.cfg")


class HAProxyError(Exception):
    """
    HAProxy is missing or did not start.
    """


def render_config(template: str, client_port: int, node_ports: Sequence[int]) -> str:
    """
    Adapt C{template} (the recommended C{haproxy.cfg}) to local ports: every
    C{bind} line listens on C{127.0.0.1:client_port}, and the C{server} lines
    of the backend become one line per node, keeping the options written on
    the template's first server line.
    """
    lines = template.splitlines()
    out = []
    server_options: Optional[str] = None
    servers_written = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("bind "):
            indent = line[: len(line) - len(line.lstrip())]
            rest = stripped.split(None, 2)
            options = rest[2] if len(rest) > 2 else ""
            out.append(f"{indent}bind 127.0.0.1:{client_port} {options}".rstrip())
        elif stripped.startswith("server "):
            if server_options is None:
                parts = stripped.split(None, 3)
                server_options = parts[3] if len(parts) > 3 else ""
                indent = line[: len(line) - len(line.lstrip())]
            if not servers_written:
                for index, port in enumerate(node_ports):
                    out.append(
                        f"{indent}server freno{index} 127.0.0.1:{port} {server_options}".rstrip()
                    )
                servers_written = True
        elif re.match(r"^\s*(daemon|pidfile|chroot|user|group|stats socket)\b", line):
            continue
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@attr.s(auto_attribs=True)
class HAProxy:
    """
    One C{haproxy -db} child process in front of C{node_ports}.
    """

    workdir: str
    client_port: int
    node_ports: Sequence[int]
    template_path: str = HAPROXY_CFG
    process: Optional[subprocess.Popen] = None

    @classmethod
    def in_front_of(cls, group: FrenoGroup, workdir: str, client_port: Optional[int] = None) -> "HAProxy":
        """
        An HAProxy (not started) for every node of C{group}, with its files
        in C{workdir}/haproxy and clients on C{client_port} (a free
        loopback port by default).
        """
        return cls(
            os.path.join(workdir, "haproxy"),
            free_port() if client_port is None else client_port,
            [node.http_port for node in group.nodes],
        )

    @property
    def url(self) -> str:
        """
        The client-facing URL.
        """
        return f"http://127.0.0.1:{self.client_port}"

    def wait_status(self, path: str, status: int = 200, timeout: float = 30.0) -> None:
        """
        Poll C{path} through HAProxy until it answers C{status}.

        @raise TimeoutError: not within C{timeout} seconds.
        """
        wait_for(
            lambda: http_get(self.url + path)[0] == status,
            timeout,
            what=f"a {status} for {path} through HAProxy",
        )

    def start(self, timeout: float = 10.0) -> None:
        """
        Write the adapted configuration and start HAProxy.
        """
        binary = find_binary("haproxy")
        if binary is None:
            raise HAProxyError(
                "haproxy not found on PATH or in /usr/sbin: make deps installs it (apt-get install haproxy)"
            )
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.template_path) as f:
            text = render_config(f.read(), self.client_port, self.node_ports)
        path = os.path.join(self.workdir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text)
        self.process = subprocess.Popen(
            [binary, "-db", "-f", path],
            stdin=subprocess.DEVNULL,
            stdout=open(os.path.join(self.workdir, "haproxy.log"), "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(
            lambda: self.process.poll() is not None or http_get(self.url + "/lb-check")[0] != 0,
            timeout,
            what="haproxy to listen",
        )
        if self.process.poll() is not None:
            with open(os.path.join(self.workdir, "haproxy.log"), errors="replace") as f:
                raise HAProxyError(f"haproxy exited:\n{f.read()[-2000:]}")

    def stop(self) -> None:
        """
        Stop HAProxy by pid.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
