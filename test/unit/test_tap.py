"""
Tests for L{freno.tap}'s options: freno's flags, configuration errors and
overrides.
"""

import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from freno.tap import Options, freeze_start_up_objects
from test.support import single_node_config, write_config


class OptionsTests(SynchronousTestCase):
    """
    L{Options} mirrors freno's command line.
    """

    def test_help_documents_every_flag(self):
        """
        C{--help} lists freno's flags.
        """
        text = str(Options())
        for flag in [
            "--config", "--http-port", "--raft-bind", "--raft-datadir",
            "--raft-nodes", "--force-leadership", "--verbose", "--debug",
        ]:
            self.assertIn(flag, text)

    def test_overrides_apply(self):
        """
        Command-line values replace the file's, before validation.
        """
        path = write_config(self, single_node_config(self, 8087))
        options = Options()
        options.parseOptions([
            "--config", path, "--http-port", "9999", "--raft-bind", "127.0.0.1:7001",
            "--raft-nodes", "", "--force-leadership", "--debug",
        ])
        config = options["freno-config"]
        self.assertEqual(config.listen_port, 9999)
        self.assertEqual(config.raft_bind, "127.0.0.1:7001")
        self.assertEqual(config.raft_nodes, ())
        self.assertTrue(config.force_leadership)
        self.assertEqual(options.log_level, "debug")

    def test_raft_datadir_satisfies_validation(self):
        """
        C{--raft-datadir} can supply the data dir a file leaves out (freno
        applied overrides after validation, B20).
        """
        config = single_node_config(self)
        del config["RaftDataDir"]
        path = write_config(self, config)
        options = Options()
        options.parseOptions(["--config", path, "--raft-datadir", "/tmp/x"])
        self.assertEqual(options["freno-config"].raft_data_dir, "/tmp/x")

    def test_bad_config_exits_with_one_line(self):
        """
        A bad configuration writes one line to stderr and exits 1.
        """
        config = single_node_config(self)
        config["Stores"]["MySQL"]["Clusters"]["main"]["ThrottleThreshold"] = "abc"
        path = write_config(self, config)
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as raised:
            Options().parseOptions(["--config", path])
        self.assertEqual(raised.exception.code, 1)
        lines = stderr.getvalue().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertIn("Stores.MySQL.Clusters.main.ThrottleThreshold", lines[0])
        self.assertIn(path, lines[0])

    def test_log_levels(self):
        """
        --quiet wins; the default is warn.
        """
        path = write_config(self, single_node_config(self))
        for flags, level in [([], "warn"), (["--verbose"], "info"),
                             (["--verbose", "--debug", "--quiet"], "error")]:
            options = Options()
            options.parseOptions(["--config", path] + flags)
            self.assertEqual(options.log_level, level)


class _FakeGC:
    """
    Records what is asked of the garbage collector.
    """

    def __init__(self):
        self.calls = []

    def collect(self):
        self.calls.append("collect")

    def freeze(self):
        self.calls.append("freeze")


class FreezeTests(SynchronousTestCase):
    """
    L{freeze_start_up_objects} (D86).
    """

    def test_collects_then_freezes(self):
        """
        Start-up's garbage is collected first, then what is left frozen.
        """
        fake = _FakeGC()
        freeze_start_up_objects(fake)
        self.assertEqual(fake.calls, ["collect", "freeze"])
