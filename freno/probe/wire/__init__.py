"""
A native, pure-Twisted MySQL client for probing: no threads, no DB-API.

Modules:
    - L{freno.probe.wire.packets}: the wire format (framing, integers and
      strings, handshake, OK/ERR/EOF, text result sets);
    - L{freno.probe.wire.auth}: C{mysql_native_password} and
      C{caching_sha2_password} (fast and full authentication, over TLS or
      RSA), and clear errors for the plugins it does not speak;
    - L{freno.probe.wire.tls}: the TLS options of each C{SSLMode};
    - L{freno.probe.wire.protocol}: L{MySQLClientProtocol} (TLS negotiated
      in-band) and C{connect()};
    - L{freno.probe.wire.source}: L{NativeMetricSource}, the
      L{freno.probe.interfaces.IMetricSource} selected by
      C{Stores.MySQL.ProbeDriver: "native"}, the default.
"""
