"""
The suite's own rules, checked on its source: no test or benchmark uses a
MySQL server it did not start (the machine's own MariaDB on port 3306 in
particular), and every legitimate skip is documented in the README.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.nodes import REPO_ROOT
from test.skips import ALLOWED

#: A loopback address followed, within a few characters, by port 3306
#: (C{"127.0.0.1:3306"}, C{("127.0.0.1", 3306)}, C{localhost:3306}), or a
#: module constant C{PORT = 3306}.
LOCAL_3306 = re.compile(r"(127\.0\.0\.1|localhost)\D{0,4}3306\b|\bPORT\s*=\s*3306\b")


def sources(*directories):
    """
    The paths of the Python files under C{directories} (relative to the
    repository root).
    """
    for directory in directories:
        for root, _, files in os.walk(os.path.join(REPO_ROOT, directory)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(root, name)


class SourceRuleTests(SynchronousTestCase):
    """
    Rules of the issue "Tests need nothing the README does not install".
    """

    def test_no_local_3306(self):
        """
        No test, benchmark or sandbox module names a loopback server on port
        3306: they start their own MariaDB (L{freno.sandbox.mysql}) on a
        free port. (Port 3306 as a parsed value, C{HostKey("db1", 3306)},
        is fine: nothing connects to it.)
        """
        offending = []
        for path in sources("test", "bench", os.path.join("freno", "sandbox")):
            if os.path.abspath(path) == os.path.abspath(__file__.replace(".pyc", ".py")):
                continue  # the pattern's own examples
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if LOCAL_3306.search(line):
                        offending.append(f"{os.path.relpath(path, REPO_ROOT)}:{number}: {line.strip()}")
        self.assertEqual(offending, [])

    def test_pattern(self):
        """
        The pattern finds the usual spellings and leaves parsed values alone.
        """
        for text in ('"127.0.0.1:3306"', '("127.0.0.1", 3306)', "localhost:3306", "[127.0.0.1:3306]", "PORT = 3306"):
            self.assertTrue(LOCAL_3306.search(text), text)
        for text in ('HostKey("db1", 3306)', "127.0.0.1:33060", '"127.0.0.1:13306"', "port=3306"):
            self.assertFalse(LOCAL_3306.search(text), text)

    def test_allowed_skips_documented(self):
        """
        Every allowed skip reason is listed in the README's "Tests and CI".
        """
        with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        section = readme[readme.index("## Tests and CI"):]
        section = section[: section.index("\n## ", 1)]
        for reason in ALLOWED:
            self.assertIn(f"`{reason}`", section)
