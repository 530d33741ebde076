# -*- test-case-name: test.unit.test_dashboard_page -*-
"""
L{DashboardParts}: the state the status page keeps on a node (history,
leadership changes, audit tail), built once by the wiring and shared by the
sampler that fills it (L{freno.http.dashboard.sampler}) and the views that
read it (L{freno.http.site.build_site}).
"""

from __future__ import annotations

from typing import Optional

import attr

from freno.config.model import Config
from freno.consensus.interface import IConsensusService
from freno.http.dashboard.audit_tail import AuditTail
from freno.http.dashboard.history import History
from freno.http.dashboard.leadership import LeadershipLog


@attr.s(frozen=True, auto_attribs=True)
class DashboardParts:
    """
    @ivar history: the leader's ring buffer of cluster values.
    @ivar leadership: the leadership changes this node saw.
    @ivar audit: the latest audit records, or C{None} when the audit log is
        restricted (C{RestrictAuditLog}: the open page does not show it).
    """

    history: History
    leadership: LeadershipLog
    audit: Optional[AuditTail]

    @classmethod
    def for_config(cls, config: Config, consensus: IConsensusService) -> "DashboardParts":
        """
        Fresh parts for C{config}'s clusters.
        """
        return cls(
            History(config.mysql.clusters),
            LeadershipLog(),
            None if config.restrict_audit_log else AuditTail(consensus),
        )
