"""
The probing leader of the check-path benchmark (L{bench.probing_leader}), for
real: a MariaDB sandbox and three C{twistd freno} processes, watched for a
few seconds without load.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from bench.probing_leader import CHECK_PATH, ProbingGroup, Saturation


class ProbingGroupTests(SynchronousTestCase):
    """
    The real group: a leader answers the check path, and a few seconds
    watched without load show no term change, the probes due running, and
    the reactor lag exposed by the leader.
    """

    def test_watch_idle_leader(self) -> None:
        """
        The leader answers C{/check/x/mysql/main} 200 and the watch reads
        sane figures from the real nodes.
        """
        workdir = tempfile.mkdtemp(prefix="freno-test-probing-")
        self.addCleanup(shutil.rmtree, workdir, True)
        group = ProbingGroup(workdir)
        self.addCleanup(group.stop)
        leader = group.start(90)
        self.assertEqual(leader.get(CHECK_PATH)[0], 200)
        watch = Saturation(group)
        watch.begin(4.0)
        time.sleep(4.0)
        watch.end()
        figures = watch.figures()
        self.assertEqual(figures["term_changes"], 0, figures)
        self.assertEqual(figures["leaders_seen"], [leader.name])
        self.assertEqual(figures["probe_errors"], 0)
        self.assertGreater(figures["probes_ok_per_s"], 0.5 * figures["probes_due_per_s"])
        self.assertEqual(figures["stale_answers"], 0)
        self.assertEqual(len(figures["lag_ms"]), 3, figures["failures"])
        self.assertEqual(set(figures["checks"]), {"200"})
