"""
The MySQL-table consensus backend (freno's alternative to raft):

    - L{freno.consensus.mysql.service}: L{MySQLBackendConsensus}, the
      L{freno.consensus.interface.IConsensusService} on the backend tables;
    - L{freno.consensus.mysql.commands}: how its commands reach the tables;
    - L{freno.consensus.mysql.control_tables}: the audit log, policies and
      change counter tables of the control plane;
    - L{freno.consensus.mysql.store}: the tables, their SQL, and
      L{IBackendStore} with its adbapi implementation;
    - L{freno.consensus.mysql.memory}: the in-memory L{IBackendStore} fake;
    - L{freno.consensus.mysql.shared_domain}: the health of other domains
      sharing a C{ShareDomain}, for the check path.
"""

from freno.consensus.mysql.service import MySQLBackendConsensus

__all__ = ["MySQLBackendConsensus"]
