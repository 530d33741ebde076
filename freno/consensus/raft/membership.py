# -*- test-case-name: test.unit.test_raft_membership -*-
"""
The raft group's membership as the log and the snapshot record it:
L{MembershipChange} (one change, as a pysyncobj log entry) and
L{Membership} (the current members, derived from the snapshot and the
log, never from a stale configuration file).

Where membership lives (docs/decisions.md, D71)
==============================================

C{RaftNodes} is only the I{bootstrap} list: the members a group of fresh
nodes starts with. Every later change is a pysyncobj membership entry in the
raft log (C{dynamicMembershipChange}), and every snapshot records the members
as of its last entry. A member's current membership is therefore:

    1. the members of its snapshot, if it has one, else the bootstrap list
       (a joiner, started with C{RaftJoin} and a C{RaftBind} that
       C{RaftNodes} does not list, is not part of it);
    2. then every membership entry of its log after the snapshot, in order,
       committed or not (raft's rule: a server uses the latest configuration
       in its log).

Our entries carry the I{complete} resulting member list (and the audit
context of the request), so step 2 does not depend on step 1 being right:
after the first change, a node whose file lists an old set still follows
the log.

Entry format
============

pysyncobj writes a membership entry as the byte C{2} followed by a pickle
of C{[kind, node_id, node]} (C{kind} C{"add"} or C{"rem"}) and reads only
those three items. We write C{[kind, address, address, extra]}: the node as
its address string (pysyncobj builds its C{TCPNode} from a string, so no
class reference goes into the log) and C{extra}, a JSON text
C{{"members": [...], "context": {...}}}. L{parse_change} reads entries with
an unpickler that refuses every class except pysyncobj's node classes
(entries written by pysyncobj itself carry a C{TCPNode}).
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import attr

#: pysyncobj's command type byte of a membership entry (C{_COMMAND_TYPE}).
MEMBERSHIP_TYPE = 2
ADD = "add"
REMOVE = "rem"

Entry = Tuple[bytes, int, int]


@attr.s(frozen=True, auto_attribs=True)
class MembershipChange:
    """
    One membership entry.

    @ivar kind: L{ADD} or L{REMOVE}.
    @ivar address: the member added or removed (C{host:port}).
    @ivar members: the complete member list after the change, or C{None}
        for an entry pysyncobj wrote itself (then only C{kind} and
        C{address} are known).
    @ivar context: the audit context (plain dict, as
        L{freno.consensus.commands.command_to_dict} writes one), or C{None}.
    """

    kind: str
    address: str
    members: Optional[Tuple[str, ...]] = None
    context: Optional[Dict[str, Any]] = None

    def apply_to(self, members: Sequence[str]) -> Tuple[str, ...]:
        """
        The members after this change, starting from C{members}.
        """
        if self.members is not None:
            return tuple(sorted(self.members))
        if self.kind == ADD:
            return tuple(sorted(set(members) | {self.address}))
        return tuple(sorted(set(members) - {self.address}))


class _NodesOnly(pickle.Unpickler):
    """
    An unpickler that builds plain data and pysyncobj's node classes only.
    """

    def find_class(self, module: str, name: str):
        if module == "pysyncobj.node" and name in ("Node", "TCPNode"):
            from pysyncobj import node

            return getattr(node, name)
        raise pickle.UnpicklingError(f"class {module}.{name} refused in a membership entry")


def encode_change(change: MembershipChange) -> bytes:
    """
    The pickled request of C{change}, without the type byte (what
    pysyncobj's C{_applyCommand} takes with C{commandType} 2).
    """
    extra = json.dumps(
        {"members": list(change.members or ()), "context": change.context}, sort_keys=True
    )
    return pickle.dumps([change.kind, change.address, change.address, extra], protocol=2)


def parse_change(command: bytes) -> Optional[MembershipChange]:
    """
    The change a log entry makes, or C{None} for an entry that is not a
    membership change (or cannot be read as one: it is then ignored here,
    as pysyncobj would fail on it too).
    """
    if not command or command[0] != MEMBERSHIP_TYPE:
        return None
    try:
        request = _NodesOnly(io.BytesIO(bytes(command[1:]))).load()
        kind, address = request[0], request[1]
        if kind not in (ADD, REMOVE) or not isinstance(address, str):
            return None
        members = context = None
        if len(request) >= 4 and isinstance(request[3], str):
            extra = json.loads(request[3])
            if isinstance(extra.get("members"), list) and extra["members"]:
                members = tuple(str(m) for m in extra["members"])
            if isinstance(extra.get("context"), dict):
                context = extra["context"]
        return MembershipChange(kind, address, members, context)
    except Exception:
        return None


def fold(base: Sequence[str], changes: Iterable[MembershipChange]) -> Tuple[str, ...]:
    """
    The members after applying C{changes} to C{base}, in order.
    """
    members = tuple(sorted(base))
    for change in changes:
        members = change.apply_to(members)
    return members


class Membership:
    """
    The current members of a raft node, derived on demand from its log (see
    the module docstring).

    @param entries: the log, as a sequence of C{(command, index, term)}
        (the L{DurableJournal <freno.consensus.raft.journal.DurableJournal>};
        read, never written).
    @param bootstrap: the members before any snapshot or entry.
    """

    def __init__(self, entries: Sequence[Entry], bootstrap: Sequence[str]) -> None:
        self._entries = entries
        self._base_index = 0
        self._base: Tuple[str, ...] = tuple(sorted(bootstrap))
        self._key: Any = None
        self._changes: List[Tuple[int, MembershipChange]] = []

    def set_base(self, index: int, members: Iterable[str]) -> None:
        """
        A snapshot ending at C{index} holds C{members}: entries up to it no
        longer count.
        """
        self._base_index = int(index)
        self._base = tuple(sorted(members))
        self._key = None

    @property
    def base(self) -> Tuple[int, Tuple[str, ...]]:
        """
        The snapshot (or bootstrap, index 0) the derivation starts from.
        """
        return self._base_index, self._base

    def changes(self) -> List[Tuple[int, MembershipChange]]:
        """
        The membership entries of the log after the base, as C{(index,
        change)}, in log order. Recomputed only when the log changed.
        """
        entries = self._entries
        if len(entries):
            key = (len(entries), entries[0][1], entries[-1][1], entries[-1][2], self._base_index)
        else:
            key = (0, self._base_index)
        if key != self._key:
            changes = []
            for command, index, _term in entries:
                if index > self._base_index and command[:1] == b"\x02":
                    change = parse_change(command)
                    if change is not None:
                        changes.append((index, change))
            self._changes = changes
            self._key = key
        return self._changes

    def current(self) -> Tuple[str, ...]:
        """
        The members now: the base and every change in the log.
        """
        return fold(self._base, (c for _, c in self.changes()))

    def at(self, index: int) -> Tuple[str, ...]:
        """
        The members as of log entry C{index} (for a snapshot ending there).
        """
        return fold(self._base, (c for i, c in self.changes() if i <= index))

    def pending(self, commit_index: int) -> Optional[Tuple[int, MembershipChange]]:
        """
        The last membership entry not committed yet (index above
        C{commit_index}), or C{None}.
        """
        changes = self.changes()
        if changes and changes[-1][0] > commit_index:
            return changes[-1]
        return None


def bootstrap_members(nodes: Sequence[str], self_address: str) -> Tuple[str, ...]:
    """
    The bootstrap list: C{RaftNodes} (stripped, de-duplicated), or this node
    alone when it is empty. A node that C{RaftNodes} does not list (a
    joiner, C{RaftJoin}) is not part of it.
    """
    members: List[str] = []
    for node in nodes:
        node = node.strip()
        if node and node not in members:
            members.append(node)
    return tuple(members) if members else (self_address,)


MembersAt = Callable[[int], Iterable[str]]
