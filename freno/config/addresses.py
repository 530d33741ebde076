# -*- test-case-name: test.unit.test_config_resolve,test.unit.test_config -*-
"""
Address syntax of the configuration: raft members (C{RaftBind},
C{RaftNodes}), HAProxy stats addresses (C{HAProxySettings}) and HTTP API URLs
(C{VitessSettings.API}), with freno's rules.

Each checker returns the normalised value or raises L{AddressProblem}, whose
message is ready to be a L{freno.config.errors.ConfigError} problem.
"""

from __future__ import annotations

import json
from typing import Iterable, List, Tuple
from urllib.parse import urlsplit


class AddressProblem(ValueError):
    """
    An address that cannot be used; the message says why.
    """


def normalise_raft_address(address: str, default_port: int) -> str:
    """
    freno's raft address rule: an entry containing C{:} is kept as is;
    otherwise C{:<default_port>} is appended when C{default_port} is not 0.
    C{""} becomes C{":10008"} with a default port of 10008. Surrounding
    spaces are removed.
    """
    address = address.strip()
    if ":" in address or not default_port:
        return address
    return f"{address}:{default_port}"


def check_raft_address(address: str, allow_empty_host: bool = False) -> str:
    """
    Check a normalised raft address: C{host:port} with a port in 1..65535.

    @param allow_empty_host: accept C{":port"} (freno's RaftBind of C{""}).
    @raise AddressProblem: no port, a bad port, or an empty host.
    """
    host, sep, port = address.partition(":")
    if not sep:
        raise AddressProblem(f"{_q(address)} has no port (add one, or set DefaultRaftPort)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AddressProblem(f"{_q(address)}: port must be an integer in 1..65535")
    if not host and not allow_empty_host:
        raise AddressProblem(f"{_q(address)} has no host name")
    if any(c.isspace() or c in "/[]" for c in host):
        raise AddressProblem(f"{_q(address)}: invalid host name")
    return address


def normalise_raft_nodes(entries: Iterable[str], default_port: int) -> Tuple[str, ...]:
    """
    Normalise every entry (L{normalise_raft_address}), drop blank ones, and
    remove duplicates, keeping the first occurrence.
    """
    seen: List[str] = []
    for entry in entries:
        if not entry.strip():
            continue
        address = normalise_raft_address(entry, default_port)
        if address not in seen:
            seen.append(address)
    return tuple(seen)


def _host_port(text: str) -> bool:
    """
    freno's C{ParseHostPort} as a predicate, with the port range checked:
    C{host} or C{host:port}, non-empty host.
    """
    host, sep, port = text.partition(":")
    if not host or any(c.isspace() or c in "/@?#" for c in host):
        return False
    return not sep or (port.isdigit() and 0 < int(port) < 65536)


def parse_haproxy_address(token: str) -> str:
    """
    One HAProxy address: C{host} (port 80), C{host:port}, or an C{http(s)}
    URL whose host part is C{host[:port]} (a path is allowed).

    @return: the stats URL, e.g. C{http://host:80}.
    @raise AddressProblem: anything else (C{localhost:}, C{localhost:abcd},
        C{localhost:abcd:1234}, a URL without a host).
    """
    if _host_port(token):
        host, _, port = token.partition(":")
        return f"http://{host}:{port or 80}"
    try:
        parts = urlsplit(token)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme in ("http", "https") and _host_port(parts.netloc):
        return token
    raise AddressProblem(f"invalid address {_q(token)} (expected host, host:port or an http(s) URL)")


def parse_haproxy_addresses(text: str) -> Tuple[str, ...]:
    """
    Split C{Addresses} on C{,}, trim, skip empty tokens, and parse each with
    L{parse_haproxy_address}.
    """
    tokens = [t.strip() for t in text.split(",")]
    return tuple(parse_haproxy_address(t) for t in tokens if t)


def check_http_url(text: str) -> str:
    """
    An C{http://} or C{https://} URL with a host (Vitess C{API}).

    @raise AddressProblem: otherwise.
    """
    try:
        parts = urlsplit(text)
        parts.port
    except ValueError:
        raise AddressProblem(f"invalid URL {_q(text)}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressProblem(f"expected an http(s) URL with a host, got {_q(text)}")
    return text


def _q(text: str) -> str:
    return json.dumps(text)
