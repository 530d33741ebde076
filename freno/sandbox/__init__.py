"""
Local sandboxes of real processes on loopback, for the integration tests, the
benchmarks and C{make run}.

  - L{freno.sandbox.mysql}: a MariaDB replication sandbox (a primary, N
    replicas, a heartbeat writer) with lag injection, replica stop/start and
    freeze/thaw. C{python -m freno.sandbox.mysql} runs one by hand.
  - L{freno.sandbox.heartbeat}: the heartbeat writer the sandbox runs as a
    child process (pt-heartbeat's table and timestamp format).
  - L{freno.sandbox.server}: one sandbox C{mariadbd} (C{Server}) and the
    processes running a set of them (parallel start, port retry, stop by pid).
  - L{freno.sandbox.datadir}: a fresh MariaDB datadir in a fraction of
    C{mariadb-install-db}'s time.
  - L{freno.sandbox.processes}: blocking process and port helpers.
  - L{freno.sandbox.nodes}, L{freno.sandbox.haproxy}, L{freno.sandbox.cluster}:
    real C{twistd freno} nodes, HAProxy in front of them, and C{make run}'s
    whole local deployment.

This package's C{__init__} imports nothing on purpose: C{python -m
freno.sandbox.mysql} would otherwise import the module twice.
"""
