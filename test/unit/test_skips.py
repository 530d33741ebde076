"""
Tests for L{test.skips}: reading trial's C{[SKIPPED]} sections, the
allow-list, the C{.ci/run} entry point, and the binary lookups that skips
for missing binaries use.
"""

from __future__ import annotations

import io
import os
import stat

from twisted.trial import reporter
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestSuite

from freno.sandbox import processes
from test import skips
from test.skips import (
    ALLOWED,
    HOSTNAME_UNRESOLVABLE,
    ROOT_READS_ANY_FILE,
    SkipGroup,
    UnreadableOutput,
    parse_skips,
    unexpected,
)

D = "=" * 79
S = "-" * 79

#: Hand-made trial output: two skip reasons, then a failure, then the summary.
SAMPLE = f"""test.unit.test_a
  A
    test_x ...                                                        [SKIPPED]

{D}
[SKIPPED]
root reads files whatever their mode

test.unit.test_config.FileErrorTests.test_unreadable
{D}
[SKIPPED]
mariadbd not found on PATH or in /usr/sbin: run make deps (Debian package mariadb-server)

test.integration.test_sandbox.ReplicationSandboxTests.test_freeze
test.integration.test_sandbox.ReplicationSandboxTests.test_topology
{D}
[FAIL]
Traceback (most recent call last):
  File "x.py", line 1, in f
twisted.trial.unittest.FailTest: 0 != 1

test.integration.test_raft.ThreeNodeTests.test_one_leader_everyone_agrees
{S}
Ran 9 tests in 1.000s

FAILED (skips=3, failures=1, successes=5)
"""


def real_trial_output(*cases) -> str:
    """
    What trial's own reporter prints after running C{cases} (test methods
    of classes made for the purpose), in memory.
    """
    stream = io.StringIO()
    result = reporter.Reporter(stream, realtime=False)
    TestSuite(list(cases)).run(result)
    result.done()
    return stream.getvalue()


def sample_cases():
    """
    Test methods that pass, skip for an allowed reason, skip for a missing
    binary (by C{SkipTest} and by a class attribute), and fail.
    """

    class Allowed(SynchronousTestCase):
        def test_root(self):
            raise SkipTest(ROOT_READS_ANY_FILE)

        def test_passes(self):
            pass

        def test_fails(self):
            self.fail("no")

    class Missing(SynchronousTestCase):
        skip = "mariadbd not found: run make deps (Debian package mariadb-server)"

        def test_one(self):
            pass

        def test_two(self):
            pass

    class Raised(SynchronousTestCase):
        def test_memcached(self):
            raise SkipTest("memcached not found: run make deps (Debian package memcached)")

    return [
        Allowed("test_root"), Allowed("test_passes"), Allowed("test_fails"),
        Missing("test_one"), Missing("test_two"), Raised("test_memcached"),
    ]


class ParseTests(SynchronousTestCase):
    """
    L{parse_skips} on hand-made and on real trial output.
    """

    def test_sample(self):
        """
        Every C{[SKIPPED]} section becomes one group with its reason and
        test ids; other sections are ignored.
        """
        self.assertEqual(
            parse_skips(SAMPLE),
            [
                SkipGroup(ROOT_READS_ANY_FILE, ("test.unit.test_config.FileErrorTests.test_unreadable",)),
                SkipGroup(
                    "mariadbd not found on PATH or in /usr/sbin: run make deps (Debian package mariadb-server)",
                    (
                        "test.integration.test_sandbox.ReplicationSandboxTests.test_freeze",
                        "test.integration.test_sandbox.ReplicationSandboxTests.test_topology",
                    ),
                ),
            ],
        )

    def test_no_skips(self):
        """
        Output without skips and with a summary claiming none has no groups.
        """
        self.assertEqual(parse_skips(f"{S}\nRan 2 tests in 0.1s\n\nPASSED (successes=2)\n"), [])

    def test_count_mismatch_is_unreadable(self):
        """
        Output whose sections name fewer tests than the summary's
        C{skips=N} (a format the parser misreads) is an error, not a pass.
        """
        text = SAMPLE.replace("skips=3", "skips=4")
        self.assertRaises(UnreadableOutput, parse_skips, text)
        text = SAMPLE.replace("[SKIPPED]", "[SKIPPD]")
        self.assertRaises(UnreadableOutput, parse_skips, text)

    def test_section_without_ids_is_unreadable(self):
        """
        A C{[SKIPPED]} section with a reason but no test id is an error.
        """
        text = f"{D}\n[SKIPPED]\nsome reason\n{S}\nRan 1 tests\n\nPASSED (skips=1)\n"
        self.assertRaises(UnreadableOutput, parse_skips, text)

    def test_real_trial_output(self):
        """
        The output of trial's own reporter parses into one group per
        reason, in trial's order, matching the summary.
        """
        groups = parse_skips(real_trial_output(*sample_cases()))
        by_reason = {g.reason: sorted(t.rsplit(".", 1)[-1] for t in g.tests) for g in groups}
        self.assertEqual(
            by_reason,
            {
                ROOT_READS_ANY_FILE: ["test_root"],
                "mariadbd not found: run make deps (Debian package mariadb-server)": ["test_one", "test_two"],
                "memcached not found: run make deps (Debian package memcached)": ["test_memcached"],
            },
        )

    def test_multi_line_reason(self):
        """
        A reason spanning lines is kept whole.
        """

        class Case(SynchronousTestCase):
            def test_it(self):
                raise SkipTest("first line\nsecond line")

        groups = parse_skips(real_trial_output(Case("test_it")))
        self.assertEqual([g.reason for g in groups], ["first line\nsecond line"])


class PolicyTests(SynchronousTestCase):
    """
    The allow-list and the C{.ci/run} entry point.
    """

    def test_allow_list(self):
        """
        Only the documented reasons are allowed for good, the others only
        while the work they name is not merged; each says why.
        """
        self.assertEqual(set(skips.PERMANENT), {ROOT_READS_ANY_FILE, HOSTNAME_UNRESOLVABLE})
        self.assertEqual(set(ALLOWED), set(skips.PERMANENT) | set(skips.PENDING))
        for reason, why in ALLOWED.items():
            self.assertTrue(why.strip(), reason)
            self.assertNotIn("\n", reason)

    def test_unexpected(self):
        """
        Groups whose reason is not allowed are the unexpected ones.
        """
        groups = parse_skips(SAMPLE)
        self.assertEqual(unexpected(groups), groups[1:])

    def run_main(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        out = io.StringIO()
        return skips.main([path], out), out.getvalue()

    def test_main_fails_on_unexpected_skip(self):
        """
        C{python -m test.skips} exits 1 and names the tests skipped for a
        reason not on the list.
        """
        code, out = self.run_main(real_trial_output(*sample_cases()))
        self.assertEqual(code, 1)
        self.assertIn("allowed (1): root reads files whatever their mode", out)
        self.assertIn("UNEXPECTED (2): mariadbd not found", out)
        self.assertIn("Missing.test_one", out)
        self.assertIn("3 test(s) skipped for a reason not on the allow-list", out)

    def test_main_passes_allowed_skips(self):
        """
        Only allowed skips (or none): exit 0.
        """
        cases = sample_cases()
        self.assertEqual(self.run_main(real_trial_output(*cases[:3]))[0], 0)
        self.assertEqual(self.run_main(real_trial_output(cases[1]))[0], 0)

    def test_main_unreadable(self):
        """
        Unreadable output or a missing file: exit 1 with the reason; wrong
        usage: exit 2.
        """
        code, out = self.run_main(SAMPLE.replace("skips=3", "skips=9"))
        self.assertEqual(code, 1)
        self.assertIn("cannot check trial's skips", out)
        self.assertEqual(skips.main([self.mktemp()], io.StringIO()), 1)
        self.assertEqual(skips.main([], io.StringIO()), 2)


class BinaryLookupTests(SynchronousTestCase):
    """
    L{skips.missing_binary} and L{skips.binary_or_skip} find binaries as the
    sandbox does (L{processes.find_binary}).
    """

    def test_found_outside_path(self):
        """
        A binary in one of the extra directories (C{/usr/sbin} for
        C{mariadbd}) is found with a C{$PATH} that lacks them, as a
        non-root user's often does.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "fake-daemon")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, stat.S_IRWXU)
        self.patch(os, "environ", {**os.environ, "PATH": "/nonexistent"})
        self.assertIsNone(processes.find_binary("fake-daemon", ()))
        self.assertEqual(processes.find_binary("fake-daemon", ("/nonexistent", directory)), path)

    def test_missing_names_the_package(self):
        """
        A missing binary's skip reason names the C{make deps} package; it is
        never an allowed reason.
        """
        self.patch(skips, "find_binary", lambda name: None if name == "haproxy" else "/bin/" + name)
        reason = skips.missing_binary("mariadbd", "haproxy")
        self.assertIn("haproxy not found", reason)
        self.assertIn("run make deps (Debian package haproxy)", reason)
        self.assertNotIn(reason, ALLOWED)
        self.assertIsNone(skips.missing_binary("mariadbd"))
        self.assertEqual(skips.binary_or_skip("mariadbd"), "/bin/mariadbd")
        error = self.assertRaises(SkipTest, skips.binary_or_skip, "haproxy")
        self.assertEqual(str(error), skips.missing_binary("haproxy"))
