"""
The raft consensus backend: pysyncobj driven from the Twisted reactor.

    - L{freno.consensus.raft.service}: L{RaftConsensusService}, the
      L{IConsensusService} the API and throttler use;
    - L{freno.consensus.raft.machine}: the pysyncobj state machine and its
      settings;
    - L{freno.consensus.raft.poller}: pysyncobj's sockets on the reactor;
    - L{freno.consensus.raft.transport}: pysyncobj's transport, holding
      acknowledgements until the journal is synced;
    - L{freno.consensus.raft.journal}: the durable log, term and vote;
    - L{freno.consensus.raft.snapshot}: complete snapshots, stored durably;
    - L{freno.consensus.raft.disk}: the storage seam (a directory whose files
      survive a crash only once synced) and the real one;
      L{freno.consensus.raft.memorydisk}: its fakes, which can lose power;
    - L{freno.consensus.raft.membership}: the members as the log and
      snapshot say (C{RaftNodes} only bootstraps);
      L{freno.consensus.raft.members_machine}: pysyncobj's dynamic membership
      change adapted to it, learners; L{freno.consensus.raft.changes}: adding
      and removing members (the service's L{IMembership
      <freno.consensus.membership.IMembership>});
    - L{freno.consensus.raft.peers}: the TCP transport of a group (learners
      named, member names resolved through
      L{freno.consensus.raft.resolver}, looked up again after a failed
      connection).
"""

from freno.consensus.raft.service import RaftConsensusService, RaftStartError

__all__ = ["RaftConsensusService", "RaftStartError"]
