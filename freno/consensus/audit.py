# -*- test-case-name: test.unit.test_control_state -*-
"""
The audit trail of the control plane: L{AuditRecord}, the bounded
L{AuditLog} the replicated state keeps, L{AuditPage} (one page of it, as
C{GET /api/v1/audit} serves it), L{EntryMeta} (who last set an entry, and
why) and L{Applied} (what applying one command answers).

Ids and time
============

Ids are assigned when a command is applied: a counter in the state (raft,
single node; kept in snapshots) or the C{freno_sequence} row (MySQL
backend). They increase by one per audited command in commit order, on every
node alike. A record's C{time} is the time carried by its command, stamped
by the node that accepted the request: the state machine never reads a
clock (it must be deterministic), so this is the closest to a time of commit
that a replicated log can carry; it is milliseconds before the commit in
practice, and two records' times can be out of order by the clock difference
of the nodes that accepted them. The id is the order.

The log keeps the last C{size} records (C{AuditLogSize}, default 10,000);
older ones are dropped as new ones arrive, so its memory and every snapshot
stay bounded.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Deque, Dict, List, Mapping, Optional

import attr

#: The default number of audit records kept (C{AuditLogSize}).
DEFAULT_AUDIT_LOG_SIZE = 10_000

#: The outcome of a command that changed the state.
APPLIED = "applied"


@attr.s(frozen=True, auto_attribs=True, slots=True, hash=False)
class AuditRecord:
    """
    One audited mutation.

    @ivar id: its position in commit order (from 1).
    @ivar time: POSIX seconds (see the module docstring).
    @ivar actor: the token's name (C{token:<name>}) or the remote address.
    @ivar route: the method and route, e.g. C{"POST /api/v1/throttles"}.
    @ivar params: the request's parameters.
    @ivar reason: the operator's reason, or C{None}.
    @ivar outcome: L{APPLIED} or C{"refused: <why>"}.
    """

    id: int
    time: float
    actor: str
    route: str
    params: Mapping[str, Any]
    reason: Optional[str]
    outcome: str

    def to_json(self) -> Dict[str, Any]:
        """
        The record as JSON-able data (snapshots).
        """
        return {
            "id": self.id,
            "time": self.time,
            "actor": self.actor,
            "route": self.route,
            "params": dict(self.params),
            "reason": self.reason,
            "outcome": self.outcome,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "AuditRecord":
        """
        The inverse of L{to_json}.
        """
        return cls(
            int(data["id"]),
            float(data["time"]),
            str(data["actor"]),
            str(data["route"]),
            dict(data.get("params") or {}),
            data.get("reason"),
            str(data["outcome"]),
        )


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AuditPage:
    """
    One page of the audit log.

    @ivar records: the records with id above the page's C{since}, oldest
        first, at most the page's limit.
    @ivar next: the id of the last record returned, or C{since} when none
        was (pass it as the next page's C{since}).
    @ivar oldest: the id of the oldest record kept, or C{None} when the log
        is empty.
    """

    records: tuple
    next: int
    oldest: Optional[int]


@attr.s(frozen=True, auto_attribs=True, slots=True)
class EntryMeta:
    """
    Who last set a throttle, skip or policy, and why.
    """

    audit_id: Optional[int]
    actor: Optional[str]
    reason: Optional[str]

    def to_json(self) -> Dict[str, Any]:
        """
        JSON-able form (snapshots).
        """
        return {"AuditId": self.audit_id, "Actor": self.actor, "Reason": self.reason}

    @classmethod
    def from_json(cls, data: Optional[Mapping[str, Any]]) -> Optional["EntryMeta"]:
        """
        The inverse of L{to_json} (C{None} stays C{None}).
        """
        if not data:
            return None
        audit_id = data.get("AuditId")
        return cls(
            None if audit_id is None else int(audit_id), data.get("Actor"), data.get("Reason")
        )


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Applied:
    """
    What applying one command answers.

    @ivar audit_id: the id of its audit record (C{None}: not audited).
    @ivar refused: C{None} when the command changed the state, else why it
        did not (a full table), in which case nothing changed.
    @ivar field: the field the refusal concerns (C{app}, C{host}).
    """

    audit_id: Optional[int] = None
    refused: Optional[str] = None
    field: Optional[str] = None


def page_of(records, since: int, limit: int, oldest: Optional[int]) -> AuditPage:
    """
    The page of C{records} (an iterable of L{AuditRecord} in id order) after
    C{since}, at most C{limit} long.
    """
    chosen = tuple(itertools.islice((r for r in records if r.id > since), limit))
    return AuditPage(chosen, chosen[-1].id if chosen else since, oldest)


class AuditLog:
    """
    The last C{size} audit records, and the next id to assign.

    @param size: how many records to keep (at least 1).
    """

    def __init__(self, size: int = DEFAULT_AUDIT_LOG_SIZE) -> None:
        if size < 1:
            raise ValueError("the audit log keeps at least one record")
        self.size = size
        self.records: Deque[AuditRecord] = collections.deque()
        self.next_id = 1

    def __len__(self) -> int:
        return len(self.records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuditLog):
            return NotImplemented
        return self.next_id == other.next_id and list(self.records) == list(other.records)

    def __repr__(self) -> str:
        return f"<AuditLog next_id={self.next_id} records={len(self.records)}/{self.size}>"

    def append(
        self,
        time: float,
        actor: str,
        route: str,
        params: Mapping[str, Any],
        reason: Optional[str],
        outcome: str,
    ) -> AuditRecord:
        """
        Record one command with the next id; drop the oldest record beyond
        C{size}.
        """
        record = AuditRecord(self.next_id, time, actor, route, dict(params), reason, outcome)
        self.next_id += 1
        self.records.append(record)
        while len(self.records) > self.size:
            self.records.popleft()
        return record

    @property
    def oldest(self) -> Optional[int]:
        """
        The id of the oldest record kept, or C{None}.
        """
        return self.records[0].id if self.records else None

    def page(self, since: int, limit: int) -> AuditPage:
        """
        The records with id above C{since}, oldest first, at most C{limit}.
        """
        records = self.records
        if records:
            # Ids are consecutive: skip straight to the first one wanted.
            skip = max(0, min(len(records), since + 1 - records[0].id))
            records = itertools.islice(records, skip, None)  # type: ignore[assignment]
        return page_of(records, since, limit, self.oldest)

    def snapshot(self) -> Dict[str, Any]:
        """
        The log as JSON-able data.
        """
        return {"nextId": self.next_id, "records": [r.to_json() for r in self.records]}

    def restore(self, data: Optional[Mapping[str, Any]]) -> None:
        """
        Replace the log with a L{snapshot} (C{None}: an empty log, as in a
        snapshot written before audit existed).
        """
        data = data or {}
        records: List[AuditRecord] = [AuditRecord.from_json(r) for r in data.get("records", ())]
        records = records[-self.size:]
        self.records = collections.deque(records)
        self.next_id = int(data.get("nextId", records[-1].id + 1 if records else 1))
