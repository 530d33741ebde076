"""
freno's trial suite: unit tests (in memory, Clock-driven) and integration tests
(real twistd, MariaDB, HAProxy and memcached processes on loopback).
"""

from freno.sandbox.nodes import FrenoNode

# Nodes the tests start log at info (raft leadership, hand-offs, probing), so
# that a failing test's log_tail() explains what happened; benchmarks and
# `make run` keep the deployed default (warnings only).
FrenoNode.default_log_flags = ("--verbose",)
