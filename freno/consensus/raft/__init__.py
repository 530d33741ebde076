"""
The raft consensus backend: pysyncobj driven from the Twisted reactor.

    - L{freno.consensus.raft.service}: L{RaftConsensusService}, the
      L{IConsensusService} the API and throttler use;
    - L{freno.consensus.raft.machine}: the pysyncobj state machine, snapshots
      and settings;
    - L{freno.consensus.raft.poller}: pysyncobj's sockets on the reactor.
"""

from freno.consensus.raft.service import RaftConsensusService, RaftStartError

__all__ = ["RaftConsensusService", "RaftStartError"]
