"""
Local sandboxes of real processes on loopback, for the integration tests, the
benchmarks and C{make run}.

  - L{freno.sandbox.mysql}: a MariaDB replication sandbox (a primary, N
    replicas, a heartbeat writer) with lag injection, replica stop/start and
    freeze/thaw. C{python -m freno.sandbox.mysql} runs one by hand.
  - L{freno.sandbox.heartbeat}: the heartbeat writer the sandbox runs as a
    child process (pt-heartbeat's table and timestamp format).
  - L{freno.sandbox.processes}: blocking process and port helpers shared by
    the above.
  - L{freno.sandbox.nodes}: real C{twistd freno} nodes.

This package's C{__init__} imports nothing on purpose: C{python -m
freno.sandbox.mysql} would otherwise import the module twice.
"""
