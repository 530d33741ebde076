# -*- test-case-name: test.unit.test_dashboard_sampler -*-
"""
L{AuditTail}: the latest records of the replicated audit log, followed
incrementally (each refresh asks only for the records after the last one it
saw), for the status page. Bounded: it keeps the last C{keep} records.
"""

from __future__ import annotations

import collections
from typing import Deque, List

from twisted.internet.defer import Deferred, inlineCallbacks

from freno.consensus.audit import AuditRecord
from freno.consensus.interface import IConsensusService

#: Records kept (and shown).
DEFAULT_KEEP = 8
#: Records asked for per page.
PAGE = 1000
#: Pages read by one refresh at most (a long log is caught up over several).
MAX_PAGES = 20


class AuditTail:
    """
    @param consensus: where the audit log is.
    @param keep: records kept.
    """

    def __init__(self, consensus: IConsensusService, keep: int = DEFAULT_KEEP) -> None:
        self._consensus = consensus
        self._records: Deque[AuditRecord] = collections.deque(maxlen=keep)
        self._since = 0

    @inlineCallbacks
    def refresh(self) -> Deferred:
        """
        Read the records after the last one seen (at most L{MAX_PAGES}
        pages).
        """
        for _ in range(MAX_PAGES):
            page = yield self._consensus.audit_log(self._since, PAGE)
            self._records.extend(page.records)
            self._since = max(self._since, page.next)
            if len(page.records) < PAGE:
                break

    def records(self) -> List[AuditRecord]:
        """
        The latest records, newest first.
        """
        return list(reversed(self._records))
