# -*- test-case-name: test.unit.test_sandbox,test.integration.test_raft_processes,test.integration.test_haproxy_failover -*-
"""
C{make run}: the whole recommended deployment on loopback, in one command.

It starts a MariaDB replication sandbox (a primary, two replicas, a heartbeat
writer), three freno nodes in a raft group (with a generated raft secret), and
HAProxy in front of them routing to the leader through C{/leader-check}. It
prints the URLs and a few commands to try, and stops everything on Ctrl-C.

C{python -m freno.sandbox.cluster --nodes 1} runs a single node instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

from freno.config.model import HEARTBEAT_QUERY
from freno.sandbox.haproxy import HAProxy
from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup


#: The metric query of L{constant_store}: always 0, below any threshold.
CONSTANT_QUERY = "select 0"


def _store(sandbox: MySQLSandbox, hosts, metric_query: str, threshold: float) -> dict:
    """
    A C{Stores.MySQL} configuration with one static-hosts cluster, C{main},
    probed as the sandbox's probe user.
    """
    return {
        "User": sandbox.user,
        "Password": sandbox.password,
        "MetricQuery": metric_query,
        "ThrottleThreshold": threshold,
        "Clusters": {
            "main": {"StaticHostsSettings": {"Hosts": [f"{s.host}:{s.port}" for s in hosts]}}
        },
    }


def store_for(sandbox: MySQLSandbox, threshold: float = 1.0) -> dict:
    """
    A C{Stores.MySQL} configuration probing the sandbox's replicas as the
    cluster C{main}, with freno's heartbeat lag query.
    """
    return _store(sandbox, sandbox.replicas, HEARTBEAT_QUERY, threshold)


def constant_store(sandbox: MySQLSandbox) -> dict:
    """
    A C{Stores.MySQL} configuration whose cluster C{main} probes the
    sandbox's replicas (its primary when it has none) with the constant
    metric L{CONSTANT_QUERY}: read-only, and C{/check/<app>/mysql/main}
    answers 200 on a leader as soon as it has probed, however busy the
    machine and whatever the replication lag. For tests and benchmarks about
    leadership rather than lag; a sandbox with C{replicas=0} is enough.
    """
    return _store(sandbox, sandbox.replicas or [sandbox.primary], CONSTANT_QUERY, 1.0)


def main(argv=None) -> int:
    """
    Run the deployment until interrupted.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3, help="freno nodes (1, 3 or 5)")
    parser.add_argument("--port", type=int, default=8080, help="client port (HAProxy); 0 picks a free one")
    parser.add_argument("--workdir", default=None, help="where state and logs go")
    args = parser.parse_args(argv)

    workdir = args.workdir or tempfile.mkdtemp(prefix="freno-run-")
    stopping = []

    def interrupt(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    sandbox = MySQLSandbox(os.path.join(workdir, "mysql"))
    group = haproxy = None
    try:
        print("starting the MariaDB sandbox (a primary, two replicas, heartbeat)...", flush=True)
        sandbox.start()
        print(f"starting {args.nodes} freno node(s)...", flush=True)
        group = FrenoGroup(os.path.join(workdir, "freno"), size=args.nodes, store=store_for(sandbox))
        group.start()
        leader = group.wait_leader(30)
        if args.nodes > 1:
            haproxy = HAProxy.in_front_of(group, workdir, args.port or None)
            haproxy.start()
            client = haproxy.url
            client_label = "client URL (HAProxy -> leader)"
            leader_lines = (
                f"  kill {leader.pid}       # SIGTERM: the leader ({leader.name}) hands off first; clients see only 200s\n"
                f"  kill -9 {leader.pid}    # or kill it; another node takes over within ~2 s\n"
            )
        else:
            client = leader.url
            client_label = "client URL (the single node)"
            leader_lines = ""
        replica = sandbox.replicas[0]
        print(
            f"""
freno is running.

  {client_label}: {client}
  dashboard: {leader.url}/dashboard   (every node serves it; it follows the leader)
""" + "".join(
                f"  node{i}: {n.url}  (pid {n.pid}, raft {n.raft_address})\n"
                for i, n in enumerate(group.nodes)
            ) + f"""  MySQL primary 127.0.0.1:{sandbox.primary.port}, replicas {', '.join(str(r.port) for r in sandbox.replicas)}
  logs and state: {workdir}

Try:
  curl -i {client}/check/myapp/mysql/main
  curl -s {client}/aggregated-metrics
  mysql -h127.0.0.1 -P{replica.port} -uroot -e 'stop slave sql_thread'   # inject lag; /check turns 429 after 1 s
  mysql -h127.0.0.1 -P{replica.port} -uroot -e 'start slave sql_thread'  # and back to 200
  curl -s {client}/throttle-app/myapp/ttl/10/ratio/1     # /check/myapp now answers 417
  curl -s {client}/unthrottle-app/myapp
  curl -s {client}/throttled-apps
{leader_lines}
Ctrl-C stops everything.""",
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
    finally:
        if haproxy is not None:
            haproxy.stop()
        if group is not None:
            group.stop()
        sandbox.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        print("stopped; nothing left running.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
