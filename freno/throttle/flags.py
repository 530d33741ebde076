# -*- test-case-name: test.unit.test_throttle -*-
"""
L{CheckFlags}: how one check request wants to be evaluated.

freno kept process-global flags objects that every C{/check} request and the
internal self-checks shared; C{?p=low} leaked from one request into the next
and into the self-checks. Flags here are frozen values built per
request (the four common combinations are shared constants, which is safe
because nothing can change them; docs/decisions.md, D8).
"""

from __future__ import annotations

from typing import Optional

import attr


@attr.s(frozen=True, slots=True, auto_attribs=True)
class CheckFlags:
    """
    Per-request check options.

    @ivar low_priority: C{?p=low}: refuse while a normal client was recently
        refused on the same metric (L{freno.throttle.lowpriority}).
    @ivar ok_if_not_exists: the if-exists routes: a 404 answers 200.
    @ivar override_threshold: check-read's threshold from the path, or
        C{None}. The HTTP layer only lets finite values above 0 through.
    """

    low_priority: bool = False
    ok_if_not_exists: bool = False
    override_threshold: Optional[float] = None

    @property
    def read_check(self) -> bool:
        """
        Whether this is a check-read (it carries an override threshold).
        """
        return self.override_threshold is not None


STANDARD = CheckFlags()
LOW_PRIORITY = CheckFlags(low_priority=True)
OK_IF_NOT_EXISTS = CheckFlags(ok_if_not_exists=True)
LOW_PRIORITY_OK_IF_NOT_EXISTS = CheckFlags(low_priority=True, ok_if_not_exists=True)
