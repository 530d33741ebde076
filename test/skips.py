# -*- test-case-name: test.unit.test_skips -*-
"""
The suite's skip policy: the short list of legitimate skip reasons
(L{ALLOWED}), the reasons a test gives when a binary that C{make deps}
installs is missing (L{missing_binary}, never allowed), and the check
C{.ci/run} makes on trial's output (C{python -m test.skips TRIAL-OUTPUT}).

A test may skip only for a reason it cannot fix and C{make deps} cannot
install. Such a reason is one of the constants below, listed in L{ALLOWED}
with why it is legitimate, and a test skips with exactly that text
(C{raise SkipTest(ROOT_READS_ANY_FILE)}). Every other skip (a missing
C{mariadbd}, C{haproxy} or C{memcached}, a typo'd reason) makes C{.ci/run}
fail: it means that C{make test} did not test what it claims on this
machine.

The check reads trial's C{[SKIPPED]} sections (one per distinct reason:
the reason, a blank line, then the ids of the tests skipped for it) and
compares each reason with L{ALLOWED}; it also cross-checks the number of
skipped tests against trial's closing C{skips=N}, so output it cannot read
fails rather than passes.
"""

from __future__ import annotations

import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import attr

from freno.sandbox.processes import EXTRA_SEARCH_PATH, find_binary

#: Running as root, a file with mode 000 is still readable, so the "cannot
#: read the configuration file" error cannot be produced by file modes.
ROOT_READS_ANY_FILE = "root reads files whatever their mode"

#: freno's MySQL-backend service ids are C{hostname:port}, and a node of a
#: shared domain fetches C{http://<service id>/metrics-health} from its
#: peers; on a machine whose own host name does not resolve, no package
#: makes that work (Debian's installer puts the name in C{/etc/hosts}).
HOSTNAME_UNRESOLVABLE = "this host's name does not resolve (service ids are hostname:port)"

#: The legitimate skips for good: each reason with why it is legitimate.
PERMANENT: Dict[str, str] = {
    ROOT_READS_ANY_FILE: "file modes do not restrict root; the test needs a user that they restrict",
    HOSTNAME_UNRESOLVABLE: "a property of the machine's name service, not a package make deps installs",
}

#: Skips of tests that wait for work not merged yet (the test is written
#: against it and skips while the checkout lacks it): each reason with the
#: work it waits for. An entry goes when that work lands; the test then runs.
PENDING: Dict[str, str] = {}

#: Every skip reason C{.ci/run} accepts.
ALLOWED: Dict[str, str] = {**PERMANENT, **PENDING}

#: The Debian package (installed by C{make deps}) providing each binary the
#: tests run.
PACKAGES: Dict[str, str] = {
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "haproxy": "haproxy",
    "memcached": "memcached",
    "ss": "iproute2",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
}


def missing_binary(*names: str) -> Optional[str]:
    """
    A skip reason naming the first of C{names} that cannot be found the way
    the sandbox finds binaries (C{$PATH}, then C{/usr/sbin} and the other
    L{EXTRA_SEARCH_PATH} directories, which a non-root C{$PATH} often
    lacks), and the C{make deps} package that provides it; L{None} when all
    are there. Usable as a class's C{skip} attribute. Never in L{ALLOWED}:
    C{.ci/run} fails on it.
    """
    for name in names:
        if find_binary(name) is None:
            return (
                f"{name} not found on PATH or in {':'.join(EXTRA_SEARCH_PATH)}: "
                f"run make deps (Debian package {PACKAGES.get(name, name)})"
            )
    return None


def binary_or_skip(name: str) -> str:
    """
    The full path of C{name}, found as L{missing_binary} looks for it.

    @raise twisted.trial.unittest.SkipTest: it is missing (with
        L{missing_binary}'s reason).
    """
    from twisted.trial.unittest import SkipTest

    path = find_binary(name)
    if path is None:
        raise SkipTest(missing_binary(name))
    return path


# -- reading trial's output ------------------------------------------------------

_DOUBLE = "=" * 79
_SINGLE = "-" * 79
_SUMMARY = re.compile(r"^(PASSED|FAILED) \((?P<fields>[^)]*)\)\s*$", re.M)


@attr.s(frozen=True, auto_attribs=True)
class SkipGroup:
    """
    One C{[SKIPPED]} section of trial's output: a C{reason} and the ids of
    the C{tests} skipped for it.
    """

    reason: str
    tests: Tuple[str, ...]


class UnreadableOutput(ValueError):
    """
    Trial's output does not have the shape L{parse_skips} reads.
    """


def parse_skips(text: str) -> List[SkipGroup]:
    """
    The C{[SKIPPED]} sections of trial's output C{text}, in order.

    @raise UnreadableOutput: a section has no test id, or the number of
        skipped tests differs from the C{skips=N} of trial's last summary
        line (a missing summary line means no skips are claimed).
    """
    lines = text.splitlines()
    groups: List[SkipGroup] = []
    index = 0
    while index < len(lines):
        if lines[index].rstrip() != "[SKIPPED]" or index == 0 or lines[index - 1].rstrip() != _DOUBLE:
            index += 1
            continue
        index += 1
        block: List[str] = []
        while index < len(lines) and lines[index].rstrip() not in (_DOUBLE, _SINGLE):
            block.append(lines[index].rstrip())
            index += 1
        while block and not block[-1]:
            block.pop()
        if "" not in block:
            raise UnreadableOutput(f"a [SKIPPED] section without a test id: {block!r}")
        cut = len(block) - 1 - block[::-1].index("")
        reason = "\n".join(block[:cut]).strip()
        tests = tuple(line.strip() for line in block[cut + 1:])
        groups.append(SkipGroup(reason, tests))
    summaries = list(_SUMMARY.finditer(text))
    claimed = 0
    if summaries:
        match = re.search(r"(?:^|, )skips=(\d+)", summaries[-1].group("fields"))
        claimed = int(match.group(1)) if match else 0
    found = sum(len(g.tests) for g in groups)
    if found != claimed:
        raise UnreadableOutput(
            f"trial's summary says skips={claimed}, but its [SKIPPED] sections name {found} tests"
        )
    return groups


def unexpected(groups: Sequence[SkipGroup], allowed: Dict[str, str] = ALLOWED) -> List[SkipGroup]:
    """
    The groups whose reason is not in C{allowed}.
    """
    return [g for g in groups if g.reason not in allowed]


def main(argv: Optional[Sequence[str]] = None, out=None) -> int:
    """
    C{python -m test.skips TRIAL-OUTPUT}: print every skip, marking those
    not on the allow-list; exit 1 if there is one (or if the output cannot
    be read), else 0.
    """
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m test.skips TRIAL-OUTPUT", file=out)
        return 2
    try:
        with open(argv[0], encoding="utf-8", errors="replace") as f:
            groups = parse_skips(f.read())
    except (OSError, UnreadableOutput) as e:
        print(f"skips: cannot check trial's skips: {e}", file=out)
        return 1
    bad = unexpected(groups)
    for group in groups:
        verdict = "UNEXPECTED" if group in bad else "allowed"
        print(f"skips: {verdict} ({len(group.tests)}): {group.reason}", file=out)
        if group in bad:
            for test in group.tests:
                print(f"    {test}", file=out)
    if bad:
        print(
            f"skips: {sum(len(g.tests) for g in bad)} test(s) skipped for a reason not on "
            "the allow-list in test/skips.py (a missing binary means: run make deps)",
            file=out,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
