"""
A scripted set of metric events, replayed by L{test.unit.test_metrics_exports}
to prove that C{/debug/vars} and C{/metrics} render exactly as they did when
the metrics lived in three modules (the expected outputs were captured from
that code, in C{test/unit/fixtures/metrics_before.json}).

Durations are binary fractions so that sums do not depend on the order in
which they are added.
"""

#: The bound on distinct app names the check counters are built with.
MAX_APPS = 3

#: The configured cluster names (any other store name counts as C{other}).
CLUSTERS = ("main", "ro")

#: The process age the documents are rendered with.
ELAPSED = 128.0

#: One event per entry: the kind, then its fields.
EVENTS = (
    ("check", "app1", "mysql", "main", 200),
    ("check", "app1", "mysql", "main", 200),
    ("check", "app1", "mysql", "main", 429),
    ("check", "app2", "mysql", "ro", 500),
    ("check", "app2", "mysql", "ro", 404),
    ("check", "app3", "mysql", "main", 200),
    ("check", "app4", "mysql", "main", 417),
    ("check", "app5", "mysql", "nosuch", 200),
    ("check", "x" * 200, "mysql", "main", 200),
    ("check", "app1", "mysql", "nosuch", 500),
    ("probe", "main", "db1:3306", 0.25, False),
    ("probe", "main", "db2:3306", 0.5, False),
    ("probe", "main", "db1:3306", 0.125, True),
    ("probe", "ro", "db3:3306", 0.0625, False),
    ("probe", "ro", "db3:3306", 0.75, True),
    ("lag", 0.0),
    ("lag", 0.03125),
    ("lag", 0.5),
    ("raft", True, True, "n1:10008", True, 3),
    ("leader_change",),
    ("raft", False, True, "n2:10008", False, 4),
    ("leader_change",),
    ("commit", 0.015625),
    ("commit", 0.25),
    ("httpcheck", "skip"),
    ("httpcheck", "skip"),
    ("httpcheck", 200),
    ("httpcheck", 404),
    ("httpcheck", "error"),
    ("sharedomain", False),
    ("sharedomain", True),
    ("sharedomain", False),
    ("refresh", "main", 3),
    ("refresh", "ro", 1),
    ("glitch", "ro"),
    ("refresh", "main", 2),
    ("memcache_write", "127.0.0.1:11211"),
    ("memcache_write", "127.0.0.1:11211"),
    ("memcache_error", "127.0.0.2:11211"),
    ("threshold", "main", 1.0),
    ("threshold", "ro", 2.5),
    ("aggregated", "main", 0.75, 0.5),
    ("aggregated", "ro", None, 3.0),
    ("mysql_backend", True, False),
)

#: Enough probes to overflow the timers' reservoirs of 1,028 samples, so the
#: pooled C{probes.latency} must keep the same samples the former unlabeled
#: timer kept.
EVENTS += tuple(
    ("probe", "main", f"db{i % 3 + 1}:3306", (i % 997) / 1024, i % 50 == 0)
    for i in range(1100)
)

#: Render-time sources: the clock, the throttled apps (app key: expiry) at
#: the first and at the second render, and the aggregated metrics
#: (cluster: (value, error, measured at, last healthy at)).
NOW = 1000.0
THROTTLED_FIRST = {"app1": 2000.0, "app2": 1500.0, "gone": 10.0}
THROTTLED_SECOND = {"app1": 2000.0}
AGGREGATED = {
    "main": (0.75, None, 999.5, 990.0),
    "ro": (0.0, "no hosts", 997.0, 900.5),
}
