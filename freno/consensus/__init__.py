"""
Consensus: who is leader, and the replicated throttle state (throttled apps and
skipped hosts). Three backends share one core:

- L{freno.consensus.interface}: L{IConsensusService}, the seam every backend
  fills, its errors, and optional capabilities (L{ISharedDomainServices});
- L{freno.consensus.commands}: the command records, their validation and the
  one command path (L{CommandMethods}) every backend uses;
- L{freno.consensus.state}: the pure, deterministic state machine;
- L{freno.consensus.observers}: the leadership event stream;
- L{freno.consensus.local}: a single process in memory (the unit-test fake);
- L{freno.consensus.raft}: raft (pysyncobj) driven from the reactor;
- L{freno.consensus.mysql}: freno's MySQL-table backend and its shared-domain
  health collector.
"""
