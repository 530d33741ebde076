# -*- test-case-name: test.unit.test_hosts -*-
"""
L{HostKey}: one MySQL host, as inventory sources discover it and probes use it.
"""

from __future__ import annotations

import attr


class InvalidHostError(ValueError):
    """
    A C{host[:port]} string that cannot name a MySQL host.
    """


@attr.s(frozen=True, auto_attribs=True, order=True, slots=True)
class HostKey:
    """
    A MySQL host: hostname and port. Its string form is C{host:port}.
    """

    hostname: str
    port: int

    def __str__(self) -> str:
        return f"{self.hostname}:{self.port}"

    @classmethod
    def parse(cls, text: str, default_port: int) -> "HostKey":
        """
        Parse C{host} or C{host:port} (freno's static host syntax).

        @raise InvalidHostError: empty host, trailing C{:}, or a port that is
            not an integer in 1..65535.
        """
        host, sep, port_text = text.strip().partition(":")
        if not host:
            raise InvalidHostError(f"invalid host {text!r}: empty host name")
        if not sep:
            return cls(host, default_port)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidHostError(
                f"invalid host {text!r}: port must be an integer in 1..65535"
            )
        return cls(host, int(port_text))
