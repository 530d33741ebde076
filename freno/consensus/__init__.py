"""
Consensus: who is leader, and the replicated throttle state (throttled apps and
skipped hosts).

- L{freno.consensus.interface}: L{IConsensusService}, the seam every backend fills.
- L{freno.consensus.state}: the pure, deterministic state machine and its commands.
- L{freno.consensus.local}: a single-process implementation (also the unit-test fake).
- raft (pysyncobj) and the MySQL backend supply the replicated implementations.
"""
